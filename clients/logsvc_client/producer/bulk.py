"""Many records of one topic queued at once: the bulk path of ``Producer.send_many``.

:func:`prepare_bulk` does for a sequence of records what
:meth:`~logsvc_client.producer.accumulator.Accumulator.append` does for one — check, convert to bytes,
choose the partition, encode ``[timestamp_ms, key, value, headers]`` — a call at a time and
without the accumulator's lock: one pass of :func:`~logsvc_wire.record_codec.encode_bulk` (C when
built) partitions by the one rule (an explicit partition, else Kafka's murmur2 of the key, else
the sticky partition, as :func:`~logsvc_wire.partitioner.choose_partition`) and encodes each
partition's records one after another into one chunk. The result, :class:`BulkRecords`, is what
:meth:`~logsvc_client.producer.accumulator.Accumulator.append_many` then appends under the
accumulator's lock, a chunk slice per batch; :meth:`BulkRecords.segments` says which slices, in an
order that keeps every partition's records in call order. This module knows nothing of the
accumulator: the dependency goes one way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import accumulate

from logsvc_wire.batch import RECORD_OVERHEAD, header_bytes
from logsvc_wire.record_codec import NO_HEADERS, Bulk, encode_bulk, pack_headers

from ..errors import InvalidRequest
from ..records import check_timestamp, to_bytes, to_headers
from .topic_batches import TopicBatches

_time_ns = time.time_ns

#: (slot, first rank, end rank): records of one slot (a partition, or the sticky slot numbered
#: ``partitions``) by their index among the slot's records
Segment = tuple[int, int, int]


class BulkRecords:
    """One ``send_many`` call's records, encoded and partitioned (see the module docstring).

    Slot s < ``partitions`` is partition s; slot ``partitions`` is the sticky one (records
    without key or partition). ``chunks[s]`` holds slot s's records encoded one after another,
    ``ends[s][r]`` is where its r-th record ends in it and ``bounds[s][r]`` the sum of the size
    bounds of its records 0..r (the bound ``send`` counts for each, so batches roll and the buffer
    fills exactly as record-by-record ``send`` would); ``slots[i]`` and ``ranks[i]`` place the
    call's i-th record (its slot, its index there).
    """

    __slots__ = ("bounds", "chunks", "count", "ends", "partitions", "ranks", "slots")

    def __init__(self, partitions: int, encoded: Bulk) -> None:
        chunks, ends, bounds, slots, ranks = encoded
        self.partitions = partitions
        self.chunks = chunks
        self.ends = [None if e is None else memoryview(e).cast("I") for e in ends]
        self.bounds = [None if b is None else memoryview(b).cast("Q") for b in bounds]
        self.slots = memoryview(slots).cast("I")
        self.ranks = memoryview(ranks).cast("I")
        self.count = len(self.slots)

    def total_bytes(self) -> int:
        """The records' size bounds, summed."""
        return sum(b[-1] for b in self.bounds if b is not None)

    def mixed(self) -> bool:
        """Whether sticky records share the call with keyed ones: their relative order within a
        partition is then the call's, so they are appended in runs of call order."""
        return self.chunks[self.partitions] is not None and any(c is not None for c in self.chunks[:-1])

    def segments(self, lo: int = 0, hi: int | None = None) -> list[Segment]:
        """The slices to append for the call's records ``lo`` to ``hi``, in an order that keeps
        each partition's records in call order: one per slot when the call is not mixed, else
        runs of consecutive records of one slot."""
        hi = self.count if hi is None else hi
        if lo == 0 and hi == self.count and not self.mixed():
            return [(s, 0, len(e)) for s, e in enumerate(self.ends) if e is not None]
        slots, ranks = self.slots, self.ranks
        if not self.mixed():  # each slot's records in lo..hi are one run of ranks
            first: dict[int, int] = {}
            last: dict[int, int] = {}
            for i in range(lo, hi):
                s = slots[i]
                if s not in first:
                    first[s] = ranks[i]
                last[s] = ranks[i]
            return [(s, r, last[s] + 1) for s, r in first.items()]
        runs: list[Segment] = []
        i = lo
        while i < hi:
            s, r, j = slots[i], ranks[i], i + 1
            while j < hi and slots[j] == s:
                j += 1
            runs.append((s, r, r + j - i))
            i = j
        return runs

    def record_ends(self) -> list[int]:
        """The size bounds of records ``0..i`` summed, for each i in call order (for appending
        what fits the buffer)."""
        bounds, slots, ranks = self.bounds, self.slots, self.ranks

        def size(i: int) -> int:
            b, r = bounds[slots[i]], ranks[i]
            assert b is not None
            return b[r] - (b[r - 1] if r else 0)

        return list(accumulate(map(size, range(self.count))))


def record_headers(headers: object) -> tuple[bytes, int]:
    """The headers of a record as the codec takes them (packed msgpack) and the record's size
    bound beside its key and value: :data:`~logsvc_wire.batch.RECORD_OVERHEAD` plus the headers'
    bound. The one rule ``send`` and ``send_many`` count a record by."""
    if headers is not None:
        pairs = to_headers(headers)
        if pairs is not None:
            return pack_headers(pairs), RECORD_OVERHEAD + header_bytes(pairs)
    return NO_HEADERS, RECORD_OVERHEAD


def prepare_bulk(
    t: TopicBatches,
    values: Sequence[bytes | str | None],
    keys: Sequence[bytes | str | None] | None,
    partition: int | None,
    headers: object,
    timestamp_ms: int | None,
) -> BulkRecords:
    """``values[i]`` with ``keys[i]`` (keys None: no keys) as records of topic ``t``, with the
    ``partition``, ``headers`` and ``timestamp_ms`` (default: now) of every record. Raises
    InvalidRequest or InvalidPartition for the first thing malformed, before anything is queued."""
    n = len(values)
    if keys is not None and len(keys) != n:
        raise InvalidRequest(f"send_many got {n} values but {len(keys)} keys (one key per value, or keys=None)")
    if partition is not None:
        t.check_partition(partition)
    if timestamp_ms is None:
        timestamp_ms = _time_ns() // 1_000_000
    else:
        check_timestamp(timestamp_ms)
    packed, overhead = record_headers(headers)
    fixed = -1 if partition is None else partition
    encoded = encode_bulk(keys, values, timestamp_ms, packed, overhead, t.partitions, fixed)
    if encoded is None:  # some key or value is not bytes: convert them (or refuse), then encode
        values = _all_to_bytes(values, "value")
        keys = None if keys is None else _all_to_bytes(keys, "key")
        encoded = encode_bulk(keys, values, timestamp_ms, packed, overhead, t.partitions, fixed)
        assert encoded is not None
    return BulkRecords(t.partitions, encoded)


def _all_to_bytes(items: Sequence[object], what: str) -> list[bytes | None]:
    """``items`` as bytes (None kept); InvalidRequest naming the first that cannot be."""
    if isinstance(items, str | bytes | bytearray | memoryview):
        raise InvalidRequest(f"send_many takes a sequence of {what}s, not one {type(items).__name__}")
    return [to_bytes(x, what) for x in items]
