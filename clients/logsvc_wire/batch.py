"""The record-batch codec: the byte format specified in proto/logsvc/v1/logsvc.proto.

A batch is a 28-byte big-endian header followed by a msgpack payload (an array of
``[timestamp_ms, key, value, headers]`` arrays), stored as it is or compressed whole (gzip or
zstd, named in the header's attributes). Producers :func:`encode_batch`; the broker checks
every produced batch in full with :func:`validate` before acknowledging it (header, CRC, counts
and every record's types through :mod:`~logsvc_wire.record_check`, inflating a compressed
payload under a bound) and otherwise only :func:`read_header`s; consumers :func:`decode_records`
straight into :class:`~logsvc_wire.types.Record` tuples. Before encoding, the producer sizes
its batches with upper bounds of the encoded size: :data:`RECORD_OVERHEAD` and
:func:`header_bytes` per record, :data:`BATCH_OVERHEAD` per batch.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgpack

from .checksum import crc32
from .compression import COMPRESSIONS, check_compression, compress, inflate_bounded, inflate_prefix
from .errors import CorruptBatch, InvalidBatch
from .record_check import MAX_RECORDS_PER_BATCH, MIN_RECORD_BYTES, check
from .record_codec import decode as _decode
from .types import Record

MAGIC = 1
ATTR_LOG_APPEND_TIME = 0x01
ATTR_COMPRESSION_SHIFT = 1
ATTR_COMPRESSION_MASK = 0x06  # bits 1-2: the payload's compression (see COMPRESSIONS)
ATTR_KNOWN = ATTR_LOG_APPEND_TIME | ATTR_COMPRESSION_MASK
HEADER = struct.Struct(">BBHIqqI")
HEADER_SIZE = HEADER.size  # 28
_TS_OFFSET = 8  # first_timestamp_ms starts here; max_timestamp_ms follows

_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack

# A record as the producer hands it to the codec: [timestamp_ms, key, value, headers].
RawRecord = Sequence[Any]

# Upper bound of msgpack's overhead for one record: fixarray (1) + uint64 timestamp (9) + bin32
# headers for key and value (5 + 5) + nil headers (1).
RECORD_OVERHEAD = 21
# The batch header (28) and the payload's array32 header (5).
BATCH_OVERHEAD = HEADER_SIZE + 5
#: How far :func:`validate` lets a compressed payload inflate unless told (the broker passes the
#: topic's max_uncompressed_batch_bytes): 4 x the default max_batch_bytes.
DEFAULT_MAX_UNCOMPRESSED_BYTES = 32 * 1024 * 1024
#: The greatest max_uncompressed_batch_bytes a topic may set, and the bound readers inflate under
MAX_UNCOMPRESSED_BATCH_BYTES = 1 << 30


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


def header_bytes(headers: list[tuple[str, bytes]]) -> int:
    """Upper bound of the msgpack size of a header list (beyond the nil it replaces)."""
    return 5 + sum(11 + len(name.encode()) + len(value) for name, value in headers)


def encode_batch(records: Sequence[RawRecord], max_timestamp_ms: int | None = None, compression: str = "none") -> bytes:
    """Encode ``[timestamp_ms, key, value, headers]`` records into one batch.

    ``headers`` is None or a sequence of ``(name: str, value: bytes)`` pairs. Pass
    ``max_timestamp_ms`` when the caller already knows it (saves a pass over the records).
    ``compression`` (none, gzip, zstd) compresses the payload whole; the CRC covers what is stored.
    The producer encodes its records as it queues them instead (:mod:`~logsvc_wire.record_codec`)
    and hands the payload to :func:`batch_of`; the bytes are the same.
    """
    if not records:
        raise InvalidBatch("a record batch needs at least one record")
    if max_timestamp_ms is None:
        max_timestamp_ms = max(r[0] for r in records)
    return batch_of(_packb(records), len(records), records[0][0], max_timestamp_ms, compression)


def batch_of(
    payload: bytes, record_count: int, first_timestamp_ms: int, max_timestamp_ms: int, compression: str
) -> bytes:
    """The batch of a msgpack ``payload`` of ``record_count`` records: the header (with the CRC of
    what is stored) and the payload, compressed whole unless ``compression`` is ``none``."""
    attributes = 0
    if compression != "none":
        code = check_compression(compression)
        payload = compress(payload, code)
        attributes = code << ATTR_COMPRESSION_SHIFT
    crc = crc32(payload)
    return HEADER.pack(MAGIC, attributes, 0, record_count, first_timestamp_ms, max_timestamp_ms, crc) + payload


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
    if not payload:
        raise InvalidBatch("payload is empty")
    first = payload[0]
    if 0x90 <= first <= 0x9F:
        return int(first & 0x0F)
    if first == 0xDC and len(payload) >= 3:
        return int(struct.unpack_from(">H", payload, 1)[0])
    if first == 0xDD and len(payload) >= 5:
        return int(struct.unpack_from(">I", payload, 1)[0])
    raise InvalidBatch("record batch payload is not a msgpack array")


def validate(
    data: bytes | memoryview, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED_BYTES, records: bool = True
) -> BatchHeader:
    """Check a produced batch against the specification before the broker acknowledges it.

    Header (magic, reserved 0, known attributes without the broker's LogAppendTime bit,
    1 <= record_count <= MAX_RECORDS_PER_BATCH and no more records than the payload's bytes allow),
    CRC, then every record (:func:`~logsvc_wire.record_check.check`) and that the header's first
    and max timestamps are the records'. A compressed payload is inflated under
    ``max_uncompressed_bytes``. ``records=False`` skips the per-record walk (header, CRC and the
    outer array's length only): a knob for measuring the walk's cost, never for production.
    Raises :class:`InvalidBatch` naming what is wrong (the record index and field, for a record).
    """
    header = read_header(data)
    if header.reserved:
        raise InvalidBatch(f"reserved header field is {header.reserved:#06x}; it must be 0")
    compression = header.compression
    if header.log_append_time:
        raise InvalidBatch(
            f"attributes {header.attributes:#04x} set the LogAppendTime bit (0x01): only the broker sets it, "
            "on topics whose timestamp_type is LogAppendTime"
        )
    count = header.record_count
    if count > MAX_RECORDS_PER_BATCH:
        raise InvalidBatch(f"record_count {count} is more than {MAX_RECORDS_PER_BATCH} records per batch")
    payload = memoryview(data)[HEADER_SIZE:]
    crc = crc32(payload)
    if crc != header.crc32:
        raise InvalidBatch(f"record batch CRC32 mismatch: header says {header.crc32:#010x}, payload has {crc:#010x}")
    if header.first_timestamp_ms < 0 or header.max_timestamp_ms < 0:
        raise InvalidBatch(f"record batch has a negative timestamp ({header.first_timestamp_ms})")
    # Every record takes at least MIN_RECORD_BYTES: a count the bytes cannot hold is refused before
    # inflating anything (the walk refuses it too, naming the first record that does not fit).
    least = count * MIN_RECORD_BYTES + 1
    if compression != "none" and least > max_uncompressed_bytes:
        raise InvalidBatch(
            f"record_count {count} needs at least {least} payload bytes, more than the topic's "
            f"max_uncompressed_batch_bytes of {max_uncompressed_bytes}"
        )
    if not records:
        if compression == "none" and len(payload) < least:
            raise InvalidBatch(
                f"record_count {count} needs at least {least} payload bytes ({MIN_RECORD_BYTES} per record), "
                f"payload has {len(payload)}"
            )
        n = _array_length(payload if compression == "none" else inflate_prefix(payload, compression, limit=5))
        if n != count:
            raise InvalidBatch(f"record batch header says {count} records, payload holds {n}")
        return header
    plain = payload if compression == "none" else inflate_bounded(payload, compression, max_uncompressed_bytes)
    why = check(plain, count, header.first_timestamp_ms, header.max_timestamp_ms, True)
    if why is not None:
        raise InvalidBatch(why)
    return header


def with_log_append_time(data: bytes | memoryview, append_time_ms: int) -> bytes:
    """The batch with its header marked LogAppendTime and both timestamps set to ``append_time_ms``."""
    magic, attributes, reserved, count, _, _, crc = HEADER.unpack_from(data)
    header = HEADER.pack(magic, attributes | ATTR_LOG_APPEND_TIME, reserved, count, append_time_ms, append_time_ms, crc)
    return header + data[HEADER_SIZE:]


def _plain(data: bytes | memoryview, header: BatchHeader) -> bytes | memoryview:
    """The msgpack payload of a stored batch, inflated when compressed (under
    :data:`MAX_UNCOMPRESSED_BATCH_BYTES`, the most any topic allows: a reader does not know the
    topic's own bound, and a bomb stored by an older broker must not take a reader's memory)."""
    payload: bytes | memoryview = memoryview(data)[HEADER_SIZE:]
    if header.attributes & ~ATTR_LOG_APPEND_TIME:  # compressed, or attributes this version does not know
        payload = inflate_bounded(payload, header.compression, MAX_UNCOMPRESSED_BATCH_BYTES)
    return payload


def _rows(payload: bytes | memoryview) -> tuple[tuple[Any, ...], ...]:
    try:
        records = msgpack.unpackb(payload, use_list=False, raw=False)
    except Exception as e:  # msgpack raises several unrelated classes for malformed input
        raise InvalidBatch(f"record batch payload is not valid msgpack: {e}") from e
    if not isinstance(records, tuple):
        raise InvalidBatch("record batch payload is not a msgpack array")
    return records


def _unpack(data: bytes | memoryview, header: BatchHeader | None = None) -> tuple[tuple[Any, ...], ...]:
    header = read_header(data) if header is None else header
    return _rows(_plain(data, header))


def unpack_payload(data: bytes | memoryview) -> list[tuple[Any, ...]]:
    """Decode the payload into ``(timestamp_ms, key, value, headers)`` tuples."""
    return list(_unpack(data))


class StoredSpan(NamedTuple):
    """What a stored batch's header says about where it sits in the log, read without trusting
    the rest of it: see :func:`stored_span`."""

    record_count: int
    first_timestamp_ms: int
    max_timestamp_ms: int


def stored_span(data: bytes | memoryview) -> StoredSpan:
    """How many offsets a *stored* batch covers and its header timestamps, as the broker counts
    them when it rebuilds next offsets, applies retention and serves reads: the header's
    record_count, at least 1 (a batch too short to hold one covers one offset); timestamps -1 when
    the batch is too short to hold them. Never raises, so damaged data cannot stop a reader or the
    broker's start-up; consumers use it too, so both sides agree on every offset."""
    n = len(data)
    count = max(1, int.from_bytes(data[4:8], "big")) if n >= 8 else 1
    if n < 24:
        return StoredSpan(count, -1, -1)
    return StoredSpan(
        count, int.from_bytes(data[8:16], "big", signed=True), int.from_bytes(data[16:24], "big", signed=True)
    )


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
    data: bytes | memoryview,
    start_offset: int = 0,
    check_crc: bool = True,
    record_type: type[tuple[Any, ...]] = Record,
) -> list[Record]:
    """Decode a stored batch into :class:`Record` tuples, skipping offsets below ``start_offset``
    (``record_type``: another tuple type whose first seven fields are Record's, the rest None).

    Raises :class:`~logsvc_wire.errors.CorruptBatch` (naming topic, partition and the batch's
    offset range) for anything that does not follow the specification; never another error.
    """
    try:
        header = read_header(data)
    except InvalidBatch as e:
        raise corrupt(topic, partition, base_offset, 1, e.message) from None
    count = header.record_count
    if check_crc and crc32(memoryview(data)[HEADER_SIZE:]) != header.crc32:
        raise corrupt(topic, partition, base_offset, count, "it fails its CRC32 check")
    try:
        plain = _plain(data, header)
    except InvalidBatch as e:
        raise corrupt(topic, partition, base_offset, count, e.message) from None
    append_ts = header.max_timestamp_ms if header.attributes & ATTR_LOG_APPEND_TIME else -1
    # The hot loop of every consumer: checked and built into Record tuples in one C pass.
    records = _decode(plain, count, record_type, topic, partition, base_offset, start_offset - base_offset, append_ts)
    if isinstance(records, str):
        raise corrupt(topic, partition, base_offset, count, records)
    return records
