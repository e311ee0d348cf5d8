"""The fetch loop behind a consumer: positions, buffered batches, pipelined Fetch requests.

A :class:`Fetcher` keeps two offsets per assigned partition: the *position* (the next record the
application gets) and the *fetch offset* (the next one to ask the broker for). Fetched batches are
kept whole, as bytes, in a :class:`~logsvc_client.record_buffer.RecordBuffer` until
:meth:`Fetcher.fetch` hands their records out, and are decoded straight into
:class:`~logsvc_client.records.Record` tuples by :func:`~logsvc_client.batch.decode_records`.
Before decoding, it starts the next Fetch when fewer than ``max_poll_records`` would stay
buffered (prefetch), so the broker reads while this process decodes and the application works.
Any change of assignment or position discards the fetch in flight and the buffered records of
the partitions it affects.

With priority lanes (:meth:`Fetcher.set_lanes`, a :class:`~logsvc_client.lanes.LanePolicy` over
topics) records are buffered per lane, and each poll takes from the lanes what the policy plans,
given each lane's backlog: its buffered records plus, per partition, the broker's next offset
(from the last Fetch answer) minus the fetch offset. A lane holding fewer records than its part
of a poll makes the poll wait once for the next Fetch answer (within its timeout) and take the
rest from it. A Fetch asks only for the lanes that
hold fewer than ``max_poll_records`` buffered records, the one that would run out first first
(:meth:`~logsvc_client.lanes.LanePolicy.fetch_order`), so a lane that is not being taken from
stops growing while the others keep being fetched.

It knows nothing of groups: a group consumer changes the assignment with :meth:`Fetcher.assign`
and reads :meth:`Fetcher.positions` to commit. Not thread-safe (one consumer, one thread).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import grpc

from . import batch as codec
from . import channel
from ._proto import logsvc_pb2 as pb
from .admin import offsets_request
from .errors import FailedPrecondition, InvalidConfig, InvalidRequest, OffsetOutOfRange, Unavailable
from .lanes import LanePolicy
from .record_buffer import RecordBuffer
from .records import Record, TopicPartition

log = logging.getLogger("logsvc_client.consumer")

OffsetReset = Literal["earliest", "latest", "none"]


class Fetcher:
    def __init__(
        self,
        stub: Any,
        *,
        max_poll_records: int = 10_000,
        fetch_max_bytes: int = 16 * 1024 * 1024,
        fetch_max_wait_ms: int = 500,
        check_crcs: bool = True,
        auto_offset_reset: OffsetReset = "earliest",
        prefetch: bool = True,
        retry: channel.RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if auto_offset_reset not in ("earliest", "latest", "none"):
            raise InvalidConfig(
                f"auto_offset_reset={auto_offset_reset!r} must be 'earliest', 'latest' or 'none'",
                key="auto_offset_reset",
            )
        self._stub = stub
        self.max_poll_records = max_poll_records
        self._max_bytes = fetch_max_bytes
        self._max_wait_ms = fetch_max_wait_ms
        self._check_crcs = check_crcs
        self._reset = auto_offset_reset
        self._prefetch = prefetch
        self._retry = retry or channel.RetryPolicy()
        self._clock = clock
        self._wake: threading.Event | None = None
        self._assigned: list[TopicPartition] = []
        self._assigned_set: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        self._fetch_offsets: dict[TopicPartition, int] = {}
        self._buffer = RecordBuffer(check_crcs)  # without lanes: every partition's records, in fetch order
        self._buffered = 0  # records fetched and not handed out (in all buffers)
        self._lanes: LanePolicy | None = None
        self._lane_buffers: dict[str, RecordBuffer] = {}  # with lanes: one buffer per lane, in lane order
        self._lane_tps: dict[str, list[TopicPartition]] = {}  # the assigned partitions of each lane
        self._next_offsets: dict[TopicPartition, int] = {}  # with lanes: the log end, per the last Fetch
        self._in_flight_tps: frozenset[TopicPartition] = frozenset()
        self._short = False  # with lanes: the last poll took less than it could have
        self._epoch = 0
        self._in_flight: grpc.Future | None = None
        self._in_flight_epoch = -1
        self._unavailable_since: float | None = None

    # -- assignment and positions ---------------------------------------------------------------

    def assignment(self) -> list[TopicPartition]:
        return list(self._assigned)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Fetch from exactly these partitions; positions of partitions kept are kept."""
        tps = list(dict.fromkeys(TopicPartition(*tp) for tp in partitions))
        keep = set(tps)
        self._assigned = tps
        self._assigned_set = keep
        for offsets in (self._positions, self._fetch_offsets, self._next_offsets):
            for tp in [tp for tp in offsets if tp not in keep]:
                del offsets[tp]
        self._discard(lambda tp: tp not in keep)
        self._map_lanes()

    def set_lanes(self, policy: LanePolicy | None) -> None:
        """Take records by ``policy`` from now on (None: as they were fetched, no lanes). Partitions
        of topics that are not lanes are not fetched. A policy that plans like the current one is
        ignored (the current one keeps its wait clocks); any other discards the buffered records."""
        if policy is not None and self._lanes is not None and self._lanes.same_as(policy):
            return
        self._discard(lambda tp: True)
        self._lanes = policy
        self._lane_buffers = {} if policy is None else {lane: RecordBuffer(self._check_crcs) for lane in policy.lanes}
        self._next_offsets.clear()
        self._map_lanes()

    def _map_lanes(self) -> None:
        self._lane_tps = {lane: [tp for tp in self._assigned if tp.topic == lane] for lane in self._lane_buffers}

    def interrupt_on(self, wake: threading.Event) -> None:
        """From now on a wait for a Fetch also ends once ``wake`` is set (:meth:`fetch` then returns
        what it has, maybe nothing). The caller clears it; a group consumer sets it when its
        assignment changes, so a revoke is not held up by a long poll."""
        self._wake = wake

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
        if not isinstance(offset, int) or offset < 0:
            raise InvalidRequest(f"cannot seek {tp.topic}/{tp.partition} to offset {offset!r}: use an int >= 0")
        self._positions[tp] = self._fetch_offsets[tp] = offset
        self._discard(lambda other: other == tp)

    def seek_to(self, spec: str, tps: Iterable[TopicPartition] | None = None, timestamp_ms: int | None = None) -> None:
        """Seek partitions (default: all assigned) to earliest, latest or the first at a time."""
        targets = list(tps) if tps is not None else self.assignment()
        for tp in targets:
            self._check_assigned(tp)
        for tp, offset in self._list_offsets(targets, spec, timestamp_ms).items():
            self.seek(tp, offset)

    def _check_assigned(self, tp: TopicPartition) -> None:
        if tp not in self._assigned_set:
            raise FailedPrecondition(f"partition {tp.topic}/{tp.partition} is not assigned to this consumer")

    def _list_offsets(
        self, tps: Iterable[TopicPartition], spec: str, timestamp_ms: int | None = None
    ) -> dict[TopicPartition, int]:
        by_topic: dict[str, list[int]] = {}
        for tp in tps:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        out: dict[TopicPartition, int] = {}
        for topic, parts in by_topic.items():
            request = offsets_request(topic, spec, timestamp_ms, parts)
            response = channel.call_with_retry(self._stub.ListOffsets, request, self._retry)
            out.update({TopicPartition(topic, o.partition): o.offset for o in response.offsets})
        return out

    def _resolve_positions(self) -> None:
        """Position partitions never positioned: the latest offset under 'latest', else the earliest."""
        missing = [tp for tp in self._assigned if tp not in self._positions]
        if missing:
            spec = "latest" if self._reset == "latest" else "earliest"
            for tp, offset in self._list_offsets(missing, spec).items():
                self._positions[tp] = self._fetch_offsets[tp] = offset

    def _discard(self, affected: Callable[[TopicPartition], bool]) -> None:
        """Drop the fetch in flight and the buffered records of affected partitions, which are
        fetched again from their positions (other partitions keep theirs)."""
        self._epoch += 1
        if self._in_flight is not None:
            self._in_flight.cancel()
            self._in_flight = None
        buffers = [self._buffer, *self._lane_buffers.values()]
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

    def _fetch_lanes(self, policy: LanePolicy, limit: int, deadline: float) -> list[Record]:
        """:meth:`fetch` with lanes: take what ``policy`` plans. When a lane has fewer records
        buffered than planned (the rest not fetched yet), wait once for the next Fetch answer
        (within the deadline) and take the rest of its part from what it brought."""
        while True:
            if self._in_flight is not None and self._in_flight.done():
                self._await_response(deadline)  # buffer what a prefetch brought meanwhile
            if self._buffered:
                now_ms = int(self._clock() * 1000)
                plan = self._plan(policy, now_ms, limit)
                taken: dict[str, list[Record]] = {lane: [] for lane in plan}
                missing = self._take_planned(plan, taken)
                if missing and deadline > self._clock() and self._await_response(deadline):
                    missing = self._take_planned(missing, taken)
                for lane, n in plan.items():
                    policy.served(lane, n - missing.get(lane, 0), now_ms)
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
                self._pause(deadline - self._clock())
                return []
            if not self._await_response(deadline):
                return []

    def _plan(self, policy: LanePolicy, now_ms: int, limit: int) -> dict[str, int]:
        """The policy's plan for this poll, given each lane's backlog: its buffered records plus,
        per partition, the log end from the last Fetch answer minus the fetch offset."""
        buffers, ends, offsets = self._lane_buffers, self._next_offsets, self._fetch_offsets
        ready: dict[str, int] = {}
        backlog: dict[str, int] = {}
        for lane, tps in self._lane_tps.items():
            ready[lane] = n = buffers[lane].count
            for tp in tps:
                end, at = ends.get(tp), offsets.get(tp)
                if end is not None and at is not None and end > at:
                    n += end - at
            backlog[lane] = n
        return policy.plan(backlog, now_ms, limit, ready)

    def _take_planned(self, plan: dict[str, int], taken: dict[str, list[Record]]) -> dict[str, int]:
        """Add up to ``plan[lane]`` records of each lane to ``taken[lane]``; what could not be
        taken, per lane."""
        missing: dict[str, int] = {}
        enabled = gc.isenabled()  # paused as in _take
        if enabled:
            gc.disable()
        try:
            for lane, n in plan.items():
                got = self._take_records(self._lane_buffers[lane], n)
                if len(got) < n:
                    missing[lane] = n - len(got)
                taken[lane] += got
        finally:
            if enabled:
                gc.enable()
        return missing

    def _take_records(self, buffer: RecordBuffer, limit: int) -> list[Record]:
        out = buffer.take(limit, self._positions)
        self._buffered -= len(out)
        return out

    def _request(self, tps: list[TopicPartition], max_records: int, max_wait_ms: int) -> pb.FetchRequest:
        offsets = self._fetch_offsets
        return pb.FetchRequest(
            partitions=[pb.FetchPartition(topic=tp.topic, partition=tp.partition, offset=offsets[tp]) for tp in tps],
            max_records=max_records,
            max_bytes=self._max_bytes,
            max_wait_ms=max_wait_ms,
        )

    def _lane_fetch(self) -> tuple[list[TopicPartition], int]:
        """With lanes: the partitions to fetch — those of lanes holding fewer than
        ``max_poll_records`` buffered records, the lane that would run out first first (the
        broker fills a Fetch in the order asked) — and how many records would fill those lanes."""
        assert self._lanes is not None
        buffers, cap = self._lane_buffers, self.max_poll_records
        counts = {lane: buffer.count for lane, buffer in buffers.items()}
        lanes = [lane for lane in self._lanes.fetch_order(counts) if self._lane_tps[lane] and counts[lane] < cap]
        return [tp for lane in lanes for tp in self._lane_tps[lane]], sum(cap - counts[lane] for lane in lanes)

    def _start(self, max_wait_ms: int) -> bool:
        """Send a Fetch; False when there is nothing to fetch (with lanes: every lane is full)."""
        self._resolve_positions()
        if self._lanes is None:
            tps, max_records = self._assigned, self.max_poll_records
        else:
            tps, max_records = self._lane_fetch()
            if not tps:
                return False
            self._in_flight_tps = frozenset(tps)
        timeout_s = max_wait_ms / 1000 + self._retry.timeout_ms / 1000
        self._in_flight = channel.start(self._stub.Fetch, self._request(tps, max_records, max_wait_ms), timeout_s)
        self._in_flight_epoch = self._epoch
        return True

    def _maybe_prefetch(self, taking: int) -> None:
        """Start the next Fetch when fewer than ``max_poll_records`` stay buffered after ``taking``."""
        if (
            self._prefetch
            and self._in_flight is None
            and self._assigned
            and self._buffered - taking < self.max_poll_records
        ):
            try:
                self._start(self._max_wait_ms)
            except Exception as e:  # the next poll starts it again and reports what is wrong
                log.debug("prefetch not started: %s", e)

    def _maybe_prefetch_lanes(self) -> None:
        """With lanes, after a poll took its records: start the next Fetch (with ``prefetch``, or
        when the poll could not take all it wanted) for the lanes that are not full."""
        if (self._prefetch or self._short) and self._in_flight is None and self._assigned:
            try:
                self._start(self._max_wait_ms)
            except Exception as e:  # the next poll starts it again and reports what is wrong
                log.debug("prefetch not started: %s", e)

    def _await_response(self, deadline: float) -> bool:
        """Wait for a Fetch answer and buffer its batches; False when the deadline passed first."""
        left = deadline - self._clock()
        stale = self._in_flight is None or self._in_flight_epoch != self._epoch
        if not stale and self._lanes is not None:
            # A lane that filled up before this Fetch was sent may be the one waited for now.
            stale = not self._in_flight_tps.issuperset(self._lane_fetch()[0])
        if stale:
            if self._in_flight is not None:
                self._in_flight.cancel()
                self._in_flight = None
            if not self._start(max(0, min(self._max_wait_ms, int(left * 1000)))):
                self._pause(left)  # not expected: a lane with nothing buffered is always fetched
                return False
        future = self._in_flight
        assert future is not None
        if not self._wait(future, max(0.0, left)):
            return False
        self._in_flight = None
        try:
            response = channel.result_of(future)
        except Unavailable as e:
            return self._on_unavailable(e, deadline)
        except OffsetOutOfRange as e:
            self._reset_out_of_range(e)
            return True
        self._unavailable_since = None
        self._apply(response)
        return self._buffered > 0 or deadline - self._clock() >= 0.001

    def _wait(self, future: grpc.Future, timeout_s: float) -> bool:
        """Wait for the Fetch to finish, or for the :meth:`interrupt_on` event; True when it is done."""
        wake = self._wake
        if wake is None or future.done():
            return channel.wait_done(future, timeout_s)
        future.add_done_callback(lambda _f: wake.set())
        wake.wait(timeout_s)
        return bool(future.done())

    def _pause(self, timeout_s: float) -> None:
        if timeout_s > 0:
            if self._wake is None:
                time.sleep(timeout_s)
            else:
                self._wake.wait(timeout_s)

    def _on_unavailable(self, error: Unavailable, deadline: float) -> bool:
        now = self._clock()
        if self._unavailable_since is None:
            self._unavailable_since = now
        elif now - self._unavailable_since > self._retry.timeout_ms / 1000:
            self._unavailable_since = None
            raise error
        pause = min(self._retry.backoff.delay_s(1), max(0.0, deadline - now))
        log.debug("fetch failed (%s); retrying in %.3f s", error, pause)
        time.sleep(pause)
        return deadline - self._clock() > 0

    def _apply(self, response: pb.FetchResponse) -> None:
        offsets = self._fetch_offsets
        lanes = self._lane_buffers if self._lanes is not None else None
        buffer = self._buffer
        for pd in response.partitions:
            tp = TopicPartition(pd.topic, pd.partition)
            offset = offsets.get(tp)
            if offset is None:
                continue
            if lanes is not None:
                found = lanes.get(tp.topic)
                if found is None:
                    continue
                buffer = found
                self._next_offsets[tp] = pd.next_offset
            offset = max(offset, pd.log_start_offset)
            for sb in pd.batches:
                data = sb.batch
                base = sb.base_offset
                end = base + codec.read_header(data).record_count
                if end <= offset:
                    continue
                n = end - max(base, offset)
                buffer.add(tp, base, data, offset, n)
                self._buffered += n
                offset = end
            offsets[tp] = offset

    def _reset_out_of_range(self, error: OffsetOutOfRange) -> None:
        """Apply ``auto_offset_reset`` to the partitions whose fetch offset left the log."""
        earliest = self._list_offsets(self._assigned, "earliest")
        latest = self._list_offsets(self._assigned, "latest")
        moved = False
        for tp in self._assigned:
            offset = self._fetch_offsets.get(tp)
            lo, hi = earliest.get(tp, 0), latest.get(tp, 0)
            if offset is None or lo <= offset <= hi:
                continue
            if self._reset == "none":
                raise OffsetOutOfRange(
                    f"offset {offset} of {tp.topic}/{tp.partition} is out of range [{lo}, {hi}] "
                    "and auto_offset_reset is 'none'",
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=offset,
                    log_start_offset=lo,
                    next_offset=hi,
                )
            target = lo if self._reset == "earliest" else hi
            log.info("offset %d of %s/%d out of range [%d, %d]: reset to %d", offset, *tp, lo, hi, target)
            self.seek(tp, target)
            moved = True
        if not moved:  # raced with a trim or produce: the next fetch will tell
            log.debug("fetch reported out of range but no position is: %s", error)
            time.sleep(self._retry.backoff.delay_s(0))

    def close(self) -> None:
        if self._in_flight is not None:
            self._in_flight.cancel()
            self._in_flight = None
