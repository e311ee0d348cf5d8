"""Checking stored batches against the specification, for ``logsvc partitions verify``.

Data already on disk may be bad: written by a version that did not check every record, or
damaged. :func:`check_partition` walks a partition's stored batches (from a broker or a data
directory, :mod:`logsvc.cli.sources`) and checks each one as a reader would meet it — the header
(:func:`~logsvc_wire.batch.read_header`), the CRC, payload and every record
(:func:`~logsvc_wire.batch.validate`, then :func:`~logsvc_wire.batch.decode_records` as a
consumer decodes it) — and that the
batches are dense: each base offset is the previous base plus the previous record count.

:func:`~logsvc_wire.batch.validate` checks a batch as a producer sends it; a stored batch of a
LogAppendTime topic carries the broker's LogAppendTime bit and append time in its header, so it is
validated as its producer sent it (:func:`as_produced`). Compressed batches may inflate up to the
topic's ``max_uncompressed_batch_bytes`` (0: 4 x ``max_batch_bytes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from logsvc.cli.sources import Source
from logsvc.topic_config import TopicConfig
from logsvc_client.consumer.record_buffer import stored_count
from logsvc_client.errors import CorruptBatch, InvalidBatch, InvalidConfig
from logsvc_wire.batch import (
    ATTR_LOG_APPEND_TIME,
    HEADER,
    HEADER_SIZE,
    BatchHeader,
    decode_records,
    read_header,
    unpack_payload,
    validate,
)

_INT64_MAX = (1 << 63) - 1


def uncompressed_bound(config: Mapping[str, str]) -> int:
    """The most bytes a compressed batch of a topic with ``config`` may inflate to."""
    try:
        return TopicConfig.parse(dict(config)).uncompressed_limit
    except InvalidConfig:  # a config this version does not know: the default topic's bound
        return TopicConfig().uncompressed_limit


@dataclass(frozen=True)
class BadBatch:
    """A stored batch that fails a check: where it is and why."""

    partition: int
    base_offset: int
    last_offset: int
    bytes: int
    reason: str

    @property
    def offsets(self) -> str:
        return (
            str(self.base_offset) if self.last_offset == self.base_offset else f"{self.base_offset}-{self.last_offset}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "base_offset": self.base_offset,
            "last_offset": self.last_offset,
            "bytes": self.bytes,
            "reason": self.reason,
        }


@dataclass
class PartitionCheck:
    """What checking one partition found."""

    partition: int
    log_start_offset: int
    next_offset: int
    batches: int = 0
    records: int = 0

    def as_json(self, bad: list[BadBatch]) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "log_start_offset": self.log_start_offset,
            "next_offset": self.next_offset,
            "batches": self.batches,
            "records": self.records,
            "bad_batches": sum(b.partition == self.partition for b in bad),
        }


def as_produced(data: bytes, header: BatchHeader) -> bytes | None:
    """A stored LogAppendTime batch as its producer sent it: without the LogAppendTime bit, with
    the first and max timestamps of its records (the broker rewrote both); None when its records
    cannot be read (decoding reports why)."""
    try:
        rows = unpack_payload(data)
    except InvalidBatch:
        return None
    ts = [row[0] for row in rows if isinstance(row, tuple) and row]
    if len(ts) != len(rows) or not ts or not all(type(t) is int and 0 <= t <= _INT64_MAX for t in ts):
        return None
    attributes = header.attributes & ~ATTR_LOG_APPEND_TIME
    fields = (header.magic, attributes, header.reserved, header.record_count, ts[0], max(ts), header.crc32)
    return HEADER.pack(*fields) + data[HEADER_SIZE:]


def batch_problem(topic: str, partition: int, base: int, data: bytes, max_uncompressed_bytes: int = 0) -> str | None:
    """Why the stored batch ``data`` at ``base`` does not follow the specification (None: it does)."""
    try:
        header = read_header(data)
    except InvalidBatch as e:
        return f"unreadable header: {e.message}"
    produced = as_produced(data, header) if header.log_append_time else data
    if produced is not None:
        try:
            validate(produced, max_uncompressed_bytes or TopicConfig().uncompressed_limit)
        except InvalidBatch as e:
            return e.message
    try:
        decode_records(topic, partition, base, data)
    except CorruptBatch as e:
        return e.message.partition(" is corrupt: ")[2] or e.message
    return None


def check_partition(
    source: Source,
    topic: str,
    partition: int,
    log_start: int,
    next_offset: int,
    on_batch: Callable[[int], None] = lambda offset: None,
    max_uncompressed_bytes: int = 0,
) -> tuple[PartitionCheck, list[BadBatch]]:
    """Check every stored batch of ``topic/partition`` from ``log_start`` to ``next_offset``
    (compressed ones inflating to at most ``max_uncompressed_bytes``, 0: validate's default);
    ``on_batch`` is told the offset reached after each batch (progress)."""
    found = PartitionCheck(partition, log_start, next_offset)
    bad: list[BadBatch] = []
    expected: int | None = None  # the base offset the next batch must have
    for base, data in _batches(source, topic, partition, log_start, next_offset):
        count = stored_count(data)
        found.batches += 1
        found.records += count
        reasons = []
        if expected is not None and base != expected:
            what = "gap" if base > expected else "overlap"
            reasons.append(f"not dense ({what}): the previous batch ends at offset {expected - 1}")
        problem = batch_problem(topic, partition, base, data, max_uncompressed_bytes)
        if problem is not None:
            reasons.append(problem)
        if reasons:
            bad.append(BadBatch(partition, base, base + count - 1, len(data), "; ".join(reasons)))
        expected = base + count
        on_batch(expected)
    return found, bad


def _batches(source: Source, topic: str, partition: int, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    if start < end:
        yield from source.batches(topic, partition, start, end)
