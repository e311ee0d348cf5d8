"""Consumer-group lag: how many records, and how long, stand between a group's committed offset
and the end of each partition. Used by DescribeGroup and by the /metrics group-lag gauges."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from logsvc.errors import CorruptBatch, InvalidBatch, OffsetOutOfRange, TopicNotFound
from logsvc.storage.base import Store
from logsvc_wire import batch as codec


class Lag(NamedTuple):
    topic: str
    partition: int
    committed: int  # -1 when nothing committed
    log_start: int
    next_offset: int
    lag: int
    lag_ms: int


def partition_lag(store: Store, group: str, now_ms: int, topics: Iterable[str] = ()) -> list[Lag]:
    """Lag of every partition the group has committed on, or whose topic is in ``topics``."""
    committed = {(c.topic, c.partition): c for c in store.committed_offsets(group)}
    names = sorted({t for t, _ in committed} | set(topics))
    out = []
    for topic in names:
        try:
            states = store.partition_states(topic)
        except TopicNotFound:
            continue  # deleted since the offsets were committed
        for st in states:
            c = committed.get((topic, st.partition))
            position = max(c.offset, st.log_start_offset) if c else st.log_start_offset
            lag = max(0, st.next_offset - position)
            lag_ms = _lag_ms(store, topic, st.partition, position, now_ms) if lag else 0
            committed_offset = c.offset if c else -1
            out.append(Lag(topic, st.partition, committed_offset, st.log_start_offset, st.next_offset, lag, lag_ms))
    return out


def _lag_ms(store: Store, topic: str, partition: int, offset: int, now_ms: int) -> int:
    """How long the first unconsumed record has been waiting (now - its timestamp).

    Stored data that does not decode (written by an older version, or damaged) must not fail
    DescribeGroup: then the batch header's first timestamp counts when it is readable, else 0."""
    try:
        got = store.read(topic, partition, offset, max_bytes=1, max_records=1)
    except OffsetOutOfRange:
        return 0  # trimmed meanwhile
    if not got.batches:
        return 0
    base, data = got.batches[0]
    try:
        records = codec.decode_records(topic, partition, base, data, start_offset=offset, check_crc=False)
        timestamp_ms = records[0].timestamp_ms if records else None
    except CorruptBatch:
        timestamp_ms = None
    if type(timestamp_ms) is not int:  # a corrupt batch, or a record whose timestamp is no int
        try:
            timestamp_ms = codec.read_header(data).first_timestamp_ms
        except InvalidBatch:
            return 0
    return max(0, now_ms - timestamp_ms) if 0 <= timestamp_ms <= now_ms else 0
