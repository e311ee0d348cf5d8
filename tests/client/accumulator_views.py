"""What an accumulator holds, in a form two accumulators can be compared by: its batches per
partition, where a future points among them, and the records decoded from a batch's buffer."""

from __future__ import annotations

from typing import Any

import msgpack

from logsvc_client.producer.accumulator import Accumulator
from logsvc_client.producer.batches import ProducerBatch
from logsvc_client.producer.futures import RecordFuture
from logsvc_wire import record_codec


def partition_batches(acc: Accumulator, topic: str) -> list[list[ProducerBatch]]:
    """The topic's batches of each partition: sealed ones (oldest first), then the open one."""
    t = next(t for t in acc.states if t.name == topic)
    return [[b for b in [*t.sealed[p], t.open[p]] if b is not None] for p in range(t.partitions)]


def place(acc: Accumulator, f: RecordFuture) -> tuple[str, int, int, int]:
    """Where a future points: (topic, partition, its batch's place among the partition's, index)."""
    return f.topic, f.partition, partition_batches(acc, f.topic)[f.partition].index(f._batch), f._index


def records(b: ProducerBatch) -> tuple[tuple[Any, ...], ...]:
    """The records in a batch's buffer, decoded: (timestamp_ms, key, value, headers) each."""
    assert b.buffer is not None
    payload, _, _ = record_codec.payload(b.buffer, b.count)
    rows: tuple[tuple[Any, ...], ...] = msgpack.unpackb(payload, use_list=False)
    return rows
