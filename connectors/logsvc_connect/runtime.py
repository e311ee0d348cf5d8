"""The sink runtime: everything a connector does except talking to its database.

One loop per process, as a member of the consumer group named after the connector::

    poll ─▶ batch (max records / max bytes / linger) ─▶ decode values ─▶ compact ids (last wins)
         ─▶ Sink.write (retried with capped, jittered backoff on TransientSinkError)
         ─▶ dead-letter the records that failed on their data ─▶ commit the batch's offsets

Batches adapt to lag by themselves: while the connector is behind, every poll returns a full
batch at once and batches run at their maximum size; once caught up, the linger time bounds how
long the first record of a batch waits. An offset is committed only after the write it covers
(and the dead-lettering of its failed records) is durable, so a crash anywhere loses nothing and
at worst writes a batch again, which the adapters' idempotent writes absorb.

Overlapped writes (sinks with :attr:`~logsvc_connect.sink.Sink.write_in_background`): a full
batch is handed to a writer thread of the runtime's own, and the loop polls, decodes and compacts
the next batch, and has the sink :meth:`~logsvc_connect.sink.Sink.prepare` it, while the database
works on the current one. One write at a time, in batch order: the next
batch's write starts only after the previous one returned (so an exactly-once sink never stores
offsets past a batch that is not written), and a batch's offsets are committed only after its
write returned. A batch completed by the linger time, a rebalance, a corrupt batch and the end of
the run first wait for the write in flight, so everything else reads as without the writer.

A stored batch that does not decode (:class:`~logsvc_client.errors.CorruptBatch`: written by an
older version, or damaged on disk) is dead-lettered whole, as its raw bytes with the offset range
in its headers (:mod:`logsvc_connect.dead_letters.format`); then the records before it are written and
the offsets committed past it (for an exactly-once sink, stored with its rows), and the partition
reads on after it.

Partitions being taken away (rebalance) first get their batch written and committed. SIGTERM
(:meth:`SinkRuntime.stop`) finishes the batch in flight, commits and leaves the group.

The broker (or Kafka cluster) unreachable (:class:`~logsvc_client.errors.Unavailable`, after
the client's own retries) does not end the connector. A commit that fails so is kept: the rows are
durable, so the loop goes on polling (the consumer rejoins when the broker is back) and commits
those offsets again after a poll, backing off, until one goes through or a later commit covers
them; should the partitions move meanwhile, their new owner writes the batch again. Dead letters
are sent again, backing off, until acknowledged (a batch's offsets wait for them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, cast

from logsvc_client import Admin, Consumer, TopicPartition
from logsvc_client.errors import CorruptBatch, FailedPrecondition, Unavailable
from logsvc_client.transport.retry import Backoff
from logsvc_connect.batch import Batch, Failed, decoded, kept, next_offsets, value_of
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.dead_letters import DeadLetters
from logsvc_connect.dead_letters.log import DeadLetterLog
from logsvc_connect.lag import LagGauge
from logsvc_connect.metrics import ConnectorMetrics
from logsvc_connect.owed_commits import OwedCommits
from logsvc_connect.sink import Sink, SinkRecord, TransientSinkError, WriteResult
from logsvc_connect.startup import open_sink, wait_for_topics
from logsvc_connect.transforms import Transforms
from logsvc_wire.types import RESET_METADATA

log = logging.getLogger("logsvc.connect")
T = TypeVar("T")

#: how long a poll waits at most while a write runs in the background, so that its batch is
#: committed soon after it is durable even when no records come
IN_FLIGHT_POLL_S = 0.01
#: a connector's group members say what they are in their client id, ``logsvc-connect/<kind>/<name>``,
#: so a group's description shows which groups are connectors (``logsvc console`` reads it)
CLIENT_ID_PREFIX = "logsvc-connect/"


class StartFrom:
    """Where partitions start on their first assignment in this process (``--from``)."""

    def __init__(self, spec: str | None, timestamp_ms: int | None = None, offset: int | None = None) -> None:
        self.spec = spec  # None (committed offsets) | earliest | latest | offset | time
        self.timestamp_ms = timestamp_ms
        self.offset = offset


class SinkRuntime:
    def __init__(
        self,
        config: RuntimeConfig,
        sink: Sink,
        *,
        start_from: StartFrom | None = None,
        metrics: ConnectorMetrics | None = None,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.config = config
        self.sink = sink
        self.start_from = start_from or StartFrom(None)
        self.metrics = metrics or ConnectorMetrics(config.name, sink.kind)
        self._dead_letter_log = DeadLetterLog()
        self.dead_letters = DeadLetters(config.server, config.dead_letter_topic, config.name)
        self.transforms = Transforms(
            config.filter,
            config.keep_fields,
            config.drop_fields,
            config.rename_fields,
            config.header_fields,
            config.key_field,
            value_format=config.value_format,
        )
        self._backoff = Backoff(base_ms=config.retry_initial_ms, max_ms=config.retry_max_ms)
        self._stopping = threading.Event()
        self._stop_deadline: float | None = None
        self._sleep = sleep or self._wait
        self._pending: list[SinkRecord] = []
        self._pending_bytes = 0
        self._first_pending_at = 0.0
        self._skipped: dict[TopicPartition, int] = {}  # past dead-lettered corrupt batches: next offset
        self._started: set[TopicPartition] = set()
        # committed after a poll: stored offsets ahead of the group's, refused commits
        self._owed = OwedCommits(self._backoff)
        self._consumer: Consumer | None = None
        self._admin: Admin | None = None  # one channel for offsets and lag, opened by run()
        self._lag = LagGauge(self.metrics)
        self.batches_written = 0
        self._attempts = 1  # how many times the last write ran (1 + its retries)
        self._writer: ThreadPoolExecutor | None = None  # overlapped writes, one at a time
        self._in_flight: tuple[Batch, Future[Failed | None]] | None = None
        self._abandoned = False  # a batch was left unwritten (stopping): no later batch is written

    # -- lifecycle --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the batch in flight, commit, leave the group (safe from a signal handler)."""
        if not self._stopping.is_set():
            self._stop_deadline = time.monotonic() + self.config.shutdown_timeout_ms / 1000
            self._stopping.set()

    def run(self) -> None:
        """Consume and write until :meth:`stop`."""
        open_sink(self.sink, self._stopping, self._sleep, self._backoff)
        if self._stopping.is_set():
            return
        cfg = self.config
        self._admin = Admin(cfg.server)
        self.dead_letters.admin = self._admin
        if not wait_for_topics(self._admin, cfg.topics, self._stopping, self._wait, self._backoff):  # stopped
            try:
                self.sink.close()
                self.dead_letters.close()
            finally:
                self._close_admin()
            return
        consumer = Consumer(
            cfg.server,
            group_id=cfg.name,
            client_id=f"{CLIENT_ID_PREFIX}{self.sink.kind}/{cfg.name}",
            instance_id=cfg.instance_id or None,
            session_timeout_ms=cfg.session_timeout_ms,
            max_poll_interval_ms=cfg.max_poll_interval_ms,
            enable_auto_commit=False,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            max_poll_records=cfg.batch_max_records,
            priority=cfg.priority,
            lane_weights=cfg.lane_weights or None,
            max_lane_wait_ms=cfg.max_lane_wait_ms,
            record_type=SinkRecord,
        )
        self._consumer = consumer
        if self.sink.write_in_background:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"logsvc-write-{cfg.name}")
        try:
            consumer.subscribe(list(cfg.topics))
            self._loop(consumer)
            self._flush()
            if self._owed:  # one last try, whatever the backoff
                self._commit(self._owed.all())
        finally:
            if self._writer is not None:  # a write still running (an error above) ends first
                self._writer.shutdown(wait=True)
                self._writer, self._in_flight = None, None
            self._consumer = None
            self._dead_letter_log.flush(self.config.dead_letter_topic)
            try:
                consumer.close()
            finally:
                try:
                    self.sink.close()
                    self.dead_letters.close()
                finally:
                    self._close_admin()

    def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        self.dead_letters.admin = None
        if admin is not None:
            admin.close()

    def _wait(self, seconds: float) -> None:
        """The runtime's sleep: woken early by :meth:`stop`. Once stopping, a write still retries
        until the shutdown deadline, so the wait between those retries is not cut short."""
        if self._stop_deadline is None:
            self._stopping.wait(seconds)
        else:
            time.sleep(max(0.0, min(seconds, self._stop_deadline - time.monotonic())))

    def _loop(self, consumer: Consumer) -> None:
        cfg = self.config
        linger_s = cfg.linger_ms / 1000
        while not self._stopping.is_set():
            room = cfg.batch_max_records - len(self._pending)
            wait_s = linger_s - (time.monotonic() - self._first_pending_at) if self._pending else linger_s or 0.5
            if self._in_flight is not None:
                if self._in_flight[1].done():
                    self._finish_in_flight()
                else:
                    wait_s = min(wait_s, IN_FLIGHT_POLL_S)
            try:
                # SinkRecords with doc None (record_type above)
                records = cast(list[SinkRecord], consumer.poll(timeout_ms=max(1, int(wait_s * 1000)), max_records=room))
            except CorruptBatch as e:
                self._skip_corrupt_batch(consumer, e)
                continue
            self._commit_owed()
            if records:
                if not self._pending:
                    self._first_pending_at = time.monotonic()
                self._pending.extend(records)
                self._pending_bytes += sum(map(len, filter(None, map(value_of, records))))
            if self._pending:
                if len(self._pending) >= cfg.batch_max_records or self._pending_bytes >= cfg.batch_max_bytes:
                    self._flush(overlap=self._writer is not None)
                elif time.monotonic() - self._first_pending_at >= linger_s:
                    self._flush()
            self._lag.refresh(self._admin)

    def _skip_corrupt_batch(self, consumer: Consumer, error: CorruptBatch) -> None:
        """Dead-letter a stored batch that does not decode, write what came before it, commit past
        it, and read on after it."""
        d = error.details
        tp = TopicPartition(d["topic"], d["partition"])
        after = d["last_offset"] + 1
        log.error("%s: dead-lettering it whole and reading on from offset %d", error.message, after)
        self._send_dead_letters(lambda: self.dead_letters.send_corrupt_batch(error))
        self.metrics.records_dead_lettered.inc(after - d["base_offset"])
        self._skipped[tp] = max(after, self._skipped.get(tp, 0))
        self._flush()
        consumer.seek(tp, after)

    # -- rebalance callbacks (called by the consumer inside poll) -----------------------------------

    def _on_assign(self, partitions: Sequence[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        self._finish_in_flight()  # the sink is not shared with a write, and its offsets are stored
        fresh = [tp for tp in partitions if tp not in self._started]
        self._started.update(fresh)
        spec = self.start_from.spec
        if spec and fresh:
            if spec == "earliest":
                consumer.seek_to_beginning(fresh)
            elif spec == "latest":
                consumer.seek_to_end(fresh)
            elif spec == "offset":
                for tp in fresh:
                    consumer.seek(tp, self.start_from.offset or 0)
            elif spec == "time":
                consumer.seek_to_time(self.start_from.timestamp_ms or 0, fresh)
            log.info("starting %d partition(s) from %s", len(fresh), spec)
            return
        stored = self.sink.stored_offsets(list(partitions))
        if not stored:
            return
        # Exactly-once: the sink's own offsets win, except where `logsvc groups reset-offsets`
        # has reset the group's offset since (a replay asked for by a person).
        admin = self._admin
        assert admin is not None  # set while run() runs, and poll() calls this only then
        committed = admin.committed_offsets(self.config.name, list(stored))
        for tp, offset in stored.items():
            group = committed.get(tp)
            if group is not None and group.metadata == RESET_METADATA:
                log.info("%s/%d: replaying from offset %d (reset-offsets)", tp.topic, tp.partition, group.offset)
                continue
            consumer.seek(tp, offset)
            if group is None or group.offset < offset:
                # Else the group's lag would stay until a record after `offset` is written.
                log.info("%s/%d: the group's commit is behind the offset stored with the rows (%d)",
                         tp.topic, tp.partition, offset)  # fmt: skip
                self._owed.owe({tp: offset})

    def _on_revoke(self, partitions: Sequence[TopicPartition]) -> None:
        # Write and commit what we hold before the partitions go to another member.
        self._flush()
        self._owed.drop(partitions)

    def _commit_owed(self) -> None:
        """Commit what the group is owed (:class:`OwedCommits`), outside the rebalance callback,
        which a Kafka consumer runs inside its own poll."""
        due = self._owed.due()
        if due:
            self._commit(due)

    # -- one batch --------------------------------------------------------------------------------

    def _flush(self, overlap: bool = False) -> None:
        """Write and commit the pending records. ``overlap``: hand the write to the writer thread
        and return (its commit comes once it returned); else the write in flight ends first and
        this batch is written and committed before returning."""
        if self._abandoned or (not overlap and not self._finish_in_flight()):
            return
        batch = self._prepare()
        if batch is None:
            return
        if not batch.writes:
            if self._finish_in_flight():
                self._finish(batch, [])
            return
        if not overlap or self._writer is None:
            self._finish(batch, self._write(batch.records, batch.offsets))
            return
        previous = self._in_flight
        if previous is not None:
            self._in_flight = None
            failed = previous[1].result()
            if failed is None or failed:
                # not written (stopping), or records to dead-letter and offsets to store again
                # before any later write: finished here, in order
                if not self._finish(previous[0], failed):
                    return  # stopping with a batch unwritten: nothing after it is written either
                previous = None
        self._in_flight = (batch, self._writer.submit(self._write, batch.records, batch.offsets))
        if previous is not None:
            self._finish(previous[0], [])  # durable: commit it while the next write runs

    def _finish_in_flight(self) -> bool:
        """Wait for the write in flight, then dead-letter its failures and commit it; False when
        a batch was left unwritten (stopping)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            self._finish(in_flight[0], in_flight[1].result())
        return not self._abandoned

    def _prepare(self) -> Batch | None:
        """Take the pending records as a batch: decoded, filtered, the failures dead-lettered,
        compacted (None when nothing is pending)."""
        batch, past_corrupt = self._pending, self._skipped
        if not batch and not past_corrupt:
            return None
        self._pending, self._pending_bytes, self._skipped = [], 0, {}
        offsets = next_offsets(batch, past_corrupt)  # past dead-lettered corrupt batches too
        records: list[SinkRecord] = batch
        failed: Failed = []
        if self.sink.decode_values or self.transforms.changes_fields:  # else the values stay bytes
            records, failed = decoded(batch, self.config.value_format)
        if self.transforms.active:
            records, filter_failed, skipped = self.transforms.apply(records)
            failed.extend(filter_failed)
            self.metrics.records_skipped.inc(skipped)
        # Dead letters are acknowledged before any offset past them is stored anywhere.
        self._dead_letter(failed, 1)  # never written: tried once, by decoding or the filter
        before = len(records)
        if self.sink.compact_ids:
            records = kept(records, self.sink.identity)
        if records and self._writer is not None:
            self.sink.prepare(records)  # while the write in flight runs
        return Batch(records, offsets, bool(records or self.sink.stores_offsets), before - len(records))

    def _finish(self, batch: Batch, sink_failed: Failed | None) -> bool:
        """After ``batch``'s write returned ``sink_failed``: dead-letter those records (an
        exactly-once sink then stores the full offsets) and commit. False when the write did not
        happen (stopped while the sink was down): nothing committed, the batch comes again."""
        if batch.writes:
            if sink_failed is not None:
                self._dead_letter(sink_failed, self._attempts)
                self.metrics.records_written.inc(len(batch.records) + batch.replaced - len(sink_failed))
            if sink_failed is None or (
                sink_failed and self.sink.stores_offsets and self._write([], batch.offsets) is None
            ):
                self._abandoned = True  # no later batch is written: an exactly-once sink would skip this one
                return False
        self._commit(batch.offsets)
        self.batches_written += 1
        return True

    def _dead_letter(self, failed: Failed, attempts: int) -> None:
        if failed:
            self._send_dead_letters(lambda: self.dead_letters.send(failed, attempts))
            self.metrics.records_dead_lettered.inc(len(failed))
            self._dead_letter_log.report(failed, self.config.dead_letter_topic)

    def _send_dead_letters(self, send: Callable[[], None]) -> None:
        """``send()`` until the dead letters are acknowledged, retried while the broker is
        unreachable: no offset past a record is stored before its dead letter is. Past the
        shutdown deadline the Unavailable ends the run, with nothing committed past those records."""
        self._retrying("dead-lettering", send, Unavailable, self.metrics.broker_retries)

    def _retrying(self, what: str, call: Callable[[], T], transient: type[Exception], retries: Any) -> tuple[T, int]:
        """``call()``'s result and how many times it ran: while it raises ``transient``, again after
        a capped, jittered backoff (counted in the counter ``retries``); once stopping, only until
        the shutdown deadline, then that error is raised."""
        attempt = 0
        while True:
            try:
                return call(), attempt + 1
            except transient as e:
                deadline = self._stop_deadline
                if deadline is not None and time.monotonic() > deadline:
                    raise
                delay = self._backoff.delay_s(attempt)
                if deadline is not None:
                    delay = min(delay, max(0.0, deadline - time.monotonic()) + 0.01)
                attempt += 1
                retries.inc()
                log.warning("%s failed (%s); retry %d in %.2f s", what, e, attempt, delay)
                self._sleep(delay)

    def _write(self, records: list[SinkRecord], offsets: dict[TopicPartition, int]) -> Failed | None:
        """Write with retries; the records that failed on their data, or None when stopped first.
        ``self._attempts`` is then how many times the write ran (what their dead letters say)."""

        def once() -> WriteResult:
            started = time.perf_counter()
            result = self.sink.write(records, offsets)
            self.metrics.write_seconds.observe(time.perf_counter() - started)
            return result

        try:
            result, self._attempts = self._retrying("write", once, TransientSinkError, self.metrics.retries)
        except TransientSinkError as e:  # past the shutdown deadline
            log.error("stopping with a batch unwritten (%s); it will be written after a restart", e)
            return None
        if records:
            self.metrics.rows_written.inc(len(records) - len(result.failed))
            self.metrics.batch_records.observe(len(records))
        return [(records[index], error) for index, error in sorted(result.failed.items())]

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        try:
            consumer.commit(offsets)
        except FailedPrecondition as e:
            # We lost the partitions meanwhile (session expired during a long outage): the new
            # owner writes the batch again, idempotently.
            log.warning("commit refused (%s); the batch will be written again by the partitions' owner", e)
        except Unavailable as e:
            # The rows are written; the commit is retried after the next poll (backing off), and
            # a later commit of the same partitions makes it moot. Should the partitions move
            # first, their new owner writes them again (at least once).
            delay = self._owed.refused(offsets)
            self.metrics.broker_retries.inc()
            log.warning("commit of %d partition(s) failed (%s); retrying in %.1f s", len(offsets), e, delay)
            return
        self._owed.committed(offsets)
        self._lag.committed(offsets)
