"""Compressed record batches (attributes bits 1-2, proto/logsvc/v1/logsvc.proto): written by
another language's tools by hand, decoded, validated the way the broker does, and refused when
they do not hold what their header says."""

from __future__ import annotations

import gzip
import struct
import zlib

import msgpack
import pytest
import zstandard

from logsvc_client.errors import CorruptBatch, InvalidBatch, InvalidConfig
from logsvc_wire import batch as codec

T0 = 1_700_000_000_000
RECORDS = [
    [T0 + i, b"key-%d" % (i % 7), None if i == 3 else b'{"symbol": "AAPL", "qty": %d}' % i, [("trace", b"t%d" % i)]]
    for i in range(200)
]


def by_hand(payload: bytes, attributes: int, count: int) -> bytes:
    """A batch assembled from the spec, not from the codec."""
    return struct.pack(">BBHIqqI", 1, attributes, 0, count, T0, T0 + 199, zlib.crc32(payload)) + payload


@pytest.mark.parametrize(("compression", "code"), [("gzip", 1), ("zstd", 2)])
def test_a_compressed_batch_names_its_codec_holds_the_same_records_and_is_smaller(compression: str, code: int) -> None:
    plain = codec.encode_batch(RECORDS)
    packed = codec.encode_batch(RECORDS, compression=compression)
    header = codec.validate(packed)
    assert header.compression == compression and header.attributes == code << 1
    assert len(packed) < len(plain) // 3
    assert codec.decode_records("t", 0, 100, packed) == codec.decode_records("t", 0, 100, plain)
    assert codec.unpack_payload(packed) == codec.unpack_payload(plain)


@pytest.mark.parametrize(
    ("compress", "code"), [(gzip.compress, 1), (lambda b: zstandard.ZstdCompressor().compress(b), 2)]
)
def test_a_batch_compressed_by_other_tools_as_the_spec_says_is_decoded(compress: object, code: int) -> None:
    payload = msgpack.packb(RECORDS, use_bin_type=True)
    data = by_hand(compress(payload), code << 1, len(RECORDS))  # type: ignore[operator]
    assert codec.validate(data).record_count == 200
    assert [r.value for r in codec.decode_records("t", 0, 0, data)] == [r[2] for r in RECORDS]


def test_log_append_time_keeps_the_compression() -> None:
    data = codec.with_log_append_time(codec.encode_batch(RECORDS, compression="zstd"), T0 + 5_000)
    header = codec.read_header(data)  # as stored by the broker (validate refuses the bit from a client)
    assert header.log_append_time and header.compression == "zstd"
    assert {r.timestamp_ms for r in codec.decode_records("t", 0, 0, data)} == {T0 + 5_000}


def test_a_compressed_batch_whose_payload_holds_another_count_is_refused() -> None:
    payload = gzip.compress(msgpack.packb(RECORDS[:5], use_bin_type=True))
    with pytest.raises(InvalidBatch, match="header says 6 records, payload holds 5"):
        codec.validate(by_hand(payload, 1 << 1, 6))


def test_a_payload_that_does_not_decompress_is_refused_naming_the_codec() -> None:
    data = by_hand(b"certainly not zstd", 2 << 1, 1)  # the CRC matches: the bytes are what was sent
    with pytest.raises(InvalidBatch, match="does not decompress as zstd"):
        codec.validate(data)
    with pytest.raises(CorruptBatch, match="does not decompress as zstd"):
        codec.decode_records("t", 0, 0, data)


@pytest.mark.parametrize("attributes", [3 << 1, 0x10, 0x80])
def test_attributes_no_version_defines_are_refused(attributes: int) -> None:
    data = by_hand(msgpack.packb(RECORDS[:1], use_bin_type=True), attributes, 1)
    with pytest.raises(InvalidBatch, match=f"attributes {attributes:#04x} name no known compression"):
        codec.validate(data)


def test_an_unknown_compression_name_is_a_configuration_error() -> None:
    with pytest.raises(InvalidConfig, match="compression 'lz4' is not one of none, gzip, zstd"):
        codec.encode_batch(RECORDS, compression="lz4")


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_a_reader_does_not_inflate_a_stored_bomb_past_the_greatest_bound_a_topic_may_set(
    compression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stored batch (written before the broker bounded inflation) that inflates past the
    # readers' bound, here lowered to 1 MiB so the test stays small
    monkeypatch.setattr(codec, "MAX_UNCOMPRESSED_BATCH_BYTES", 1 << 20)
    payload = msgpack.packb([[T0, None, b"\0" * (2 << 20), None]], use_bin_type=True)
    packed = gzip.compress(payload) if compression == "gzip" else zstandard.ZstdCompressor().compress(payload)
    data = by_hand(packed, codec.COMPRESSIONS.index(compression) << 1, 1)

    # When a consumer decodes it, then it gets CorruptBatch saying the payload is too large
    with pytest.raises(CorruptBatch, match="more than"):
        codec.decode_records("t", 0, 7, data)
