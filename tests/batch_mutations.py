"""Record batches for the validation tests, built by hand from the proto's spec (not the codec):
the cases issue 8 lists, each with the words its refusal must hold, and a seeded corpus of
mutated batches (bit flips, truncation, wrong counts, wrong types, compression bombs, header
timestamps that disagree)."""

from __future__ import annotations

import functools
import gzip
import random
import struct
import zlib
from typing import Any, NamedTuple

import msgpack
import zstandard

from logsvc_wire.batch import HEADER, HEADER_SIZE
from logsvc_wire.record_check import MAX_TIMESTAMP_MS

T0 = 1_700_000_000_000
MiB = 1 << 20


def packb(obj: Any) -> bytes:
    return bytes(msgpack.packb(obj, use_bin_type=True))


def by_hand(
    payload: bytes,
    count: int,
    first: int,
    greatest: int,
    *,
    attributes: int = 0,
    reserved: int = 0,
    crc: int | None = None,
) -> bytes:
    """Header + payload as the spec lays them out; the CRC right unless given."""
    crc = zlib.crc32(payload) if crc is None else crc
    return HEADER.pack(1, attributes, reserved, count, first, greatest, crc) + payload


def of_records(records: list[list[Any]], *, compress: str = "none", **header: int) -> bytes:
    """A batch of ``records`` (header timestamps from them, unless given), maybe compressed."""
    payload = packb(records)
    ts = [r[0] for r in records if isinstance(r[0], int)] or [T0]
    first = header.pop("first", records[0][0] if isinstance(records[0][0], int) else T0)
    greatest = header.pop("greatest", max(ts))
    attributes = header.pop("attributes", 0)
    if compress == "gzip":
        payload, attributes = gzip.compress(payload), attributes | 1 << 1
    elif compress == "zstd":
        payload, attributes = zstandard.ZstdCompressor().compress(payload), attributes | 2 << 1
    return by_hand(payload, len(records), first, greatest, attributes=attributes, **header)


def good(n: int = 5) -> list[list[Any]]:
    return [[T0 + i, b"key-%d" % i, b"value-%d" % i, [("trace", b"t%d" % i)] if i % 2 else None] for i in range(n)]


def with_record(i: int, record: list[Any], n: int = 5) -> list[list[Any]]:
    rows = good(n)
    rows[i] = record
    return rows


@functools.cache
def zstd_bomb(known_size: bool) -> bytes:
    """64 MiB of zeros in one zstd frame of a few KiB (its size declared in the frame, or not)."""
    c = zstandard.ZstdCompressor(level=3, write_content_size=known_size)
    if known_size:
        return bytes(c.compress(bytes(64 * MiB)))
    obj = c.compressobj()
    return bytes(obj.compress(bytes(64 * MiB)) + obj.flush())


@functools.cache
def gzip_bomb() -> bytes:
    return gzip.compress(bytes(64 * MiB), compresslevel=1)


class Case(NamedTuple):
    name: str
    data: bytes
    match: str  # a regular expression the refusal's message must match


