"""A real broker refuses every batch off the spec before acknowledging it (issue 8): each listed
case over gRPC, with the C walker and with the pure-Python fallback, and a seeded fuzz of 20,000
mutated batches whose every one is either refused with INVALID_ARGUMENT and the check's message,
or acknowledged and read back by the Python Consumer exactly as sent. Never INTERNAL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from logsvc.server.app import Broker, create_server
from logsvc_client import Consumer, TopicPartition
from logsvc_client.errors import InvalidBatch
from logsvc_wire import batch as codec
from logsvc_wire import record_check
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.batch_mutations import T0, Case, MiB, by_hand, cases, corpus, good, of_records, packb, zstd_bomb
from tests.conftest import BrokerProcess, broker_settings

CASES = cases()
FUZZ_SEED = 8_008
FUZZ_BATCHES = 20_000
FUZZ_PARTITIONS = 8
IN_FLIGHT = 32


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the module (durability "os": what is measured here is the check, not fsync)."""
    b = create_server(broker_settings(tmp_path_factory.mktemp("validation") / "data", durability="os"))
    try:
        yield b
    finally:
        b.stop(grace_s=1)


@pytest.fixture(scope="module")
def shared_stub(shared_broker: Broker) -> Iterator[pb_grpc.BrokerStub]:
    with grpc.insecure_channel(shared_broker.address) as channel:
        yield pb_grpc.BrokerStub(channel)


