"""The rules every store applies the same way: request checks with their error messages, the
retention predicate, and finding the first record at or after a time inside one batch.

Shared by :class:`~logsvc.storage.lmdb_store.LmdbStore` and
:class:`~logsvc.storage.memory.MemoryStore` so both raise the same errors with the same words.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from logsvc.storage.base import TopicMeta
from logsvc.topic_config import TopicConfig, check_partition_count
from logsvc_wire.batch import BatchHeader, read_header, stored_span, unpack_payload, validate
from logsvc_wire.errors import (
    BatchTooLarge,
    InvalidBatch,
    InvalidConfig,
    InvalidPartition,
    InvalidRequest,
    OffsetOutOfRange,
    TopicAlreadyExists,
    TopicNotFound,
    Unavailable,
)

DURABILITIES = ("fsync", "os")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def topic_not_found(name: str) -> TopicNotFound:
    return TopicNotFound(f"topic '{name}' does not exist", topic=name)


def topic_exists(name: str) -> TopicAlreadyExists:
    return TopicAlreadyExists(f"topic '{name}' already exists", topic=name)


def closed() -> Unavailable:
    return Unavailable("the store is closed")


def read_only(path: str) -> InvalidRequest:
    return InvalidRequest(f"the store at {path} is open read-only: it cannot be written")


def altered(meta: TopicMeta, partitions: int | None, config: TopicConfig | None, max_partitions: int) -> TopicMeta:
    """``meta`` as :meth:`Store.alter_topic` leaves it; refuses fewer partitions, too many, or
    another partitioner."""
    if partitions is not None:
        if partitions < meta.partitions:
            raise InvalidPartition(
                f"topic {meta.name} has {meta.partitions} partitions; partitions can be added, never "
                f"removed (asked for {partitions})",
                topic=meta.name,
                partitions=partitions,
            )
        check_partition_count(partitions, max_partitions)
    if config is not None:
        if config.partitioner != meta.config.partitioner:
            raise InvalidConfig(
                f"topic {meta.name} uses partitioner {meta.config.partitioner!r}; it cannot change (keys "
                "would move to other partitions)",
                key="partitioner",
            )
        config.validate()
    return meta._replace(
        partitions=meta.partitions if partitions is None else partitions,
        config=meta.config if config is None else config,
    )


def check_partition(meta: TopicMeta, partition: int) -> None:
    if not 0 <= partition < meta.partitions:
        raise InvalidPartition(
            f"partition {partition} does not exist in topic '{meta.name}', which has {meta.partitions} "
            f"partition{'s' if meta.partitions != 1 else ''} (0 to {meta.partitions - 1})",
            topic=meta.name,
            partition=partition,
            partitions=meta.partitions,
        )


def check_size(meta: TopicMeta, partition: int, size: int) -> None:
    limit = meta.config.max_batch_bytes
    if size > limit:
        raise BatchTooLarge(
            f"record batch of {size} bytes for {meta.name}/{partition} is larger than "
            f"the topic's max_batch_bytes of {limit}",
            topic=meta.name,
            partition=partition,
            size=size,
            limit=limit,
        )


def check_batch(meta: TopicMeta, partition: int, data: bytes | memoryview, records: bool = True) -> BatchHeader:
    """Partition range, size limit, then the batch itself against the specification (header, CRC,
    counts, every record; a compressed payload inflated under the topic's
    max_uncompressed_batch_bytes); its header. ``records=False`` (the broker setting
    validate_records) skips the per-record walk, to measure what it costs."""
    check_partition(meta, partition)
    check_size(meta, partition, len(data))
    try:
        return validate(data, meta.config.uncompressed_limit, records)
    except InvalidBatch as e:
        raise InvalidBatch(
            f"invalid record batch for {meta.name}/{partition}: {e.message}", topic=meta.name, partition=partition
        ) from None


def out_of_range(topic: str, partition: int, offset: int, log_start: int, next_offset: int) -> OffsetOutOfRange:
    return OffsetOutOfRange(
        f"offset {offset} is out of range for {topic}/{partition}: valid offsets are {log_start} to {next_offset}",
        topic=topic,
        partition=partition,
        offset=offset,
        log_start_offset=log_start,
        next_offset=next_offset,
    )


def check_commit_offset(topic: str, partition: int, offset: int) -> None:
    if offset < 0:
        raise InvalidRequest(
            f"cannot commit offset {offset} for {topic}/{partition}: offsets are >= 0", topic=topic, offset=offset
        )


def check_durability(durability: str) -> None:
    if durability not in DURABILITIES:
        raise InvalidRequest(f"durability {durability!r} must be one of {', '.join(DURABILITIES)}")


def has_retention(config: TopicConfig) -> bool:
    return config.retention_ms > 0 or config.retention_bytes > 0


def expired(config: TopicConfig, now_ms: int, max_timestamp_ms: int, partition_bytes: int) -> bool:
    """Whether retention deletes the head batch: older than retention_ms (all its records), or the
    partition holds more than retention_bytes."""
    if config.retention_ms > 0 and max_timestamp_ms < now_ms - config.retention_ms:
        return True
    return config.retention_bytes > 0 and partition_bytes > config.retention_bytes


def first_record_at(
    data: bytes | memoryview, base_offset: int, start_offset: int, timestamp_ms: int
) -> tuple[int, int] | None:
    """``(offset, timestamp)`` of the batch's first record at or after ``start_offset`` whose
    timestamp is >= ``timestamp_ms``; None when it has none. Decodes the payload only when the
    header's max timestamp says such a record may be there. A stored batch that does not decode
    (data from an older version, or damaged) answers with its first offset when its header's max
    timestamp allows it: the reader sent there meets the batch and reports it (CorruptBatch)."""
    span = stored_span(data)
    skip = max(0, start_offset - base_offset)
    if span.max_timestamp_ms < timestamp_ms or skip >= span.record_count:
        return None
    try:
        header = read_header(data)
        if header.log_append_time:
            return base_offset + skip, header.max_timestamp_ms
        for i, record in enumerate(unpack_payload(data)[skip:], skip):
            if record[0] >= timestamp_ms:
                return base_offset + i, int(record[0])
    except (InvalidBatch, IndexError, TypeError):
        return base_offset + skip, span.max_timestamp_ms
    return None


def wait_ready(
    cond: threading.Condition,
    ready: Callable[[str, int, int], bool],
    positions: Sequence[tuple[str, int, int]],
    timeout_s: float,
    check_open: Callable[[], None],
) -> bool:
    """The ``wait_for_data`` loop both stores share: wait on ``cond`` (notified after every commit)
    until a position is ``ready`` or ``timeout_s`` passes; ``check_open`` raises once closed."""
    deadline = time.monotonic() + timeout_s
    with cond:
        while True:
            check_open()
            if any(ready(*position) for position in positions):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            cond.wait(remaining)
