"""The record-batch codec: the byte format specified in proto/logsvc/v1/logsvc.proto.

A batch is a 28-byte big-endian header followed by a msgpack payload (an array of
``[timestamp_ms, key, value, headers]`` arrays). Producers :func:`encode_batch`; the broker only
:func:`read_header` and :func:`validate` (no per-record decoding on its hot path); consumers
:func:`decode_records` straight into :class:`~logsvc_client.records.Record` tuples. Before encoding,
the producer sizes its batches with upper bounds of the encoded size: :data:`RECORD_OVERHEAD` and
:func:`header_bytes` per record, :data:`BATCH_OVERHEAD` per batch.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgpack

from .errors import InvalidBatch
from .records import Record

MAGIC = 1
ATTR_LOG_APPEND_TIME = 0x01
HEADER = struct.Struct(">BBHIqqI")
HEADER_SIZE = HEADER.size  # 28
_TS_OFFSET = 8  # first_timestamp_ms starts here; max_timestamp_ms follows

_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
_new_record = tuple.__new__

# A record as the producer hands it to the codec: [timestamp_ms, key, value, headers].
RawRecord = Sequence[Any]

# Upper bound of msgpack's overhead for one record: fixarray (1) + uint64 timestamp (9) + bin32
# headers for key and value (5 + 5) + nil headers (1).
RECORD_OVERHEAD = 21
# The batch header (28) and the payload's array32 header (5).
BATCH_OVERHEAD = HEADER_SIZE + 5


class BatchHeader(NamedTuple):
    magic: int
    attributes: int
    reserved: int
    record_count: int
    first_timestamp_ms: int
    max_timestamp_ms: int
    crc32: int

    @property
    def log_append_time(self) -> bool:
        return bool(self.attributes & ATTR_LOG_APPEND_TIME)


def header_bytes(headers: list[tuple[str, bytes]]) -> int:
    """Upper bound of the msgpack size of a header list (beyond the nil it replaces)."""
    return 5 + sum(11 + len(name.encode()) + len(value) for name, value in headers)


def encode_batch(records: Sequence[RawRecord], max_timestamp_ms: int | None = None) -> bytes:
    """Encode ``[timestamp_ms, key, value, headers]`` records into one batch.

    ``headers`` is None or a sequence of ``(name: str, value: bytes)`` pairs. Pass
    ``max_timestamp_ms`` when the caller already knows it (saves a pass over the records).
    """
    if not records:
        raise InvalidBatch("a record batch needs at least one record")
    payload = _packb(records)
    first = records[0][0]
    if max_timestamp_ms is None:
        max_timestamp_ms = max(r[0] for r in records)
    header = HEADER.pack(MAGIC, 0, 0, len(records), first, max_timestamp_ms, zlib.crc32(payload))
    return header + payload


def read_header(data: bytes | memoryview) -> BatchHeader:
    """Parse and check a batch header (not the payload)."""
    if len(data) < HEADER_SIZE + 1:
        raise InvalidBatch(f"record batch of {len(data)} bytes is shorter than its header")
    header = BatchHeader(*HEADER.unpack_from(data))
    if header.magic != MAGIC:
        raise InvalidBatch(f"record batch magic {header.magic} is not {MAGIC}")
    if header.record_count < 1:
        raise InvalidBatch("record batch has record_count 0")
    return header


def _array_length(payload: bytes | memoryview) -> int:
    first = payload[0]
    if 0x90 <= first <= 0x9F:
        return int(first & 0x0F)
    if first == 0xDC and len(payload) >= 3:
        return int(struct.unpack_from(">H", payload, 1)[0])
    if first == 0xDD and len(payload) >= 5:
        return int(struct.unpack_from(">I", payload, 1)[0])
    raise InvalidBatch("record batch payload is not a msgpack array")


def validate(data: bytes | memoryview) -> BatchHeader:
    """Check a produced batch without decoding its records: header, CRC, payload array length.

    Raises :class:`InvalidBatch` naming what is wrong.
    """
    header = read_header(data)
    payload = memoryview(data)[HEADER_SIZE:]
    crc = zlib.crc32(payload)
    if crc != header.crc32:
        raise InvalidBatch(f"record batch CRC32 mismatch: header says {header.crc32:#010x}, payload has {crc:#010x}")
    n = _array_length(payload)
    if n != header.record_count:
        raise InvalidBatch(f"record batch header says {header.record_count} records, payload holds {n}")
    if header.first_timestamp_ms < 0 or header.max_timestamp_ms < 0:
        raise InvalidBatch(f"record batch has a negative timestamp ({header.first_timestamp_ms})")
    return header


def with_log_append_time(data: bytes, append_time_ms: int) -> bytes:
    """The batch with its header marked LogAppendTime and both timestamps set to ``append_time_ms``."""
    magic, attributes, reserved, count, _, _, crc = HEADER.unpack_from(data)
    header = HEADER.pack(magic, attributes | ATTR_LOG_APPEND_TIME, reserved, count, append_time_ms, append_time_ms, crc)
    return header + data[HEADER_SIZE:]


def _unpack(data: bytes | memoryview) -> tuple[tuple[Any, ...], ...]:
    try:
        records = msgpack.unpackb(memoryview(data)[HEADER_SIZE:], use_list=False, raw=False)
    except Exception as e:  # msgpack raises several unrelated classes for malformed input
        raise InvalidBatch(f"record batch payload is not valid msgpack: {e}") from e
    if not isinstance(records, tuple):
        raise InvalidBatch("record batch payload is not a msgpack array")
    return records


def unpack_payload(data: bytes | memoryview) -> list[tuple[Any, ...]]:
    """Decode the payload into ``(timestamp_ms, key, value, headers)`` tuples."""
    return list(_unpack(data))


def decode_records(
    topic: str,
    partition: int,
    base_offset: int,
    data: bytes,
    start_offset: int = 0,
    check_crc: bool = True,
) -> list[Record]:
    """Decode a stored batch into :class:`Record` tuples, skipping offsets below ``start_offset``."""
    header = read_header(data)
    if check_crc and zlib.crc32(memoryview(data)[HEADER_SIZE:]) != header.crc32:
        raise InvalidBatch(f"stored batch at offset {base_offset} of {topic}/{partition} fails its CRC32 check")
    rows = _unpack(data)
    skip = start_offset - base_offset
    if skip > 0:
        rows = rows[skip:]
        base_offset += skip
    # The hot loop of every consumer: one tuple per record, built in place (no star-unpacking).
    try:
        if header.attributes & ATTR_LOG_APPEND_TIME:
            ts = header.max_timestamp_ms
            return [
                _new_record(Record, (topic, partition, base_offset + i, ts, k, v, h))
                for i, (_, k, v, h) in enumerate(rows)
            ]
        return [
            _new_record(Record, (topic, partition, base_offset + i, t, k, v, h)) for i, (t, k, v, h) in enumerate(rows)
        ]
    except (TypeError, ValueError):
        raise InvalidBatch(
            f"stored batch at offset {base_offset} of {topic}/{partition} has a malformed record"
        ) from None