@pytest.fixture(params=["c", "python"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The broker (in this process) checks with the C walker, then with the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(codec, "check", record_check.check_py)
    elif record_check.check_c is None:
        pytest.fail("the C extension logsvc_wire._codec was not built (pip install -e . builds it)")
    return str(request.param)


_topics = iter(range(1_000_000))


def new_topic(stub: pb_grpc.BrokerStub, partitions: int = 1, **config: str) -> str:
    name = f"v{next(_topics)}"
    stub.CreateTopic(pb.CreateTopicRequest(name=name, partitions=partitions, config=config))
    return name


def next_offset(stub: pb_grpc.BrokerStub, topic: str, partition: int = 0) -> int:
    return stub.DescribeTopic(pb.DescribeTopicRequest(name=topic)).partitions[partition].next_offset


def produce(stub: pb_grpc.BrokerStub, topic: str, data: bytes, partition: int = 0) -> pb.ProduceResponse:
    return stub.Produce(pb.ProduceRequest(topic=topic, batches=[pb.PartitionBatch(partition=partition, batch=data)]))


def refusal(stub: pb_grpc.BrokerStub, topic: str, data: bytes) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        produce(stub, topic, data)
    return caught.value


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_listed_bad_batch_is_invalid_argument_naming_it_and_the_offset_does_not_move(
    shared_stub: pb_grpc.BrokerStub, implementation: str, case: Case
) -> None:
    # Given a partition that already holds one good batch
    topic = new_topic(shared_stub)
    produce(shared_stub, topic, of_records(good()))
    # When a producer sends the bad batch
    err = refusal(shared_stub, topic, case.data)
    # Then it is refused as INVALID_ARGUMENT, naming the partition and what is wrong, and nothing moved
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(err.trailing_metadata() or ()).get("logsvc-error") == "invalid_batch"
    message = err.details() or ""
    assert message.startswith(f"invalid record batch for {topic}/0: "), message
    assert re.search(case.match, message), message
    assert "Traceback" not in message
    assert next_offset(shared_stub, topic) == 5


def test_a_bomb_is_refused_under_the_topics_own_max_uncompressed_batch_bytes(shared_stub: pb_grpc.BrokerStub) -> None:
    # Given a topic that lets a batch inflate to 1 MiB
    topic = new_topic(shared_stub, max_uncompressed_batch_bytes=str(MiB), max_batch_bytes=str(MiB))
    # When a zstd frame that inflates to 64 MiB is sent, and a batch that inflates to less than 1 MiB
    err = refusal(shared_stub, topic, by_hand(zstd_bomb(False), 1, T0, T0, attributes=2 << 1))
    fits = of_records([[T0, None, bytes(900_000), None]], compress="zstd")
    produce(shared_stub, topic, fits)
    # Then the bomb is refused naming the topic's limit and the other is stored
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "inflates to more than 1048576 bytes, more than the topic's max_uncompressed_batch_bytes of 1048576" in (
        err.details() or ""
    )
    assert next_offset(shared_stub, topic) == 1


def test_produce_records_with_a_timestamp_past_9999_is_invalid_argument_naming_its_index_in_the_request(
    shared_stub: pb_grpc.BrokerStub,
) -> None:
    # Given three records for two partitions, the third (the second of partition 1) dated past 9999
    topic = new_topic(shared_stub, partitions=2)
    records = [
        pb.Record(value=b"a", partition=0),
        pb.Record(value=b"b", partition=1),
        pb.Record(value=b"c", partition=1, timestamp_ms=1 << 62),
    ]
    # When they are produced one by one through the broker's convenience path
    with pytest.raises(grpc.RpcError) as caught:
        shared_stub.ProduceRecords(pb.ProduceRecordsRequest(topic=topic, records=records))
    # Then the request is refused naming the record by its place in the request, and nothing is stored
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"record 2: timestamp_ms {1 << 62} is out of range" in (caught.value.details() or "")
    assert next_offset(shared_stub, topic, 0) == next_offset(shared_stub, topic, 1) == 0


def test_a_log_append_time_topic_still_stamps_batches_the_check_let_through(
    shared_broker: Broker, shared_stub: pb_grpc.BrokerStub
) -> None:
    # Given a LogAppendTime topic; the client may not set the bit, the broker sets it after the check
    topic = new_topic(shared_stub, timestamp_type="LogAppendTime")
    appended = produce(shared_stub, topic, of_records(good())).appends[0]
    # Then the stored batch carries the bit and the broker's time, and reads back with it
    with Consumer(shared_broker.address) as consumer:
        consumer.assign([TopicPartition(topic, 0)])
        records = consume(consumer, 5)
    assert {r.timestamp_ms for r in records} == {appended.log_append_time_ms}
    assert [r.key for r in records] == [row[1] for row in good()]


def test_the_validate_records_setting_skips_only_the_per_record_walk(tmp_path: Path) -> None:
    # Given a broker started with validate_records=false (the bench's knob)
    broker = create_server(broker_settings(tmp_path / "data", validate_records=False))
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            topic = new_topic(stub)
            # Then a str key gets through, but a bad CRC and a count bomb still do not
            produce(stub, topic, of_records([[T0, "k", b"v", None]]))
            for bad in (
                by_hand(packb(good()), 5, T0, T0 + 4, crc=1),
                by_hand(b"\xdd\xff\xff\xff\xff", 0xFFFFFFFF, 0, 0),
            ):
                assert refusal(stub, topic, bad).code() == grpc.StatusCode.INVALID_ARGUMENT
            assert next_offset(stub, topic) == 1
    finally:
        broker.stop(grace_s=1)


def consume(consumer: Consumer, expected: int) -> list[Any]:
    records: list[Any] = []
    while len(records) < expected:
        got = consumer.poll(timeout_ms=5_000)
        assert got, f"no records after {len(records)} of {expected}"
        records += got
    return records


@pytest.fixture
def broker_child(tmp_path: Path) -> Iterator[BrokerProcess]:
    """`logsvc serve` as deployed (its own process and GIL, so the client's work runs beside it)."""
    proc = BrokerProcess(tmp_path / "data", "--durability", "os").start()
    try:
        yield proc
    finally:
        assert proc.terminate() == 0, proc.stderr_text()
        assert "Traceback" not in proc.stderr_text()


@pytest.fixture
def child_stub(broker_child: BrokerProcess) -> Iterator[pb_grpc.BrokerStub]:
    with grpc.insecure_channel(broker_child.address) as channel:
        yield pb_grpc.BrokerStub(channel)


def test_a_fuzz_of_20000_mutated_batches_is_refused_with_a_message_or_read_back_exactly_as_sent(
    broker_child: BrokerProcess, child_stub: pb_grpc.BrokerStub
) -> None:
    # Given 20,000 batches, valid or broken (bit flips, truncation, wrong counts, wrong types,
    # compression bombs, header timestamps that disagree), and the verdict of the check here
    limit = MiB
    topic = new_topic(child_stub, FUZZ_PARTITIONS, max_batch_bytes=str(limit), max_uncompressed_batch_bytes=str(limit))
    batches = corpus(FUZZ_SEED, FUZZ_BATCHES)
    # When each is produced to the broker, one batch per request (a request is all-or-nothing)
    outcomes: list[tuple[int, bytes, Any]] = []
    in_flight: list[tuple[int, bytes, Any]] = []
    for i, data in enumerate(batches):
        p = i % FUZZ_PARTITIONS
        request = pb.ProduceRequest(topic=topic, batches=[pb.PartitionBatch(partition=p, batch=data)])
        in_flight.append((p, data, child_stub.Produce.future(request)))
        if len(in_flight) >= IN_FLIGHT:
            oldest = in_flight.pop(0)
            oldest[2].exception()  # wait for it: at most IN_FLIGHT requests at once
            outcomes.append(oldest)
    outcomes += in_flight
    expected: dict[tuple[int, int], tuple[Any, ...]] = {}
    refused = 0
    for p, data, future in outcomes:
        try:
            local = None
            codec.validate(data, limit)
        except InvalidBatch as e:
            local = e.message
        try:
            base = future.result().appends[0].base_offset
        except grpc.RpcError as err:
            # Then a refused batch is INVALID_ARGUMENT with the check's own words, never INTERNAL
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details(), data.hex())
            assert err.details() == f"invalid record batch for {topic}/{p}: {local}", data.hex()
            refused += 1
            continue
        assert local is None, (local, data.hex())
        for i, row in enumerate(codec.unpack_payload(data)):
            expected[(p, base + i)] = tuple(row)
    assert 0 < refused < FUZZ_BATCHES and expected
    # And every acknowledged batch is read back by the Consumer exactly as it was sent
    with Consumer(broker_child.address, max_poll_records=100_000) as consumer:
        consumer.assign([TopicPartition(topic, p) for p in range(FUZZ_PARTITIONS)])
        records = consume(consumer, len(expected))
    got = {(r.partition, r.offset): (r.timestamp_ms, r.key, r.value, r.headers) for r in records}
    assert got == expected
    assert [next_offset(child_stub, topic, p) for p in range(FUZZ_PARTITIONS)] == [
        sum(1 for q, _ in expected if q == p) for p in range(FUZZ_PARTITIONS)
    ]
