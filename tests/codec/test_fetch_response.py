"""The broker writes Fetch answers (logsvc_wire.fetch_response) as protobuf does, and the consumer
reads them as protobuf reads them.

The broker writes its Fetch answers' bytes itself, and the gRPC transport takes them as bytes and
reads them itself, each batch a view into the answer; the broker's answers must be protobuf's
bytes, byte for byte, for the same fields. Every decoding case gives the same bytes to both readers:
where protobuf parses them, the values must be equal; where protobuf refuses them, so must the
decoder, with ValueError.
"""

from __future__ import annotations

import random

import pytest

from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire.fetch_response import PartitionData, decode_fetch_response, encode_fetch_response
from logsvc_wire.protowire import varint
from tests.codec.protobuf_parity import field, mutations, outcome

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1


def by_protobuf(data: bytes) -> tuple[list[tuple[object, ...]], int]:
    message = pb.FetchResponse.FromString(data)
    partitions = [
        (pd.topic, pd.partition, pd.log_start_offset, pd.next_offset, [(b.base_offset, b.batch) for b in pd.batches])
        for pd in message.partitions
    ]
    return partitions, message.throttle_time_ms


def by_decoder(data: bytes) -> tuple[list[tuple[object, ...]], int]:
    answer = decode_fetch_response(data)
    partitions = [
        (pd.topic, pd.partition, pd.log_start_offset, pd.next_offset, [(base, bytes(b)) for base, b in pd.batches])
        for pd in answer.partitions
    ]
    return partitions, answer.throttle_time_ms


def assert_read_alike(data: bytes) -> None:
    assert outcome(by_decoder, data) == outcome(by_protobuf, data), data.hex()


def serialized(partitions: list[tuple[str, int, int, int, list[tuple[int, bytes]]]], throttle: int = 0) -> bytes:
    message = pb.FetchResponse(throttle_time_ms=throttle)
    for topic, partition, start, next_offset, batches in partitions:
        pd = message.partitions.add(topic=topic, partition=partition, log_start_offset=start, next_offset=next_offset)
        for base, batch in batches:
            pd.batches.add(base_offset=base, batch=batch)
    return message.SerializeToString()


CASES = {
    "an empty answer": [],
    "one partition, one batch": [("orders", 0, 0, 1000, [(0, b"\x01" * 100)])],
    "four partitions": [("t", p, p, 5000 + p, [(b * 1000, bytes([b]) * 50) for b in range(3)]) for p in range(4)],
    "a partition without batches": [("t", 3, 10, 10, [])],
    "every field at its largest": [("t", U32, U64, U64, [(U64, b"x")])],
    "every field at its default": [("", 0, 0, 0, [(0, b"")])],
    "a non-ASCII topic": [("tøpic-ü-日本", 1, 0, 1, [(0, b"y")])],
    "a batch of 200,000 bytes": [("big", 2, 0, 1000, [(7, bytes(range(256)) * 781 + b"end")])],
}


@pytest.mark.parametrize("partitions", CASES.values(), ids=CASES.keys())
def test_a_valid_answer_is_read_as_protobuf_reads_it(partitions: list) -> None:
    data = serialized(partitions, throttle=25)
    assert by_decoder(data) == by_protobuf(data)
    assert by_decoder(data)[0] == [(t, p, s, n, list(b)) for t, p, s, n, b in partitions]
    assert encode_fetch_response([PartitionData(*p) for p in partitions], 25) == data


def test_the_encoding_takes_batches_as_views_too() -> None:
    stored = b"..a batch.."
    partitions = [PartitionData("t", 1, 0, 9, [(0, memoryview(stored)[2:-2])])]
    assert encode_fetch_response(partitions) == serialized([("t", 1, 0, 9, [(0, b"a batch")])])


@pytest.mark.parametrize(
    ("partition", "field"),
    [
        (PartitionData("t", -1, 0, 0, []), "partition -1"),
        (PartitionData("t", U32 + 1, 0, 0, []), f"partition {U32 + 1}"),
        (PartitionData("t", 0, -5, 0, []), "log_start_offset -5"),
        (PartitionData("t", 0, 0, U64 + 1, []), f"next_offset {U64 + 1}"),
        (PartitionData("t", 0, 0, 0, [(-1, b"x")]), "base_offset -1"),
    ],
)
def test_the_encoding_refuses_a_number_its_field_cannot_hold(partition: PartitionData, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} is out of range"):
        encode_fetch_response([partition])
    with pytest.raises(ValueError, match=f"^throttle_time_ms {U32 + 1} is out of range"):
        encode_fetch_response([], U32 + 1)


def test_batches_are_views_into_the_answer_not_copies() -> None:
    data = serialized([("t", 0, 0, 2, [(0, b"first"), (1, b"second")])])
    (pd,) = decode_fetch_response(data).partitions
    assert [type(b) for _, b in pd.batches] == [memoryview, memoryview]
    assert all(b.obj is data for _, b in pd.batches)
    assert [bytes(b) for _, b in pd.batches] == [b"first", b"second"]


