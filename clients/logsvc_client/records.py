"""Value types: the records a consumer receives, the positions a producer gets back."""

from __future__ import annotations

from typing import NamedTuple

Headers = tuple[tuple[str, bytes], ...]


class Record(NamedTuple):
    """One consumed record. ``key``/``value`` are bytes or None (a tombstone has value None)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None


class RecordPosition(NamedTuple):
    """Where an acknowledged record was stored."""

    partition: int
    offset: int


class TopicPartition(NamedTuple):
    topic: str
    partition: int