def cases() -> list[Case]:
    """One refused batch for each case issue 8 lists, and a few more off the spec."""
    zstd = zstandard.ZstdCompressor()
    return [
        Case(
            "count bomb: record_count 2^32-1 over msgpack dd ffffffff (33 bytes)",
            by_hand(b"\xdd\xff\xff\xff\xff", 0xFFFFFFFF, 0, 0),
            r"record_count 4294967295 is more than 1000000 records per batch",
        ),
        Case("93 c1 c1 c1", by_hand(b"\x93\xc1\xc1\xc1", 3, T0, T0), r"record 0: is msgpack never-used byte \(0xc1\)"),
        Case(
            "a record of 3 elements",
            of_records(with_record(2, [T0 + 2, b"k", b"v"])),
            r"record 2: is an array of 3 elements, not 4 \[timestamp, key, value, headers\]",
        ),
        Case(
            "a str key (what @msgpack/msgpack writes for a JS string)",
            of_records(with_record(3, [T0 + 3, "key-3", b"v", None])),
            r"record 3: key is msgpack str \(0xa5\); keys must be bin or nil \(send text as bin",
        ),
        Case(
            "a str value",
            of_records(with_record(1, [T0 + 1, b"k", "value", None])),
            r"record 1: value is msgpack str \(0xa5\); values must be bin or nil \(send text as bin",
        ),
        Case(
            "a float timestamp",
            of_records(with_record(0, [float(T0), b"k", b"v", None]), first=T0, greatest=T0 + 4),
            r"record 0: timestamp is msgpack float64 \(0xcb\); timestamps must be int",
        ),
        Case(
            "a zstd payload that inflates to 64 MiB (size in the frame)",
            by_hand(zstd_bomb(True), 1, T0, T0, attributes=2 << 1),
            r"zstd payload declares 67108864 bytes, more than the topic's max_uncompressed_batch_bytes of 33554432",
        ),
        Case(
            "a zstd payload that inflates to 64 MiB (size not in the frame)",
            by_hand(zstd_bomb(False), 1, T0, T0, attributes=2 << 1),
            r"zstd payload inflates to more than 33554432 bytes",
        ),
        Case(
            "a gzip payload that inflates to 64 MiB",
            by_hand(gzip_bomb(), 1, T0, T0, attributes=1 << 1),
            r"gzip payload inflates to more than 33554432 bytes",
        ),
        Case(
            "gzip of nothing",
            by_hand(gzip.compress(b""), 1, T0, T0, attributes=1 << 1),
            r"gzip payload inflates to 0 bytes",
        ),
        Case(
            "zstd of nothing",
            by_hand(zstd.compress(b""), 1, T0, T0, attributes=2 << 1),
            r"zstd payload inflates to 0 bytes",
        ),
        Case(
            "a cut-off gzip stream",
            by_hand(gzip.compress(packb(good()))[:-12], 5, T0, T0 + 4, attributes=1 << 1),
            r"gzip payload is cut off",
        ),
        Case(
            "a zstd frame with trailing junk",
            by_hand(zstd.compress(packb(good())) + b"junk", 5, T0, T0 + 4, attributes=2 << 1),
            r"does not decompress as zstd: .*4 bytes of unused data",
        ),
        Case(
            "a header first_timestamp_ms that is not the first record's",
            of_records(good(), first=T0 + 1),
            rf"header first_timestamp_ms {T0 + 1} is not the first record's timestamp {T0}",
        ),
        Case(
            "a header max_timestamp_ms that is not the greatest record's",
            of_records(good(), greatest=T0 + 99),
            rf"header max_timestamp_ms {T0 + 99} is not the greatest record timestamp {T0 + 4}",
        ),
        Case("reserved != 0", of_records(good(), reserved=1), r"reserved header field is 0x0001; it must be 0"),
        Case(
            "the LogAppendTime bit from a client",
            of_records(good(), attributes=1),
            r"attributes 0x01 set the LogAppendTime bit \(0x01\): only the broker sets it",
        ),
        Case(
            "a timestamp before 1970",
            of_records(with_record(4, [-1, b"k", b"v", None]), first=T0, greatest=T0 + 3),
            r"record 4: timestamp -1 is out of range: 0 to 253402300799999 ms",
        ),
        Case(
            "a timestamp after 9999",
            timestamp_after_9999(),
            r"record 0: timestamp 253402300800000 is out of range: 0 to 253402300799999 ms",
        ),
        Case(
            "bytes after the last record",
            by_hand(packb(good()) + b"\xc0\xc0", 5, T0, T0 + 4),
            r"payload has 2 bytes after its last record",
        ),
        Case(
            "fewer records than record_count",
            by_hand(packb(good()), 6, T0, T0 + 4),
            r"header says 6 records, payload holds 5",
        ),
        Case(
            "a payload cut off inside a record",
            by_hand(packb(good())[:-3], 5, T0, T0 + 4),
            r"record 4: payload ends inside the record",
        ),
        Case(
            "an ext type as key",
            of_records(with_record(1, [T0 + 1, msgpack.ExtType(5, b"x"), b"v", None])),
            r"record 1: key is msgpack ext \(0xd4\); keys must be bin or nil$",
        ),
        Case(
            "headers as a map",
            of_records(with_record(0, [T0, b"k", b"v", {"a": b"b"}])),
            r"record 0: headers is msgpack map \(0x81\); headers must be nil or an array of \[name, value\] pairs",
        ),
        Case(
            "a header name that is not UTF-8",
            by_hand(b"\x91\x94" + packb(T0) + b"\xc0\xc0\x91\x92\xa2\xff\xfe\xc4\x00", 1, T0, T0),
            r"record 0: header 0 name is not valid UTF-8",
        ),
        Case(
            "a header name sent as bin",
            of_records(with_record(1, [T0 + 1, b"k", b"v", [("ok", b"1"), (b"trace", b"2")]])),
            r"record 1: header 1 name is msgpack bin \(0xc4\); header names must be str",
        ),
        Case(
            "a header value sent as str",
            of_records(with_record(1, [T0 + 1, b"k", b"v", [("trace", "t")]])),
            r"record 1: header 0 value is msgpack str \(0xa1\); header values must be bin or nil \(send text as bin",
        ),
    ]


