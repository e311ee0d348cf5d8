"""The record-batch codec: the byte format specified in proto/logsvc/v1/logsvc.proto.

A batch is a 28-byte big-endian header followed by a msgpack payload (an array of
``[timestamp_ms, key, value, headers]`` arrays), stored as it is or compressed whole (gzip or
zstd, named in the header's attributes). Producers :func:`encode_batch`; the broker only
:func:`read_header` and :func:`validate` (no per-record decoding on its hot path: for a
compressed batch it inflates just the payload's first bytes); consumers :func:`decode_records`
straight into :class:`~logsvc_client.records.Record` tuples. Before encoding,
the producer sizes its batches with upper bounds of the encoded size: :data:`RECORD_OVERHEAD` and
:func:`header_bytes` per record, :data:`BATCH_OVERHEAD` per batch.
"""

from __future__ import annotations

import io
import struct
import threading
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgpack
import zstandard

from .errors import CorruptBatch, InvalidBatch, InvalidConfig
from .records import Record

MAGIC = 1
ATTR_LOG_APPEND_TIME = 0x01
ATTR_COMPRESSION_SHIFT = 1
ATTR_COMPRESSION_MASK = 0x06  # bits 1-2: the payload's compression (see COMPRESSIONS)
ATTR_KNOWN = ATTR_LOG_APPEND_TIME | ATTR_COMPRESSION_MASK
#: Compression names by their code in the attributes (bits 1-2).
COMPRESSIONS = ("none", "gzip", "zstd")
GZIP_WBITS = 31  # zlib's gzip framing (RFC 1952)
ZSTD_LEVEL = 3
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

    @property
    def compression(self) -> str:
        """``none``, ``gzip`` or ``zstd``; InvalidBatch for a code no version of the format defines."""
        code = (self.attributes & ATTR_COMPRESSION_MASK) >> ATTR_COMPRESSION_SHIFT
        if code >= len(COMPRESSIONS) or self.attributes & ~ATTR_KNOWN:
            raise InvalidBatch(f"record batch attributes {self.attributes:#04x} name no known compression")
        return COMPRESSIONS[code]


_zstd = threading.local()  # zstandard contexts are not thread-safe: one pair per thread


def _zstd_compressor() -> zstandard.ZstdCompressor:
    c: zstandard.ZstdCompressor | None = getattr(_zstd, "compressor", None)
    if c is None:
        c = _zstd.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return c


def _zstd_decompressor() -> zstandard.ZstdDecompressor:
    d: zstandard.ZstdDecompressor | None = getattr(_zstd, "decompressor", None)
    if d is None:
        d = _zstd.decompressor = zstandard.ZstdDecompressor()
    return d


def check_compression(name: str) -> int:
    """The attribute code of compression ``name``; InvalidConfig naming the known ones otherwise."""
    if name not in COMPRESSIONS:
        raise InvalidConfig(f"compression {name!r} is not one of {', '.join(COMPRESSIONS)}", key="compression")
    return COMPRESSIONS.index(name)


def _compress(payload: bytes, code: int) -> bytes:
    if code == 1:
        c = zlib.compressobj(6, zlib.DEFLATED, GZIP_WBITS)
        return c.compress(payload) + c.flush()
    return bytes(_zstd_compressor().compress(payload))


def _inflate(stored: bytes | memoryview, compression: str, limit: int = 0) -> bytes:
    """The msgpack payload of a compressed batch (its first ``limit`` bytes when ``limit``)."""
    try:
        if compression == "gzip":
            d = zlib.decompressobj(GZIP_WBITS)
            return d.decompress(stored, limit) if limit else d.decompress(stored) + d.flush()
        if limit:
            with _zstd_decompressor().stream_reader(io.BytesIO(stored)) as reader:
                return bytes(reader.read(limit))
        return bytes(_zstd_decompressor().decompress(stored))
    except (zlib.error, zstandard.ZstdError) as e:
        raise InvalidBatch(f"record batch payload does not decompress as {compression}: {e}") from None


def header_bytes(headers: list[tuple[str, bytes]]) -> int:
    """Upper bound of the msgpack size of a header list (beyond the nil it replaces)."""
    return 5 + sum(11 + len(name.encode()) + len(value) for name, value in headers)


