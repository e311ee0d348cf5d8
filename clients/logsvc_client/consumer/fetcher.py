"""The fetch loop behind a consumer: positions, buffered batches, pipelined Fetch requests.

A :class:`Fetcher` keeps two offsets per assigned partition: the *position* (the next record the
application gets) and the *fetch offset* (the next one to ask the broker for). Fetched batches are
kept whole, as bytes, in a :class:`~logsvc_client.consumer.record_buffer.RecordBuffer` until
:meth:`Fetcher.fetch` hands their records out, and are decoded straight into
:class:`~logsvc_client.records.Record` tuples by :func:`~logsvc_wire.batch.decode_records`.
A Fetch asks for :func:`~logsvc_client.consumer.fetch_options.fetch_records` records
(``max_poll_records``, but never fewer than 10,000). Before decoding, it starts the next Fetch
when fewer than that many records would stay buffered (prefetch), so the broker reads while this
process decodes and the application works; at most two Fetches' worth is buffered.
Any change of assignment or position discards the fetch in flight
(:class:`~logsvc_client.consumer.in_flight_fetch.InFlightFetch`) and the buffered records of the partitions
it affects. Partitions never positioned, and fetch offsets that left the log, are positioned by
``auto_offset_reset`` (:mod:`~logsvc_client.consumer.offset_reset`).

With priority lanes (:meth:`Fetcher.set_lanes`, a :class:`~logsvc_client.consumer.lanes.LanePolicy` over
topics) records are buffered per lane (:class:`~logsvc_client.consumer.lane_buffers.LaneBuffers`), and each
poll takes from the lanes what the policy plans, given each lane's backlog. A lane holding fewer
records than its part of a poll makes the poll wait once for the next Fetch answer (within its
timeout) and take the rest from it. A Fetch asks only for the lanes that are not full.

It knows nothing of groups: a group consumer changes the assignment with :meth:`Fetcher.assign`
and reads :meth:`Fetcher.positions` to commit. Not thread-safe (one consumer, one thread).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import CorruptBatch, FailedPrecondition, OffsetOutOfRange, Unavailable
from ..records import Record, TopicPartition, check_offset
from ..transport.base import ConsumeTransport, FetchedPartition
from ..transport.retry import RetryPolicy
from .fetch_options import CorruptBatches, check_corrupt_batches, fetch_records
from .in_flight_fetch import InFlightFetch
from .lane_buffers import LaneBuffers
from .lanes import LanePolicy
from .offset_reset import OffsetReset, check_offset_reset, list_offsets, reset_targets, start_spec
from .record_buffer import RecordBuffer, stored_count

__all__ = ["Fetcher", "OffsetReset"]

log = logging.getLogger("logsvc_client.consumer")


class Fetcher:
    def __init__(
        self,
        transport: ConsumeTransport,
        *,
        max_poll_records: int = 500,
        fetch_max_bytes: int = 16 * 1024 * 1024,
        fetch_max_wait_ms: int = 500,
        check_crcs: bool = True,
        auto_offset_reset: OffsetReset = "earliest",
        prefetch: bool = True,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        corrupt_batches: CorruptBatches = "raise",
        record_type: type[tuple[Any, ...]] = Record,
    ) -> None:
        check_offset_reset(auto_offset_reset)
        self._record_type = record_type
        self._skip_corrupt = check_corrupt_batches(corrupt_batches) == "skip"
        self._transport = transport
        self.max_poll_records = max_poll_records
        self._max_wait_ms = fetch_max_wait_ms
        self._check_crcs = check_crcs
        self._reset = auto_offset_reset
        self._prefetch = prefetch
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._assigned: list[TopicPartition] = []
        self._assigned_set: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._fetch_offsets: dict[TopicPartition, int] = {}
        # without lanes: every partition's records, in fetch order
        self._buffer = RecordBuffer(check_crcs, self._skip_corrupt, record_type)
        self._buffered = 0  # records fetched and not handed out (in all buffers)
        self._lanes: LaneBuffers | None = None  # with lanes: the records buffered per lane
        self._short = False  # with lanes: the last poll took less than it could have
        self._deferred: CorruptBatch | None = None  # with lanes: met after other lanes gave records
        self._epoch = 0
        self._in_flight = InFlightFetch(transport, fetch_max_bytes, self._retry, clock)

    # -- assignment and positions ---------------------------------------------------------------

    def assignment(self) -> list[TopicPartition]:
        return list(self._assigned)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Fetch from exactly these partitions; positions of partitions kept are kept."""
        tps = list(dict.fromkeys(TopicPartition(*tp) for tp in partitions))
        keep = set(tps)
        self._assigned = tps
        self._assigned_set = keep
        for offsets in (self._positions, self._fetch_offsets):
            for tp in [tp for tp in offsets if tp not in keep]:
                del offsets[tp]
        self._discard(lambda tp: tp not in keep)
        if self._lanes is not None:
            self._lanes.assign(tps)

    def set_lanes(self, policy: LanePolicy | None) -> None:
        """Take records by ``policy`` from now on (None: as they were fetched, no lanes). Partitions
        of topics that are not lanes are not fetched. A policy that plans like the current one is
        ignored (the current one keeps its wait clocks); any other discards the buffered records."""
        if policy is not None and self._lanes is not None and self._lanes.policy.same_as(policy):
            return
        self._discard(lambda tp: True)
        self._lanes = (
            None
            if policy is None
            else LaneBuffers(policy, self._check_crcs, self._assigned, self._skip_corrupt, self._record_type)
        )

    def interrupt_on(self, wake: threading.Event) -> None:
        """From now on a wait for a Fetch also ends once ``wake`` is set (:meth:`fetch` then returns
        what it has, maybe nothing). The caller clears it; a group consumer sets it when its
        assignment changes, so a revoke is not held up by a long poll."""
        self._in_flight.interrupt_on(wake)

    def positions(self) -> dict[TopicPartition, int]:
        """The known positions (partitions never positioned yet are left out)."""
        return dict(self._positions)

    def position(self, tp: TopicPartition) -> int:
        self._check_assigned(tp)
        if tp not in self._positions:
            self._resolve_positions()
        return self._positions[tp]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._check_assigned(tp)
        check_offset(offset, f"cannot seek {tp.topic}/{tp.partition} to offset")
        self._positions[tp] = self._fetch_offsets[tp] = offset
        self._discard(lambda other: other == tp)

    def seek_to(self, spec: str, tps: Iterable[TopicPartition] | None = None, timestamp_ms: int | None = None) -> None:
        """Seek partitions (default: all assigned) to earliest, latest or the first at a time."""
        targets = list(tps) if tps is not None else self.assignment()
        for tp in targets:
            self._check_assigned(tp)
        for tp, offset in list_offsets(self._transport, targets, spec, timestamp_ms).items():
            self.seek(tp, offset)

    def _check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._assigned_set:
            raise FailedPrecondition(f"partition {tp.topic}/{tp.partition} is not assigned to this consumer")

    def _resolve_positions(self) -> None:
        """Position partitions never positioned: the latest offset under 'latest', else the earliest."""
        missing = [tp for tp in self._assigned if tp not in self._positions]
        if missing:
            spec = start_spec(self._reset)
            for tp, offset in list_offsets(self._transport, missing, spec).items():
                self._positions[tp] = self._fetch_offsets[tp] = offset

    def _discard(self, affected: Callable[[TopicPartition], bool]) -> None:
        """Drop the fetch in flight and the buffered records of affected partitions, which are
        fetched again from their positions (other partitions keep theirs)."""
        self._epoch += 1
        self._in_flight.cancel()
        if self._deferred is not None and affected(_partition_of(self._deferred)):
            self._deferred = None
        buffers = [self._buffer, *(self._lanes.buffers.values() if self._lanes is not None else ())]
        for buffer in buffers:
            buffer.discard(affected)
        self._buffered = sum(buffer.count for buffer in buffers)
        for tp in self._assigned:
            if tp in self._positions and affected(tp):
                self._fetch_offsets[tp] = self._positions[tp]

    # -- fetching -------------------------------------------------------------------------------

    def fetch(self, timeout_s: float, max_records: int | None = None) -> list[Record]:
        """Up to ``max_records`` records, waiting up to ``timeout_s`` for the first one."""
        limit = max_records or self.max_poll_records
        deadline = self._clock() + timeout_s
        if self._deferred is not None:  # the batch stays buffered: later polls raise again
            error, self._deferred = self._deferred, None
            raise error
        if self._lanes is not None:
            return self._fetch_lanes(self._lanes, limit, deadline)
        while True:
            if self._buffered:
                # Start the next Fetch before decoding, so the broker reads while we decode.
                self._maybe_prefetch(limit)
                out = self._take(limit)
                if out:
                    return out
            if not self._assigned:
                left = deadline - self._clock()
                if left > 0:
                    time.sleep(left)
                return []
            if not self._await_response(deadline):
                return []

    def _take(self, limit: int) -> list[Record]:
        """Hand out up to ``limit`` buffered records, decoding batches as needed.

        The cyclic garbage collector is paused meanwhile: every Record is a new GC-tracked tuple,
        and letting collections run every few hundred of them costs a third of the consumer's
        time. Nothing here creates cycles; the pause lasts one poll's decoding, and the collector
        is switched back on only if it was on.
        """
        enabled = gc.isenabled()
        if enabled:
            gc.disable()
        try:
            return self._take_records(self._buffer, limit)
        finally:
            if enabled:
                gc.enable()

    # -- fetching by lanes ------------------------------------------------------------------------

    def _fetch_lanes(self, lanes: LaneBuffers, limit: int, deadline: float) -> list[Record]:
        """:meth:`fetch` with lanes: take what their policy plans. When a lane has fewer records
        buffered than planned (the rest not fetched yet), wait once for the next Fetch answer
        (within the deadline) and take the rest of its part from what it brought."""
        while True:
            if self._in_flight.done():
                self._await_response(deadline)  # buffer what a prefetch brought meanwhile
            if self._buffered:
                now_ms = int(self._clock() * 1000)
                plan = lanes.plan(now_ms, limit, self._fetch_offsets)
                taken: dict[str, list[Record]] = {lane: [] for lane in plan}
                missing = self._take_planned(lanes, plan, taken)
                if missing and deadline > self._clock() and self._await_response(deadline):
                    missing = self._take_planned(lanes, missing, taken)
                lanes.served(plan, missing, now_ms)
                out: list[Record] = []
                for records in taken.values():  # in lane order
                    if out:
                        out += records
                    else:
                        out = records
                self._short = bool(missing) or len(out) < limit
                self._maybe_prefetch_lanes()
                if out:
                    return out
            if not self._assigned:
                self._in_flight.pause(deadline - self._clock())
                return []
            if not self._await_response(deadline):
                return []

    def _take_planned(self, lanes: LaneBuffers, plan: dict[str, int], taken: dict[str, list[Record]]) -> dict[str, int]:
        """Add up to ``plan[lane]`` records of each lane to ``taken[lane]``; what could not be
        taken, per lane."""
        missing: dict[str, int] = {}
        enabled = gc.isenabled()  # paused as in _take
        if enabled:
            gc.disable()
        try:
            for lane, n in plan.items():
                try:
                    got = self._take_records(lanes.buffers[lane], n)
                except CorruptBatch as e:
                    if not any(taken.values()):
                        raise
                    self._deferred = e  # records of other lanes first (their positions moved)
                    break
                if len(got) < n:
                    missing[lane] = n - len(got)
                taken[lane] += got
        finally:
            if enabled:
                gc.enable()
        return missing

    def _take_records(self, buffer: RecordBuffer, limit: int) -> list[Record]:
        before = buffer.count
        try:
            return buffer.take(limit, self._positions)
        finally:
            self._buffered -= before - buffer.count  # records handed out, and skipped corrupt ones

    def _start(self, max_wait_ms: int) -> bool:
        """Send a Fetch; False when there is nothing to fetch (with lanes: every lane is full)."""
        self._resolve_positions()
        if self._lanes is None:
            tps, max_records = self._assigned, fetch_records(self.max_poll_records)
        else:
            tps, max_records = self._lanes.to_fetch(fetch_records(self.max_poll_records))
            if not tps:
                return False
            self._in_flight.tps = frozenset(tps)
        self._in_flight.send(tps, self._fetch_offsets, max_records, max_wait_ms, self._epoch)
        return True

    def _maybe_prefetch(self, taking: int) -> None:
        """Start the next Fetch when fewer than one Fetch's worth of records stay buffered after
        ``taking``."""
        if (
            self._prefetch
            and self._in_flight.future is None
            and self._assigned
            and self._buffered - taking < fetch_records(self.max_poll_records)
        ):
            try:
                self._start(self._max_wait_ms)
            except Exception as e:  # the next poll starts it again and reports what is wrong
                log.debug("prefetch not started: %s", e)

    def _maybe_prefetch_lanes(self) -> None:
        """With lanes, after a poll took its records: start the next Fetch (with ``prefetch``, or
        when the poll could not take all it wanted) for the lanes that are not full."""
        if (self._prefetch or self._short) and self._in_flight.future is None and self._assigned:
            try:
                self._start(self._max_wait_ms)
            except Exception as e:  # the next poll starts it again and reports what is wrong
                log.debug("prefetch not started: %s", e)

    def _await_response(self, deadline: float) -> bool:
        """Wait for a Fetch answer and buffer its batches; False when the deadline passed first."""
        left = deadline - self._clock()
        in_flight = self._in_flight
        stale = in_flight.future is None or in_flight.epoch != self._epoch
        if not stale and self._lanes is not None:
            # A lane that filled up before this Fetch was sent may be the one waited for now.
            stale = not in_flight.tps.issuperset(self._lanes.to_fetch(fetch_records(self.max_poll_records))[0])
        if stale:
            in_flight.cancel()
            if not self._start(max(0, min(self._max_wait_ms, int(left * 1000)))):
                in_flight.pause(left)  # not expected: a lane with nothing buffered is always fetched
                return False
        if not in_flight.wait(max(0.0, left)):
            return False
        try:
            response = in_flight.answer()
        except Unavailable as e:
            return in_flight.on_unavailable(e, deadline)
        except OffsetOutOfRange as e:
            self._reset_out_of_range(e)
            return True
        self._apply(response)
        return self._buffered > 0 or deadline - self._clock() >= 0.001

    def _apply(self, fetched: list[FetchedPartition]) -> None:
        """Buffer the batches of a Fetch answer past each partition's fetch offset.

        Over gRPC each batch is a view into the answer's bytes (:mod:`logsvc_wire.fetch_response`),
        which live as long as one batch of theirs is buffered. One buffer hands batches out in
        fetch order, so answers go in order too. With lanes a batch goes to its lane's buffer, and a
        lane that is not taken from can hold one small batch of each of many answers (megabytes
        each) for as long as ``max_lane_wait_ms``: there, each batch is copied out of its answer."""
        offsets = self._fetch_offsets
        lanes = self._lanes
        buffer = self._buffer
        for pd in fetched:
            tp = TopicPartition(pd.topic, pd.partition)
            offset = offsets.get(tp)
            if offset is None:
                continue
            if lanes is not None:
                found = lanes.buffers.get(tp.topic)
                if found is None:
                    continue
                buffer = found
                lanes.ends[tp] = pd.next_offset
            offset = max(offset, pd.log_start_offset)
            for base, data in pd.batches:
                end = base + stored_count(data)  # as the broker counts, even for a corrupt header
                if end <= offset:
                    continue
                n = end - max(base, offset)
                buffer.add(tp, base, data if lanes is None else bytes(data), offset, n)
                self._buffered += n
                offset = end
            offsets[tp] = offset

    def _reset_out_of_range(self, error: OffsetOutOfRange) -> None:
        """Apply ``auto_offset_reset`` to the partitions whose fetch offset left the log."""
        earliest = list_offsets(self._transport, self._assigned, "earliest")
        latest = list_offsets(self._transport, self._assigned, "latest")
        targets = reset_targets(self._reset, self._assigned, self._fetch_offsets, earliest, latest)
        for tp, target in targets.items():
            self.seek(tp, target)
        if not targets:  # raced with a trim or produce: the next fetch will tell
            log.debug("fetch reported out of range but no position is: %s", error)
            time.sleep(self._retry.backoff.delay_s(0))

    def close(self) -> None:
        self._in_flight.cancel()


def _partition_of(error: CorruptBatch) -> TopicPartition:
    return TopicPartition(error.details["topic"], error.details["partition"])
