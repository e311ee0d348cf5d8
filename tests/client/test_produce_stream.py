"""A thread waiting for its own record sends it over the producer's ProduceStream call
(:mod:`logsvc_client.transport.produce_stream`): same answers and errors as a Produce call, a
Produce call instead against a broker without the method, a new stream after a broker restart and
before the old one's deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer
from logsvc_client.errors import InvalidPartition, LogsvcError, TopicNotFound
from logsvc_client.security import Security
from logsvc_client.transport import channel
from logsvc_client.transport.produce_stream import ProduceStream
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.client.conftest import RestartableBroker
from tests.client.stored import stored_topic


def calls_counted(broker: Broker, method: str) -> int:
    """How many calls (ProduceStream: requests) of ``method`` the broker answered OK."""
    labels = {"method": method, "code": "OK"}
    return int(broker.metrics.registry.get_sample_value("logsvc_request_seconds_count", labels) or 0)


def request(partition: int, value: bytes, topic: str = "orders") -> pb.ProduceRequest:
    batch = codec.encode_batch([[int(time.time() * 1000), b"k", value, None]])
    return pb.ProduceRequest(topic=topic, batches=[pb.PartitionBatch(partition=partition, batch=batch)])


@pytest.fixture
def stub(broker: Broker) -> Iterator[pb_grpc.BrokerStub]:
    with Admin(broker.address) as admin:
        admin.create_topic("orders", 2)
    with grpc.insecure_channel(broker.address) as ch:
        yield pb_grpc.BrokerStub(ch)


def test_a_waiting_send_goes_over_the_stream(broker: Broker, stub: pb_grpc.BrokerStub) -> None:
    with Producer(broker.address, linger_ms=0) as producer:
        positions = [producer.send("orders", b"v%d" % i, b"k%d" % i).result() for i in range(20)]
    assert calls_counted(broker, "ProduceStream") == 20
    assert calls_counted(broker, "Produce") == 0
    with Admin(broker.address) as admin:
        stored = stored_topic(admin, "orders")
    assert sorted(r.value for r in stored) == sorted(b"v%d" % i for i in range(20))
    assert {(p.partition, p.offset) for p in positions} == {(r.partition, r.offset) for r in stored}


def test_a_producer_with_a_token_sends_it_on_the_stream_too(tmp_path: Path, start_broker: Any) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice alice-token-0123456789\n")
    tokens.chmod(0o600)
    broker = start_broker(auth_tokens_file=str(tokens))
    alice = Security(token="alice-token-0123456789")
    with Admin(broker.address, security=alice) as admin:
        admin.create_topic("orders", 1)
    with Producer(broker.address, linger_ms=0, security=alice) as producer:
        offsets = [producer.send("orders", b"v%d" % i).result().offset for i in range(5)]
    assert offsets == [0, 1, 2, 3, 4]
    assert calls_counted(broker, "ProduceStream") == 5


def test_a_refused_request_raises_what_a_produce_call_raises(stub: pb_grpc.BrokerStub) -> None:
    stream = ProduceStream(stub.ProduceStream, timeout_s=10)
    try:
        for bad in (request(9, b"x"), request(0, b"x", topic="missing")):
            with pytest.raises(LogsvcError) as over_stream:
                stream.call(bad)
            with pytest.raises(LogsvcError) as over_call:
                channel.call(stub.Produce, bad, 10)
            assert type(over_stream.value) is type(over_call.value)
            assert over_stream.value.message == over_call.value.message
            assert over_stream.value.details == over_call.value.details
            assert over_stream.value.status == over_call.value.status
            assert isinstance(over_stream.value, InvalidPartition | TopicNotFound)
        # the stream stayed open for the next request
        answer = stream.call(request(1, b"ok"))
        assert answer is not None and answer.appends[0].partition == 1
    finally:
        stream.close()


def test_a_request_never_goes_on_a_stream_past_half_its_deadline(start_broker: Any) -> None:
    # Given a broker that holds answers back for a principal over 2,000 bytes/s (after 1 s of burst)
    broker = start_broker(quota_produce_bytes_per_second=2_000)
    with Admin(broker.address) as admin:
        admin.create_topic("orders", 1)
    with grpc.insecure_channel(broker.address) as ch:
        stream = ProduceStream(pb_grpc.BrokerStub(ch).ProduceStream, timeout_s=1.2)
        try:
            first = stream.call(request(0, b"a" * 1_900))  # within the burst: answered at once
            assert first is not None
            time.sleep(0.9)
            # When a request goes 0.9 s after the stream opened and is held back about 0.6 s, past
            # the first stream's 1.2 s deadline: it goes on a new stream, so it is answered
            second = stream.call(request(0, b"b" * 2_900))
            assert second is not None and second.appends[0].base_offset == 1
            assert second.throttle_time_ms >= 300
        finally:
            stream.close()


class OlderBroker:
    """A gRPC server in front of a broker that has every Broker method but ProduceStream (as a
    broker from before it would): unary calls are passed through as bytes."""

    def __init__(self, target: str) -> None:
        self._upstream = grpc.insecure_channel(target)
        self._server = grpc.server(ThreadPoolExecutor(4))
        self._server.add_generic_rpc_handlers((self,))
        self.address = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if not method.startswith("/logsvc.v1.Broker/") or method.endswith("/ProduceStream"):
            return None  # UNIMPLEMENTED
        forward = self._upstream.unary_unary(method)

        def call(body: bytes, context: Any) -> bytes:
            try:
                return forward(body, timeout=context.time_remaining())  # type: ignore[no-any-return]
            except grpc.RpcError as e:
                context.set_trailing_metadata(e.trailing_metadata())
                context.abort(e.code(), e.details())

        return grpc.unary_unary_rpc_method_handler(call)

    def close(self) -> None:
        self._server.stop(0)
        self._upstream.close()


def test_against_a_broker_without_the_stream_waiting_sends_use_produce_calls(
    broker: Broker, stub: pb_grpc.BrokerStub
) -> None:
    older = OlderBroker(broker.address)
    try:
        with Producer(older.address, linger_ms=0) as producer:
            for i in range(10):
                producer.send("orders", b"v%d" % i, b"k%d" % i).result()
    finally:
        older.close()
    assert calls_counted(broker, "Produce") == 10
    assert calls_counted(broker, "ProduceStream") == 0
    with Admin(broker.address) as admin:
        assert sorted(r.value for r in stored_topic(admin, "orders")) == sorted(b"v%d" % i for i in range(10))


def test_after_a_broker_restart_waiting_sends_go_on_over_a_new_stream(restartable_broker: RestartableBroker) -> None:
    with Admin(restartable_broker.address) as admin:
        admin.create_topic("orders", 2)
    with Producer(restartable_broker.address, linger_ms=0) as producer:
        for i in range(5):
            producer.send("orders", b"before-%d" % i, b"k%d" % i).result()
        restartable_broker.stop()
        restartable_broker.start()
        for i in range(5):
            producer.send("orders", b"after-%d" % i, b"k%d" % i).result(timeout=None)
        assert restartable_broker.broker is not None
        assert calls_counted(restartable_broker.broker, "ProduceStream") >= 4
    with Admin(restartable_broker.address) as admin:
        values = sorted(r.value for r in stored_topic(admin, "orders"))
    assert values == sorted([b"before-%d" % i for i in range(5)] + [b"after-%d" % i for i in range(5)])


def test_a_stream_the_broker_ended_while_idle_is_not_used_again(restartable_broker: RestartableBroker) -> None:
    with Admin(restartable_broker.address) as admin:
        admin.create_topic("orders", 1)
    with grpc.insecure_channel(restartable_broker.address) as ch:
        stream = ProduceStream(pb_grpc.BrokerStub(ch).ProduceStream, timeout_s=30)
        first = stream.call(request(0, b"a"))
        assert first is not None and first.appends[0].base_offset == 0
        # Given the broker restarted while the stream sat idle (it ended the stream as it stopped)
        restartable_broker.stop()
        restartable_broker.start()
        grpc.channel_ready_future(ch).result(timeout=10)
        # Then the next request goes on a new stream, not on the ended one (which would fail it)
        second = stream.call(request(0, b"b"))
        assert second is not None and second.appends[0].base_offset == 1
        stream.close()


def test_threads_waiting_at_once_each_get_their_records_stored_once(broker: Broker, stub: pb_grpc.BrokerStub) -> None:
    # Given eight threads that each send and wait, at once, through one producer: one at a time
    # goes over the stream, the others make Produce calls meanwhile
    positions: list[tuple[int, int]] = []
    lock = threading.Lock()
    with Producer(broker.address, linger_ms=0) as producer:

        def work(k: int) -> None:
            for i in range(100):
                position = producer.send("orders", b"%d-%d" % (k, i), b"key%d" % i).result()
                with lock:
                    positions.append((position.partition, position.offset))

        threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # Then every record is stored once, at the position its future named
    with Admin(broker.address) as admin:
        stored = stored_topic(admin, "orders")
    assert len(stored) == 800
    assert sorted(positions) == sorted((r.partition, r.offset) for r in stored)
    assert {r.value for r in stored} == {b"%d-%d" % (k, i) for k in range(8) for i in range(100)}
    assert calls_counted(broker, "ProduceStream") > 0
