"""ProduceStream as the proto's PRODUCE STREAM section states it: each request is served as a
Produce call and answered in order; a failed request is answered with its error and the stream
goes on; the call's own status is for the whole stream (no token, the broker stopping)."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from logsvc.server.app import Broker, create_server
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.errors import InvalidPartition, from_status
from tests.conftest import broker_settings

METHOD = "/logsvc.v1.Broker/ProduceStream"


def produce(partition: int, value: bytes) -> pb.ProduceRequest:
    batch = codec.encode_batch([[int(time.time() * 1000), b"k", value, None]])
    return pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=partition, batch=batch)])


@pytest.fixture
def stub(broker: Broker) -> Iterator[pb_grpc.BrokerStub]:
    with grpc.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerStub(channel)
        stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=2))
        yield stub


def test_requests_are_answered_in_order_and_a_failed_one_leaves_the_stream_open(
    broker: Broker, stub: pb_grpc.BrokerStub
) -> None:
    # When a client sends a good request, one to a partition the topic lacks, then another good one
    requests = [produce(0, b"first"), produce(7, b"lost"), produce(1, b"second"), produce(0, b"third")]
    answers = list(stub.ProduceStream(iter(requests), timeout=10))

    # Then each is answered, in order: the bad one with what Produce would have failed with
    assert [a.WhichOneof("result") for a in answers] == ["response", "error", "response", "response"]
    error = answers[1].error
    assert (error.status, error.code) == (grpc.StatusCode.INVALID_ARGUMENT.value[0], "invalid_partition")
    rebuilt = from_status(error.status, error.message, error.code, error.details_json)
    assert isinstance(rebuilt, InvalidPartition)
    assert rebuilt.details == {"topic": "t", "partition": 7, "partitions": 2}
    assert "7" in rebuilt.message
    # and the good ones are stored at the offsets their answers name
    offsets = [
        (a.response.appends[0].partition, a.response.appends[0].base_offset) for a in answers if a.response.appends
    ]
    assert offsets == [(0, 0), (1, 0), (0, 1)]
    fetched = stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0, offset=0)]))
    values = [r[2] for b in fetched.partitions[0].batches for r in codec.unpack_payload(b.batch)]
    assert values == [b"first", b"third"]
    # and /metrics counts each request under ProduceStream
    body = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics.port}/metrics", timeout=5).read().decode()
    assert 'logsvc_request_seconds_count{code="OK",method="ProduceStream"} 3.0' in body
    assert 'logsvc_request_seconds_count{code="INVALID_ARGUMENT",method="ProduceStream"} 1.0' in body


def test_a_request_that_is_not_protobuf_is_answered_invalid_argument(broker: Broker, stub: pb_grpc.BrokerStub) -> None:
    with grpc.insecure_channel(broker.address) as channel:
        raw = channel.stream_stream(METHOD, response_deserializer=pb.ProduceStreamResponse.FromString)
        good = produce(0, b"ok").SerializeToString()
        answers = list(raw(iter([b"\xff\xff\xff not protobuf", good]), timeout=10))
    assert answers[0].error.status == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert answers[1].response.appends[0].base_offset == 0


def test_a_stream_without_a_known_token_is_refused_before_any_request_is_read(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice alice-token-0123456789\n")
    tokens.chmod(0o600)
    b = create_server(broker_settings(tmp_path / "data", auth_tokens_file=str(tokens)))
    try:
        with grpc.insecure_channel(b.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            with pytest.raises(grpc.RpcError) as refused:
                list(stub.ProduceStream(iter([produce(0, b"x")]), metadata=(("authorization", "Bearer wrong"),)))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # with alice's token the stream is hers: her requests are written
            alice = (("authorization", "Bearer alice-token-0123456789"),)
            stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1), metadata=alice)
            (answer,) = stub.ProduceStream(iter([produce(0, b"x")]), metadata=alice, timeout=10)
            assert answer.response.appends[0].base_offset == 0
    finally:
        b.stop(grace_s=1)


def test_an_idle_stream_ends_unavailable_as_the_broker_stops_without_holding_the_grace_period(
    data_dir: Path,
) -> None:
    b = create_server(broker_settings(data_dir))
    stopped = False
    try:
        with grpc.insecure_channel(b.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
            # Given an open stream that has been answered once and now sends nothing
            more = threading.Event()

            def requests() -> Iterator[pb.ProduceRequest]:
                yield produce(0, b"x")
                more.wait(30)

            answers = stub.ProduceStream(requests(), timeout=30)
            assert next(answers).response.appends[0].base_offset == 0
            # When the broker stops with a long grace period
            started = time.monotonic()
            b.stop(grace_s=20)
            stopped = True
            # Then it does not wait for the idle stream, which ends UNAVAILABLE
            assert time.monotonic() - started < 5
            with pytest.raises(grpc.RpcError) as ended:
                next(answers)
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            more.set()
    finally:
        if not stopped:
            b.stop(grace_s=1)


def test_a_principal_over_its_produce_quota_has_its_stream_answers_held_back(tmp_path: Path) -> None:
    b = create_server(broker_settings(tmp_path / "data", quota_produce_bytes_per_second=4_000))
    try:
        with grpc.insecure_channel(b.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
            started = time.monotonic()
            answers = list(stub.ProduceStream(iter([produce(0, b"v" * 3_000) for _ in range(4)]), timeout=30))
        # 12 KB at 4 KB/s: the stream's answers were held back as Produce's would be, and say so
        assert all(a.WhichOneof("result") == "response" for a in answers)
        assert sum(a.response.throttle_time_ms for a in answers) >= 1_000
        assert time.monotonic() - started >= 1.0
    finally:
        b.stop(grace_s=1)
