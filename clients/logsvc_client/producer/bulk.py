"""Many records of one topic queued at once: the bulk path of ``Producer.send_many``.

:func:`prepare_bulk` does for a sequence of records what
:meth:`~logsvc_client.producer.accumulator.Accumulator.append` does for one — check, convert to bytes,
bound the encoded size, choose the partition, build the ``(timestamp_ms, key, value, headers)``
tuple — a list at a time and without the accumulator's lock. The result, :class:`BulkRecords`,
is plain lists. :func:`append_bulk` then hands them to the accumulator under its lock, taken once
for the lot, or once per chunk that fits when it must wait for buffer space.
:meth:`~logsvc_client.producer.accumulator.Accumulator.append_many` runs the two.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import TYPE_CHECKING, NamedTuple

from ..batch import BATCH_OVERHEAD, RECORD_OVERHEAD, header_bytes
from ..errors import BatchTooLarge, InvalidRequest
from ..partitioner import murmur2_positive
from ..records import check_timestamp, to_bytes, to_headers
from .batches import RawRecord
from .futures import RecordFutures
from .topic_batches import TopicBatches

if TYPE_CHECKING:
    from .accumulator import Accumulator

_time_ns = time.time_ns
_hash = murmur2_positive


class BulkRecords(NamedTuple):
    """Records ready to append, one entry per record in each list."""

    #: the partition of each record; -1: the sticky partition at the moment it is appended
    partitions: list[int]
    records: list[RawRecord]
    #: upper bounds of the records' encoded sizes
    sizes: list[int]


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
    extra = RECORD_OVERHEAD
    if headers is not None:
        headers = to_headers(headers)
        if headers is not None:
            extra += header_bytes(headers)
    vals, sizes = _all_to_bytes(values, "value")
    if keys is None:
        sizes = [size + extra for size in sizes]
        records: list[RawRecord] = [(timestamp_ms, None, v, headers) for v in vals]
        # -1: the sticky partition at the moment the record is appended, as in append
        parts = [-1 if partition is None else partition] * n
    else:
        keys, key_sizes = _all_to_bytes(keys, "key")
        sizes = [size + key_size + extra for size, key_size in zip(sizes, key_sizes, strict=True)]
        records = [(timestamp_ms, k, v, headers) for k, v in zip(keys, vals, strict=True)]
        if partition is not None:
            parts = [partition] * n
        else:
            np = t.partitions
            parts = [-1 if k is None else _hash(k) % np for k in keys]
    return BulkRecords(parts, records, sizes)


def append_bulk(acc: Accumulator, t: TopicBatches, bulk: BulkRecords, futures: RecordFutures) -> None:
    """Append ``bulk`` to its partitions' batches in ``acc``, in order, adding their futures to
    ``futures``: all at once when the buffer has room for them, else the ones that fit, then wait
    for space (or raise BufferFull) and go on."""
    parts, records, sizes = bulk
    n = len(sizes)
    with acc.lock:
        total = sum(sizes)
        if acc.buffered + total <= acc.max_buffer_bytes:
            acc.extend_locked(t, parts, records, sizes, total, futures)
            return
        # The buffer is short: append what fits, wait for space (or raise), go on.
        largest = max(sizes)
        if largest + BATCH_OVERHEAD > acc.max_buffer_bytes:
            raise BatchTooLarge(
                f"record of about {largest} bytes is larger than max_buffer_bytes={acc.max_buffer_bytes}"
            )
        ends = list(accumulate(sizes))  # ends[i]: bytes of records 0..i
        done = 0  # records appended; their bytes: ends[done - 1]
        while done < n:
            before = ends[done - 1] if done else 0
            fit = bisect_right(ends, before + acc.max_buffer_bytes - acc.buffered, done)
            if fit == done:
                acc.wait_for_space_locked(sizes[done])
                continue
            acc.extend_locked(t, parts[done:fit], records[done:fit], sizes[done:fit], ends[fit - 1] - before, futures)
            done = fit


def _all_to_bytes(items: Sequence[object], what: str) -> tuple[Sequence[bytes | None], list[int]]:
    """``items`` as bytes (None kept) and their lengths (0 for None); no copy when all are bytes."""
    if isinstance(items, str | bytes | bytearray | memoryview):
        raise InvalidRequest(f"send_many takes a sequence of {what}s, not one {type(items).__name__}")
    if all(x.__class__ is bytes for x in items):
        return items, list(map(len, items))  # type: ignore[arg-type,return-value]
    converted = [to_bytes(x, what) for x in items]
    return converted, [0 if x is None else len(x) for x in converted]
