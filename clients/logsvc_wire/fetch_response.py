"""A FetchResponse written and read as its protobuf bytes: each batch copied once by the
broker, and handed to the consumer as a view into the answer.

A Fetch answer carries megabytes of stored batches, and protobuf's library copies each of them on
both sides. The broker, building the message and serializing it, copied each batch twice (into the
message, then into the encoder's buffer); the consumer, parsing it and reading each batch as
``bytes``, twice more. Each copy went into buffers of a hundred KiB and more that the allocator
mapped fresh and gave back for every answer, each page faulted in on the way.
:func:`encode_fetch_response` writes the same bytes with one ``b"".join``;
:func:`decode_fetch_response` reads the same fields and hands each batch out as a ``memoryview``
slice of the answer's own bytes, with a few varints read per batch. The record codec decodes from
the view, and the records it makes own their keys and values, so an answer's bytes live only as
long as a batch of it is still buffered, undecoded. See the two functions for the figures.

Both follow protobuf (``tests/codec/test_fetch_response.py`` checks them against it on the same
fields and the same bytes). The encoding is ``FetchResponse.SerializeToString()``'s, byte for
byte. The decoder reads what protobuf's parser reads, valid, mutated or cut short: fields in any
order, the last of a repeated scalar field winning, unknown fields and fields of an unexpected
wire type skipped (groups included), ``uint32`` fields the low 32 bits of their varint, strings
strict UTF-8; what protobuf refuses raises :class:`ValueError` naming the byte offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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

#: a stored batch as an answer carries it: ``(base_offset, batch)``; decoded, the batch is a view
#: into the answer
Batch = tuple[int, bytes | memoryview]

# Fields, from proto/: FetchResponse: partitions = 1 (PartitionData), throttle_time_ms = 2
# (uint32); PartitionData: topic = 1 (string), partition = 2 (uint32), log_start_offset = 3
# (uint64), next_offset = 4 (uint64), batches = 5 (StoredBatch); StoredBatch: base_offset = 1
# (uint64), batch = 2 (bytes).
_PARTITIONS, _THROTTLE = key(1, LENGTH), key(2, VARINT)
_TOPIC, _PARTITION, _LOG_START, _NEXT, _BATCHES = (
    key(1, LENGTH),
    key(2, VARINT),
    key(3, VARINT),
    key(4, VARINT),
    key(5, LENGTH),
)
_BASE_OFFSET, _BATCH = key(1, VARINT), key(2, LENGTH)
# the same keys as written
_W_PARTITIONS, _W_THROTTLE, _W_TOPIC, _W_PARTITION, _W_LOG_START, _W_NEXT, _W_BATCHES, _W_BASE_OFFSET, _W_BATCH = (
    varint(k) for k in (_PARTITIONS, _THROTTLE, _TOPIC, _PARTITION, _LOG_START, _NEXT, _BATCHES, _BASE_OFFSET, _BATCH)
)


class PartitionData(NamedTuple):
    """One partition's part of the answer (the proto's PartitionData)."""

    topic: str
    partition: int
    log_start_offset: int
    next_offset: int
    batches: Sequence[Batch]


class FetchResponse(NamedTuple):
    """The answer (the proto's FetchResponse)."""

    partitions: list[PartitionData]
    throttle_time_ms: int


def encode_fetch_response(partitions: Iterable[PartitionData], throttle_time_ms: int = 0) -> bytes:
    """The serialized FetchResponse of ``partitions`` and ``throttle_time_ms``: the bytes
    ``FetchResponse.SerializeToString()`` gives for the same fields (fields in field-number order,
    those holding their default left out), each batch copied once. Raises ValueError, as the
    protobuf message would, for a number outside its field's type (uint32: partition,
    throttle_time_ms; uint64: the offsets) or a topic that cannot be UTF-8.

    Measured on the reference machine (an answer of 24 batches of 123,000 bytes, as a Fetch of
    the benchmark's 100-byte records gets): building the message and serializing it took
    168 - 172 ms per million records, most of it faulting in the fresh pages of the copies; this
    takes 3.4 ms.
    """
    parts: list[bytes | memoryview] = []
    for topic, partition, log_start, next_offset, batches in partitions:
        check_range(partition, UINT32_MAX, "partition")
        check_range(log_start, UINT64_MAX, "log_start_offset")
        check_range(next_offset, UINT64_MAX, "next_offset")
        name = topic.encode()
        inner: list[bytes | memoryview] = [
            bytes_head(_W_TOPIC, len(name)),
            name,
            number_field(_W_PARTITION, partition),
            number_field(_W_LOG_START, log_start),
            number_field(_W_NEXT, next_offset),
        ]
        for base, batch in batches:
            check_range(base, UINT64_MAX, "base_offset")
            head = number_field(_W_BASE_OFFSET, base)
            size = len(batch)
            body = bytes_head(_W_BATCH, size)
            inner += (_W_BATCHES, varint(len(head) + len(body) + size), head, body, batch)
        parts += (_W_PARTITIONS, varint(sum(map(len, inner))), *inner)
    check_range(throttle_time_ms, UINT32_MAX, "throttle_time_ms")
    parts.append(number_field(_W_THROTTLE, throttle_time_ms))
    return b"".join(parts)


def decode_fetch_response(data: bytes) -> FetchResponse:
    """The FetchResponse serialized in ``data``, each batch a ``memoryview`` into ``data``.

    Raises ValueError where protobuf's parser raises DecodeError: a varint or a length running past
    its message, a varint over ten bytes, field number 0, wire type 6 or 7, an unbalanced group, a
    topic that is not UTF-8.

    Measured on the reference machine (an answer of 200 batches of 128,000 bytes):
    ``FetchResponse.FromString`` and reading every batch as ``bytes`` took 113 - 121 ms per million
    records, most of it faulting in the fresh pages of the copies; this takes 0.9 - 1.0 ms.
    """
    view = memoryview(data)
    partitions: list[PartitionData] = []
    throttle = 0
    i, end = 0, len(data)
    while i < end:
        field, i = read_key(data, i, end)
        if field == _PARTITIONS:
            size, i = read_length(data, i, end)
            partitions.append(_partition_data(data, view, i, i + size))
            i += size
        elif field == _THROTTLE:
            throttle, i = read_uint32(data, i, end)
        else:
            i = skip_field(data, field, i, end)
    return FetchResponse(partitions, throttle)


def _partition_data(data: bytes, view: memoryview, i: int, end: int) -> PartitionData:
    topic = ""
    partition = log_start = next_offset = 0
    batches: list[Batch] = []
    while i < end:
        field, i = read_key(data, i, end)
        if field == _BATCHES:
            size, i = read_length(data, i, end)
            batches.append(_stored_batch(data, view, i, i + size))
            i += size
        elif field == _PARTITION:
            partition, i = read_uint32(data, i, end)
        elif field == _LOG_START:
            log_start, i = read_varint(data, i, end)
        elif field == _NEXT:
            next_offset, i = read_varint(data, i, end)
        elif field == _TOPIC:
            topic, i = read_text(data, view, i, end, "PartitionData.topic")
        else:
            i = skip_field(data, field, i, end)
    return PartitionData(topic, partition, log_start, next_offset, batches)


def _stored_batch(data: bytes, view: memoryview, i: int, end: int) -> Batch:
    base = 0
    batch = view[0:0]
    while i < end:
        field, i = read_key(data, i, end)
        if field == _BATCH:
            batch, i = read_view(data, view, i, end)
        elif field == _BASE_OFFSET:
            base, i = read_varint(data, i, end)
        else:
            i = skip_field(data, field, i, end)
    return base, batch
