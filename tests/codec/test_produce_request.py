"""The producer's ProduceRequest bytes (logsvc_wire.produce_request) are protobuf's, byte for byte,
and the broker reads any client's as protobuf reads them.

The gRPC transport sends the requests this module writes instead of serializing a protobuf
message; the broker, and any client written from proto/, must read them as the same message. The
broker reads every Produce request with decode_produce_request: where protobuf parses the bytes,
the values must be equal; where protobuf refuses them, so must the decoder, with ValueError.
"""

from __future__ import annotations

import random

import pytest

from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire.produce_request import decode_produce_request, encode_produce_request
from logsvc_wire.protowire import varint
from tests.codec.protobuf_parity import field, mutations, outcome

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1


def protobuf_bytes(
    topic: str,
    batches: list[tuple[int, bytes]],
    producer_id: int = 0,
    epoch: int = 0,
    sequences: list[int] | None = None,
) -> bytes:
    seqs = sequences if sequences is not None else [0] * len(batches)
    message = pb.ProduceRequest(topic=topic, producer_id=producer_id, producer_epoch=epoch)
    for (partition, batch), seq in zip(batches, seqs, strict=True):
        message.batches.add(partition=partition, batch=batch, base_sequence=seq)
    return message.SerializeToString()


CASES = {
    "one batch, not idempotent": ("orders", [(0, b"\x01" * 100)], 0, 0, None),
    "idempotent, three partitions": ("orders", [(0, b"a" * 10), (3, b"b" * 20), (1, b"c")], 7, 2, [0, 5, 9]),
    "no batches": ("orders", [], 0, 0, None),
    "empty topic name": ("", [(1, b"x")], 0, 0, None),
    "non-ASCII topic name": ("tøpic-ü-日本", [(2, b"x")], 0, 0, None),
    "an empty batch": ("t", [(5, b"")], 0, 0, None),
    "partition 0 and sequence 0 left out": ("t", [(0, b"x")], 1, 0, [0]),
    "varint edges": ("t", [(127, b"x"), (128, b"y"), (16383, b"z"), (16384, b"w")], 127, 128, [127, 128, 16383, 16384]),
    "largest values": ("t", [(U32, b"x")], U64, U32, [U32]),
    "a 300 KB batch (3-byte length)": ("t", [(1, bytes(range(256)) * 1200)], 1, 1, [2**31 - 1]),
    "a 3 MB batch (4-byte length)": ("t", [(1, b"\x00" * 3_000_000)], 0, 0, None),
    "many batches": ("t", [(i % 64, bytes([i % 256]) * (i * 37 % 2000)) for i in range(300)], 9, 1, list(range(300))),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bytes_are_those_protobuf_serializes(case: tuple) -> None:
    topic, batches, producer_id, epoch, sequences = case
    encoded = encode_produce_request(topic, batches, producer_id, epoch, sequences)
    assert encoded == protobuf_bytes(topic, batches, producer_id, epoch, sequences)
    parsed = pb.ProduceRequest.FromString(encoded)
    assert parsed.topic == topic
    assert [(b.partition, b.batch, b.base_sequence) for b in parsed.batches] == [
        (p, data, s) for (p, data), s in zip(batches, sequences or [0] * len(batches), strict=True)
    ]
    assert (parsed.producer_id, parsed.producer_epoch) == (producer_id, epoch)


def test_random_requests_match_protobuf() -> None:
    rng = random.Random(11)
    for _ in range(500):
        n = rng.randrange(0, 8)
        partitions = [rng.choice([0, rng.randrange(1, 200), rng.randrange(U32 + 1)]) for _ in range(n)]
        batches = [(p, rng.randbytes(rng.randrange(0, 700))) for p in partitions]
        idempotent = rng.random() < 0.5
        sequences = [rng.choice([0, rng.randrange(2**31)]) for _ in range(n)] if idempotent else None
        producer_id = rng.choice([0, 1, rng.randrange(U64 + 1)]) if idempotent else 0
        epoch = rng.choice([0, rng.randrange(32768), rng.randrange(U32 + 1)]) if idempotent else 0
        topic = "".join(rng.choice("ab-_.9ü") for _ in range(rng.randrange(0, 40)))
        args = (topic, batches, producer_id, epoch, sequences)
        assert encode_produce_request(*args) == protobuf_bytes(*args), args


def test_memoryview_batches_are_written_as_their_bytes() -> None:
    data = bytearray(b"0123456789")
    assert encode_produce_request("t", [(1, memoryview(data)[2:6])]) == protobuf_bytes("t", [(1, b"2345")])


@pytest.mark.parametrize("value", [1, 127, 128, 255, 300, 16383, 16384, 2**21, 2**28, 2**35, 2**56, U64])
def test_varint_is_protobufs(value: int) -> None:
    # InitProducerRequest.producer_id is field 1, uint64: key byte 0x08, then the varint
    assert varint(value) == pb.InitProducerRequest(producer_id=value).SerializeToString()[1:]


def test_varint_of_zero_is_one_zero_byte() -> None:
    assert varint(0) == b"\x00"


BAD = {
    "negative partition": ("t", [(-1, b"x")], 0, 0, None, "partition -1 is out of range"),
    "partition past uint32": ("t", [(U32 + 1, b"x")], 0, 0, None, "partition 4294967296 is out of range"),
    "producer_id past uint64": ("t", [(0, b"x")], U64 + 1, 0, [0], "producer_id 18446744073709551616 is out of range"),
    "negative epoch": ("t", [(0, b"x")], 1, -1, [0], "producer_epoch -1 is out of range"),
    "sequence past uint32": ("t", [(0, b"x")], 1, 0, [U32 + 1], "base_sequence 4294967296 is out of range"),
    "fewer sequences than batches": ("t", [(0, b"x"), (1, b"y")], 1, 0, [0], "1 sequences for 2 batches"),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_values_protobuf_refuses_are_refused(case: tuple) -> None:
    *args, message = case
    with pytest.raises(ValueError, match=message):
        encode_produce_request(*args)


def test_a_topic_that_is_not_text_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogates not allowed"):
        encode_produce_request("t\udc80", [(0, b"x")])


def by_protobuf(data: bytes) -> tuple[object, ...]:
    message = pb.ProduceRequest.FromString(data)
    batches = [(b.partition, b.batch, b.base_sequence) for b in message.batches]
    return message.topic, batches, message.producer_id, message.producer_epoch


def by_decoder(data: bytes) -> tuple[object, ...]:
    request = decode_produce_request(data)
    batches = [(b.partition, bytes(b.batch), b.base_sequence) for b in request.batches]
    return request.topic, batches, request.producer_id, request.producer_epoch


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_broker_reads_each_request_as_protobuf_does(case: tuple) -> None:
    data = encode_produce_request(*case)
    assert by_decoder(data) == by_protobuf(data)


def test_the_broker_reads_batches_as_views_into_the_request() -> None:
    data = encode_produce_request("t", [(0, b"first"), (3, b"second")], 7, 1, [0, 1])
    request = decode_produce_request(data)
    assert [type(b.batch) for b in request.batches] == [memoryview, memoryview]
    assert all(b.batch.obj is data for b in request.batches)


def test_requests_cut_short_or_mutated_are_read_or_refused_as_protobuf_does() -> None:
    data = encode_produce_request("orders", [(3, b"a" * 20), (0, b""), (U32, b"b" * 150)], U64, 9, [1, 0, U32])
    for cut in range(len(data)):
        assert outcome(by_decoder, data[:cut]) == outcome(by_protobuf, data[:cut])
    for mutated in mutations(data, seed=5):
        assert outcome(by_decoder, mutated) == outcome(by_protobuf, mutated), mutated.hex()


BATCH = field(1, 0, varint(8)) + field(2, 2, b"x") + field(3, 0, varint(5))
UNUSUAL = {
    "fields in reverse order": field(4, 0, varint(3))
    + field(3, 0, varint(6))
    + field(2, 2, field(3, 0, varint(5)) + field(2, 2, b"x") + field(1, 0, varint(8)))
    + field(1, 2, b"t"),
    "unknown fields and groups": field(7, 2, b"")
    + field(1, 2, b"t")
    + field(9, 5, b"1234")
    + field(11, 3, field(1, 0, varint(0)) + field(12, 3, b"") + field(12, 4, b""))
    + field(11, 4, b"")
    + field(2, 2, field(10, 1, b"12345678") + BATCH),
    "a padded five-byte key": b"\x8a\x80\x80\x80\x00" + b"\x01t",
    "a six-byte key": b"\x8a\x80\x80\x80\x80\x00" + b"\x01t",
    "field number 2**29": varint(1 << 32) + b"\x00",
    "the largest field number": varint((1 << 29) - 1 << 3) + b"\x00" + field(1, 2, b"t"),
    "sequence and epoch holding more than 32 bits": field(4, 0, varint((1 << 40) + 3))
    + field(2, 2, field(3, 0, varint((1 << 36) + 9))),
    "a batch running past its request": field(2, 2, BATCH)[:-1],
    "a topic that is not UTF-8": field(1, 2, b"\xc3("),
}


@pytest.mark.parametrize("data", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_unusual_requests_are_read_or_refused_as_protobuf_does(data: bytes) -> None:
    assert outcome(by_decoder, data) == outcome(by_protobuf, data)
