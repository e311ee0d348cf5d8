"""What the producer needs from the network, as a small contract with a gRPC implementation.

The producer's batching, retries and buffer limits are tested against an in-memory transport
(tests/client/fakes.py) that honours the same contract; :class:`GrpcTransport` is the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import grpc

from .._proto import logsvc_pb2 as pb
from .._proto import logsvc_pb2_grpc as pb_grpc
from ..errors import InternalError, InvalidRequest, LogsvcError
from ..security import Security
from . import channel

# Called once per produce: (base offsets in request order, None) or (None, error).
ProduceCallback = Callable[[list[int] | None, LogsvcError | None], None]


class ProduceTransport(Protocol):
    def partition_count(self, topic: str) -> int:
        """The topic's partition count (blocking); TopicNotFound when it does not exist."""
        ...

    def produce(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes]],
        done: ProduceCallback,
        *,
        producer_id: int = 0,
        producer_epoch: int = 0,
        sequences: Sequence[int] | None = None,
    ) -> None:
        """Send ``(partition, encoded batch)`` pairs of one topic as one request without
        blocking; call ``done`` exactly once, from any thread, with the outcome. With a
        ``producer_id``: idempotent, ``sequences`` holding each batch's base sequence (a retried
        duplicate is answered with its original offsets)."""
        ...

    def init_producer(self, producer_id: int, producer_epoch: int) -> tuple[int, int]:
        """(blocking) A new producer id and epoch (``producer_id`` 0), or the next epoch of the
        one given; the project's exception when the broker cannot give one."""
        ...

    def close(self) -> None:
        """Release the connection; calls still in flight complete with an error."""
        ...


class GrpcTransport:
    """:class:`ProduceTransport` over a gRPC channel: DescribeTopic and Produce."""

    def __init__(
        self,
        address: str,
        *,
        request_timeout_ms: float,
        retry: channel.RetryPolicy,
        security: Security | None = None,
    ) -> None:
        self.address = address
        self._channel = channel.connect(address, security=security)
        self._stub = pb_grpc.BrokerStub(self._channel)
        self._timeout_s = request_timeout_ms / 1000
        self._retry = retry

    def partition_count(self, topic: str) -> int:
        response = channel.call_with_retry(self._stub.DescribeTopic, pb.DescribeTopicRequest(name=topic), self._retry)
        return len(response.partitions)

    def produce(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes]],
        done: ProduceCallback,
        *,
        producer_id: int = 0,
        producer_epoch: int = 0,
        sequences: Sequence[int] | None = None,
    ) -> None:
        if sequences is None:
            request = pb.ProduceRequest(
                topic=topic, batches=[pb.PartitionBatch(partition=p, batch=b) for p, b in batches]
            )
        else:
            request = pb.ProduceRequest(
                topic=topic,
                producer_id=producer_id,
                producer_epoch=producer_epoch,
                batches=[
                    pb.PartitionBatch(partition=p, batch=b, base_sequence=seq)
                    for (p, b), seq in zip(batches, sequences, strict=True)
                ],
            )
        expected = len(batches)

        def on_response(response: pb.ProduceResponse | None, error: LogsvcError | None) -> None:
            if error is not None or response is None:
                done(None, error or InternalError("produce returned no response"))
            elif len(response.appends) != expected:
                done(None, InternalError(f"produce of {expected} batches was answered with {len(response.appends)}"))
            else:
                done([a.base_offset for a in response.appends], None)

        channel.call_async(self._stub.Produce, request, self._timeout_s, on_response)

    def init_producer(self, producer_id: int, producer_epoch: int) -> tuple[int, int]:
        request = pb.InitProducerRequest(producer_id=producer_id, producer_epoch=producer_epoch)
        try:
            response = channel.call(self._stub.InitProducer, request, self._timeout_s)
        except InvalidRequest as e:
            if getattr(e, "status", None) != grpc.StatusCode.UNIMPLEMENTED:
                raise
            raise InvalidRequest(
                f"the broker at {self.address} does not support the idempotent producer (no InitProducer): "
                "upgrade it, or use Producer(enable_idempotence=False)"
            ) from None
        return response.producer_id, response.producer_epoch

    def close(self) -> None:
        self._channel.close()
