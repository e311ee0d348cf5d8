"""``logsvc consume TOPIC...``: print records from a starting point, then stop or keep following.

It stops after ``--max-records``, once ``--timeout-ms`` pass without a new record, or (``-e``) at
the end each partition had at start (:mod:`logsvc.cli.read_range`); with
neither it follows the log until Ctrl-C or SIGTERM (either ends it quietly, exit 0). Without
``--group`` partitions are assigned directly and nothing is committed. With ``--group G`` it is a
member of consumer group G: it reads the partitions the group gives it from the group's committed offsets
(``--from`` earliest|latest only says where to start when there is none) and commits exactly what
it printed — about every second, when a partition is taken away, and on exit (end, Ctrl-C,
SIGTERM, ``--max-records``), after which it leaves the group.

A stored batch that does not decode (written by an older version, or damaged) ends it with one
``error:`` line naming topic, partition and offset range, exit 1, after committing what was
printed. With ``--skip-corrupt`` it prints one ``warning:`` line per such batch on stderr and reads
on past it (a group's commit then passes it too). A batch holding a record whose fields do not
have the specified types (a str key, a float timestamp) does not decode, so it is such a batch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import click

from logsvc.cli import numbers
from logsvc.cli.client_overrides import CONSUMER, overrides, x_option
from logsvc.cli.escapes import option_bytes
from logsvc.cli.output import FORMATS, Progress, dumps, note, record_json
from logsvc.cli.read_range import PartitionEnds, bounds, resolve_topics, seek
from logsvc.cli.record_format import compile_format
from logsvc.cli.state import get_state, server_option
from logsvc.cli.timespec import KcatOffsetOrOutput, StartSpec, StartType, StopSpec
from logsvc_client import Admin, Consumer, TopicPartition
from logsvc_client.consumer.fetch_options import CorruptBatches
from logsvc_client.errors import CorruptBatch, FailedPrecondition
from logsvc_client.records import Record

POLL_SLICE_MS = 500
COMMIT_INTERVAL_S = 1.0
NULL = b"null"


class PrintedOffsets:
    """What was printed, per partition, and not yet committed: committed about every second,
    when the group takes partitions away (``on_revoke``), and at the end."""

    def __init__(self) -> None:
        self.consumer: Consumer | None = None
        self.pending: dict[TopicPartition, int] = {}
        self._next_commit = time.monotonic() + COMMIT_INTERVAL_S

    def printed(self, records: Sequence[Record]) -> None:
        """``records`` reached stdout: remember the next offset of each partition."""
        pending = self.pending
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            pending[tp] = max(pending.get(tp, 0), r.offset + 1)
        if time.monotonic() >= self._next_commit:
            self.commit()

    def commit(self, only: Sequence[TopicPartition] | None = None) -> None:
        """Commit what was printed (of ``only``); the partitions' next owner starts there."""
        self._next_commit = time.monotonic() + COMMIT_INTERVAL_S
        chosen = self.pending if only is None else {tp: self.pending[tp] for tp in only if tp in self.pending}
        if chosen and self.consumer is not None:
            self.consumer.commit(dict(chosen))
            for tp in list(chosen):
                del self.pending[tp]

    def skipped(self, error: CorruptBatch) -> None:
        """A corrupt batch (or record) was skipped: the partition's next commit passes it (records
        taken before it in the same poll are printed before any commit)."""
        tp = TopicPartition(error.details["topic"], error.details["partition"])
        self.pending[tp] = max(self.pending.get(tp, 0), error.details["last_offset"] + 1)

    def on_revoke(self, tps: Sequence[TopicPartition]) -> None:
        try:
            self.commit(only=tps)
        except FailedPrecondition as e:  # lost the partitions (session expired): their next owner reprints
            note(f"warning: could not commit what was printed of {len(tps)} partition(s): {e}")
            for tp in tps:
                self.pending.pop(tp, None)


class SkipWarnings(logging.Handler):
    """Turns the consumer's WARNING for each skipped corrupt batch into a ``warning:`` line on
    stderr (and tells ``offsets`` the batch is done)."""

    def __init__(self, offsets: PrintedOffsets) -> None:
        super().__init__(logging.WARNING)
        self.offsets = offsets

    def emit(self, record: logging.LogRecord) -> None:
        error = getattr(record, "corrupt_batch", None)
        if isinstance(error, CorruptBatch):
            self.offsets.skipped(error)
        note(f"warning: {record.getMessage()}")


