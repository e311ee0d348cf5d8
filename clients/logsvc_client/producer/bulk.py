"""Many records of one topic queued at once: the bulk path of ``Producer.send_many``.

:func:`prepare_bulk` does for a sequence of records what
:meth:`~logsvc_client.producer.accumulator.Accumulator.append` does for one — check, convert to bytes,
bound the encoded size, choose the partition, build the ``(timestamp_ms, key, value, headers)``
tuple — a list at a time and without the accumulator's lock, partitioned by the one rule,
:func:`~logsvc_wire.partitioner.choose_partition`. The result, :class:`BulkRecords`, is plain
lists, which :meth:`~logsvc_client.producer.accumulator.Accumulator.append_many` then appends
under the accumulator's lock (taken once for the lot, or once per chunk that fits when it must
wait for buffer space). This module knows nothing of the accumulator: the dependency goes one way.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

from logsvc_wire.batch import RECORD_OVERHEAD, header_bytes
from logsvc_wire.partitioner import choose_partition

from ..errors import InvalidRequest
from ..records import check_timestamp, to_bytes, to_headers
from .batches import RawRecord
from .topic_batches import TopicBatches

_time_ns = time.time_ns
_choose_partition = choose_partition


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
            # -1 for a keyless record: the sticky partition when it is appended
            parts = [_choose_partition(None, k, np, -1) for k in keys]
    return BulkRecords(parts, records, sizes)


def _all_to_bytes(items: Sequence[object], what: str) -> tuple[Sequence[bytes | None], list[int]]:
    """``items`` as bytes (None kept) and their lengths (0 for None); no copy when all are bytes."""
    if isinstance(items, str | bytes | bytearray | memoryview):
        raise InvalidRequest(f"send_many takes a sequence of {what}s, not one {type(items).__name__}")
    if all(x.__class__ is bytes for x in items):
        return items, list(map(len, items))  # type: ignore[arg-type,return-value]
    converted = [to_bytes(x, what) for x in items]
    return converted, [0 if x is None else len(x) for x in converted]
