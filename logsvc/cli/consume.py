"""``logsvc consume TOPIC``: print records from a starting point, then stop or keep following.

It stops after ``--max-records``, or once ``--timeout-ms`` pass without a new record; with
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
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import click

from logsvc.cli.output import Progress, dumps, note, output_option, record_json
from logsvc.cli.sources import out_of_range
from logsvc.cli.state import get_state, server_option
from logsvc.cli.timespec import StartSpec, StartType
from logsvc_client import Admin, Consumer, TopicPartition
from logsvc_client.consumer.fetcher import CorruptBatches
from logsvc_client.errors import CorruptBatch, FailedPrecondition
from logsvc_client.records import Record

POLL_SLICE_MS = 500
COMMIT_INTERVAL_S = 1.0
NULL = b"null"


def assign(consumer: Consumer, topic: str, partition: int | None) -> None:
    """Which partitions to read: one (``--partition``), all of the topic, or (a consumer with a
    group id) those the group assigns."""
    if consumer.group_id is not None:
        consumer.subscribe([topic])
    elif partition is None:
        consumer.assign_topic(topic)
    else:
        consumer.assign([TopicPartition(topic, partition)])


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
    address: str, group: str | None, start: StartSpec, offsets: PrintedOffsets, skip_corrupt: bool = False
) -> Consumer:
    corrupt_batches: CorruptBatches = "skip" if skip_corrupt else "raise"
    if group is None:
        return Consumer(address, corrupt_batches=corrupt_batches)
    consumer = Consumer(
        address,
        group,
        corrupt_batches=corrupt_batches,
        enable_auto_commit=False,
        auto_offset_reset="latest" if start.kind == "latest" else "earliest",
        on_revoke=offsets.on_revoke,
        client_id="logsvc-cli",
    )
    offsets.consumer = consumer
    return consumer


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
@click.option(
    "-g",
    "--group",
    metavar="GROUP",
    default=None,
    help="Consume as a member of consumer group GROUP, from its committed offsets, committing what was "
    "printed (--from earliest|latest: where to start when the group has no committed offset).",
)
@click.option("-n", "--max-records", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
@click.option(
    "--timeout-ms",
    type=click.IntRange(min=0),
    default=None,
    help="Stop once this many milliseconds pass without a new record [default: follow until Ctrl-C or SIGTERM].",
)
@click.option(
    "-k",
    "--key-separator",
    metavar="SEP",
    default=None,
    help="Print KEY SEP VALUE instead of the value alone (no key prints as null).",
)
@click.option(
    "--skip-corrupt",
    is_flag=True,
    help="Skip a stored batch that does not decode (a warning line on stderr each) instead of stopping with an error.",
)
@server_option
@output_option(as_table="the values, one per line", as_json="one object per record")
def consume(
    topic: str,
    partition: int | None,
    start: StartSpec,
    group: str | None,
    max_records: int | None,
    timeout_ms: int | None,
    key_separator: str | None,
    skip_corrupt: bool,
    output: str,
) -> None:
    """Print the records of TOPIC, one value per line.

    The plain output is a data pipe (as kcat's): keys and values are written byte for byte, control
    characters included, so redirect it to a file or a program, or use -o json (escaped) to look at
    data you do not trust on a terminal. A tombstone (null value) prints as null.

    With -o json, one object per line: topic, partition, offset, timestamp (ms), key, value and
    headers; text when it is UTF-8, otherwise {"base64": "..."}; null stays null. Records of one
    partition come in offset order.

    A stored batch that does not decode (older or damaged data) stops it with an error naming its
    offsets; --skip-corrupt prints a warning for it and reads on.

    \b
    Examples:
      logsvc consume orders                          # everything, then follow
      logsvc consume orders --from latest            # only new records
      logsvc consume orders -p 0 --from 1200 -n 10   # ten records from offset 1200
      logsvc consume orders --from @-15m --timeout-ms 2000 -o json
      logsvc consume orders --group audit --timeout-ms 5000   # resumes where the group left off
    """
    if group is not None:
        if partition is not None:
            raise click.UsageError("--partition cannot be used with --group (the group assigns the partitions)")
        if start.kind not in ("earliest", "latest"):
            raise click.UsageError("--from with --group takes earliest or latest (where to start without a commit)")
    as_json = output == "json"
    separator = None if key_separator is None else key_separator.encode()
    address = get_state().address()
    progress = Progress()
    offsets = PrintedOffsets()

    def write(records: Sequence[Record]) -> None:
        write_records(records, as_json, separator)
        if group is not None:
            offsets.printed(records)

    previous_sigterm = signal.signal(signal.SIGTERM, stop_like_ctrl_c)
    try:
        with (
            skip_warnings(offsets),
            Admin(address) as admin,
            open_consumer(address, group, start, offsets, skip_corrupt) as consumer,
        ):
            assign(consumer, topic, partition)
            if group is None:
                seek(consumer, admin, topic, partition, start)
            try:
                follow(
                    consumer,
                    topic,
                    max_records,
                    timeout_ms,
                    progress,
                    write,
                )
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