@contextlib.contextmanager
def skip_warnings(offsets: PrintedOffsets) -> Iterator[None]:
    logger = logging.getLogger("logsvc_client.consumer")
    handler = SkipWarnings(offsets)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def open_consumer(
    address: str,
    group: str | None,
    start: StartSpec,
    offsets: PrintedOffsets,
    skip_corrupt: bool = False,
    settings: Mapping[str, Any] | None = None,
) -> Consumer:
    """The consumer: ``settings`` (from ``-X``) on top of what the command needs."""
    corrupt_batches: CorruptBatches = "skip" if skip_corrupt else "raise"
    if group is None:
        return Consumer(address, corrupt_batches=corrupt_batches, **(settings or {}))
    chosen: dict[str, Any] = {"client_id": "logsvc-cli", **(settings or {})}
    consumer = Consumer(
        address,
        group,
        corrupt_batches=corrupt_batches,
        enable_auto_commit=False,
        auto_offset_reset="latest" if start.kind == "latest" else "earliest",
        on_revoke=offsets.on_revoke,
        **chosen,
    )
    offsets.consumer = consumer
    return consumer


def write_records(
    records: Sequence[Record],
    as_json: bool,
    key_separator: bytes | None,
    fmt: Callable[[Record], bytes] | None = None,
    null: bytes = NULL,
    delimiter: bytes = b"\n",
) -> None:
    """Write a polled batch to stdout and flush once (so a pipe sees it at once)."""
    if as_json:
        sys.stdout.write("".join(dumps(record_json(r)) + "\n" for r in records))
        sys.stdout.flush()
        return
    out = sys.stdout.buffer
    if fmt is not None:
        out.write(b"".join(fmt(r) for r in records))
    else:
        for r in records:
            if key_separator is not None:
                out.write((null if r.key is None else r.key) + key_separator)
            out.write((null if r.value is None else r.value) + delimiter)
    out.flush()


def choose(
    o_values: tuple[object, ...], starts: tuple[object, ...], output: str | None
) -> tuple[StartSpec, StopSpec | None, str]:
    """The start, the stop time and the output format from ``-o`` (kcat offsets or json|table),
    ``--from``/``--offset`` and ``--output``: at most one of each kind."""
    given = [*starts, *o_values]
    start = [v for v in given if isinstance(v, StartSpec)]
    stop = [v for v in given if isinstance(v, StopSpec)]
    formats = list(dict.fromkeys([*([output] if output else []), *(v for v in o_values if isinstance(v, str))]))
    if len(start) > 1:
        raise click.UsageError(f"give one start (--from / -o), not {' and '.join(s.describe() for s in start)}")
    if len(stop) > 1:
        raise click.UsageError("give one -o e@TIME")
    if len(formats) > 1:
        raise click.UsageError(f"give one output format, not {' and '.join(formats)}")
    fmt = formats[0] if formats else (os.environ.get("LOGSVC_OUTPUT") or "table")
    if fmt not in FORMATS:
        raise click.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="LOGSVC_OUTPUT")
    return (start[0] if start else StartSpec("earliest")), (stop[0] if stop else None), fmt