def test_random_answers_are_read_as_protobuf_reads_them() -> None:
    rng = random.Random(11)
    for _ in range(500):
        partitions = [
            (
                rng.choice(["", "t", "orders", "tøpic"]),
                rng.choice([0, 1, 127, 128, U32]),
                rng.choice([0, 1, 300, 1 << 35, U64]),
                rng.choice([0, 5, 1 << 63, U64]),
                [
                    (rng.choice([0, 1, 1 << 40, U64]), rng.randbytes(rng.randrange(300)))
                    for _ in range(rng.randrange(4))
                ],
            )
            for _ in range(rng.randrange(5))
        ]
        throttle = rng.choice([0, 1, U32])
        data = serialized(partitions, throttle)
        assert by_decoder(data) == by_protobuf(data)
        assert encode_fetch_response([PartitionData(*p) for p in partitions], throttle) == data


def test_an_answer_cut_short_anywhere_is_read_or_refused_as_protobuf_does() -> None:
    data = serialized([("orders", 3, 1, 300, [(0, b"a" * 20), (20, b"b" * 150)]), ("o", 1, 0, 2, [(U64, b"c")])], 9)
    for cut in range(len(data)):
        assert_read_alike(data[:cut])


def test_mutated_answers_are_read_or_refused_as_protobuf_does() -> None:
    """Bytes changed, inserted and removed at random: both readers take or refuse each alike."""
    base = serialized([("t", 1, 0, 9, [(0, b"abc"), (3, b"defgh")]), ("u", 2, 4, 6, [(4, b"")])], throttle=3)
    for data in mutations(base, seed=7):
        assert_read_alike(data)


BATCH = field(1, 0, varint(5)) + field(2, 2, b"stored")
UNUSUAL = {
    "fields in reverse order": field(
        1,
        2,
        field(5, 2, field(2, 2, b"xy") + field(1, 0, varint(3)))
        + field(4, 0, varint(9))
        + field(3, 0, varint(2))
        + field(2, 0, varint(1))
        + field(1, 2, b"t"),
    ),
    "a scalar field twice: the last wins": field(1, 2, field(2, 0, varint(1)) + field(2, 0, varint(2)))
    + field(2, 0, varint(4))
    + field(2, 0, varint(5)),
    "the topic twice: the last wins": field(1, 2, field(1, 2, b"first") + field(1, 2, b"second")),
    "a batch field twice: the last wins": field(1, 2, field(5, 2, BATCH + field(2, 2, b"again"))),
    "unknown fields of every wire type": field(9, 0, varint(300))
    + field(1, 2, field(10, 1, b"12345678") + field(11, 5, b"1234") + field(12, 2, b"zz") + field(5, 2, BATCH))
    + field(13, 3, field(1, 0, varint(1)) + field(14, 3, b"") + field(14, 4, b""))
    + field(13, 4, b""),
    "a known field of another wire type is skipped as unknown": field(
        1, 2, field(2, 2, b"not a varint") + field(1, 0, varint(5)) + field(5, 0, varint(1))
    )
    + field(2, 5, b"1234"),
    "a uint32 field holding more than 32 bits keeps its low 32": field(1, 2, field(2, 0, varint((1 << 40) + 17)))
    + field(2, 0, varint(U64)),
    "a ten-byte varint with bits past the 64th": field(1, 2, field(3, 0, b"\xff" * 9 + b"\x7f")),
    "a varint padded with zero groups": field(1, 2, field(4, 0, b"\x81\x80\x80\x00")),
    "a varint of eleven bytes": field(1, 2, field(3, 0, b"\xff" * 10 + b"\x01")),
    "field number 0": b"\x00\x01",
    "wire type 6": field(3, 6, b""),
    "wire type 7 inside a partition": field(1, 2, field(3, 7, b"")),
    "a group never closed": field(13, 3, field(1, 0, varint(1))),
    "a group closed as another": field(13, 3, b"") + field(14, 4, b""),
    "an end-group without a start": field(13, 4, b""),
    "a length past the end of its message": field(1, 2, field(1, 2, b"topic")[:-2]),
    "a batch running past its partition": field(1, 2, b"\x2a\x10" + BATCH),
    "a topic that is not UTF-8": field(1, 2, field(1, 2, b"\xff\xfe")),
    "a fixed64 cut short": field(1, 2, field(10, 1, b"1234")),
}


@pytest.mark.parametrize("data", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_unusual_encodings_are_read_or_refused_as_protobuf_does(data: bytes) -> None:
    assert_read_alike(data)


def test_what_protobuf_refuses_is_refused_with_the_byte_offset() -> None:
    with pytest.raises(ValueError, match=r"field of 100 bytes at byte 2 runs past the end of its message \(byte 5\)"):
        decode_fetch_response(b"\x0a\x64abc")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        decode_fetch_response(UNUSUAL["a topic that is not UTF-8"])
    with pytest.raises(ValueError, match="longer than 10 bytes"):
        decode_fetch_response(UNUSUAL["a varint of eleven bytes"])
