"""A Fetch answer as the broker builds it, sent as the bytes :mod:`logsvc_wire.fetch_response` writes.

Built as a protobuf FetchResponse and serialized by the library, every stored batch the broker
read was copied twice more before gRPC took it: into the message, then into the encoder's buffer,
both fresh memory faulted in for every answer. A :class:`FetchAnswer` holds the partitions' parts
as the store returned them, and gRPC sends it through :func:`serialize`
(:func:`~logsvc_wire.fetch_response.encode_fetch_response`: the same bytes, each batch copied
once). Everything between the handler and gRPC reads it as it read the message: its
``throttle_time_ms`` is set when a quota holds the answer back, and :attr:`batch_bytes` is what the
fetch counts against the quota.
"""

from __future__ import annotations

from collections.abc import Sequence

from logsvc_wire.fetch_response import Batch, PartitionData, encode_fetch_response


class FetchAnswer:
    """The partitions' parts of one Fetch answer, in request order, and its throttle time."""

    __slots__ = ("batch_bytes", "partitions", "throttle_time_ms")

    def __init__(self) -> None:
        self.partitions: list[PartitionData] = []
        self.throttle_time_ms = 0
        #: the bytes of the batches it carries (what a fetch quota counts)
        self.batch_bytes = 0

    def add(
        self, topic: str, partition: int, log_start_offset: int, next_offset: int, batches: Sequence[Batch] = ()
    ) -> int:
        """Add a partition's part; the bytes of its batches."""
        self.partitions.append(PartitionData(topic, partition, log_start_offset, next_offset, batches))
        size = sum(len(data) for _, data in batches)
        self.batch_bytes += size
        return size


def serialize(answer: FetchAnswer) -> bytes:
    """The answer's FetchResponse bytes (gRPC's response serializer of Fetch)."""
    return encode_fetch_response(answer.partitions, answer.throttle_time_ms)
