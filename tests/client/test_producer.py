"""Producer batching, partitioning, retries and buffer limits, over an in-memory transport; what
the producer does the same on every transport (partitioning, the checks of ``send``, close)
also on a real logsvc broker and a Kafka cluster (the ``cluster`` fixture)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from logsvc_client import Admin, Producer
from logsvc_client.errors import (
    BatchTooLarge,
    BufferFull,
    FailedPrecondition,
    InvalidBatch,
    InvalidPartition,
    InvalidRequest,
    Timeout,
    TopicNotFound,
    Unavailable,
)
from logsvc_client.records import RecordPosition
from logsvc_wire import batch as codec
from logsvc_wire.partitioner import partition_for_key
from tests.client.fakes import FakeTransport
from tests.client.stored import stored_records
from tests.fixtures.clusters import Cluster

NEVER_MS = 600_000  # a linger that never passes within a test: only flush/close/size send


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport(topics={"orders": 4, "single": 1, "other": 1})


@pytest.fixture
def producer(transport: FakeTransport) -> Iterator[Producer]:
    p = Producer("fake", linger_ms=NEVER_MS, transport=transport, retry_backoff_ms=1)
    yield p
    p.close(timeout=5)


@pytest.fixture
def orders(cluster: Cluster) -> str:
    """A fresh 4-partition topic on the test's cluster."""
    return cluster.create_topic(4, "orders")


@pytest.fixture
def real_producer(cluster: Cluster) -> Iterator[Producer]:
    """A producer on the test's cluster (logsvc or Kafka), records held until flushed."""
    p = Producer(cluster.address, linger_ms=NEVER_MS, retry_backoff_ms=1)
    yield p
    p.close(timeout=5)


def test_keyed_records_land_on_kafkas_partition_with_dense_offsets_in_send_order(
    real_producer: Producer, cluster: Cluster, orders: str
) -> None:
    # Given keyed records sent to a 4-partition topic
    keys = [b"key-%d" % i for i in range(200)]
    futures = [real_producer.send(orders, b"v%d" % i, key) for i, key in enumerate(keys)]
    # When they are flushed
    real_producer.flush(timeout=10)
    # Then each record is on Kafka's murmur2 partition for its key, offsets dense in send order
    expected_next = dict.fromkeys(range(4), 0)
    for key, future in zip(keys, futures, strict=True):
        p = partition_for_key(key, 4)
        assert future.partition == p
        assert future.result(timeout=1) == RecordPosition(p, expected_next[p])
        expected_next[p] += 1
    with Admin(cluster.address) as admin:
        stored = stored_records(admin, orders, partition_for_key(keys[0], 4))
    assert stored[0].key == keys[0] and stored[0].value == b"v0"


def test_an_explicit_partition_wins_over_the_key(real_producer: Producer, orders: str) -> None:
    # Given a key that hashes elsewhere, sent with an explicit partition
    key = next(k for k in (b"k%d" % i for i in range(100)) if partition_for_key(k, 4) != 2)
    # When it is sent to partition 2
    future = real_producer.send(orders, b"v", key, partition=2)
    real_producer.flush(timeout=10)
    # Then it is stored on partition 2
    assert future.partition == 2
    assert future.result().partition == 2


@pytest.mark.parametrize("partition", [-1, 4, "1", 1.0])
def test_a_partition_outside_the_topic_is_refused_at_send(
    real_producer: Producer, orders: str, partition: object
) -> None:
    with pytest.raises(InvalidPartition, match=f"partition {partition!r} does not exist in {orders}"):
        real_producer.send(orders, b"v", partition=partition)  # type: ignore[arg-type]


def test_an_unknown_topic_raises_topic_not_found_at_send(real_producer: Producer) -> None:
    with pytest.raises(TopicNotFound, match="nope"):
        real_producer.send("nope", b"v")


