"""``logsvc consume TOPIC``: print records from a starting point, then stop or keep following.

It stops after ``--max-records``, or once ``--timeout-ms`` pass without a new record; with
neither it follows the log until Ctrl-C (which ends it quietly, exit 0). Partitions are assigned
directly (no consumer group, nothing committed); ``--group`` will add group membership later, as
another way of :func:`assign`-ing.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence

import click

from logsvc.cli.output import Progress, dumps, output_option, record_json
from logsvc.cli.sources import out_of_range
from logsvc.cli.state import get_state, server_option
from logsvc.cli.timespec import StartSpec, StartType
from logsvc_client import Admin, Consumer, TopicPartition
from logsvc_client.records import Record

POLL_SLICE_MS = 500
NULL = b"null"


def assign(consumer: Consumer, topic: str, partition: int | None) -> None:
    """Which partitions to read: one (``--partition``) or all of the topic."""
    if partition is None:
        consumer.assign_topic(topic)
    else:
        consumer.assign([TopicPartition(topic, partition)])


def check_offset(admin: Admin, topic: str, partition: int | None, offset: int) -> list[int]:
    """The partitions to seek to ``offset``; OffsetOutOfRange (naming the range) when outside it."""
    earliest = admin.list_offsets(topic, "earliest", partitions=None if partition is None else [partition])
    latest = admin.list_offsets(topic, "latest", partitions=None if partition is None else [partition])
    if partition is None and len(earliest) > 1:
        raise click.UsageError(f"--from OFFSET needs --partition: {topic} has {len(earliest)} partitions")
    for p, start in sorted(earliest.items()):
        if not start <= offset <= latest[p]:
            raise out_of_range(topic, p, offset, start, latest[p])
    return sorted(earliest)


def seek(consumer: Consumer, admin: Admin, topic: str, partition: int | None, start: StartSpec) -> None:
    if start.kind == "earliest":
        consumer.seek_to_beginning()
    elif start.kind == "latest":
        consumer.seek_to_end()
    elif start.kind == "time":
        consumer.seek_to_time(start.value)
    else:
        for p in check_offset(admin, topic, partition, start.value):
            consumer.seek(TopicPartition(topic, p), start.value)


def write_records(records: Sequence[Record], as_json: bool, key_separator: bytes | None) -> None:
    """Write a polled batch to stdout and flush once (so a pipe sees it at once)."""
    if as_json:
        sys.stdout.write("".join(dumps(record_json(r)) + "\n" for r in records))
        sys.stdout.flush()
        return
    out = sys.stdout.buffer
    for r in records:
        if key_separator is not None:
            out.write((NULL if r.key is None else r.key) + key_separator)
        out.write((NULL if r.value is None else r.value) + b"\n")
    out.flush()


@click.command()
@click.argument("topic")
@click.option(
    "-p", "--partition", type=click.IntRange(min=0), default=None, help="Read only this partition [default: all]."
)
@click.option(
    "--from",
    "start",
    type=StartType(),
    metavar="earliest|latest|OFFSET|@TIME|@-DURATION",
    default="earliest",
    show_default=True,
    help="Where to start: earliest, latest, an OFFSET (needs --partition on a topic with several), "
    "@TIME in ISO-8601 (@2026-01-02T03:04:05Z; naive = UTC) or epoch ms, "
    "or @-DURATION ago (@-30s, @-15m, @-2h, @-1d).",
)
@click.option("-n", "--max-records", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
@click.option(
    "--timeout-ms",
    type=click.IntRange(min=0),
    default=None,
    help="Stop once this many milliseconds pass without a new record [default: follow until Ctrl-C].",
)
@click.option(
    "-k",
    "--key-separator",
    metavar="SEP",
    default=None,
    help="Print KEY SEP VALUE instead of the value alone (no key prints as null).",
)
@server_option
@output_option(as_table="the values, one per line", as_json="one object per record")
def consume(
    topic: str,
    partition: int | None,
    start: StartSpec,
    max_records: int | None,
    timeout_ms: int | None,
    key_separator: str | None,
    output: str,
) -> None:
    """Print the records of TOPIC, one value per line.

    A tombstone (null value) prints as null. With -o json, one object per line: topic,
    partition, offset, timestamp (ms), key, value and headers; text when it is UTF-8, otherwise
    {"base64": "..."}; null stays null. Records of one partition come in offset order.

    \b
    Examples:
      logsvc consume orders                          # everything, then follow
      logsvc consume orders --from latest            # only new records
      logsvc consume orders -p 0 --from 1200 -n 10   # ten records from offset 1200
      logsvc consume orders --from @-15m --timeout-ms 2000 -o json
    """
    as_json = output == "json"
    separator = None if key_separator is None else key_separator.encode()
    address = get_state().address()
    progress = Progress()
    try:
        with Admin(address) as admin, Consumer(address) as consumer:
            assign(consumer, topic, partition)
            seek(consumer, admin, topic, partition, start)
            follow(consumer, topic, max_records, timeout_ms, progress, lambda rs: write_records(rs, as_json, separator))
    except KeyboardInterrupt:
        pass  # following until interrupted is the normal way to stop
    finally:
        progress.clear()


def follow(
    consumer: Consumer,
    topic: str,
    max_records: int | None,
    timeout_ms: int | None,
    progress: Progress,
    write: Callable[[Sequence[Record]], None],
) -> int:
    """Poll and write until ``max_records`` or ``timeout_ms`` without a record; return the count."""
    count = 0
    last_record = time.monotonic()
    while max_records is None or count < max_records:
        wait_ms = POLL_SLICE_MS
        if timeout_ms is not None:
            idle_ms = (time.monotonic() - last_record) * 1000
            wait_ms = max(0, min(wait_ms, math.ceil(timeout_ms - idle_ms)))
        records = consumer.poll(timeout_ms=wait_ms, max_records=None if max_records is None else max_records - count)
        if records:
            progress.clear()
            write(records)
            count += len(records)
            last_record = time.monotonic()
        elif timeout_ms is not None and (time.monotonic() - last_record) * 1000 >= timeout_ms:
            break
        progress.update(f"{count} records from {topic}; waiting for more (Ctrl-C to stop)")
    return count