def timestamp_after_9999() -> bytes:
    """One record whose timestamp (uint64) is one ms past 9999-12-31T23:59:59.999Z."""
    ts = MAX_TIMESTAMP_MS + 1
    return by_hand(b"\x91\x94\xcf" + struct.pack(">Q", ts) + b"\xc0\xc0\xc0", 1, T0, T0)


# -- the fuzz corpus --------------------------------------------------------------------------------

_NAMES = ["", "trace", "ä", "日本", "x" * 40]
_BAD_TIMESTAMPS = [
    packb(1.5),
    b"\xca\x3f\x80\x00\x00",  # float32
    packb(-1),
    packb(-(1 << 40)),
    packb(MAX_TIMESTAMP_MS + 1),
    packb((1 << 64) - 1),
    packb("1700000000000"),
    packb(None),
    packb(True),
    packb(b"\x00"),
    b"\xd6\xff\x00\x00\x00\x00",  # msgpack's own timestamp ext (type -1)
    packb([1]),
    packb({}),
    b"\xc1",
]
_BAD_BINS = [
    packb("text"),
    b"\xd9\x03abc",  # str8
    packb(1),
    packb(1.0),
    packb(False),
    packb([]),
    packb({}),
    packb(msgpack.ExtType(1, b"ab")),
    b"\xc1",
]
_BAD_HEADERS = [
    packb({}),
    packb("h"),
    packb(1),
    packb([1]),
    packb([["a"]]),
    packb([["a", b"x", b"y"]]),
    packb([[b"name", b"v"]]),
    packb([["a", "v"]]),
    packb([["a", 1]]),
    b"\x91\x92\xa2\xff\xfe\xc0",  # name not UTF-8
    b"\x91\x92\xa3\xed\xa0\x80\xc0",  # a UTF-16 surrogate in UTF-8
    b"\x91\x92\xa2\xc0\x80\xc0",  # overlong NUL
    b"\x91\x92\xa4\xf4\x90\x80\x80\xc0",  # past U+10FFFF
    b"\x91\xc1",
]


def random_record(rng: random.Random) -> list[Any]:
    ts = rng.choice([0, T0 + rng.randrange(1_000_000), MAX_TIMESTAMP_MS, rng.randrange(1 << 32), 127, 128])
    key = rng.choice([None, b"", rng.randbytes(rng.randrange(1, 40)), rng.randbytes(rng.randrange(200, 300))])
    value = rng.choice([None, b"", rng.randbytes(rng.randrange(1, 200))])
    if rng.random() < 0.005:
        value = rng.randbytes(70_000)  # a payload past the C walker's GIL-release threshold
    headers: list[tuple[str, bytes | None]] | None = rng.choice(
        [
            None,
            [],
            [(rng.choice(_NAMES), rng.choice([None, b"", rng.randbytes(8)])) for _ in range(rng.randrange(1, 4))],
        ]
    )
    return [ts, key, value, headers]


def _encode_record(record: list[Any], rng: random.Random) -> bytes:
    """msgpack of one record, sometimes in longer forms than needed (still valid msgpack)."""
    ts, key, value, headers = record
    if rng.random() < 0.1:
        out = b"\xdc\x00\x04" + b"\xcf" + struct.pack(">Q", ts)
        out += b"\xc6" + struct.pack(">I", len(key)) + key if key is not None else b"\xc0"
        return out + packb(value) + packb(headers)
    return packb(record)


def _assemble(encoded: list[bytes], count: int | None = None) -> bytes:
    n = len(encoded) if count is None else count
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return head + b"".join(encoded)


def _valid(rng: random.Random) -> tuple[bytes, int, int, int]:
    records = [random_record(rng) for _ in range(rng.randrange(1, 9))]
    payload = _assemble([_encode_record(r, rng) for r in records])
    return payload, len(records), records[0][0], max(r[0] for r in records)


def _compress(payload: bytes, rng: random.Random) -> tuple[bytes, int]:
    if rng.random() < 0.5:
        return gzip.compress(payload, compresslevel=1), 1 << 1
    return bytes(zstandard.ZstdCompressor(level=1).compress(payload)), 2 << 1