def test_records_without_a_key_stick_to_one_partition_per_batch(producer: Producer) -> None:
    # Given records without a key, sent before one flush
    first = [producer.send("orders", b"v%d" % i) for i in range(50)]
    producer.flush(timeout=5)
    # When more are sent after that batch went out
    second = [producer.send("orders", b"w%d" % i) for i in range(50)]
    producer.flush(timeout=5)
    # Then every record of a batch shares a partition, and the next batch moved to another one
    assert len({f.result().partition for f in first}) == 1
    assert len({f.result().partition for f in second}) == 1
    assert first[0].result().partition != second[0].result().partition


def test_str_values_and_keys_are_sent_as_utf8_and_a_none_value_is_a_tombstone(
    producer: Producer, transport: FakeTransport
) -> None:
    # Given a str record with headers and a tombstone, on the single-partition topic
    producer.send("single", "välue", "kéy", headers=[("trace", b"t1"), ("src", "svc")], timestamp_ms=1234)
    producer.send("single", None, b"gone", headers={"why": b"deleted"})
    # When flushed
    producer.flush(timeout=5)
    # Then the stored records carry UTF-8 bytes, the headers, the timestamp and a None value
    first, second = transport.records("single", 0)
    assert (first.key, first.value, first.timestamp_ms) == ("kéy".encode(), "välue".encode(), 1234)
    assert first.headers == (("trace", b"t1"), ("src", b"svc"))
    assert (second.key, second.value, second.headers) == (b"gone", None, (("why", b"deleted"),))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"value": 12}, InvalidRequest),
        ({"value": b"v", "key": 3.5}, InvalidRequest),
        ({"value": b"v", "headers": [("n", None)]}, InvalidRequest),
        ({"value": b"v", "headers": "not-pairs"}, InvalidRequest),
        ({"value": b"v", "timestamp_ms": -1}, InvalidRequest),
    ],
)
def test_a_malformed_record_is_refused_at_send(
    real_producer: Producer, orders: str, kwargs: dict[str, object], error: type
) -> None:
    with pytest.raises(error):
        real_producer.send(orders, **kwargs)  # type: ignore[arg-type]


def test_batches_are_cut_at_max_batch_bytes(transport: FakeTransport) -> None:
    # Given a producer with 4 KiB batches
    with Producer("fake", linger_ms=NEVER_MS, max_batch_bytes=4096, transport=transport) as producer:
        # When 100 records of 200 bytes go to one partition
        futures = [producer.send("single", b"x" * 200) for _ in range(100)]
        producer.flush(timeout=5)
    # Then they were stored in several batches, none larger than 4 KiB, and none lost
    batches = transport.log[("single", 0)]
    assert len(batches) >= 5
    assert all(len(data) <= 4096 for _, data in batches)
    assert [f.result().offset for f in futures] == list(range(100))


def test_ready_batches_of_one_topic_travel_in_one_request(producer: Producer, transport: FakeTransport) -> None:
    # Given records for all four partitions, waiting in their batches
    for p in range(4):
        producer.send("orders", b"v", partition=p)
    # When flushed
    producer.flush(timeout=5)
    # Then one produce request carried a batch for each partition
    assert len(transport.calls) == 1
    assert sorted(p for p, _ in transport.calls[0].batches) == [0, 1, 2, 3]


def test_a_record_is_sent_once_linger_ms_passes_without_a_flush(transport: FakeTransport) -> None:
    with Producer("fake", linger_ms=20, transport=transport) as producer:
        # When one record is sent and nothing else happens
        future = producer.send("orders", b"v", b"k")
        # Then it is acknowledged after about linger_ms
        assert future.result(timeout=5).offset == 0


def test_unavailable_is_retried_and_partition_order_is_kept(producer: Producer, transport: FakeTransport) -> None:
    # Given a broker that is unavailable for the next two requests
    transport.fail_next(Unavailable("restarting"), Unavailable("restarting"))
    # When records are sent and flushed
    futures = [producer.send("single", b"v%d" % i) for i in range(10)]
    producer.flush(timeout=5)
    # Then they were retried, stored once, in send order
    assert len(transport.calls) == 3
    assert [f.result().offset for f in futures] == list(range(10))
    assert [r.value for r in transport.records("single", 0)] == [b"v%d" % i for i in range(10)]


