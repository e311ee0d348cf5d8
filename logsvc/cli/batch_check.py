"""Checking stored batches against the specification, for ``logsvc partitions verify``.

Data already on disk may be bad: written by a version that did not check every record, or
damaged. :func:`check_partition` walks a partition's stored batches (from a broker or a data
directory, :mod:`logsvc.cli.sources`) and checks each one as a reader would meet it — the header
(:func:`~logsvc_client.batch.read_header`), the CRC and payload (:func:`~logsvc_client.batch.validate`),
the records (:func:`~logsvc_client.batch.decode_records`, then each record's types) — and that the
batches are dense: each base offset is the previous base plus the previous record count.

:func:`~logsvc_client.batch.validate` checks a batch as a producer sends it; a stored batch of a
LogAppendTime topic carries the broker's LogAppendTime bit and append time in its header, so it is
validated as its producer sent it (:func:`as_produced`). Compressed batches may inflate up to the
topic's ``max_uncompressed_batch_bytes`` (0: 4 x ``max_batch_bytes``), when ``validate`` takes
that bound.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logsvc.cli.sources import Source
from logsvc_client.batch import (
    ATTR_LOG_APPEND_TIME,
    HEADER,
    HEADER_SIZE,
    BatchHeader,
    decode_records,
    read_header,
    unpack_payload,
    validate,
)
from logsvc_client.errors import CorruptBatch, InvalidBatch
from logsvc_client.record_buffer import stored_count
from logsvc_client.records import Record

_INT64_MAX = (1 << 63) - 1
UNCOMPRESSED_FACTOR = 4  # max_uncompressed_batch_bytes = 0 means this many times max_batch_bytes
DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024
# validate() bounds what a compressed batch may inflate to once it takes max_uncompressed_bytes
_VALIDATE_TAKES_BOUND = "max_uncompressed_bytes" in inspect.signature(validate).parameters


def uncompressed_bound(config: Mapping[str, str]) -> int:
    """The most bytes a compressed batch of a topic with ``config`` may inflate to."""
    try:
        configured = int(config.get("max_uncompressed_batch_bytes", "0"))
        return configured or UNCOMPRESSED_FACTOR * int(config.get("max_batch_bytes", str(DEFAULT_MAX_BATCH_BYTES)))
    except ValueError:
        return UNCOMPRESSED_FACTOR * DEFAULT_MAX_BATCH_BYTES


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


def _bin_or_nil(value: object) -> bool:
    return value is None or type(value) is bytes


def field_problem(record: Record) -> str | None:
    """What is wrong with a decoded record's field types (None: they are as specified: int
    timestamp, key and value bin or nil, headers nil or an array of [str, bin|nil])."""
    ts = record.timestamp_ms
    if type(ts) is not int or not 0 <= ts <= _INT64_MAX:
        return f"timestamp {ts!r} is not an int >= 0"
    for field, value in (("key", record.key), ("value", record.value)):
        if not _bin_or_nil(value):
            return f"{field} is a msgpack {_msgpack_type(value)}, not bin or nil"
    headers = record.headers
    if headers is not None:
        if not isinstance(headers, tuple | list):
            return f"headers are a msgpack {_msgpack_type(headers)}, not an array"
        for h in headers:
            if not (isinstance(h, tuple | list) and len(h) == 2 and type(h[0]) is str and _bin_or_nil(h[1])):
                return f"header {h!r} is not a [str, bin|nil] pair"
    return None


def first_bad_record(records: Sequence[Record]) -> tuple[int, str] | None:
    """The index of the first record whose fields do not have the specified types, and why."""
    for i, r in enumerate(records):
        why = field_problem(r)
        if why is not None:
            return i, why
    return None


def _msgpack_type(value: object) -> str:
    names = {str: "str", float: "float", int: "int", bool: "bool", tuple: "array", list: "array", dict: "map"}
    return names.get(type(value), type(value).__name__)


def record_problem(records: Sequence[Record]) -> str | None:
    """What is wrong with the first record whose fields do not have the specified types."""
    found = first_bad_record(records)
    if found is None:
        return None
    i, why = found
    return f"record {i} (offset {records[i].offset}): {why}"


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
        bound: dict[str, Any] = {}
        if _VALIDATE_TAKES_BOUND and max_uncompressed_bytes:
            bound["max_uncompressed_bytes"] = max_uncompressed_bytes
        try:
            validate(produced, **bound)
        except InvalidBatch as e:
            return e.message
    try:
        records = decode_records(topic, partition, base, data)
    except CorruptBatch as e:
        return e.message.partition(" is corrupt: ")[2] or e.message
    return record_problem(records)


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
