"""``logsvc offsets TOPIC --at earliest|latest|TIME``: each partition's offset at a point (kcat
``-Q``, ``kafka-get-offsets --time``), through :meth:`Admin.list_offsets` and
:meth:`Admin.offsets_for_time`, so it works against any address the Admin takes."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import click

from logsvc.cli import numbers
from logsvc.cli.output import echo_json, echo_table, iso_ms, output_option
from logsvc.cli.state import get_state, server_option
from logsvc.cli.timespec import parse_time_ms
from logsvc_client import Admin

AT_FORMS = "earliest|latest|TIME"


@dataclasses.dataclass(frozen=True)
class At:
    """A parsed ``--at``: earliest, latest, or a time (epoch ms)."""

    kind: str
    timestamp_ms: int = 0


def parse_at(text: str, now_ms: int | None = None) -> At:
    """``earliest`` (``beginning``, Kafka's -2), ``latest`` (``end``, -1), or a time: ISO-8601,
    epoch ms, or -DURATION before now (an ``@`` in front is allowed, as in ``consume --from``)."""
    value = text.strip().lower()
    if value in ("earliest", "beginning", "-2"):
        return At("earliest")
    if value in ("latest", "end", "-1"):
        return At("latest")
    clock = (lambda: now_ms) if now_ms is not None else (lambda: time.time_ns() // 1_000_000)
    return At("time", parse_time_ms(text.strip().removeprefix("@"), clock))


class AtType(click.ParamType):
    name = AT_FORMS

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> At:
        if isinstance(value, At):
            return value
        try:
            return parse_at(str(value))
        except ValueError as e:
            self.fail(f"{e} (--at takes earliest, latest or a time)", param, ctx)


@click.command()
@click.argument("topic")
@click.option(
    "-p",
    "--partition",
    "partitions",
    type=numbers.PARTITION,
    multiple=True,
    help="Only this partition, repeatable [default: all].",
)
@click.option(
    "--at",
    type=AtType(),
    default="latest",
    show_default=True,
    metavar=AT_FORMS,
    help="earliest: the log start offset (also beginning, -2); latest: the next offset (also end, -1); "
    "TIME: the first record at or after it, as ISO-8601 (2026-01-02T03:04:05Z; naive = UTC), epoch ms, "
    "or -DURATION ago (-15m, -2h, -1d).",
)
@server_option
@output_option(as_table="one row per partition", as_json="one object per partition")
def offsets(topic: str, partitions: tuple[int, ...], at: At, output: str) -> None:
    """Print each partition's offset at a point: its log start, its end, or a time.

    For a TIME, the offset of the first record whose timestamp is at or after it and that
    record's timestamp; when there is none, the partition's next offset and no timestamp (a
    consumer started there reads only newer records). This is kcat -Q and kafka-get-offsets --time.

    \b
    Examples:
      logsvc offsets orders                            # the end of each partition
      logsvc offsets orders --at earliest
      logsvc offsets orders --at 2026-01-02T03:04:05Z -p 0
      logsvc offsets orders --at -15m -o json
    """
    chosen = sorted(set(partitions)) or None
    rows: list[tuple[int, int, int | None]]
    with Admin(get_state().address()) as admin:
        if at.kind == "time":
            found = admin.offsets_for_time(topic, at.timestamp_ms, chosen)
            rows = [(p, o.offset, o.timestamp_ms) for p, o in sorted(found.items())]
        else:
            listed = admin.list_offsets(topic, "earliest" if at.kind == "earliest" else "latest", partitions=chosen)
            rows = [(p, offset, None) for p, offset in sorted(listed.items())]
    if output == "json":
        echo_json([{"topic": topic, "partition": p, "offset": o, "timestamp": ts} for p, o, ts in rows])
    elif at.kind == "time":
        echo_table(("PARTITION", "OFFSET", "TIMESTAMP", "TIMESTAMP MS"), [(p, o, iso_ms(ts), ts) for p, o, ts in rows])
    else:
        echo_table(("PARTITION", "OFFSET"), [(p, o) for p, o, _ in rows])
