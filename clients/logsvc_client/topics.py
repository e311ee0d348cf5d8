"""Value types describing topics and their partitions, built from the broker's answers.

The client never hands out a protobuf: :func:`description_from_pb` and friends turn them into
these frozen dataclasses once, at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import InvalidPartition


@dataclass(frozen=True)
class TopicSummary:
    name: str
    partitions: int


@dataclass(frozen=True)
class PartitionInfo:
    """One partition's offsets and size. Timestamps are -1 when the partition holds no records;
    ``bytes`` is -1 when the broker does not tell (a Kafka cluster)."""

    partition: int
    log_start_offset: int
    next_offset: int
    record_count: int
    bytes: int
    first_timestamp_ms: int
    last_timestamp_ms: int

    @property
    def known_bytes(self) -> int | None:
        """``bytes``, or None when the broker does not tell."""
        return self.bytes if self.bytes >= 0 else None


@dataclass(frozen=True)
class TopicDescription:
    name: str
    topic_id: int
    config: dict[str, str]
    created_ms: int
    partitions: list[PartitionInfo] = field(default_factory=list)

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    @property
    def known_bytes(self) -> int | None:
        """The partitions' bytes together, or None when the broker does not tell (a Kafka cluster)."""
        sizes = [p.known_bytes for p in self.partitions]
        return None if None in sizes else sum(s or 0 for s in sizes)

    def partition(self, partition: int) -> PartitionInfo:
        """One partition's description; InvalidPartition when the topic has no such partition."""
        if not 0 <= partition < len(self.partitions):
            raise InvalidPartition(
                f"partition {partition} does not exist in {self.name} (partitions 0 to {len(self.partitions) - 1})",
                topic=self.name,
                partition=partition,
                partitions=len(self.partitions),
            )
        return self.partitions[partition]


class OffsetAndTimestamp(NamedTuple):
    """The first offset at or after a time, and that record's timestamp (None when there is none,
    in which case ``offset`` is the partition's next offset)."""

    offset: int
    timestamp_ms: int | None


def summary_from_pb(msg: Any) -> TopicSummary:
    return TopicSummary(name=msg.name, partitions=msg.partitions)


def partition_from_pb(msg: Any) -> PartitionInfo:
    return PartitionInfo(
        partition=msg.partition,
        log_start_offset=msg.log_start_offset,
        next_offset=msg.next_offset,
        record_count=msg.record_count,
        bytes=msg.bytes,
        first_timestamp_ms=msg.first_timestamp_ms,
        last_timestamp_ms=msg.last_timestamp_ms,
    )


def description_from_pb(msg: Any) -> TopicDescription:
    return TopicDescription(
        name=msg.name,
        topic_id=msg.topic_id,
        config=dict(msg.config),
        created_ms=msg.created_ms,
        partitions=sorted((partition_from_pb(p) for p in msg.partitions), key=lambda p: p.partition),
    )
