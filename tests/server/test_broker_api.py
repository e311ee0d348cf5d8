"""The Broker gRPC API, spoken over real TCP to a broker on port 0 with LMDB in a temp dir.

These tests use the generated stub directly (no client library), as a client in another
language would.
"""

from __future__ import annotations

import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from logsvc.server.app import Broker, create_server
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.partitioner import partition_for_key
from tests.conftest import broker_settings


def make_batch(n: int, start: int = 0, ts: int = 1_700_000_000_000, value_size: int = 10) -> bytes:
    return codec.encode_batch([[ts + i, b"k%d" % (start + i), b"v" * value_size, None] for i in range(n)])


def rpc_error(call, *args) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call(*args)
    return info.value


def error_code(err: grpc.RpcError) -> str | None:
    return dict(err.trailing_metadata() or ()).get("logsvc-error")


def test_a_created_topic_is_listed_and_described_with_empty_partitions(stub: pb_grpc.BrokerStub) -> None:
    # Given a new topic with 3 partitions and a retention setting
    created = stub.CreateTopic(pb.CreateTopicRequest(name="orders", partitions=3, config={"retention_ms": "60000"}))
    # Then listing and describing it show 3 empty partitions and the config
    assert [(t.name, t.partitions) for t in stub.ListTopics(pb.ListTopicsRequest()).topics] == [("orders", 3)]
    described = stub.DescribeTopic(pb.DescribeTopicRequest(name="orders"))
    assert described.topic_id == created.topic_id
    assert described.config["retention_ms"] == "60000"
    assert [(p.partition, p.log_start_offset, p.next_offset, p.record_count) for p in described.partitions] == [
        (0, 0, 0, 0),
        (1, 0, 0, 0),
        (2, 0, 0, 0),
    ]
    assert described.partitions[0].first_timestamp_ms == -1


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x" * 250, "spaces are bad", "ümlaut"])
def test_an_invalid_topic_name_is_refused_with_invalid_argument_naming_it(stub: pb_grpc.BrokerStub, name: str) -> None:
    err = rpc_error(stub.CreateTopic, pb.CreateTopicRequest(name=name, partitions=1))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert repr(name) in err.details()
    assert error_code(err) == "invalid_topic_name"
    # And nothing was created
    assert not stub.ListTopics(pb.ListTopicsRequest()).topics


@pytest.mark.parametrize("partitions", [0, 10_001])
def test_a_partition_count_out_of_range_is_refused(stub: pb_grpc.BrokerStub, partitions: int) -> None:
    err = rpc_error(stub.CreateTopic, pb.CreateTopicRequest(name="t", partitions=partitions))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(partitions) in err.details()


def test_an_unknown_topic_config_key_is_refused_naming_the_key(stub: pb_grpc.BrokerStub) -> None:
    err = rpc_error(stub.CreateTopic, pb.CreateTopicRequest(name="t", partitions=1, config={"retention_mss": "1"}))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "retention_mss" in err.details()


def test_creating_an_existing_topic_is_already_exists(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    err = rpc_error(stub.CreateTopic, pb.CreateTopicRequest(name="t", partitions=2))
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS


def test_unknown_topics_are_not_found_for_every_operation(stub: pb_grpc.BrokerStub) -> None:
    calls = [
        (stub.DescribeTopic, pb.DescribeTopicRequest(name="nope")),
        (stub.DeleteTopic, pb.DeleteTopicRequest(name="nope")),
        (stub.Produce, pb.ProduceRequest(topic="nope", batches=[pb.PartitionBatch(partition=0, batch=make_batch(1))])),
        (stub.Fetch, pb.FetchRequest(partitions=[pb.FetchPartition(topic="nope", partition=0, offset=0)])),
        (stub.ListOffsets, pb.ListOffsetsRequest(topic="nope")),
    ]
    for call, request in calls:
        err = rpc_error(call, request)
        assert err.code() == grpc.StatusCode.NOT_FOUND
        assert "nope" in err.details()


def test_produced_batches_get_dense_offsets_and_are_fetched_back_byte_for_byte(stub: pb_grpc.BrokerStub) -> None:
    # Given a topic with two partitions
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=2))
    b1, b2, b3 = make_batch(3), make_batch(5, 3), make_batch(2)
    # When batches are produced to both partitions, in one request and then another
    r1 = stub.Produce(
        pb.ProduceRequest(
            topic="t", batches=[pb.PartitionBatch(partition=0, batch=b1), pb.PartitionBatch(partition=1, batch=b3)]
        )
    )
    r2 = stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=b2)]))
    # Then offsets are dense per partition, starting at 0
    assert [(a.partition, a.base_offset) for a in r1.appends] == [(0, 0), (1, 0)]
    assert [(a.partition, a.base_offset) for a in r2.appends] == [(0, 3)]
    # And a fetch returns the stored batches as they were produced, with the partition's offsets
    fetched = stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0, offset=0)]))
    (pd,) = fetched.partitions
    assert (pd.log_start_offset, pd.next_offset) == (0, 8)
    assert [(b.base_offset, b.batch) for b in pd.batches] == [(0, b1), (3, b2)]
    # And a fetch from inside the second batch returns that batch whole
    mid = stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0, offset=5)]))
    assert [b.base_offset for b in mid.partitions[0].batches] == [3]
    records = codec.decode_records("t", 0, 3, mid.partitions[0].batches[0].batch, start_offset=5)
    assert [r.offset for r in records] == [5, 6, 7]


