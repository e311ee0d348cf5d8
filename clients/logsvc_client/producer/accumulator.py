"""The producer's record accumulator: per-partition batches, the bounded buffer, and draining.

:meth:`Accumulator.append` is the hot path of ``Producer.send``: it converts and partitions one
record, then, under one short lock, encodes it into the open batch of its partition
(:func:`~logsvc_wire.record_codec.append_record`: msgpack, C when built), so no object is kept
per record and nothing is left to encode when the batch is sent. Batch and buffer sizes are
tracked arithmetically from an upper bound of each record's msgpack size
(:data:`~logsvc_wire.batch.RECORD_OVERHEAD` and friends).

:meth:`Accumulator.append_many` (``Producer.send_many``) does the same for a sequence of records:
:mod:`~logsvc_client.producer.bulk` converts, partitions and encodes them in one pass outside
the lock (one chunk per partition), then the lock is taken once to append the chunks' slices to
the batches (once per part of the call that fits when it must wait for buffer space), with the
same batch rolling as ``append`` (:meth:`Accumulator._roll`), using the records' exact sizes.
Both partition by the rule of :func:`~logsvc_wire.partitioner.choose_partition`.

The sender thread calls :meth:`drain_locked` to take the batches that are ready (full, lingered
``linger_ms``, covered by a flush, or needed to free a full buffer). A partition with a batch in
flight is *muted* until its response: at most one batch per partition is in flight, so records of
a partition are stored in send order even when a request is retried. Each topic's batches are a
:class:`~logsvc_client.producer.topic_batches.TopicBatches`; which of them are ready is
:func:`~logsvc_client.producer.topic_batches.take_ready`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Container, Sequence

from logsvc_wire.batch import BATCH_OVERHEAD, RECORD_OVERHEAD
from logsvc_wire.partitioner import StickyPartitioner, choose_partition
from logsvc_wire.record_codec import NO_HEADERS, FastAppend, append_record

from ..errors import BatchTooLarge, BufferFull, FailedPrecondition, LogsvcError, TopicNotFound
from ..records import check_timestamp, to_bytes
from .batches import ProducerBatch
from .bulk import BulkRecords, Segment, prepare_bulk, record_headers
from .futures import RecordFuture, RecordFutures
from .topic_batches import TopicBatches, take_ready

_time_ns = time.time_ns
_choose_partition = choose_partition
_append_record = append_record


def _key_bytes(key: object) -> bytes:
    data = to_bytes(key, "key")
    assert data is not None
    return data


class Accumulator:
    """Batches records per partition within a bounded buffer; see the module docstring."""

    def __init__(
        self,
        load_partition_count: Callable[[str], int],
        *,
        first_partition_count: Callable[[str], int] | None = None,
        linger_ms: float = 5,
        max_batch_bytes: int = 1_048_576,
        max_buffer_bytes: int = 64 * 1024 * 1024,
        block_when_full: bool = True,
        buffer_timeout_ms: float = 60_000,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._load_partition_count = load_partition_count
        # the first look-up of a topic may create it (a broker's auto_create_topics); refreshes never
        self._first_partition_count = first_partition_count or load_partition_count
        self.linger_s = linger_ms / 1000
        self.max_batch_bytes = max_batch_bytes
        self._batch_limit = max_batch_bytes - BATCH_OVERHEAD
        self.max_buffer_bytes = max_buffer_bytes
        self._block = block_when_full
        self._buffer_timeout_s = buffer_timeout_ms / 1000
        self._clock = clock
        self._sticky = StickyPartitioner(rng)

        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)  # the sender waits here for ready batches
        self.space = threading.Condition(self.lock)  # senders blocked by a full buffer wait here
        self._topics: dict[str, TopicBatches] = {}
        self.states: list[TopicBatches] = []  # every topic with batches (also ones forgotten)
        self.buffered = 0  # estimated bytes of unsent and in-flight records
        self.incomplete: set[ProducerBatch] = set()
        self._seq = 0
        self.flush_seq = 0  # batches up to this seq are ready regardless of linger
        self.space_waiters = 0
        self.closed = False  # no new batches; everything left is ready
        self.sleep_until = -math.inf  # the sender's next wake-up while it waits
        #: given to every new batch as ProducerBatch.steal (the producer sets it when linger is 0)
        self.steal: Callable[[ProducerBatch, float | None], None] | None = None

    # -- the hot path ---------------------------------------------------------------------------

    def append(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        *,
        partition: int | None = None,
        headers: object = None,
        timestamp_ms: int | None = None,
    ) -> RecordFuture:
        """Queue one record in its partition's open batch; returns at once with a future of its
        position. This is ``Producer.send``: see there."""
        t = self._topics.get(topic)
        if t is None:
            t = self._add_topic(topic)
        if value.__class__ is not bytes:
            value = to_bytes(value)
        size = 0 if value is None else len(value)
        if key is not None:
            if key.__class__ is not bytes:
                key = _key_bytes(key)
            size += len(key)
        if partition is not None:
            t.check_partition(partition)
        partition = _choose_partition(partition, key, t.partitions, t.sticky)
        packed, overhead = (NO_HEADERS, RECORD_OVERHEAD) if headers is None else record_headers(headers)
        size += overhead
        if timestamp_ms is None:
            timestamp_ms = _time_ns() // 1_000_000
        else:
            check_timestamp(timestamp_ms)

        lock = self.lock
        lock.acquire()
        try:
            buffered = self.buffered + size
            if buffered > self.max_buffer_bytes:
                buffered = self.wait_for_space_locked(size)
            b = t.open[partition]
            if b is None or b.nbytes + size > self._batch_limit:
                b = self._roll(t, partition, b)
            future = RecordFuture(b, b.count)
            _append_record(b.buffer, timestamp_ms, key, value, packed)  # type: ignore[arg-type]
            b.count += 1
            b.nbytes += size
            self.buffered = buffered
        finally:
            lock.release()
        return future

    def send_function(self) -> Callable[..., RecordFuture]:
        """``Producer.send``: :meth:`append`, or, with the codec's C extension, a callable that
        queues the common record (bytes or None, no partition, headers or timestamp, fitting its
        open batch and the buffer) in one C call doing what :meth:`append` does, and hands every
        other call to :meth:`append` (see ``FastAppend`` in ``logsvc_wire/_codec.c``)."""
        if FastAppend is None:
            return self.append
        return FastAppend(self, RecordFuture, RECORD_OVERHEAD)

    def append_many(
        self,
        topic: str,
        values: Sequence[bytes | str | None],
        keys: Sequence[bytes | str | None] | None = None,
        *,
        partition: int | None = None,
        headers: object = None,
        timestamp_ms: int | None = None,
    ) -> RecordFutures:
        """Queue ``values[i]`` (with ``keys[i]``) for every i, as :meth:`append` would one by one;
        returns their futures in order. This is ``Producer.send_many``: see there."""
        futures = RecordFutures()
        try:
            t = self._topics.get(topic)
            if t is None:
                t = self._add_topic(topic)
            bulk = prepare_bulk(t, values, keys, partition, headers, timestamp_ms)
            futures.of_call(bulk.slots, bulk.ranks)
            if bulk.count:
                self._append_bulk(t, bulk, futures)
        except LogsvcError as e:
            e.details["futures"] = futures  # the records queued before the error (a prefix)
            raise
        return futures

    def _append_bulk(self, t: TopicBatches, bulk: BulkRecords, futures: RecordFutures) -> None:
        """Append ``bulk`` (made by :func:`~logsvc_client.producer.bulk.prepare_bulk`) to its
        partitions' batches, adding their slices to ``futures``: all at once when the buffer has
        room for them, else the records that fit (a prefix of the call), then wait for space (or
        raise BufferFull) and go on."""
        with self.lock:
            total = bulk.total_bytes()
            if self.buffered + total <= self.max_buffer_bytes:
                self.extend_locked(t, bulk, bulk.segments(), futures)
                self.buffered += total
                futures.queued = bulk.count
                return
            # The buffer is short: append what fits, wait for space (or raise), go on.
            ends = bulk.record_ends()  # ends[i]: bytes of records 0..i
            largest = max(e - (ends[i - 1] if i else 0) for i, e in enumerate(ends))
            if largest + BATCH_OVERHEAD > self.max_buffer_bytes:
                raise BatchTooLarge(
                    f"record of about {largest} bytes is larger than max_buffer_bytes={self.max_buffer_bytes}"
                )
            n, done = bulk.count, 0  # records appended; their bytes: ends[done - 1]
            while done < n:
                before = ends[done - 1] if done else 0
                fit = bisect_right(ends, before + self.max_buffer_bytes - self.buffered, done)
                if fit == done:
                    self.wait_for_space_locked(ends[done] - before)
                    continue
                self.extend_locked(t, bulk, bulk.segments(done, fit), futures)
                self.buffered += ends[fit - 1] - before
                done = futures.queued = fit

    def extend_locked(
        self, t: TopicBatches, bulk: BulkRecords, segments: list[Segment], futures: RecordFutures
    ) -> None:
        """Lock held: append the ``segments`` of ``bulk`` to their partitions' open batches (the
        sticky slot: the sticky partition), rolling batches as :meth:`append` does, slice by
        slice, and tell ``futures`` where each slice went.

        All or nothing: closing takes the lock, so once checked here ``_roll`` cannot refuse.
        """
        if self.closed:
            raise FailedPrecondition("the producer is closed")
        opened = t.open
        limit = self._batch_limit
        sticky_slot = bulk.partitions
        for s, r, end in segments:
            chunk, ends, bounds = bulk.chunks[s], bulk.ends[s], bulk.bounds[s]
            assert chunk is not None and ends is not None and bounds is not None
            data = memoryview(chunk)
            at = ends[r - 1] if r else 0  # where record r starts in the chunk
            bound = bounds[r - 1] if r else 0  # size bounds of the slot's records before r
            while r < end:
                p = t.sticky if s == sticky_slot else s
                b = opened[p]
                # records r..k-1 fit the batch (bisect on the bounds, as append checks each)
                if b is None or (k := bisect_right(bounds, bound + limit - b.nbytes, r, end)) == r:
                    # none fits: a new batch, where record r goes even when larger than a batch;
                    # after it, a sticky record is placed again (rolling moved the sticky
                    # partition), others go on filling the new batch, both as append does
                    b = self._roll(t, p, b)
                    k = r + 1 if s == sticky_slot else max(r + 1, bisect_right(bounds, bound + limit, r, end))
                stop = ends[k - 1]
                futures.add(s, r, b, b.count)
                b.buffer += data[at:stop]  # type: ignore[operator]  # never None while the batch is open
                b.count += k - r
                b.nbytes += bounds[k - 1] - bound
                r, at, bound = k, stop, bounds[k - 1]

    # -- slow paths of append -------------------------------------------------------------------

    def partition_count(self, topic: str) -> int:
        t = self._topics.get(topic)
        return (t or self._add_topic(topic)).partitions

    def _add_topic(self, topic: str) -> TopicBatches:
        if self.closed:
            raise FailedPrecondition("the producer is closed")
        n = self._first_partition_count(topic)  # TopicNotFound; outside the lock (a network call)
        with self.lock:
            return self._resize_locked(topic, n)

    def refresh_topics(self) -> list[str]:
        """Look up the partition count of every topic in use again (network calls, without the lock);
        a topic that grew gets new batches over the new count, while records already queued go out
        in their batches. The topics that changed."""
        with self.lock:
            known = {name: t.partitions for name, t in self._topics.items()}
        changed = []
        for name, partitions in known.items():
            try:
                n = self._load_partition_count(name)
            except TopicNotFound:
                continue  # deleted: the next send to it says so
            if n != partitions:
                with self.lock:
                    self._resize_locked(name, n)
                changed.append(name)
        return changed

    def _resize_locked(self, topic: str, n: int) -> TopicBatches:
        t = self._topics.get(topic)
        if t is None or t.partitions != n:
            t = TopicBatches(topic, n, self._sticky, t)
            self._topics[topic] = t
            self.states.append(t)
        return t

    def forget_topic(self, t: TopicBatches) -> None:
        """The broker no longer knows the topic: the next send describes it again."""
        with self.lock:
            if self._topics.get(t.name) is t:
                del self._topics[t.name]

    def wait_for_space_locked(self, size: int) -> int:
        """Lock held: wait until ``size`` more bytes fit the buffer; the new buffered total."""
        if size + BATCH_OVERHEAD > self.max_buffer_bytes:
            raise BatchTooLarge(f"record of about {size} bytes is larger than max_buffer_bytes={self.max_buffer_bytes}")
        if not self._block:
            raise BufferFull(
                f"producer buffer is full ({self.buffered} of max_buffer_bytes={self.max_buffer_bytes} bytes unsent)"
            )
        deadline = self._clock() + self._buffer_timeout_s
        self.space_waiters += 1
        self.wake.notify()  # send whatever is buffered now, lingering or not
        try:
            while self.buffered + size > self.max_buffer_bytes:
                left = deadline - self._clock()
                if left <= 0:
                    raise BufferFull(
                        f"producer buffer stayed full for buffer_timeout_ms={self._buffer_timeout_s * 1000:g} "
                        f"({self.buffered} of max_buffer_bytes={self.max_buffer_bytes} bytes unsent)"
                    )
                self.space.wait(left)
        finally:
            self.space_waiters -= 1
        return self.buffered + size

    def _roll(self, t: TopicBatches, partition: int, full: ProducerBatch | None) -> ProducerBatch:
        """Lock held: seal ``full`` (if any) and open a new batch for the partition."""
        if self.closed:
            raise FailedPrecondition("the producer is closed")
        now = self._clock()
        if full is not None:
            t.sealed[partition].append(full)
            if partition == t.sticky:
                t.rotate_sticky()
        self._seq += 1
        b = ProducerBatch(t.name, partition, now, self._seq)
        b.steal = self.steal
        t.open[partition] = b
        self.incomplete.add(b)
        # Wake the sender only when it has something to do: a muted partition is drained when
        # its answer arrives (which wakes the sender anyway).
        if not t.muted[partition] and (full is not None or now + self.linger_s < self.sleep_until):
            self.wake.notify()
        return b

    # -- the sender's side (all with the lock held) ---------------------------------------------

    def drain_locked(
        self, now: float, slots: int, max_request_bytes: int, partial_held: Container[str] = ()
    ) -> tuple[list[tuple[TopicBatches, list[ProducerBatch]]], float]:
        """Take the ready batches, grouped per topic into at most ``slots`` requests of about
        ``max_request_bytes``; also return when the next batch becomes ready (inf: never).
        A batch of a topic in ``partial_held`` whose linger is over waits (see
        :func:`~logsvc_client.producer.topic_batches.take_ready`).

        Every ready batch of a partition goes into the same request (in order), so a partition
        never has two requests in flight.
        """
        ready = take_ready(
            self.states,
            now,
            slots,
            max_request_bytes,
            force=self.closed or self.space_waiters > 0,
            flush_seq=self.flush_seq,
            linger_s=self.linger_s,
            partial_held=partial_held,
        )
        if len(self.states) > len(self._topics):
            self.states = [t for t in self.states if self._topics.get(t.name) is t or not t.idle()]
        return ready

    def release_locked(self, t: TopicBatches, batches: list[ProducerBatch]) -> None:
        """Batches that are done (stored or failed): unmute, free their buffer space."""
        for b in batches:
            t.muted[b.partition] = False
            if b in self.incomplete:
                self.incomplete.remove(b)
                self.buffered -= b.nbytes
        if self.space_waiters:
            self.space.notify_all()
        self.wake.notify()

    def requeue_locked(self, t: TopicBatches, batches: list[ProducerBatch], retry_at: float) -> None:
        """Batches to send again at ``retry_at``, ahead of anything newer of their partition."""
        current = self._topics.get(t.name)
        if current is not None and current.partitions > t.partitions:
            t = current  # the topic grew meanwhile: its waiting batches moved there
        for b in reversed(batches):
            b.retry_at = retry_at
            t.muted[b.partition] = False
            t.sealed[b.partition].appendleft(b)
        self.wake.notify()

    def sequenced_locked(self, t: TopicBatches, partition: int, remove: bool) -> list[ProducerBatch]:
        """The partition's waiting batches that already carry a sequence number (an idempotent
        producer's retries, queued behind a batch that just failed for good); ``remove`` takes
        them out of the queue (the caller fails and releases them)."""
        current = self._topics.get(t.name)
        if current is not None and current.partitions > t.partitions:
            t = current
        q = t.sealed[partition]
        found = [b for b in q if b.base_sequence >= 0]
        if found and remove:
            t.sealed[partition] = deque(b for b in q if b.base_sequence < 0)
        return found

    # -- flush and close ------------------------------------------------------------------------

    def begin_flush(self) -> list[ProducerBatch]:
        """Make every batch so far ready at once; return the ones not yet done."""
        with self.lock:
            self.flush_seq = self._seq
            pending = list(self.incomplete)
            self.wake.notify()
        return pending

    def close(self) -> None:
        """No new batches; what is buffered is sent without lingering."""
        with self.lock:
            self.closed = True
            self.wake.notify()

    def abort(self, error: LogsvcError) -> list[ProducerBatch]:
        """Fail every batch not done yet (closing without waiting); return them."""
        with self.lock:
            self.closed = True
            failed = list(self.incomplete)
            for t in self.states:
                t.open = [None] * t.partitions
                t.sealed = [deque() for _ in range(t.partitions)]
            self.incomplete.clear()
            self.buffered = 0
            self.space.notify_all()
            self.wake.notify()
        for b in failed:
            b.fail(error)
        return failed
