"""``logsvc dlq list|show|replay CONNECTOR``: review a connector's dead-lettered records and replay them.

A sink connector sends a record that fails on its data to its dead-letter topic (``<connector>.dlq``
unless configured otherwise), always to partition 0, with the source record's key, value and
headers and ``dlq.*`` headers saying where it came from and why it failed (see
``logsvc_connect.dead_letters.format``). These commands read that partition; ``--topic`` names another
dead-letter topic.

``replay`` produces the original record again onto its source topic and partition (or ``--to``
another topic), with ``logsvc.replay.of`` = "<topic>/<partition>/<offset>" and
``logsvc.replay.dlq_offset`` = N, so a fixed handler or a repaired table can take it. The source
topic comes from the ``dlq.topic`` header, which anyone who can produce to the DLQ topic can write:
without ``--to`` or ``--force`` it must be a topic the connector consumes (see
:func:`logsvc_connect.dead_letters.review.connector_topics`), so a forged dead letter cannot be
replayed into another team's topic. Each replay
is remembered in ``<dlq topic>.replays`` (one partition, created on the first replay): one record
per replay, key = the DLQ offset (decimal), headers ``logsvc.replay.topic|partition|offset`` saying
where the copy landed. A record already replayed is refused unless ``--force``. The replayed copies
are produced before their markers, so a crash in between can leave a replay unremembered (a second
replay then duplicates it), never a replay remembered that did not happen.

A whole stored batch that did not decode (``dlq.error.class`` = CorruptBatch, see
``logsvc_connect.dead_letters.format``) is listed with the offset range it covers (``5-7``); its value is
the batch's raw bytes, for inspection (``show -o json`` gives them in base64). ``replay`` refuses
it: producing it would put the corrupt batch back into a topic (``--all`` leaves it out).

A source record can be dead-lettered more than once (a connector killed between dead-lettering it
and committing past it does it again after its restart): those DLQ records are copies of one dead
letter. ``replay --all`` replays such a record once, from its newest copy, and a replay through any
copy counts as a replay of every copy (``list`` and ``show`` say so too).

What the commands do is :mod:`logsvc_connect.dead_letters.review`'s; this module parses the
arguments and prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from logsvc.cli import numbers
from logsvc.cli.output import (
    Escaped,
    echo_fields,
    echo_json,
    echo_table,
    iso_ms,
    json_bytes,
    note,
    output_option,
    preview,
    printable,
)
from logsvc.cli.sources import ServerSource
from logsvc.cli.state import get_state, server_option
from logsvc_connect.dead_letters import DeadLetter, Replay, review

F = TypeVar("F", bound=Callable[..., Any])
MESSAGE_WIDTH = 48
INDENT = " " * len("error message: ")  # continuation lines of a message in `show`


def dlq_topic_option(fn: F) -> F:
    return click.option(
        "--topic",
        "dlq_topic",
        metavar="DLQ_TOPIC",
        default=None,
        help="The dead-letter topic, when the connector configures its own dlq_topic [default: CONNECTOR.dlq].",
    )(fn)


@click.group()
def dlq() -> None:
    """Review a sink connector's dead-lettered records and replay them.

    \b
    Examples:
      logsvc dlq list orders-sink                       # what failed, where from, why
      logsvc dlq show orders-sink --offset 3 -o json    # one dead letter in full
      logsvc dlq replay orders-sink --offset 3          # back onto its source partition
      logsvc dlq replay orders-sink --all --to orders-retry
    """


@dlq.command("list")
@click.argument("connector")
@dlq_topic_option
@click.option("--source-topic", metavar="TOPIC", default=None, help="Only records dead-lettered from TOPIC.")
@click.option("-n", "--max-records", type=click.IntRange(min=1), default=None, help="Show at most this many.")
@server_option
@output_option(as_table="a row per dead letter, messages shortened", as_json="an array, messages in full")
def list_(
    connector: str, dlq_topic: str | None, source_topic: str | None, max_records: int | None, output: str
) -> None:
    """List CONNECTOR's dead-lettered records: source topic, partition and offset, the error's
    class and message, attempts, time, and whether it was replayed."""
    with ServerSource(get_state().address()) as source:
        found = review.open_dlq(source, connector, dlq_topic, note)
    letters = [d for d in found.letters if source_topic is None or d.source_topic == source_topic]
    letters = letters[:max_records]
    if output == "json":
        echo_json([letter_json(d, found.replays_of(d)) for d in letters])
    elif letters:
        echo_table(
            (
                "DLQ OFFSET",
                "SOURCE TOPIC",
                "PARTITION",
                "OFFSET",
                "ERROR",
                "MESSAGE",
                "ATTEMPTS",
                "DEAD-LETTERED AT",
                "REPLAYED",
            ),
            [
                (
                    d.offset,
                    d.source_topic,
                    d.source_partition,
                    d.source_offsets,
                    d.error_class,
                    None if d.error_message is None else preview(d.error_message.encode(), MESSAGE_WIDTH),
                    d.attempts,
                    iso_ms(d.record.timestamp_ms),
                    "yes" if found.replays_of(d) else "no",
                )
                for d in letters
            ],
        )
    else:
        note(f"no dead-lettered records in {found.name}" + (f" from {source_topic}" if source_topic else ""))


def replay_json(replay: Replay) -> dict[str, Any]:
    return {
        "topic": replay.topic,
        "partition": replay.partition,
        "offset": replay.offset,
        "timestamp": replay.timestamp_ms,
        "time": iso_ms(replay.timestamp_ms),
    }


def letter_json(d: DeadLetter, replays: Sequence[Replay] = ()) -> dict[str, Any]:
    r = d.record
    return {
        "dlq_topic": r.topic,
        "dlq_partition": r.partition,
        "dlq_offset": r.offset,
        "timestamp": r.timestamp_ms,
        "time": iso_ms(r.timestamp_ms),
        "connector": d.connector,
        "source": {
            "topic": d.source_topic,
            "partition": d.source_partition,
            "offset": d.source_offset,
            "timestamp": d.source_timestamp_ms,
            # a dead-lettered corrupt batch: the last offset it covers
            **({} if d.source_last_offset is None else {"last_offset": d.source_last_offset}),
        },
        "corrupt_batch": d.is_corrupt_batch,
        "error": {"class": d.error_class, "message": d.error_message},
        "attempts": d.attempts,
        "replayed": bool(replays),
        "replays": [replay_json(p) for p in replays],
    }


def _message_lines(message: str) -> Escaped:
    """A multi-line error message, each line escaped, continuation lines indented under the first."""
    return Escaped(("\n" + INDENT).join(printable(line) for line in message.split("\n")))


def _full(data: bytes | None) -> str:
    return preview(data, width=4 * len(data) + 8 if data else 8)


@dlq.command()
@click.argument("connector")
@click.option("--offset", type=numbers.OFFSET, required=True, help="The dead letter's offset in the DLQ.")
@dlq_topic_option
@server_option
@output_option(as_table="the fields, then key, value and headers", as_json="one object")
def show(connector: str, offset: int, dlq_topic: str | None, output: str) -> None:
    """Show one dead-lettered record in full: where it came from, the error, its replays, and the
    original key, value and headers."""
    with ServerSource(get_state().address()) as source:
        found = review.open_dlq(source, connector, dlq_topic, note)
    d = found.letter(offset)
    replays = found.replays_of(d)
    if output == "json":
        echo_json(
            {
                **letter_json(d, replays),
                "key": json_bytes(d.record.key),
                "value": json_bytes(d.record.value),
                "headers": [[name, json_bytes(value)] for name, value in d.original_headers()],
            }
        )
        return
    echo_fields(
        [
            ("dlq record", f"{d.record.topic}/{d.record.partition}@{d.offset}"),
            ("dead-lettered at", iso_ms(d.record.timestamp_ms)),
            ("connector", d.connector or "-"),
            ("source", f"{d.source_topic}/{d.source_partition}@{d.source_offsets}" if d.has_source else "-"),
            ("source time", iso_ms(d.source_timestamp_ms)),
            ("error class", d.error_class or "-"),
            (
                "error message",
                "-"
                if d.error_message is None
                else Escaped(("\n" + INDENT).join(map(printable, d.error_message.split("\n")))),
            ),
            ("attempts", d.attempts if d.attempts is not None else "-"),
            ("replayed", ", ".join(f"to {p.where} at {iso_ms(p.timestamp_ms)}" for p in replays) or "no"),
            ("key", _full(d.record.key)),
            ("value", _full(d.record.value)),
            ("headers", ", ".join(f"{name}={_full(value)}" for name, value in d.original_headers()) or "-"),
        ]
    )


@dlq.command()
@click.argument("connector")
@click.option("--offset", "offsets", type=numbers.OFFSET, multiple=True, help="A DLQ offset to replay (repeatable).")
@click.option("--all", "replay_all", is_flag=True, help="Every record not replayed yet (with --force: every record).")
@click.option("--to", "to_topic", metavar="TOPIC", default=None, help="Produce to TOPIC instead of the source topic.")
@click.option(
    "--force",
    is_flag=True,
    help="Replay records that were replayed before, and to source topics the connector does not consume.",
)
@dlq_topic_option
@server_option
@output_option(as_table="a row per replayed record", as_json="an array, one object per replayed record")
def replay(
    connector: str,
    offsets: tuple[int, ...],
    replay_all: bool,
    to_topic: str | None,
    force: bool,
    dlq_topic: str | None,
    output: str,
) -> None:
    """Produce dead-lettered records again, onto their source topic and partition (or --to TOPIC).

    The copy has the original key, value and headers, plus logsvc.replay.of = TOPIC/PARTITION/OFFSET
    of the source record and logsvc.replay.dlq_offset = N. A record replayed before is refused
    unless --force; when any requested record is refused, nothing is replayed. Replays are
    remembered in the topic DLQ_TOPIC.replays.

    The source topic comes from the record's dlq.topic header, which anyone able to write to the
    DLQ topic can set: it must be a topic CONNECTOR consumes (its group has committed offsets for
    it or is assigned it), else the record is refused (left out with --all) unless --to or --force.
    """
    if bool(offsets) == replay_all:
        raise click.UsageError("give --offset N (repeatable) or --all")
    with ServerSource(get_state().address()) as source:
        found = review.open_dlq(source, connector, dlq_topic, note)
        planned = review.plan(found, offsets, replay_all, to_topic, force, note)
        if to_topic is None and not force:
            planned = review.own_sources(source.admin, connector, found, planned, replay_all, note)
        if not planned:
            why = "was replayed before (--force replays them again)" if found.letters else "(it has none)"
            note(f"nothing to replay: every dead-lettered record of {found.name} {why}")
            if output == "json":
                echo_json([])
            return
        review.check_targets(source, planned)
        replayed = review.replay(source.admin, found, planned)
    rows = [(r.planned, r.partition, r.offset) for r in replayed]
    if output == "json":
        echo_json(
            [
                {
                    "dlq_offset": p.letter.offset,
                    "source": {
                        "topic": p.letter.source_topic,
                        "partition": p.letter.source_partition,
                        "offset": p.letter.source_offset,
                    },
                    "replayed_to": {"topic": p.topic, "partition": partition, "offset": offset},
                }
                for p, partition, offset in rows
            ]
        )
    else:
        echo_table(
            ("DLQ OFFSET", "SOURCE", "REPLAYED TO"),
            [
                (p.letter.offset, p.letter.source if p.letter.has_source else None, f"{p.topic}/{pt}@{o}")
                for p, pt, o in rows
            ],
        )
    targets = ", ".join(sorted({p.topic for p in planned}))
    note(f"replayed {len(planned)} record(s) of {found.name} to {targets}")
