"""The fetch loop behind a consumer: positions, buffered batches, pipelined Fetch requests.

A :class:`Fetcher` keeps two offsets per assigned partition: the *position* (the next record the
application gets) and the *fetch offset* (the next one to ask the broker for). Fetched batches are
kept whole, as bytes, until :meth:`Fetcher.fetch` hands their records out, and are decoded
straight into :class:`~logsvc_client.records.Record` tuples by
:func:`~logsvc_client.batch.decode_records`. Before decoding, it starts the next Fetch when fewer
than ``max_poll_records`` would stay buffered (prefetch), so the broker reads while this process
decodes and the application works. Any change of assignment or position discards the fetch in
flight and the buffered records of the partitions it affects.

It knows nothing of groups: a group consumer changes the assignment with :meth:`Fetcher.assign`
and reads :meth:`Fetcher.positions` to commit. Not thread-safe (one consumer, one thread).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal

import grpc

from . import batch as codec
from . import channel
from ._proto import logsvc_pb2 as pb
from .admin import offsets_request
from .errors import FailedPrecondition, InvalidConfig, InvalidRequest, OffsetOutOfRange, Unavailable
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
        self._pending: deque[tuple[TopicPartition, int, bytes, int]] = deque()  # tp, base, batch, start
        self._decoded: list[Record] = []  # the batch being handed out, from _decoded_at on
        self._decoded_at = 0
        self._buffered = 0  # records fetched and not handed out
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
        for offsets in (self._positions, self._fetch_offsets):
            for tp in [tp for tp in offsets if tp not in keep]:
                del offsets[tp]
        self._discard(lambda tp: tp not in keep)

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
        self._pending = deque(item for item in self._pending if not affected(item[0]))
        if self._decoded and affected(TopicPartition(self._decoded[0].topic, self._decoded[0].partition)):
            self._decoded, self._decoded_at = [], 0
        self._buffered = (
            len(self._decoded)
            - self._decoded_at
            + sum(codec.read_header(data).record_count - max(0, start - base) for _, base, data, start in self._pending)
        )
        for tp in self._assigned:
            if tp in self._positions and affected(tp):
                self._fetch_offsets[tp] = self._positions[tp]

    # -- fetching -------------------------------------------------------------------------------

    def fetch(self, timeout_s: float, max_records: int | None = None) -> list[Record]:
        """Up to ``max_records`` records, waiting up to ``timeout_s`` for the first one."""
        limit = max_records or self.max_poll_records
        deadline = self._clock() + timeout_s
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
            return self._take_records(limit)
        finally:
            if enabled:
                gc.enable()

    def _take_records(self, limit: int) -> list[Record]:
        out: list[Record] = []
        positions = self._positions
        while limit > 0:
            recs = self._decoded
            if recs:
                at = self._decoded_at
                n = len(recs) - at
                if n <= limit:
                    chunk = recs if at == 0 else recs[at:]
                    self._decoded, self._decoded_at = [], 0
                else:
                    chunk = recs[at : at + limit]
                    self._decoded_at = at + limit
                last = chunk[-1]
                positions[TopicPartition(last.topic, last.partition)] = last.offset + 1
                if out:
                    out += chunk
                else:
                    out = chunk
                limit -= len(chunk)
                self._buffered -= len(chunk)
            elif self._pending:
                tp, base, data, start = item = self._pending.popleft()
                try:
                    self._decoded = codec.decode_records(tp.topic, tp.partition, base, data, start, self._check_crcs)
                except Exception:
                    # A corrupt batch stays where it is: every poll reports it until the
                    # application seeks past it (records already taken this poll are kept).
                    self._pending.appendleft(item)
                    if out:
                        break
                    raise
                self._decoded_at = 0
            else:
                break
        return out

    def _request(self, max_wait_ms: int) -> pb.FetchRequest:
        self._resolve_positions()
        offsets = self._fetch_offsets
        return pb.FetchRequest(
            partitions=[
                pb.FetchPartition(topic=tp.topic, partition=tp.partition, offset=offsets[tp]) for tp in self._assigned
            ],
            max_records=self.max_poll_records,
            max_bytes=self._max_bytes,
            max_wait_ms=max_wait_ms,
        )

    def _start(self, max_wait_ms: int) -> None:
        timeout_s = max_wait_ms / 1000 + self._retry.timeout_ms / 1000
        self._in_flight = channel.start(self._stub.Fetch, self._request(max_wait_ms), timeout_s)
        self._in_flight_epoch = self._epoch

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

    def _await_response(self, deadline: float) -> bool:
        """Wait for a Fetch answer and buffer its batches; False when the deadline passed first."""
        left = deadline - self._clock()
        if self._in_flight is None or self._in_flight_epoch != self._epoch:
            if self._in_flight is not None:
                self._in_flight.cancel()
            self._start(max(0, min(self._max_wait_ms, int(left * 1000))))
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
        for pd in response.partitions:
            tp = TopicPartition(pd.topic, pd.partition)
            offset = offsets.get(tp)
            if offset is None:
                continue
            offset = max(offset, pd.log_start_offset)
            for sb in pd.batches:
                data = sb.batch
                base = sb.base_offset
                end = base + codec.read_header(data).record_count
                if end <= offset:
                    continue
                self._pending.append((tp, base, data, offset))
                self._buffered += end - max(base, offset)
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
