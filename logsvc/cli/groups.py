"""``logsvc groups list|describe|delete|reset-offsets``: inspect consumer groups and move their
committed offsets (replay)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import click

from logsvc.cli import numbers
from logsvc.cli.output import echo_fields, echo_json, echo_line, echo_table, iso_ms, note, output_option
from logsvc.cli.state import get_state, server_option
from logsvc.cli.timespec import parse_duration_ms, parse_time_ms
from logsvc_client import Admin
from logsvc_client.errors import GroupNotFound
from logsvc_client.group.descriptions import GroupDescription, ResetResult, ResetSpec

RESET_OPTIONS = ("--to-earliest", "--to-latest", "--to-offset", "--to-datetime", "--shift-by", "--by-duration")


def parse_topic_partitions(text: str) -> tuple[str, list[int] | None]:
    """``orders`` → ("orders", None: every partition); ``orders:0,2`` → ("orders", [0, 2]).
    ValueError naming the form expected."""
    topic, sep, listed = text.strip().partition(":")
    if not topic or (sep and not listed):
        raise ValueError(f"{text!r} is not TOPIC or TOPIC:P,P,... (e.g. orders or orders:0,2)")
    if not sep:
        return topic, None
    partitions: list[int] = []
    for part in listed.split(","):
        if not part.strip().isdigit():
            raise ValueError(f"{part.strip()!r} in {text!r} is not a partition number")
        partitions.append(int(part))
    return topic, sorted(set(partitions))


def reset_spec(
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    shift_by: int | None,
    by_duration: str | None,
    now_ms: Callable[[], int] | None = None,
) -> tuple[ResetSpec, int | None]:
    """The one reset option given, as (spec, value); a usage error unless exactly one is."""
    options: tuple[tuple[ResetSpec, Any, bool], ...] = (
        ("earliest", None, to_earliest),
        ("latest", None, to_latest),
        ("offset", to_offset, to_offset is not None),
        ("datetime", to_datetime, to_datetime is not None),
        ("shift_by", shift_by, shift_by is not None),
        ("duration", by_duration, by_duration is not None),
    )
    given = [(spec, value) for spec, value, present in options if present]
    if len(given) != 1:
        raise click.UsageError(f"give exactly one of {', '.join(RESET_OPTIONS)}")
    spec, value = given[0]
    clock = now_ms or (lambda: time.time_ns() // 1_000_000)
    try:
        if spec == "datetime":
            return spec, parse_time_ms(value, clock)
        if spec == "duration":
            return spec, parse_duration_ms(value)
    except ValueError as e:
        option = "--to-datetime" if spec == "datetime" else "--by-duration"
        raise click.BadParameter(str(e), param_hint=f"'{option}'") from None
    return spec, value


# -- JSON shapes --------------------------------------------------------------------------------


def group_json(desc: GroupDescription) -> dict[str, Any]:
    return {
        "group": desc.group,
        "state": desc.state,
        "generation": desc.generation,
        "assignor": desc.assignor,
        "members": [
            {
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "client_id": m.client_id,
                "assignment": [{"topic": tp.topic, "partition": tp.partition} for tp in m.assignment],
                "last_heartbeat_ms": m.last_heartbeat_ms,
            }
            for m in desc.members
        ],
        "partitions": [
            {
                "topic": p.topic,
                "partition": p.partition,
                "committed_offset": p.committed_offset,
                "log_start_offset": p.log_start_offset,
                "next_offset": p.next_offset,
                "lag": p.lag,
                "lag_ms": p.lag_ms,
                "owner": p.owner,
            }
            for p in desc.partitions
        ],
    }


def reset_json(result: ResetResult) -> dict[str, Any]:
    return {
        "group": result.group,
        "executed": result.executed,
        "resets": [
            {"topic": r.topic, "partition": r.partition, "before": r.before, "after": r.after} for r in result.resets
        ],
    }


def _partition_list(tps: Any) -> str:
    by_topic: dict[str, list[str]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(str(tp.partition))
    return " ".join(f"{topic}:{','.join(ps)}" for topic, ps in by_topic.items()) or "-"


def echo_group(desc: GroupDescription) -> None:
    """The group's fields, its members, then one row per partition with lag and owner."""
    echo_fields(
        [
            ("group", desc.group),
            ("state", desc.state),
            ("generation", desc.generation),
            ("assignor", desc.assignor or "-"),
            ("members", len(desc.members)),
        ]
    )
    if desc.members:
        click.echo()
        echo_table(
            ("MEMBER", "INSTANCE", "CLIENT", "ASSIGNMENT", "LAST HEARTBEAT"),
            [
                (
                    m.member_id,
                    m.instance_id,
                    m.client_id or None,
                    _partition_list(m.assignment),
                    iso_ms(m.last_heartbeat_ms),
                )
                for m in desc.members
            ],
        )
    if desc.partitions:
        click.echo()
        echo_table(
            ("TOPIC", "PARTITION", "COMMITTED", "NEXT OFFSET", "LAG", "LAG (S)", "OWNER"),
            [
                (p.topic, p.partition, p.committed_offset, p.next_offset, p.lag, f"{p.lag_ms / 1000:.1f}", p.owner)
                for p in desc.partitions
            ],
        )


# -- commands -----------------------------------------------------------------------------------