def test_fetch_max_bytes_returns_at_least_one_batch(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    for i in range(3):
        stub.Produce(
            pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(10, i * 10))])
        )
    one = stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0)], max_bytes=1))
    assert len(one.partitions[0].batches) == 1
    two = stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0)], max_records=11))
    assert [b.base_offset for b in two.partitions[0].batches] == [0, 10]


def test_a_fetch_outside_the_log_is_out_of_range_naming_the_valid_range(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(4))]))
    err = rpc_error(stub.Fetch, pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0, offset=99)]))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE
    assert error_code(err) == "offset_out_of_range"
    assert err.details() == "offset 99 is out of range for t/0: valid offsets are 0 to 4"


def test_a_long_poll_fetch_returns_as_soon_as_a_record_arrives(broker: Broker, stub: pb_grpc.BrokerStub) -> None:
    # Given an empty partition and a fetch waiting up to 30 s at its end (registered on the broker)
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    req = pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0, offset=0)], max_wait_ms=30_000)
    waiting = stub.Fetch.future(req, timeout=60)
    deadline = time.monotonic() + 10
    while not len(broker.service.long_polls or ()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(broker.service.long_polls or ()) == 1 and not waiting.done()
    # When a batch is produced
    produced = time.monotonic()
    stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(2))]))
    # Then the waiting fetch returns it at once (a lost wake-up would hold it for its 30 s)
    result = waiting.result(timeout=5)
    assert time.monotonic() - produced < 2
    assert [b.base_offset for b in result.partitions[0].batches] == [0]


def test_a_long_poll_with_no_data_returns_empty_after_its_wait(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    started = time.monotonic()
    resp = stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0)], max_wait_ms=300))
    assert 0.25 <= time.monotonic() - started < 3
    assert not resp.partitions[0].batches


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x01" * 10,
        make_batch(2)[:-3],  # truncated: CRC mismatch
        b"\x07" + make_batch(2)[1:],  # wrong magic
        codec.HEADER.pack(1, 0, 0, 3, 0, 0, 0) + b"\x92\xc0\xc0",  # count says 3, payload holds 2
    ],
)
def test_a_malformed_batch_is_invalid_argument_and_writes_nothing(stub: pb_grpc.BrokerStub, bad: bytes) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=2))
    err = rpc_error(
        stub.Produce,
        pb.ProduceRequest(
            topic="t",
            batches=[pb.PartitionBatch(partition=0, batch=make_batch(1)), pb.PartitionBatch(partition=1, batch=bad)],
        ),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    # And not even the good batch of the same request was written
    parts = stub.DescribeTopic(pb.DescribeTopicRequest(name="t")).partitions
    assert [p.next_offset for p in parts] == [0, 0]


def test_an_oversized_batch_is_resource_exhausted(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1, config={"max_batch_bytes": "4096"}))
    err = rpc_error(
        stub.Produce,
        pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(100, value_size=100))]),
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "4096" in err.details()


def test_a_partition_that_does_not_exist_is_invalid_argument(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=2))
    err = rpc_error(
        stub.Produce, pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=2, batch=make_batch(1))])
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "2" in err.details()


def test_produce_records_partitions_keys_like_kafka_and_keeps_null_keys_together(stub: pb_grpc.BrokerStub) -> None:
    # Given a topic with 6 partitions
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=6))
    keys = [b"alpha", b"beta", b"gamma", b"delta"]
    records = [pb.Record(key=k, value=b"v") for k in keys]
    records += [pb.Record(value=b"no key 1"), pb.Record(value=b"no key 2")]
    records.append(pb.Record(key=b"alpha", value=b"explicit", partition=5))
    records.append(pb.Record(key=b"tomb"))  # tombstone
    # When the broker partitions them
    positions = stub.ProduceRecords(pb.ProduceRecordsRequest(topic="t", records=records)).positions
    # Then keyed records follow murmur2, both null-key records share a partition, explicit wins
    assert [p.partition for p in positions[:4]] == [partition_for_key(k, 6) for k in keys]
    assert positions[4].partition == positions[5].partition
    assert positions[6].partition == 5
    # And the tombstone is stored with a null value
    tomb = positions[7]
    fetched = stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=tomb.partition)]))
    recs = [
        r
        for b in fetched.partitions[0].batches
        for r in codec.decode_records("t", tomb.partition, b.base_offset, b.batch)
        if r.offset == tomb.offset
    ]
    assert recs[0].key == b"tomb" and recs[0].value is None


