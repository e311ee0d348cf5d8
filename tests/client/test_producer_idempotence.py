"""The idempotent producer's sequence numbers, retries and resets, over the in-memory transport
(tests/client/fakes.py), which deduplicates by (topic, partition, producer id, epoch, sequence)
as a broker does."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from logsvc_client import Producer
from logsvc_client.errors import InvalidBatch, InvalidRequest, OutOfOrderSequence, Unavailable, UnknownProducer
from logsvc_client.records import RecordPosition
from logsvc_client.transport.grpc import GrpcTransport
from logsvc_client.transport.retry import RetryPolicy
from tests.client.fakes import FakeTransport

NEVER_MS = 600_000


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport(topics={"orders": 2, "single": 1})


def sequences_sent(transport: FakeTransport, partition: int) -> list[tuple[int, int, int]]:
    """(producer id, epoch, base sequence) of every batch sent to ``partition``, in send order."""
    return [
        (call.producer_id, call.producer_epoch, seq)
        for call in transport.calls
        for (p, _), seq in zip(call.batches, call.sequences or [], strict=True)
        if p == partition
    ]


def test_each_partitions_batches_carry_the_producer_id_and_consecutive_sequences(transport: FakeTransport) -> None:
    # Given an idempotent producer (the default)
    with Producer("fake", linger_ms=NEVER_MS, transport=transport) as producer:
        # When three rounds of records go to both partitions of a topic
        for n in (3, 1, 4):
            for p in (0, 1):
                for _ in range(n):
                    producer.send("orders", b"v", partition=p)
            producer.flush(timeout=5)
    # Then it asked for one producer id, and each partition counted its records from 0
    assert transport.init_calls == [(0, 0)]
    assert sequences_sent(transport, 0) == [(1, 0, 0), (1, 0, 3), (1, 0, 4)]
    assert sequences_sent(transport, 1) == [(1, 0, 0), (1, 0, 3), (1, 0, 4)]


def test_a_lost_answer_is_retried_with_the_same_sequence_and_resolves_to_the_first_offsets(
    transport: FakeTransport,
) -> None:
    # Given a transport that stores the next request and then loses its answer
    transport.lose_answers = 1
    with Producer("fake", linger_ms=NEVER_MS, retry_backoff_ms=1, transport=transport) as producer:
        # When records are sent
        futures = [producer.send("single", b"v%d" % i) for i in range(5)]
        producer.flush(timeout=5)
    # Then the retry carried the same sequence, the records are stored once, and the futures
    # point at the first (and only) copy
    assert sequences_sent(transport, 0) == [(1, 0, 0), (1, 0, 0)]
    assert [r.value for r in transport.records("single", 0)] == [b"v%d" % i for i in range(5)]
    assert [f.result(timeout=1) for f in futures] == [RecordPosition(0, i) for i in range(5)]


def test_without_idempotence_a_lost_answer_stores_the_batch_twice(transport: FakeTransport) -> None:
    transport.lose_answers = 1
    with Producer(
        "fake", linger_ms=NEVER_MS, retry_backoff_ms=1, transport=transport, enable_idempotence=False
    ) as producer:
        future = producer.send("single", b"v")
        producer.flush(timeout=5)
    assert transport.init_calls == [] and transport.calls[0].sequences is None
    assert len(transport.records("single", 0)) == 2
    assert future.result(timeout=1) == RecordPosition(0, 1)


@pytest.mark.parametrize(
    "error",
    [InvalidBatch("refused"), OutOfOrderSequence("gap"), Unavailable("down")],
    ids=["refused", "out-of-order", "retries-exhausted"],
)
def test_a_batch_that_fails_for_good_restarts_its_partition_under_the_next_epoch(
    transport: FakeTransport, error: Exception
) -> None:
    # Given a producer that stored a batch on each partition
    with Producer("fake", linger_ms=NEVER_MS, retries=0, retry_backoff_ms=1, transport=transport) as producer:
        producer.send("orders", b"a", partition=0)
        producer.send("orders", b"a", partition=1)
        producer.flush(timeout=5)
        # When partition 0's next batch fails for good
        transport.fail_next(error)  # type: ignore[arg-type]
        failed = producer.send("orders", b"b", partition=0)
        producer.flush(timeout=5)
        # Then its future has the error
        assert type(failed.exception(timeout=1)) is type(error)
        # And the next batches start at sequence 0 under the next epoch (partition 0 at once,
        # partition 1 as soon as it starts afresh), and are stored
        after = [producer.send("orders", b"c", partition=p) for p in (0, 1)]
        producer.flush(timeout=5)
    assert [f.result(timeout=1).offset for f in after] == [1, 1]
    assert transport.init_calls == [(0, 0), (1, 0)]
    assert sequences_sent(transport, 0) == [(1, 0, 0), (1, 0, 1), (1, 1, 0)]
    assert sequences_sent(transport, 1) == [(1, 0, 0), (1, 1, 0)]


def test_an_unknown_producer_is_sent_again_from_sequence_0_under_the_next_epoch(transport: FakeTransport) -> None:
    # Given a producer whose state the broker forgot after its first batch
    with Producer("fake", linger_ms=NEVER_MS, retry_backoff_ms=1, transport=transport) as producer:
        producer.send("single", b"a")
        producer.flush(timeout=5)
        transport.fail_next(UnknownProducer("expired"))
        # When its next batch is refused as unknown
        future = producer.send("single", b"b")
        producer.flush(timeout=5)
    # Then it was sent again, from sequence 0 under the next epoch, and stored once
    assert future.result(timeout=1) == RecordPosition(0, 1)
    assert sequences_sent(transport, 0) == [(1, 0, 0), (1, 0, 1), (1, 1, 0)]
    assert [r.value for r in transport.records("single", 0)] == [b"a", b"b"]


def test_a_broker_that_cannot_give_a_producer_id_yet_is_retried_like_a_send(transport: FakeTransport) -> None:
    # Given a transport whose InitProducer is unavailable twice
    answers = iter([Unavailable("down"), Unavailable("down")])
    init = transport.init_producer

    def flaky_init(producer_id: int, epoch: int) -> tuple[int, int]:
        error = next(answers, None)
        if error is not None:
            raise error
        return init(producer_id, epoch)

    transport.init_producer = flaky_init  # type: ignore[method-assign]
    # When a record is sent, Then it is stored once the broker answers
    with Producer("fake", linger_ms=0, retry_backoff_ms=1, transport=transport) as producer:
        assert producer.send("single", b"v").result(timeout=5) == RecordPosition(0, 0)
    assert sequences_sent(transport, 0) == [(1, 0, 0)]


def test_a_broker_without_init_producer_is_named_with_the_way_out() -> None:
    # Given a gRPC server that implements no logsvc method (as a broker older than InitProducer)
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    transport = GrpcTransport(f"127.0.0.1:{port}", request_timeout_ms=5_000, retry=RetryPolicy())
    try:
        # When the producer asks it for a producer id, Then the error says what to do
        with pytest.raises(
            InvalidRequest, match=r"does not support the idempotent producer .*enable_idempotence=False"
        ):
            transport.init_producer(0, 0)
    finally:
        transport.close()
        server.stop(0)


def test_a_topic_that_grows_keeps_one_request_per_partition_and_its_sequences(transport: FakeTransport) -> None:
    # Given a broker holding its answers, and a batch of partition 0 in flight
    transport.hold = True
    with Producer("fake", linger_ms=0, retry_backoff_ms=1, transport=transport) as producer:
        first = producer.send("orders", b"a", partition=0)
        transport.wait_for_calls(1)
        # When the topic grows to 4 partitions and more records go to partition 0
        transport.topics["orders"] = 4
        producer._acc.refresh_topics()
        later = [producer.send("orders", b"b", partition=p) for p in (0, 3)]
        # (partition 0 waits for its answer; partition 3 too, as the topic has a batch in flight
        # that was not full: see the sender's partial batches)
        transport.hold = False
        transport.release()
        producer.flush(timeout=5)
        assert [[p for p, _ in call.batches] for call in transport.calls] == [[0], [0, 3]]
    # Then partition 0's records went out one request at a time, in sequence
    assert [f.result(timeout=1).offset for f in (first, *later)] == [0, 1, 0]
    assert sequences_sent(transport, 0) == [(1, 0, 0), (1, 0, 1)]
    assert sequences_sent(transport, 3) == [(1, 0, 0)]