@click.group()
def groups() -> None:
    """List, describe and delete consumer groups; reset their offsets (replay).

    \b
    Examples:
      logsvc groups list
      logsvc groups describe billing -o json
      logsvc groups reset-offsets billing --topic orders --to-earliest             # dry run
      logsvc groups reset-offsets billing --topic orders:0,1 --by-duration 2h --execute
      logsvc groups delete billing
    """


@groups.command("list")
@server_option
@output_option
def list_(output: str) -> None:
    """List the groups: live ones and those with committed offsets. A group without live members
    is forgotten, committed offsets included, once idle for the broker's offsets_retention_minutes
    (7 days by default)."""
    with Admin(get_state().address()) as admin:
        summaries = admin.list_groups()
    if output == "json":
        echo_json([{"group": g.group, "state": g.state, "members": g.members} for g in summaries])
    elif summaries:
        echo_table(("GROUP", "STATE", "MEMBERS"), [(g.group, g.state, g.members) for g in summaries])
    else:
        note("no groups")


def caught_up(desc: GroupDescription) -> bool:
    """The group has partitions (it committed on them, or a member reads their topic) and no lag on any."""
    return bool(desc.partitions) and all(p.lag == 0 for p in desc.partitions)


def wait_caught_up(admin: Admin, group: str, timeout_s: float) -> GroupDescription:
    """Describe ``group`` every half second until :func:`caught_up` (a group not there yet is
    waited for too); ClickException after ``timeout_s`` naming what is left."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            desc: GroupDescription | None = admin.describe_group(group)
        except GroupNotFound:
            desc = None
        if desc is not None and caught_up(desc):
            return desc
        if time.monotonic() >= deadline:
            left = "the group does not exist" if desc is None else f"lag {sum(p.lag for p in desc.partitions):,}"
            raise click.ClickException(f"group {group} has not caught up after {timeout_s:g} s ({left})")
        time.sleep(0.5)


@groups.command()
@click.argument("group")
@click.option(
    "--wait-caught-up",
    "wait_s",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    default=None,
    help="First wait up to SECONDS until the group has caught up: it exists and its lag is 0 on every "
    "partition of its topics (a connector done with the backlog); exit 1 if it has not by then. For "
    "scripts and demos.",
)
@server_option
@output_option
def describe(group: str, wait_s: float | None, output: str) -> None:
    """Show a group's state, members, and per partition: the committed offset, the next offset,
    the lag in records and in seconds (age of the first unconsumed record), and the owner."""
    with Admin(get_state().address()) as admin:
        desc = admin.describe_group(group) if wait_s is None else wait_caught_up(admin, group, wait_s)
    if output == "json":
        echo_json(group_json(desc))
    else:
        echo_group(desc)


@groups.command()
@click.argument("group")
@server_option
@output_option
def delete(group: str, output: str) -> None:
    """Delete a group and its committed offsets (refused while it has live members)."""
    with Admin(get_state().address()) as admin:
        admin.delete_group(group)
    if output == "json":
        echo_json({"deleted": group})
    else:
        echo_line(f"deleted group {group}")


@groups.command("reset-offsets")
@click.argument("group")
@click.option(
    "--topic",
    "topic_spec",
    metavar="TOPIC[:P,P...]",
    required=True,
    help="The topic, optionally with the partitions to reset [default: all of them].",
)
@click.option("--to-earliest", is_flag=True, help="To each partition's log start.")
@click.option("--to-latest", is_flag=True, help="To each partition's end (skip everything).")
@click.option("--to-offset", type=numbers.OFFSET, default=None, metavar="N", help="To offset N.")
@click.option(
    "--to-datetime",
    metavar="ISO-8601",
    default=None,
    help="To the first record at or after a time: 2026-01-02T03:04:05Z (naive = UTC) or epoch ms.",
)
@click.option("--shift-by", type=int, default=None, metavar="N", help="Move by N records (negative = back).")
@click.option(
    "--by-duration", metavar="DURATION", default=None, help="To the first record of DURATION ago: 30s, 15m, 2h, 1d."
)
@click.option("--execute", is_flag=True, help="Apply the change [default: a dry run that changes nothing].")
@server_option
@output_option(as_table="the before/after table", as_json="an object with every partition's before and after")
def reset_offsets(
    group: str,
    topic_spec: str,
    to_earliest: bool,
    to_latest: bool,
    to_offset: int | None,
    to_datetime: str | None,
    shift_by: int | None,
    by_duration: str | None,
    execute: bool,
    output: str,
) -> None:
    """Move GROUP's committed offsets of a topic, to replay or to skip records.

    Give exactly one of the --to-*/--shift-by/--by-duration options. Without --execute this is a
    dry run: it prints the before/after table and changes nothing. New offsets are clamped to
    each partition's [log start, next offset]. Refused while the group has live members (stop
    its consumers first).
    """
    try:
        topic, partitions = parse_topic_partitions(topic_spec)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--topic'") from None
    spec, value = reset_spec(to_earliest, to_latest, to_offset, to_datetime, shift_by, by_duration)
    with Admin(get_state().address()) as admin:
        result = admin.reset_offsets(group, topic, partitions, spec, value, execute=execute)
    if output == "json":
        echo_json(reset_json(result))
    else:
        echo_table(
            ("TOPIC", "PARTITION", "BEFORE", "AFTER"),
            [(r.topic, r.partition, r.before, r.after) for r in result.resets],
        )
    if result.executed:
        note(f"reset {len(result.resets)} partition(s) of group {group}")
    else:
        note("dry run: nothing changed (add --execute to apply)")