def test_list_offsets_gives_earliest_latest_and_the_first_offset_at_a_time(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(5, ts=1000))]))
    stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(5, ts=2000))]))

    def offset(spec: int, ts: int = 0) -> int:
        return stub.ListOffsets(pb.ListOffsetsRequest(topic="t", spec=spec, timestamp_ms=ts)).offsets[0].offset

    assert offset(pb.ListOffsetsRequest.EARLIEST) == 0
    assert offset(pb.ListOffsetsRequest.LATEST) == 10
    assert offset(pb.ListOffsetsRequest.TIMESTAMP, 1003) == 3
    assert offset(pb.ListOffsetsRequest.TIMESTAMP, 1500) == 5
    assert offset(pb.ListOffsetsRequest.TIMESTAMP, 9999) == 10


def test_trim_moves_the_log_start_and_older_offsets_become_out_of_range(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    for i in range(3):
        stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(4, i * 4))]))
    assert stub.Trim(pb.TrimRequest(topic="t", partition=0, before_offset=6)).log_start_offset == 6
    err = rpc_error(stub.Fetch, pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0, offset=2)]))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "6" in err.details()
    resp = stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0, offset=6)]))
    assert resp.partitions[0].log_start_offset == 6
    err = rpc_error(stub.Trim, pb.TrimRequest(topic="t", partition=0, before_offset=13))
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE


def test_deleting_a_topic_removes_it_and_a_new_one_of_the_same_name_starts_at_zero(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(4))]))
    stub.DeleteTopic(pb.DeleteTopicRequest(name="t"))
    assert not stub.ListTopics(pb.ListTopicsRequest()).topics
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    assert stub.DescribeTopic(pb.DescribeTopicRequest(name="t")).partitions[0].next_offset == 0


def test_health_checking_reports_serving_for_the_broker_service(broker: Broker) -> None:
    with grpc.insecure_channel(broker.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = health.Check(health_pb2.HealthCheckRequest(service="logsvc.v1.Broker"))
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_server_reflection_lists_the_broker_service(broker: Broker) -> None:
    with grpc.insecure_channel(broker.address) as channel:
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in responses[0].list_services_response.service}
    assert "logsvc.v1.Broker" in names
    assert "grpc.health.v1.Health" in names


def test_metrics_show_produced_records_latency_and_partition_offsets(broker: Broker, stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
    stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(7))]))
    stub.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0)]))
    body = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics.port}/metrics", timeout=5).read().decode()
    assert 'logsvc_produce_records_total{topic="t"} 7.0' in body
    assert 'logsvc_fetch_records_total{topic="t"} 7.0' in body
    assert 'logsvc_partition_next_offset{partition="0",topic="t"} 7.0' in body
    assert 'logsvc_request_seconds_count{code="OK",method="Produce"} 1.0' in body
    assert "logsvc_storage_bytes" in body
    assert "logsvc_storage_write_batches_total 1.0" in body  # the produced batch (create_topic wrote none)
    assert "logsvc_storage_commits_total" in body


def test_produce_to_an_unknown_topic_creates_it_when_auto_create_is_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    b = create_server(broker_settings(tmp_path / "d", auto_create_topics=True, default_partitions=3))
    try:
        with grpc.insecure_channel(b.address) as channel:
            s = pb_grpc.BrokerStub(channel)
            s.ProduceRecords(pb.ProduceRecordsRequest(topic="fresh", records=[pb.Record(value=b"x")]))
            assert s.DescribeTopic(pb.DescribeTopicRequest(name="fresh")).partitions[2].partition == 2
    finally:
        b.stop(grace_s=1)


def test_a_broker_that_is_stopping_refuses_new_calls_with_unavailable(broker: Broker) -> None:
    address = broker.address
    broker.stop(grace_s=0.5)
    with grpc.insecure_channel(address) as channel:
        err = rpc_error(pb_grpc.BrokerStub(channel).ListTopics, pb.ListTopicsRequest())
    assert err.code() == grpc.StatusCode.UNAVAILABLE


def test_when_the_map_cannot_grow_produce_is_resource_exhausted_and_fetch_keeps_working(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given a broker whose LMDB map may not grow past 1 MiB
    b = create_server(broker_settings(tmp_path / "d", map_size_bytes=256 * 1024, max_map_size_bytes=1024 * 1024))
    try:
        with grpc.insecure_channel(b.address) as channel:
            s = pb_grpc.BrokerStub(channel)
            s.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
            s.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=make_batch(10))]))
            # When producing until it is full
            big = make_batch(500, value_size=1000)
            with pytest.raises(grpc.RpcError) as info:
                for _ in range(20):
                    s.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=big)]))
            # Then produce fails with RESOURCE_EXHAUSTED
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # And what was acknowledged can still be fetched
            resp = s.Fetch(pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0)], max_records=5))
            assert resp.partitions[0].batches[0].base_offset == 0
    finally:
        b.stop(grace_s=1)