@click.command()
@click.argument("topics", nargs=-1, metavar="[TOPIC]...")
@click.option(
    "-t", "--topic", "topic_options", metavar="TOPIC", multiple=True, help="A topic to read (kcat's -t), repeatable."
)
@click.option(
    "--pattern",
    is_flag=True,
    help="Each TOPIC is a regular expression the whole topic name must match (a TOPIC starting with ^ "
    "always is, as in kcat); matched once, at start.",
)
@click.option(
    "-p", "--partition", type=numbers.PARTITION, default=None, help="Read only this partition [default: all]."
)
@click.option(
    "--from",
    "--offset",
    "starts",
    type=StartType(kcat=True),
    metavar="earliest|latest|OFFSET|-N|@TIME|@-DURATION",
    multiple=True,
    help="Where to start [default: earliest]: earliest (beginning), latest (end), an OFFSET (needs "
    "--partition on a topic with several), -N: the last N records of each partition, "
    "@TIME in ISO-8601 (@2026-01-02T03:04:05Z; naive = UTC) or epoch ms, "
    "or @-DURATION ago (@-30s, @-15m, @-2h, @-1d); kcat's stored, s@TIME and e@TIME too (see -o).",
)
@click.option(
    "-o",
    "o_values",
    type=KcatOffsetOrOutput(),
    metavar="json|table|OFFSET-SPEC",
    multiple=True,
    help="json or table: the output format (as --output). Anything else is a kcat offset: beginning, end, "
    "stored (the group's commit), OFFSET, -N (the last N), s@TIME (start at a time), e@TIME (stop each "
    "partition before its first record at or after TIME). Repeatable: -o -10 -o json. The two sets of "
    "values never overlap, so the -o json of earlier versions keeps working.",
)
@click.option(
    "-g",
    "-G",
    "--group",
    metavar="GROUP",
    default=None,
    help="Consume as a member of consumer group GROUP, from its committed offsets, committing what was "
    "printed (--from earliest|latest: where to start when the group has no committed offset).",
)
@click.option(
    "-n", "-c", "--max-records", type=click.IntRange(min=1), default=None, help="Stop after this many records."
)
@click.option(
    "-e",
    "--exit",
    "exit_at_end",
    is_flag=True,
    help="Stop once every partition read reaches the end it had at start (records produced later are not printed).",
)
@click.option(
    "--timeout-ms",
    type=click.IntRange(min=0),
    default=None,
    help="Stop once this many milliseconds pass without a new record [default: follow until Ctrl-C or SIGTERM].",
)
@click.option(
    "-f",
    "--format",
    "format_string",
    metavar="FORMAT",
    default=None,
    help="Print each record as FORMAT (kcat's -f): %t topic, %p partition, %o offset, %k key, %s value, "
    "%K / %S key / value length (-1 for null), %T timestamp (ms), %h headers (name=value,...), %% a %; "
    "escapes \\n \\t \\r \\0 \\\\ \\xHH. No newline is added: end FORMAT with \\n.",
)
@click.option(
    "-k",
    "--key-separator",
    "--key-delimiter",
    "-K",
    metavar="SEP",
    default=None,
    help="Print KEY SEP VALUE instead of the value alone (escapes as in --format; kcat's -K).",
)
@click.option(
    "-D",
    "--delimiter",
    "delimiter_text",
    metavar="DELIM",
    default="\\n",
    show_default=True,
    help="End each record with DELIM instead of a newline (kcat's -D; escapes as in --format: -D '\\0').",
)
@click.option(
    "-Z",
    "--null-as-NULL",
    "kcat_null",
    is_flag=True,
    help="Print a null key or value (a tombstone) as NULL, as kcat -Z does, instead of null.",
)
@click.option("-q", "--quiet", is_flag=True, help="No notes on stderr (the end of each partition with -e).")
@click.option(
    "--skip-corrupt",
    is_flag=True,
    help="Skip a stored batch that does not decode (a warning line on stderr each) instead of stopping with an error.",
)
@x_option(CONSUMER, "consumer")
@server_option
@click.option(
    "--output",
    type=click.Choice(FORMATS),
    default=None,
    help="table: the values, one per line (or --format); json: one object per record "
    "[default: $LOGSVC_OUTPUT or table]. Also -o json|table.",
)
def consume(
    topics: tuple[str, ...],
    topic_options: tuple[str, ...],
    pattern: bool,
    partition: int | None,
    starts: tuple[object, ...],
    o_values: tuple[object, ...],
    group: str | None,
    max_records: int | None,
    exit_at_end: bool,
    timeout_ms: int | None,
    format_string: str | None,
    key_separator: str | None,
    delimiter_text: str,
    kcat_null: bool,
    quiet: bool,
    skip_corrupt: bool,
    x_pairs: tuple[str, ...],
    output: str | None,
) -> None:
    """Print the records of each TOPIC, one value per line.

    The plain output is a data pipe (as kcat's): keys and values are written byte for byte, control
    characters included, so redirect it to a file or a program, or use -o json (escaped) to look at
    data you do not trust on a terminal. A null value (a tombstone) and a null key print as null,
    as in earlier versions; -Z prints them as kcat's NULL instead, so a tombstone is told apart from
    the text "null" (and %S / %K print -1 for null; -o json shows null).

    With -o json, one object per line: topic, partition, offset, timestamp (ms), key, value and
    headers; text when it is UTF-8, otherwise {"base64": "..."}; null stays null. Records of one
    partition come in offset order.

    Several topics (TOPIC arguments or -t) are read together; a TOPIC starting with ^ (or any with
    --pattern) is a regular expression matched against the topic names once, at start.

    -o is kcat's offset flag when its value is an offset (beginning, end, stored, 42, -100, s@TIME,
    e@TIME) and the output format when it is json or table, so both kcat habits and earlier
    scripts work; --offset and --output are the unambiguous long forms.

    A stored batch that does not decode (older or damaged data) stops it with an error naming its
    offsets; --skip-corrupt prints a warning for it and reads on.

    \b
    Examples:
      logsvc consume orders                          # everything, then follow
      logsvc consume orders --from latest            # only new records
      logsvc consume orders -p 0 --from 1200 -n 10   # ten records from offset 1200
      logsvc consume orders -o -100 -e               # the last 100 of each partition, then exit
      logsvc consume orders -e -f '%t [%p] at %o: %k=%s (%T) %h\\n'
      logsvc consume '^orders\\..*' payments -e -o json   # a pattern and a topic
      logsvc consume orders --from @-15m --timeout-ms 2000 -o json
      logsvc consume orders --group audit --timeout-ms 5000   # resumes where the group left off
    """
    names = [*topics, *topic_options]
    if not names:
        raise click.UsageError("give a TOPIC (or -t TOPIC)")
    start, stop, output = choose(o_values, starts, output)
    if group is not None:
        if partition is not None:
            raise click.UsageError("--partition cannot be used with --group (the group assigns the partitions)")
        if start.kind not in ("earliest", "latest", "stored"):
            raise click.UsageError(
                "--from/-o with --group takes earliest or latest (where to start without a commit), or stored"
            )
    as_json = output == "json"
    if as_json and format_string is not None:
        raise click.UsageError("--format prints its own lines: it cannot be used with -o json")
    if format_string is not None and key_separator is not None:
        raise click.UsageError("--key-separator cannot be used with --format (put %k in the format)")
    null = b"NULL" if kcat_null else NULL
    settings = overrides(x_pairs, CONSUMER)
    try:
        fmt = None if format_string is None else compile_format(format_string, null)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'--format'") from None
    separator = None if key_separator is None else option_bytes(key_separator, "--key-separator")
    delimiter = option_bytes(delimiter_text, "--delimiter")
    address = get_state().address()
    progress = Progress(enabled=False) if quiet else Progress()
    offsets = PrintedOffsets()

    def write(records: Sequence[Record]) -> None:
        write_records(records, as_json, separator, fmt, null, delimiter)
        if group is not None:
            offsets.printed(records)

    previous_sigterm = signal.signal(signal.SIGTERM, stop_like_ctrl_c)
    try:
        with (
            skip_warnings(offsets),
            Admin(address) as admin,
            open_consumer(address, group, start, offsets, skip_corrupt, settings) as consumer,
        ):
            chosen = resolve_topics(admin, names, pattern)
            found = bounds(admin, chosen, partition)
            ends = PartitionEnds(found if exit_at_end else None, None if stop is None else stop.timestamp_ms, quiet)
            if group is not None:
                consumer.subscribe(chosen)
            else:
                consumer.assign(sorted(found))
                seek(consumer, found, start, partition)
            try:
                follow(consumer, ", ".join(chosen), max_records, timeout_ms, progress, write, ends)
            except CorruptBatch as e:
                details = {k: v for k, v in e.details.items() if k != "batch"}
                raise CorruptBatch(f"{e.message} (--skip-corrupt reads on past it)", **details) from None
            finally:
                offsets.commit()
    except KeyboardInterrupt:
        pass  # following until interrupted is the normal way to stop
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)
        progress.clear()