def encode_batch(records: Sequence[RawRecord], max_timestamp_ms: int | None = None, compression: str = "none") -> bytes:
    """Encode ``[timestamp_ms, key, value, headers]`` records into one batch.

    ``headers`` is None or a sequence of ``(name: str, value: bytes)`` pairs. Pass
    ``max_timestamp_ms`` when the caller already knows it (saves a pass over the records).
    ``compression`` (none, gzip, zstd) compresses the payload whole; the CRC covers what is stored.
    """
    if not records:
        raise InvalidBatch("a record batch needs at least one record")
    payload = _packb(records)
    attributes = 0
    if compression != "none":
        code = check_compression(compression)
        payload = _compress(payload, code)
        attributes = code << ATTR_COMPRESSION_SHIFT
    first = records[0][0]
    if max_timestamp_ms is None:
        max_timestamp_ms = max(r[0] for r in records)
    header = HEADER.pack(MAGIC, attributes, 0, len(records), first, max_timestamp_ms, zlib.crc32(payload))
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
    compression = header.compression
    n = _array_length(payload if compression == "none" else _inflate(payload, compression, limit=5))
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


def _unpack(data: bytes | memoryview, header: BatchHeader | None = None) -> tuple[tuple[Any, ...], ...]:
    header = read_header(data) if header is None else header
    payload: bytes | memoryview = memoryview(data)[HEADER_SIZE:]
    if header.attributes & ~ATTR_LOG_APPEND_TIME:  # compressed, or attributes this version does not know
        payload = _inflate(payload, header.compression)
    try:
        records = msgpack.unpackb(payload, use_list=False, raw=False)
    except Exception as e:  # msgpack raises several unrelated classes for malformed input
        raise InvalidBatch(f"record batch payload is not valid msgpack: {e}") from e
    if not isinstance(records, tuple):
        raise InvalidBatch("record batch payload is not a msgpack array")
    return records


def unpack_payload(data: bytes | memoryview) -> list[tuple[Any, ...]]:
    """Decode the payload into ``(timestamp_ms, key, value, headers)`` tuples."""
    return list(_unpack(data))


def corrupt(topic: str, partition: int, base_offset: int, count: int, why: str) -> CorruptBatch:
    """The error for a stored batch at ``base_offset`` (``count`` records by its header, 1 when
    the header itself is unreadable) that does not decode by the specification."""
    last = base_offset + max(count, 1) - 1
    return CorruptBatch(
        f"stored batch at offsets {base_offset}-{last} of {topic}/{partition} is corrupt: {why}",
        topic=topic,
        partition=partition,
        base_offset=base_offset,
        last_offset=last,
    )


def decode_records(
    topic: str,
    partition: int,
    base_offset: int,
    data: bytes,
    start_offset: int = 0,
    check_crc: bool = True,
) -> list[Record]:
    """Decode a stored batch into :class:`Record` tuples, skipping offsets below ``start_offset``.

    Raises :class:`~logsvc_client.errors.CorruptBatch` (naming topic, partition and the batch's
    offset range) for anything that does not follow the specification; never another error.
    """
    try:
        header = read_header(data)
    except InvalidBatch as e:
        raise corrupt(topic, partition, base_offset, 1, e.message) from None
    count = header.record_count
    if check_crc and zlib.crc32(memoryview(data)[HEADER_SIZE:]) != header.crc32:
        raise corrupt(topic, partition, base_offset, count, "it fails its CRC32 check")
    try:
        rows = _unpack(data, header)
    except InvalidBatch as e:
        raise corrupt(topic, partition, base_offset, count, e.message) from None
    if len(rows) != count:
        why = f"its header says {count} records, payload holds {len(rows)}"
        raise corrupt(topic, partition, base_offset, count, why)
    first = base_offset
    skip = start_offset - base_offset
    if skip > 0:
        rows = rows[skip:]
        first += skip
    # The hot loop of every consumer: one tuple per record, built in place (no star-unpacking).
    try:
        if header.attributes & ATTR_LOG_APPEND_TIME:
            ts = header.max_timestamp_ms
            return [
                _new_record(Record, (topic, partition, first + i, ts, k, v, h)) for i, (_, k, v, h) in enumerate(rows)
            ]
        return [_new_record(Record, (topic, partition, first + i, t, k, v, h)) for i, (t, k, v, h) in enumerate(rows)]
    except (TypeError, ValueError):
        why = "a record is not a [timestamp, key, value, headers] array"
        raise corrupt(topic, partition, base_offset, count, why) from None