def test_a_non_retriable_error_fails_the_records_of_that_batch(producer: Producer, transport: FakeTransport) -> None:
    # Given a broker that refuses the next request as an invalid batch
    transport.fail_next(InvalidBatch("bad crc"))
    future = producer.send("single", b"v")
    producer.flush(timeout=5)
    # Then the record's future raises that error, not retried
    with pytest.raises(InvalidBatch, match="bad crc"):
        future.result()
    assert isinstance(future.exception(), InvalidBatch)
    assert len(transport.calls) == 1


def test_retries_give_up_after_the_configured_count(transport: FakeTransport) -> None:
    transport.fail_next(*[Unavailable("down")] * 3)
    with Producer("fake", linger_ms=0, retries=2, retry_backoff_ms=1, transport=transport) as producer:
        future = producer.send("single", b"v")
        with pytest.raises(Unavailable, match="down"):
            future.result(timeout=5)
    assert len(transport.calls) == 3


def test_a_partition_never_has_two_batches_in_flight(transport: FakeTransport) -> None:
    # Given a broker that holds its answers, and 1 KiB batches
    transport.hold = True
    with Producer("fake", linger_ms=0, max_batch_bytes=1024, transport=transport) as producer:
        first = producer.send("single", b"a" * 600)
        transport.wait_for_calls(1)
        # When more batches of the same partition fill up while the first is in flight
        rest = [producer.send("single", b"b" * 600) for _ in range(3)]
        # (a record for another topic, sent after them: once it has gone, the sender has had its
        # chance to send the ready batches of "single")
        producer.send("other", b"c" * 600)
        transport.wait_for_calls(2)
        # Then nothing more was sent to that partition until the first answer, then the rest
        # went in one request
        assert [c.topic for c in transport.calls] == ["single", "other"]
        transport.release()
        transport.wait_for_calls(3)
        assert transport.calls[2].topic == "single" and len(transport.calls[2].batches) == 3
        transport.hold = False
        transport.release()
        assert first.result(timeout=5).offset == 0
        assert [f.result(timeout=5).offset for f in rest] == [1, 2, 3]


def test_a_full_buffer_raises_buffer_full_in_raise_mode(transport: FakeTransport) -> None:
    # Given a held broker and a 4 KiB buffer that raises when full
    transport.hold = True
    with Producer(
        "fake", linger_ms=0, max_batch_bytes=1024, max_buffer_bytes=4096, buffer_full="raise", transport=transport
    ) as producer:
        # When more than 4 KiB of records are sent
        sent = 0
        with pytest.raises(BufferFull, match="max_buffer_bytes=4096"):
            for _ in range(100):
                producer.send("orders", b"x" * 500, partition=sent % 4)
                sent += 1
        # Then the buffer held what fits, and frees up once the broker answers
        assert 4 <= sent < 9
        transport.hold = False
        transport.release()
        producer.flush(timeout=5)
        producer.send("orders", b"x" * 500).result(timeout=5)


def test_a_full_buffer_blocks_send_until_space_frees_in_block_mode(transport: FakeTransport) -> None:
    transport.hold = True
    with Producer(
        "fake", linger_ms=0, max_batch_bytes=1024, max_buffer_bytes=2048, buffer_timeout_ms=10_000, transport=transport
    ) as producer:
        # Given a buffer filled by records the broker has not answered
        producer.send("single", b"x" * 900)
        transport.wait_for_calls(1)
        producer.send("single", b"x" * 900)
        # When the broker answers a moment after a blocking send started
        timer = threading.Timer(0.2, lambda: (setattr(transport, "hold", False), transport.release()))
        timer.start()
        started = time.monotonic()
        future = producer.send("single", b"y" * 900)
        # Then send waited for the space instead of raising, and the record went out
        assert time.monotonic() - started >= 0.1
        assert future.result(timeout=5).offset == 2
        timer.join()