def stop_like_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM (a supervisor, ``kill``, ``timeout``) ends consume the way Ctrl-C does: it commits
    what it printed and leaves the group. A second SIGTERM during that ends the process at once."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt


def follow(
    consumer: Consumer,
    topic: str,
    max_records: int | None,
    timeout_ms: int | None,
    progress: Progress,
    write: Callable[[Sequence[Record]], None],
    ends: PartitionEnds | None = None,
) -> int:
    """Poll and write until ``max_records``, ``timeout_ms`` without a record, or (``ends``) every
    partition has ended; return the count."""
    count = 0
    last_record = time.monotonic()
    while max_records is None or count < max_records:
        if ends is not None and ends.finished(consumer):
            break
        wait_ms = POLL_SLICE_MS
        if timeout_ms is not None:
            idle_ms = (time.monotonic() - last_record) * 1000
            wait_ms = max(0, min(wait_ms, math.ceil(timeout_ms - idle_ms)))
        records = consumer.poll(timeout_ms=wait_ms, max_records=None if max_records is None else max_records - count)
        if records:
            last_record = time.monotonic()
            if ends is not None:
                records = list(ends.keep(records))
        if records:
            progress.clear()
            write(records)
            count += len(records)
        elif timeout_ms is not None and (time.monotonic() - last_record) * 1000 >= timeout_ms:
            break
        progress.update(f"{count} records from {topic}; waiting for more (Ctrl-C to stop)")
    return count
