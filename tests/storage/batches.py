"""Test helpers: record batches built with the real codec, broken batches, the offsets a store holds,
a settable clock."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from logsvc.storage.base import Store
from logsvc_wire.batch import HEADER, HEADER_SIZE, decode_records, encode_batch, read_header


def make_batch(count: int = 1, ts: int = 1_000, step: int = 0, value_size: int = 8, tag: str = "") -> bytes:
    """A valid batch of ``count`` records with timestamps ``ts, ts + step, ...``."""
    return encode_batch(
        [[ts + i * step, f"k{i}".encode(), (f"{tag}{i}:".encode() + b"v" * value_size), None] for i in range(count)]
    )


def make_batch_at(timestamps: Sequence[int]) -> bytes:
    """A batch whose records carry exactly these timestamps (in this order)."""
    return encode_batch([[t, f"k{i}".encode(), b"v", None] for i, t in enumerate(timestamps)])


def with_bad_crc(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


def with_wrong_count(data: bytes) -> bytes:
    """The header claims one record more than the payload holds (CRC still right)."""
    h = read_header(data)
    payload = data[HEADER_SIZE:]
    header = HEADER.pack(
        h.magic,
        h.attributes,
        h.reserved,
        h.record_count + 1,
        h.first_timestamp_ms,
        h.max_timestamp_ms,
        zlib.crc32(payload),
    )
    return header + payload


def offsets_of(store: Store, topic: str, partition: int, offset: int = 0) -> list[int]:
    """The offsets of the records ``store`` holds in ``topic``/``partition`` from ``offset`` on."""
    got = store.read(topic, partition, offset, 1 << 30)
    return [r.offset for base, data in got.batches for r in decode_records(topic, partition, base, data)]


class FakeClock:
    """A wall clock in ms that only moves when told to."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms
