"""Kafka's partitioner and the record-batch codec, as specified in proto/logsvc/v1/logsvc.proto."""

from __future__ import annotations

import zlib

import pytest

from logsvc_client.errors import CorruptBatch
from logsvc_wire import batch as codec
from logsvc_wire.partitioner import StickyPartitioner, murmur2, partition_for_key


@pytest.mark.parametrize(
    ("key", "expected"),
    [(b"21", -973932308), (b"foobar", -790332482), (b"a-little-bit-long-string", -985981536), (b"abc", 479470107)],
)
def test_murmur2_matches_kafkas_test_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_a_key_goes_to_kafkas_partition() -> None:
    assert partition_for_key(b"foobar", 10) == (-790332482 & 0x7FFFFFFF) % 10


def test_the_sticky_partitioner_keeps_a_partition_until_the_batch_is_sent_then_moves() -> None:
    sticky = StickyPartitioner()
    first = sticky.partition("t", 4)
    assert all(sticky.partition("t", 4) == first for _ in range(10))
    sticky.next_batch("t", 4)
    assert sticky.partition("t", 4) != first


def test_a_batch_is_encoded_exactly_as_the_proto_comment_specifies() -> None:
    data = codec.encode_batch([[1_700_000_000_000, b"k", b"v", None]])
    payload = bytes.fromhex("9194cf0000018bcfe56800c4016bc40176c0")
    header = bytes.fromhex("0100000000000001" + "0000018bcfe56800" * 2) + zlib.crc32(payload).to_bytes(4, "big")
    assert data == header + payload
    assert data[24:28] == bytes.fromhex("e5dfc4c8")


def test_a_batch_written_by_hand_in_another_language_style_is_decoded() -> None:
    # Given a batch built from the spec alone (the proto's header table, written out field by
    # field, and msgpack bytes by hand), with headers and a tombstone
    payload = bytes.fromhex(
        "92"  # array of 2 records
        "94 05 c0 c4 01 61 91 92 a1 68 c4 01 31"  # [5, nil, bin "a", [[str "h", bin "1"]]]
        "94 07 c4 03 6b 65 79 c0 c0"  # [7, bin "key", nil, nil]
    )
    header = (
        bytes([1, 0])  # magic, attributes
        + (0).to_bytes(2, "big")  # reserved
        + (2).to_bytes(4, "big")  # record_count
        + (5).to_bytes(8, "big")  # first_timestamp_ms
        + (7).to_bytes(8, "big")  # max_timestamp_ms
        + zlib.crc32(payload).to_bytes(4, "big")
    )
    data = header + payload
    # Then it validates and decodes to the right records
    codec.validate(data)
    recs = codec.decode_records("t", 3, 100, data)
    assert [(r.offset, r.timestamp_ms, r.key, r.value, r.headers) for r in recs] == [
        (100, 5, None, b"a", (("h", b"1"),)),
        (101, 7, b"key", None, None),
    ]


def test_decoding_skips_records_below_the_start_offset() -> None:
    data = codec.encode_batch([[i, None, b"%d" % i, None] for i in range(5)])
    assert [r.offset for r in codec.decode_records("t", 0, 10, data, start_offset=13)] == [13, 14]


def test_log_append_time_gives_every_record_the_broker_time() -> None:
    data = codec.with_log_append_time(codec.encode_batch([[1, None, b"a", None], [2, None, b"b", None]]), 99)
    assert codec.read_header(data).log_append_time  # the broker's mark (validate refuses it from a client)
    assert [r.timestamp_ms for r in codec.decode_records("t", 0, 0, data)] == [99, 99]


def test_a_corrupted_stored_batch_fails_its_crc_check_on_decode_naming_where_it_is() -> None:
    data = bytearray(codec.encode_batch([[1, None, b"abc", None], [2, None, b"d", None]]))
    data[-2] ^= 0xFF
    with pytest.raises(CorruptBatch, match=r"offsets 40-41 of t/3 .*CRC32") as caught:
        codec.decode_records("t", 3, 40, bytes(data))
    assert caught.value.details == {"topic": "t", "partition": 3, "base_offset": 40, "last_offset": 41}


def test_the_c_extension_and_the_fallback_hash_agree_with_each_other_and_with_kafka() -> None:
    # Given the C extension (built by the install) and the murmurhash2 package fallback
    from logsvc_wire import _codec, partitioner

    keys = [
        b"",
        b"a",
        b"ab",
        b"abc",
        b"21",
        b"foobar",
        b"a-little-bit-long-string",
        *(bytes(range(n)) for n in range(64)),
    ]
    # Then both give the same non-negative hash for every key, and Kafka's signed vectors hold
    for key in keys:
        assert _codec.murmur2_positive(key) == partitioner._positive_fallback(key)
        assert _codec.murmur2(key) == partitioner.murmur2(key)
    assert _codec.murmur2(b"foobar") == -790332482