def _wrong_types(rng: random.Random) -> tuple[bytes, int, int, int]:
    records = [random_record(rng) for _ in range(rng.randrange(1, 9))]
    encoded = [packb(r) for r in records]
    i = rng.randrange(len(records))
    ts, key, value, headers = (packb(x) for x in records[i])
    field = rng.randrange(5)
    if field == 0:
        ts = rng.choice(_BAD_TIMESTAMPS)
    elif field == 1:
        key = rng.choice(_BAD_BINS)
    elif field == 2:
        value = rng.choice(_BAD_BINS)
    elif field == 3:
        headers = rng.choice(_BAD_HEADERS)
    else:  # a record of another length
        n = rng.choice([0, 1, 2, 3, 5, 6])
        parts = [ts, key, value, headers, packb(None), packb(None)][:n]
        encoded[i] = bytes([0x90 | n]) + b"".join(parts)
    if field < 4:
        encoded[i] = b"\x94" + ts + key + value + headers
    return _assemble(encoded), len(records), records[0][0], max(r[0] for r in records)


def mutated(rng: random.Random) -> bytes:
    """One batch, valid or broken in one of many ways."""
    kind = rng.random()
    payload, count, first, greatest = _valid(rng)
    attributes, reserved, fix_crc = 0, 0, True
    if kind < 0.15:  # valid
        pass
    elif kind < 0.20:  # valid, compressed
        payload, attributes = _compress(payload, rng)
    elif kind < 0.40:  # bit flips in the payload
        b = bytearray(payload)
        for _ in range(rng.choice([1, 1, 2, 3])):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        payload, fix_crc = bytes(b), rng.random() < 0.9
    elif kind < 0.45:  # bit flips in the header (the CRC covers only the payload)
        data = bytearray(by_hand(payload, count, first, greatest))
        data[rng.randrange(HEADER_SIZE)] ^= 1 << rng.randrange(8)
        return bytes(data)
    elif kind < 0.55:  # truncation
        payload = payload[: rng.randrange(len(payload))]
    elif kind < 0.60:  # wrong counts
        count = rng.choice([count + 1, count - 1, count * 2, 1_000_001, 0xFFFFFFFF, rng.randrange(1, 1 << 20)])
        count = max(count, 0)
    elif kind < 0.78:  # wrong types
        payload, count, first, greatest = _wrong_types(rng)
    elif kind < 0.85:  # header timestamps that disagree
        if rng.random() < 0.5:
            first += rng.choice([-1, 1, 1000])
        else:
            greatest += rng.choice([-1, 1, -greatest - 1])
    elif kind < 0.90:  # reserved, attributes
        attributes = rng.choice([1, 3 << 1, 0x10, 0x80])
        reserved = rng.choice([0, 1, 0x8000])
    elif kind < 0.96:  # compression faults
        which = rng.randrange(8)
        if which == 0:
            payload, attributes = rng.choice(
                [(zstd_bomb(True), 2 << 1), (zstd_bomb(False), 2 << 1), (gzip_bomb(), 1 << 1)]
            )
        elif which == 1:
            payload, attributes = _compress(b"", rng)
        elif which == 2:
            payload, attributes = _compress(payload, rng)
            payload = payload[: rng.randrange(len(payload))]
        elif which == 3:
            payload, attributes = _compress(payload, rng)
            payload += rng.randbytes(rng.randrange(1, 9))
        elif which == 4:
            packed, attributes = _compress(payload, rng)
            b = bytearray(packed)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            payload = bytes(b)
        elif which == 5:  # a compressed payload that is not the specified records
            payload, attributes = _compress(_wrong_types(rng)[0], rng)
        elif which == 6:
            payload, attributes = rng.randbytes(rng.randrange(1, 64)), rng.choice([1 << 1, 2 << 1])
        else:  # two zstd frames / two gzip members
            packed, attributes = _compress(payload, rng)
            payload = packed + packed
    else:  # bytes after the last record
        payload += rng.choice([b"\xc0", b"\x00", rng.randbytes(rng.randrange(1, 20))])
    crc = None if fix_crc else zlib.crc32(payload) ^ 1
    return by_hand(payload, count, first, greatest, attributes=attributes, reserved=reserved, crc=crc)


def is_bomb(data: bytes) -> bool:
    return data[HEADER_SIZE:] in (zstd_bomb(True), zstd_bomb(False), gzip_bomb())


def corpus(seed: int, n: int) -> list[bytes]:
    rng = random.Random(seed)
    return [mutated(rng) for _ in range(n)]
