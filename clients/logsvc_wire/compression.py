"""Payload compression of record batches: gzip (RFC 1952) and zstd (one frame, RFC 8878), named by
bits 1-2 of a batch's attributes (see :data:`COMPRESSIONS` and proto/logsvc/v1/logsvc.proto).

Producers :func:`compress` a payload whole; the broker inflates a produced payload with
:func:`inflate_bounded`, which refuses a bomb without inflating it whole, and peeks at the first
bytes of one with :func:`inflate_prefix`. Readers inflate stored payloads under the greatest bound a
topic may set.
"""

from __future__ import annotations

import io
import threading
import zlib

import zstandard

from .errors import InvalidBatch, InvalidConfig

#: Compression names by their code in the attributes (bits 1-2).
COMPRESSIONS = ("none", "gzip", "zstd")
GZIP_WBITS = 31  # zlib's gzip framing (RFC 1952)
ZSTD_LEVEL = 3

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


def compress(payload: bytes, code: int) -> bytes:
    if code == 1:
        c = zlib.compressobj(6, zlib.DEFLATED, GZIP_WBITS)
        return c.compress(payload) + c.flush()
    return bytes(_zstd_compressor().compress(payload))


def inflate_prefix(stored: bytes | memoryview, compression: str, limit: int = 0) -> bytes:
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


def _too_big(compression: str, limit: int, declared: int = -1) -> InvalidBatch:
    size = f"declares {declared} bytes" if declared >= 0 else f"inflates to more than {limit} bytes"
    return InvalidBatch(f"{compression} payload {size}, more than the topic's max_uncompressed_batch_bytes of {limit}")


def _zstd_exceeds(stored: bytes | memoryview, limit: int) -> bool:
    try:
        with _zstd_decompressor().stream_reader(stored) as reader:
            return len(reader.read(limit + 1)) > limit
    except zstandard.ZstdError:
        return False


def inflate_bounded(stored: bytes | memoryview, compression: str, limit: int) -> bytes:
    """The msgpack payload of a compressed batch, refused with :class:`InvalidBatch` when it would
    inflate to more than ``limit`` bytes (found out without inflating more than ``limit + 1`` of
    them), to nothing, or when the stream is cut off or followed by other bytes."""
    if compression == "gzip":
        d = zlib.decompressobj(GZIP_WBITS)
        try:
            out = d.decompress(stored, limit + 1)
        except zlib.error as e:
            raise InvalidBatch(f"record batch payload does not decompress as gzip: {e}") from None
        if len(out) > limit:
            raise _too_big(compression, limit)
        if not d.eof:
            raise InvalidBatch("gzip payload is cut off: the stream ends before its end-of-stream marker")
        if d.unused_data:
            raise InvalidBatch(f"gzip payload has {len(d.unused_data)} bytes after the end of its stream")
    else:
        try:
            declared = zstandard.get_frame_parameters(stored).content_size
        except zstandard.ZstdError as e:
            raise InvalidBatch(f"record batch payload does not decompress as zstd: {e}") from None
        known = declared != zstandard.CONTENTSIZE_UNKNOWN
        if known and declared > limit:
            raise _too_big(compression, limit, declared)
        try:
            # One frame, nothing after it; with the size unknown, at most limit bytes come out.
            out = bytes(_zstd_decompressor().decompress(stored, max_output_size=limit, allow_extra_data=False))
        except zstandard.ZstdError as e:
            if not known and _zstd_exceeds(stored, limit):
                raise _too_big(compression, limit) from None
            raise InvalidBatch(f"record batch payload does not decompress as zstd: {e}") from None
    if not out:
        raise InvalidBatch(f"{compression} payload inflates to 0 bytes; it must hold a msgpack array of records")
    return out
