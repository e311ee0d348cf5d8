"""A ProduceRequest written straight to its protobuf bytes, the batches copied once, and read
back by the broker with each batch a view into the request.

The producer's requests carry megabytes of record batches. Built as a protobuf message and
serialized by the library (upb), every batch was copied three times in the client: into the
``PartitionBatch`` message, into the encoder's growing buffer, and from that buffer into the
``bytes`` gRPC sends. Each request's buffers were megabytes the allocator mapped fresh and gave
back at once, so the copies also faulted their pages in. :func:`encode_produce_request` writes the
same bytes with one ``b"".join``. On the reference machine (2 cores, the benchmark on one and the
broker on the other, page cache full), producing 100-byte records in ``send_many`` batches of
1,000, the client's CPU per million records went from 182 - 193 ms to 120 - 131 ms, its page
faults from 22,000 - 23,500 to 4,000 - 11,000, and a million records took 0.176 - 0.188 s
instead of 0.219 - 0.230 s (two runs of 15 million each way, alternating).

The bytes are exactly what ``ProduceRequest.SerializeToString()`` gives for the same fields (the
protobuf encoding: fields in field-number order, fields holding their default left out), which
``tests/codec/test_produce_request.py`` checks case by case, so the broker and any other reader of
``proto/`` parse them as that message. Only the gRPC transport's two produce methods send them
(:mod:`logsvc_client.transport.grpc`); every other request is a protobuf message.

The broker reads every Produce request, from any client, with :func:`decode_produce_request`:
parsed by protobuf and read batch by batch as ``bytes``, each batch was copied twice more on the
broker's side, into fresh memory again. It reads what protobuf's parser reads (the same rules as
:mod:`~logsvc_wire.fetch_response`'s decoder; the tests check the two against each other on
valid, mutated and cut bytes), and hands each batch to the storage as a ``memoryview`` of the
request, which lives until the batch is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .protowire import (
    LENGTH,
    UINT32_MAX,
    UINT64_MAX,
    VARINT,
    bytes_head,
    check_range,
    key,
    number_field,
    read_key,
    read_length,
    read_text,
    read_uint32,
    read_varint,
    read_view,
    skip_field,
    varint,
)

# Fields, from proto/: ProduceRequest: topic = 1 (string), batches = 2 (PartitionBatch),
# producer_id = 3 (uint64), producer_epoch = 4 (uint32); PartitionBatch: partition = 1 (uint32),
# batch = 2 (bytes), base_sequence = 3 (uint32).
_TOPIC, _BATCHES, _PRODUCER_ID, _PRODUCER_EPOCH = key(1, LENGTH), key(2, LENGTH), key(3, VARINT), key(4, VARINT)
_PARTITION, _BATCH, _BASE_SEQUENCE = key(1, VARINT), key(2, LENGTH), key(3, VARINT)
# the same keys as written
_W_TOPIC, _W_BATCHES, _W_PRODUCER_ID, _W_PRODUCER_EPOCH, _W_PARTITION, _W_BATCH, _W_BASE_SEQUENCE = (
    varint(k) for k in (_TOPIC, _BATCHES, _PRODUCER_ID, _PRODUCER_EPOCH, _PARTITION, _BATCH, _BASE_SEQUENCE)
)


def encode_produce_request(
    topic: str,
    batches: Sequence[tuple[int, bytes]],
    producer_id: int = 0,
    producer_epoch: int = 0,
    sequences: Sequence[int] | None = None,
) -> bytes:
    """The serialized ProduceRequest of ``topic``, one PartitionBatch per ``(partition, batch)``
    with ``sequences[i]`` as the i-th batch's base_sequence (all 0 when None), and
    ``producer_id`` / ``producer_epoch``. Raises ValueError, as the protobuf message would, for a
    number outside its field's type (uint32, uint64 for producer_id), a topic that is not valid
    UTF-8 text, or a count of sequences other than the count of batches."""
    if sequences is not None and len(sequences) != len(batches):
        raise ValueError(f"{len(sequences)} sequences for {len(batches)} batches")
    check_range(producer_id, UINT64_MAX, "producer_id")
    check_range(producer_epoch, UINT32_MAX, "producer_epoch")
    name = topic.encode()
    parts: list[bytes] = [bytes_head(_W_TOPIC, len(name)), name]
    for i, (partition, batch) in enumerate(batches):
        sequence = sequences[i] if sequences is not None else 0
        check_range(partition, UINT32_MAX, "partition")
        check_range(sequence, UINT32_MAX, "base_sequence")
        head = number_field(_W_PARTITION, partition)
        tail = number_field(_W_BASE_SEQUENCE, sequence)
        size = len(batch)
        body = bytes_head(_W_BATCH, size)
        parts += (_W_BATCHES, varint(len(head) + len(body) + size + len(tail)), head, body, batch, tail)
    parts += (number_field(_W_PRODUCER_ID, producer_id), number_field(_W_PRODUCER_EPOCH, producer_epoch))
    return b"".join(parts)


class PartitionBatch(NamedTuple):
    """One batch of a Produce request (the proto's PartitionBatch), its bytes a view into the request."""

    partition: int
    batch: memoryview
    base_sequence: int


class ProduceRequest(NamedTuple):
    """A Produce request as the broker reads it (the proto's ProduceRequest, the same field names)."""

    topic: str
    batches: list[PartitionBatch]
    producer_id: int
    producer_epoch: int


def decode_produce_request(data: bytes) -> ProduceRequest:
    """The ProduceRequest serialized in ``data``, each batch a ``memoryview`` into ``data``.

    Raises ValueError where protobuf's parser raises DecodeError (see
    :func:`~logsvc_wire.fetch_response.decode_fetch_response`), naming the byte offset.
    """
    view = memoryview(data)
    topic = ""
    batches: list[PartitionBatch] = []
    producer_id = producer_epoch = 0
    i, end = 0, len(data)
    while i < end:
        field, i = read_key(data, i, end)
        if field == _BATCHES:
            size, i = read_length(data, i, end)
            batches.append(_partition_batch(data, view, i, i + size))
            i += size
        elif field == _TOPIC:
            topic, i = read_text(data, view, i, end, "ProduceRequest.topic")
        elif field == _PRODUCER_ID:
            producer_id, i = read_varint(data, i, end)
        elif field == _PRODUCER_EPOCH:
            producer_epoch, i = read_uint32(data, i, end)
        else:
            i = skip_field(data, field, i, end)
    return ProduceRequest(topic, batches, producer_id, producer_epoch)


def _partition_batch(data: bytes, view: memoryview, i: int, end: int) -> PartitionBatch:
    partition = sequence = 0
    batch = view[0:0]
    while i < end:
        field, i = read_key(data, i, end)
        if field == _BATCH:
            batch, i = read_view(data, view, i, end)
        elif field == _PARTITION:
            partition, i = read_uint32(data, i, end)
        elif field == _BASE_SEQUENCE:
            sequence, i = read_uint32(data, i, end)
        else:
            i = skip_field(data, field, i, end)
    return PartitionBatch(partition, batch, sequence)