def test_a_blocked_send_raises_buffer_full_after_buffer_timeout_ms(transport: FakeTransport) -> None:
    transport.hold = True
    producer = Producer(
        "fake", linger_ms=0, max_batch_bytes=1024, max_buffer_bytes=2048, buffer_timeout_ms=100, transport=transport
    )
    producer.send("single", b"x" * 900)
    producer.send("single", b"x" * 900)
    with pytest.raises(BufferFull, match="buffer_timeout_ms=100"):
        producer.send("single", b"x" * 900)
    transport.hold = False
    transport.release()
    producer.close(timeout=5)


def test_a_record_larger_than_the_buffer_is_refused_at_once(transport: FakeTransport) -> None:
    with (
        Producer("fake", max_batch_bytes=1024, max_buffer_bytes=2048, transport=transport) as producer,
        pytest.raises(BatchTooLarge),
    ):
        producer.send("single", b"x" * 5000)


def test_flush_raises_timeout_when_the_broker_does_not_answer(transport: FakeTransport) -> None:
    transport.hold = True
    producer = Producer("fake", linger_ms=0, transport=transport)
    future = producer.send("single", b"v")
    with pytest.raises(Timeout):
        producer.flush(timeout=0.1)
    assert not future.done()
    # When the producer is closed without waiting, the record fails as unavailable
    producer.close(timeout=0)
    assert isinstance(future.exception(timeout=1), Unavailable)


def test_send_after_close_is_refused(real_producer: Producer, orders: str) -> None:
    real_producer.send(orders, b"v")
    real_producer.close()
    with pytest.raises(FailedPrecondition, match="closed"):
        real_producer.send(orders, b"v")


def test_close_sends_what_is_buffered(real_producer: Producer, orders: str) -> None:
    futures = [real_producer.send(orders, b"v", b"k%d" % i) for i in range(20)]
    real_producer.close(timeout=10)
    assert all(f.done() and f.exception() is None for f in futures)


def test_close_closes_the_transport(transport: FakeTransport) -> None:
    producer = Producer("fake", linger_ms=NEVER_MS, transport=transport)
    producer.send("orders", b"v")
    producer.close(timeout=5)
    assert transport.closed


def test_concurrent_senders_lose_no_record(transport: FakeTransport) -> None:
    # Given four threads sending to one partition through one producer
    with Producer("fake", linger_ms=1, max_batch_bytes=2048, transport=transport) as producer:

        def work(n: int) -> None:
            for i in range(500):
                producer.send("single", b"%d-%d" % (n, i))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        producer.flush(timeout=10)
    # Then every record was stored exactly once, each thread's in its own send order
    values = [r.value for r in transport.records("single", 0)]
    assert len(values) == 2000
    for n in range(4):
        mine = [v for v in values if v is not None and v.startswith(b"%d-" % n)]
        assert mine == [b"%d-%d" % (n, i) for i in range(500)]


def test_encoded_batches_follow_the_wire_format(producer: Producer, transport: FakeTransport) -> None:
    producer.send("single", b"v1", b"k", timestamp_ms=5)
    producer.send("single", b"v2", b"k", timestamp_ms=3)
    producer.flush(timeout=5)
    ((_, data),) = transport.log[("single", 0)]
    header = codec.validate(data)
    assert (header.record_count, header.first_timestamp_ms, header.max_timestamp_ms) == (2, 5, 5)


@pytest.mark.parametrize(
    "kwargs",
    [{"linger_ms": -1}, {"buffer_full": "drop"}, {"max_in_flight": 0}, {"max_batch_bytes": 10}],
)
def test_bad_options_are_refused(cluster: Cluster, kwargs: dict[str, object]) -> None:
    from logsvc_client.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match=next(iter(kwargs))):
        Producer(cluster.address, **kwargs)  # type: ignore[arg-type]
