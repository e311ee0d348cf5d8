"""The transport over gRPC: the contract of :mod:`~logsvc_client.transport.base` on one channel.

One :class:`GrpcTransport` per client object (producer, consumer, admin) holds its channel and
the broker stub; every call goes through :mod:`~logsvc_client.transport.channel`, which turns a
``grpc.RpcError`` into the project's exception once. Request and response messages (the
generated ``pb`` types) stay in this module and in ``channel``: the contract speaks in the
client's values. The two calls that carry record batches are the exceptions. Produce requests go as
the bytes :func:`~logsvc_wire.produce_request.encode_produce_request` writes, which copies each
batch once where building and serializing the message copied it three times. Fetch answers are
read from their bytes by :func:`~logsvc_wire.fetch_response.decode_fetch_response`, each batch a
view into them, where parsing the message and reading its batches copied each twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import grpc

from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.produce_request import encode_produce_request

from ..errors import InternalError, InvalidRequest, LogsvcError
from ..group.descriptions import CommittedOffset, committed_from_pb
from ..records import TopicPartition
from ..security import Security
from . import channel
from .base import FetchedPartition, GroupAnswer, ProduceCallback, Transport
from .grpc_admin import GrpcAdminCalls, fetched_partitions, offsets_request
from .messages import build
from .produce_stream import ProduceStream
from .retry import RetryPolicy


def partitions_to_pb(tps: Iterable[TopicPartition]) -> list[pb.TopicPartitions]:
    """``[TopicPartitions(topic, [p, ...]), ...]``, topics and partitions sorted."""
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(tps):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return [build(pb.TopicPartitions, topic=t, partitions=ps) for t, ps in by_topic.items()]


def partitions_from_pb(items: Iterable[Any]) -> frozenset[TopicPartition]:
    return frozenset(TopicPartition(tp.topic, p) for tp in items for p in tp.partitions)


#: the produce methods' paths, called with the request's bytes (see GrpcTransport.__init__)
PRODUCE_METHOD = "/logsvc.v1.Broker/Produce"
PRODUCE_STREAM_METHOD = "/logsvc.v1.Broker/ProduceStream"
#: the Fetch method's path, its answer taken as bytes (see fetched_partitions)
FETCH_METHOD = "/logsvc.v1.Broker/Fetch"

# A separate connection (not the shared subchannel pool).
OWN_CONNECTION_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)


class GrpcFetch:
    """A Fetch call on its way: :class:`~logsvc_client.transport.base.PendingFetch` over a
    ``grpc.Future``."""

    __slots__ = ("_future",)

    def __init__(self, future: grpc.Future) -> None:
        self._future = future

    def done(self) -> bool:
        return bool(self._future.done())

    def cancel(self) -> None:
        self._future.cancel()

    def wait(self, timeout_s: float | None) -> bool:
        return channel.wait_done(self._future, timeout_s)

    def add_done_callback(self, fn: Callable[[], object]) -> None:
        self._future.add_done_callback(lambda _f: fn())

    def result(self) -> list[FetchedPartition]:
        return fetched_partitions(channel.result_of(self._future))


class GrpcTransport(GrpcAdminCalls):
    """:class:`~logsvc_client.transport.base.Transport` over one gRPC channel to ``address``.

    ``retry`` governs the calls that are safe to repeat (look-ups, commits); ``request_timeout_ms``
    is the deadline of the others (produce, init_producer). The admin's calls are
    :class:`~logsvc_client.transport.grpc_admin.GrpcAdminCalls`, on the same channel.
    """

    def __init__(
        self,
        address: str,
        *,
        request_timeout_ms: float,
        retry: RetryPolicy,
        security: Security | None = None,
        own_connection: bool = False,
    ) -> None:
        """``own_connection``: a connection of its own rather than one shared with the process's
        other channels to ``address`` (a group member's, so heartbeats never queue behind large
        fetch answers)."""
        self.address = address
        options = OWN_CONNECTION_OPTIONS if own_connection else ()
        self._channel = channel.connect(address, options, security=security)
        self.stub = pb_grpc.BrokerStub(self._channel)
        # Produce and ProduceStream taking the request's bytes (encode_produce_request), not a message
        self._produce = self._channel.unary_unary(
            PRODUCE_METHOD, request_serializer=None, response_deserializer=pb.ProduceResponse.FromString
        )
        produce_stream = self._channel.stream_stream(
            PRODUCE_STREAM_METHOD, request_serializer=None, response_deserializer=pb.ProduceStreamResponse.FromString
        )
        # Fetch answering with its bytes, read by fetched_partitions
        self._fetch = self._channel.unary_unary(
            FETCH_METHOD, request_serializer=pb.FetchRequest.SerializeToString, response_deserializer=None
        )
        self._call_thread = channel.CallThreadKeeper(self._channel)
        self._timeout_s = request_timeout_ms / 1000
        self._retry = retry
        self._stream = ProduceStream(produce_stream, self._timeout_s)

    # -- both sides -----------------------------------------------------------------------------

    def partition_count(self, topic: str, *, auto_create: bool = False) -> int:
        request = build(pb.DescribeTopicRequest, name=topic, allow_auto_create=auto_create)
        response = channel.call_with_retry(self.stub.DescribeTopic, request, self._retry)
        return len(response.partitions)

    def close(self) -> None:
        self._stream.close()
        self._call_thread.close()
        self._channel.close()

    # -- producing ------------------------------------------------------------------------------

    def produce(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes]],
        done: ProduceCallback,
        *,
        producer_id: int = 0,
        producer_epoch: int = 0,
        sequences: Sequence[int] | None = None,
        wait: bool = False,
    ) -> None:
        if sequences is None:
            request = encode_produce_request(topic, batches)
        else:
            request = encode_produce_request(topic, batches, producer_id, producer_epoch, sequences)
        expected = len(batches)

        def on_response(response: pb.ProduceResponse | None, error: LogsvcError | None) -> None:
            if error is not None or response is None:
                done(None, error or InternalError("produce returned no response"))
            elif len(response.appends) != expected:
                done(None, InternalError(f"produce of {expected} batches was answered with {len(response.appends)}"))
            else:
                done([a.base_offset for a in response.appends], None)

        if wait:  # on this thread: over the stream, else a blocking call (no hand-off from gRPC's thread)
            try:
                response = self._stream.call(request)
                if response is None:
                    response = channel.call(self._produce, request, self._timeout_s)
            except LogsvcError as e:
                on_response(None, e)
            else:
                on_response(response, None)
            return
        self._call_thread.ensure()
        channel.call_async(self._produce, request, self._timeout_s, on_response)

    def init_producer(self, producer_id: int, producer_epoch: int) -> tuple[int, int]:
        request = build(pb.InitProducerRequest, producer_id=producer_id, producer_epoch=producer_epoch)
        try:
            response = channel.call(self.stub.InitProducer, request, self._timeout_s)
        except InvalidRequest as e:
            if getattr(e, "status", None) != grpc.StatusCode.UNIMPLEMENTED:
                raise
            raise InvalidRequest(
                f"the broker at {self.address} does not support the idempotent producer (no InitProducer): "
                "upgrade it, or use Producer(enable_idempotence=False)"
            ) from None
        return response.producer_id, response.producer_epoch

    # -- consuming ------------------------------------------------------------------------------

    def start_fetch(
        self,
        positions: Sequence[tuple[TopicPartition, int]],
        *,
        max_records: int,
        max_bytes: int,
        max_wait_ms: int,
        timeout_s: float,
    ) -> GrpcFetch:
        request = build(
            pb.FetchRequest,
            partitions=[
                build(pb.FetchPartition, topic=tp.topic, partition=tp.partition, offset=o) for tp, o in positions
            ],
            max_records=max_records,
            max_bytes=max_bytes,
            max_wait_ms=max_wait_ms,
        )
        self._call_thread.ensure()
        return GrpcFetch(channel.start(self._fetch, request, timeout_s))

    def list_offsets(
        self,
        topic: str,
        spec: str,
        timestamp_ms: int | None = None,
        partitions: Iterable[int] | None = None,
    ) -> dict[int, int]:
        request = offsets_request(topic, spec, timestamp_ms, partitions)
        response = channel.call_with_retry(self.stub.ListOffsets, request, self._retry)
        return {o.partition: o.offset for o in response.offsets}

    def commit_offsets(
        self,
        group: str,
        offsets: Sequence[tuple[TopicPartition, int]],
        *,
        member_id: str = "",
        generation: int = -1,
    ) -> None:
        commits = [build(pb.OffsetCommit, topic=tp.topic, partition=tp.partition, offset=o) for tp, o in offsets]
        request = build(
            pb.CommitOffsetsRequest, group=group, member_id=member_id, generation=generation, offsets=commits
        )
        channel.call_with_retry(self.stub.CommitOffsets, request, self._retry)

    def fetch_offsets(
        self, group: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        request = build(pb.FetchOffsetsRequest, group=group, partitions=partitions_to_pb(partitions or ()))
        if partitions is not None and not request.partitions:
            return {}
        response = channel.call_with_retry(self.stub.FetchOffsets, request, self._retry)
        out: dict[TopicPartition, CommittedOffset] = {}
        for msg in response.offsets:
            committed = committed_from_pb(msg)
            if committed is not None:
                out[TopicPartition(committed.topic, committed.partition)] = committed
        return out

    # -- group membership -----------------------------------------------------------------------

    def join_group(
        self,
        group: str,
        member_id: str,
        topics: Sequence[str],
        *,
        instance_id: str,
        session_timeout_ms: int,
        assignor: str,
        client_id: str,
        timeout_s: float,
    ) -> GroupAnswer:
        request = build(
            pb.JoinGroupRequest,
            group=group,
            member_id=member_id,
            instance_id=instance_id,
            topics=list(topics),
            session_timeout_ms=session_timeout_ms,
            assignor=assignor,
            client_id=client_id,
        )
        response = channel.call(self.stub.JoinGroup, request, timeout_s)
        return GroupAnswer(
            response.member_id,
            response.generation,
            response.heartbeat_interval_ms,
            False,
            partitions_from_pb(response.assignment),
        )

    def heartbeat(
        self, group: str, member_id: str, generation: int, owned: Iterable[TopicPartition], *, timeout_s: float
    ) -> GroupAnswer:
        request = build(
            pb.HeartbeatRequest, group=group, member_id=member_id, generation=generation, owned=partitions_to_pb(owned)
        )
        response = channel.call(self.stub.Heartbeat, request, timeout_s)
        return GroupAnswer(
            member_id,
            response.generation,
            response.heartbeat_interval_ms,
            response.rebalance_in_progress,
            partitions_from_pb(response.assignment),
        )

    def leave_group(self, group: str, member_id: str, *, timeout_s: float) -> None:
        request = build(pb.LeaveGroupRequest, group=group, member_id=member_id)
        channel.call(self.stub.LeaveGroup, request, timeout_s)


if TYPE_CHECKING:

    def _honours_the_contract(transport: GrpcTransport) -> Transport:
        """Never called: mypy checks here that GrpcTransport implements every method of the contract."""
        return transport
