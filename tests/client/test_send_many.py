"""Producer.send_many: a batch of records handed over in one call, exactly as one send() each.

The equivalence with ``send`` is checked on the accumulator itself (seeded sticky partitioner,
fixed clock, no sender thread), then through the Producer over the in-memory transport; the
checks of a call and what is stored also on a real logsvc broker and a Kafka cluster (``cluster``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from logsvc_client import Admin, Producer, Record
from logsvc_client.errors import BatchTooLarge, BufferFull, FailedPrecondition, InvalidPartition, InvalidRequest
from logsvc_client.producer.accumulator import Accumulator
from logsvc_client.producer.futures import RecordFuture
from logsvc_client.records import RecordPosition
from logsvc_wire.partitioner import partition_for_key
from tests.client.accumulator_views import partition_batches, place, records
from tests.client.fakes import FakeTransport
from tests.client.stored import stored_topic
from tests.fixtures.clusters import Cluster

NEVER_MS = 600_000
T0 = 1_700_000_000_000


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport(topics={"orders": 4, "single": 1})


@pytest.fixture
def make_producer(transport: FakeTransport) -> Iterator[Callable[..., Producer]]:
    """Producers over ``transport``; at teardown the transport answers everything held and each
    producer is closed with a timeout, so a failing test does not hang in close."""
    made: list[Producer] = []

    def make(**options: Any) -> Producer:
        made.append(Producer("fake", transport=transport, retry_backoff_ms=1, **options))
        return made[-1]

    yield make
    transport.hold = False
    transport.release()
    for p in made:
        p.close(timeout=5)


@pytest.fixture
def producer(make_producer: Callable[..., Producer]) -> Producer:
    return make_producer(linger_ms=NEVER_MS)


@pytest.fixture
def orders(cluster: Cluster) -> str:
    """A fresh 4-partition topic on the test's cluster."""
    return cluster.create_topic(4, "orders")


@pytest.fixture
def real_producer(cluster: Cluster) -> Iterator[Producer]:
    """A producer on the test's cluster (logsvc or Kafka), records held until flushed."""
    p = Producer(cluster.address, linger_ms=NEVER_MS, max_batch_bytes=1024, max_buffer_bytes=4096)
    yield p
    p.close(timeout=5)


def accumulator(**kwargs: object) -> Accumulator:
    """An accumulator over a 4-partition topic, its sticky partitioner seeded, its clock stopped."""
    return Accumulator(
        {"orders": 4}.__getitem__,
        linger_ms=NEVER_MS,
        clock=lambda: 100.0,
        rng=random.Random(7),
        **kwargs,  # type: ignore[arg-type]
    )


def placement(acc: Accumulator, futures: Sequence[RecordFuture]) -> list[tuple[str, int, int, int]]:
    """Where each future points (see :func:`~tests.client.accumulator_views.place`)."""
    return [place(acc, f) for f in futures]


def batches(acc: Accumulator) -> list[tuple[int, tuple[tuple[Any, ...], ...], int]]:
    """Every batch of "orders" by partition: (partition, its records, its size bound)."""
    return [(b.partition, records(b), b.nbytes) for bs in partition_batches(acc, "orders") for b in bs]


KEY_MIXES: dict[str, list[bytes | str | None] | None] = {
    "bytes keys": [b"key-%d" % i for i in range(300)],
    "str keys": [f"kéy-{i}" for i in range(300)],
    "some keys None": [None if i % 3 == 0 else b"key-%d" % i for i in range(300)],
    "no keys": None,
}


# -- the same as send(), record for record --------------------------------------------------------


@pytest.mark.parametrize("keys", KEY_MIXES.values(), ids=KEY_MIXES.keys())
@pytest.mark.parametrize("partition", [None, 2])
def test_append_many_fills_the_same_batches_as_one_append_per_record(
    keys: list[bytes | str | None] | None, partition: int | None
) -> None:
    # Given two identical accumulators with small batches, so that batches roll and the sticky
    # partition moves during the call
    one_by_one, many = accumulator(max_batch_bytes=2048), accumulator(max_batch_bytes=2048)
    values: list[bytes | str | None] = [b"v" * (i % 50) if i % 7 else None for i in range(300)]
    values[5] = "välue"
    # When the same records go to one record by record, to the other in one call
    expected = [
        one_by_one.append(
            "orders", v, None if keys is None else keys[i], partition=partition, headers={"h": b"1"}, timestamp_ms=T0
        )
        for i, v in enumerate(values)
    ]
    futures = many.append_many("orders", values, keys, partition=partition, headers={"h": b"1"}, timestamp_ms=T0)
    # Then every future points at the same place, the batches hold the same records, and the
    # buffer counts the same bytes
    assert placement(many, futures) == placement(one_by_one, expected)
    assert batches(many) == batches(one_by_one)
    assert many.buffered == one_by_one.buffered
    assert len(many.incomplete) == len(one_by_one.incomplete) > 4


def test_a_full_buffer_stops_append_many_at_the_record_where_append_would_stop() -> None:
    # Given two accumulators whose 8 KiB buffers raise when full
    one_by_one = accumulator(max_batch_bytes=2048, max_buffer_bytes=8192, block_when_full=False)
    many = accumulator(max_batch_bytes=2048, max_buffer_bytes=8192, block_when_full=False)
    keys = [b"key-%d" % i for i in range(100)]
    # When 100 records of 200 bytes are sent one by one, and in one call
    expected = []
    with pytest.raises(BufferFull):
        for key in keys:
            expected.append(one_by_one.append("orders", b"x" * 200, key, timestamp_ms=T0))
    with pytest.raises(BufferFull) as raised:
        many.append_many("orders", [b"x" * 200] * 100, keys, timestamp_ms=T0)
    # Then both queued the same records, and the error carries the futures of those queued
    queued = raised.value.details["futures"]
    assert 0 < len(queued) == len(expected) < 100
    assert placement(many, queued) == placement(one_by_one, expected)
    assert many.buffered == one_by_one.buffered <= 8192


# -- through the Producer -------------------------------------------------------------------------


def test_keyed_records_land_where_send_puts_them_with_dense_offsets_in_call_order(
    producer: Producer, transport: FakeTransport
) -> None:
    # Given 500 keyed records handed over in five calls
    keys = [b"key-%d" % i for i in range(500)]
    values = [b"v%d" % i for i in range(500)]
    futures = []
    for start in range(0, 500, 100):
        futures += producer.send_many("orders", values[start : start + 100], keys[start : start + 100])
    # When they are flushed
    producer.flush(timeout=5)
    # Then each is on Kafka's partition for its key, at the next offset of that partition
    expected_next = dict.fromkeys(range(4), 0)
    for key, future in zip(keys, futures, strict=True):
        p = partition_for_key(key, 4)
        assert future.result(timeout=1) == RecordPosition(p, expected_next[p])
        expected_next[p] += 1
    for p in range(4):
        stored = transport.records("orders", p)
        assert [r.offset for r in stored] == list(range(expected_next[p]))
        assert all(r.key is not None and partition_for_key(r.key, 4) == p for r in stored)
        assert [int(r.value[1:]) for r in stored if r.value] == sorted(int(r.value[1:]) for r in stored if r.value)


def test_records_without_a_key_share_the_sticky_partition_and_keyed_ones_follow_their_key(
    producer: Producer,
) -> None:
    # Given a call mixing keyed records and records without a key
    keys: list[bytes | None] = [b"user-%d" % i if i % 2 else None for i in range(40)]
    # When it is sent and flushed
    futures = producer.send_many("orders", [b"v%d" % i for i in range(40)], keys)
    producer.flush(timeout=5)
    positions = [f.result(timeout=1) for f in futures]
    # Then the keyless records went to one partition, the keyed ones to their key's partition
    assert len({pos.partition for pos, key in zip(positions, keys, strict=True) if key is None}) == 1
    assert all(pos.partition == partition_for_key(key, 4) for pos, key in zip(positions, keys, strict=True) if key)
    # And the offsets of each partition are dense, in call order
    for p in range(4):
        offsets = [pos.offset for pos in positions if pos.partition == p]
        assert offsets == list(range(len(offsets)))


def test_str_values_and_keys_are_utf8_and_headers_and_one_timestamp_apply_to_every_record(
    producer: Producer, transport: FakeTransport
) -> None:
    # Given str values and keys, a tombstone, and headers for the whole call
    before_ms = time.time_ns() // 1_000_000
    producer.send_many("single", ["välue", None, b"raw"], ["kéy", b"k2", None], headers=[("trace", "t1")])
    producer.send_many("single", [b"later"], timestamp_ms=T0)
    # When flushed
    producer.flush(timeout=5)
    # Then the records carry UTF-8 bytes, every one the headers and one timestamp (now by default)
    first, tombstone, raw, later = transport.records("single", 0)
    assert (first.key, first.value) == ("kéy".encode(), "välue".encode())
    assert (tombstone.key, tombstone.value, raw.key, raw.value) == (b"k2", None, None, b"raw")
    assert first.headers == tombstone.headers == raw.headers == (("trace", b"t1"),)
    assert first.timestamp_ms == tombstone.timestamp_ms == raw.timestamp_ms >= before_ms
    assert (later.timestamp_ms, later.headers) == (T0, None)


def test_an_explicit_partition_applies_to_every_record(producer: Producer) -> None:
    futures = producer.send_many("orders", [b"a", b"b", b"c"], [b"k1", b"k2", b"k3"], partition=3)
    producer.flush(timeout=5)
    assert [f.result() for f in futures] == [RecordPosition(3, 0), RecordPosition(3, 1), RecordPosition(3, 2)]


def test_keys_of_another_length_than_the_values_are_refused_naming_both_lengths(
    real_producer: Producer, orders: str
) -> None:
    with pytest.raises(InvalidRequest, match="3 values but 2 keys") as raised:
        real_producer.send_many(orders, [b"a", b"b", b"c"], [b"k1", b"k2"])
    assert raised.value.details["futures"] == []


@pytest.mark.parametrize(
    ("values", "kwargs", "error"),
    [
        ([b"ok", 12, b"ok"], {}, InvalidRequest),
        ([b"ok", b"ok"], {"keys": [b"k", 3.5]}, InvalidRequest),
        (b"one value", {}, InvalidRequest),
        (["ok"], {"keys": "one key"}, InvalidRequest),
        ([b"ok"], {"headers": [("n", None)]}, InvalidRequest),
        ([b"ok"], {"timestamp_ms": -1}, InvalidRequest),
        ([b"ok"], {"partition": 4}, InvalidPartition),
        ([b"x" * 100] * 5 + [b"x" * 5000], {}, BatchTooLarge),
    ],
)
def test_a_malformed_call_is_refused_before_anything_is_queued(
    real_producer: Producer, orders: str, values: object, kwargs: dict[str, object], error: type
) -> None:
    # When one value, key or option of the call is malformed (or one record outgrows the buffer)
    with pytest.raises(error) as raised:
        real_producer.send_many(orders, values, **kwargs)  # type: ignore[arg-type]
    # Then nothing of the call was queued
    assert raised.value.details["futures"] == []


def test_a_refused_call_sends_nothing(producer: Producer, transport: FakeTransport) -> None:
    with pytest.raises(InvalidRequest):
        producer.send_many("orders", [b"ok", 12, b"ok"])  # type: ignore[list-item]
    producer.flush(timeout=5)
    assert transport.calls == []


def test_an_empty_call_queues_nothing(real_producer: Producer, cluster: Cluster, orders: str) -> None:
    assert real_producer.send_many(orders, []) == []
    real_producer.flush(timeout=5)
    with Admin(cluster.address) as admin:
        assert stored_topic(admin, orders) == []


def test_a_call_larger_than_the_buffer_completes_in_block_mode(
    make_producer: Callable[..., Producer], transport: FakeTransport
) -> None:
    # Given a broker that holds its answers for a moment, and a 4 KiB buffer that blocks when full
    transport.hold = True
    producer = make_producer(linger_ms=0, max_batch_bytes=1024, max_buffer_bytes=4096, buffer_timeout_ms=10_000)
    timer = threading.Timer(0.2, lambda: (setattr(transport, "hold", False), transport.release()))
    timer.start()
    # When one call hands over about 26 KiB
    started = time.monotonic()
    futures = producer.send_many("single", [b"%03d" % i + b"x" * 500 for i in range(50)])
    # Then it waited for space instead of raising, and every record was stored once, in order
    assert time.monotonic() - started >= 0.1
    assert [f.result(timeout=5).offset for f in futures] == list(range(50))
    timer.join()
    assert [r.value[:3] for r in transport.records("single", 0) if r.value] == [b"%03d" % i for i in range(50)]


def test_a_call_larger_than_the_free_buffer_raises_buffer_full_in_raise_mode_keeping_what_fitted(
    make_producer: Callable[..., Producer], transport: FakeTransport
) -> None:
    # Given a held broker, a 4 KiB buffer that raises when full, and records already in it
    transport.hold = True
    producer = make_producer(linger_ms=0, max_batch_bytes=1024, max_buffer_bytes=4096, buffer_full="raise")
    earlier = producer.send_many("single", [b"a" * 500, b"b" * 500])
    # When a call brings more than the free space
    with pytest.raises(BufferFull, match="max_buffer_bytes=4096") as raised:
        producer.send_many("single", [b"%03d" % i + b"x" * 500 for i in range(20)])
    # Then the records that fitted are queued, their futures on the error
    queued = raised.value.details["futures"]
    assert 2 <= len(queued) < 20
    # And once the broker answers, the earlier records and those are stored, in order
    transport.hold = False
    transport.release()
    producer.flush(timeout=5)
    assert [f.result().offset for f in earlier + queued] == list(range(2 + len(queued)))
    values = [r.value for r in transport.records("single", 0)]
    assert values == [b"a" * 500, b"b" * 500] + [b"%03d" % i + b"x" * 500 for i in range(len(queued))]


def test_a_blocked_call_raises_buffer_full_after_buffer_timeout_ms_keeping_what_fitted(
    make_producer: Callable[..., Producer], transport: FakeTransport
) -> None:
    # Given a held broker and a 4 KiB buffer that blocks for at most 100 ms
    transport.hold = True
    producer = make_producer(linger_ms=0, max_batch_bytes=1024, max_buffer_bytes=4096, buffer_timeout_ms=100)
    # When a call brings more than the buffer holds
    with pytest.raises(BufferFull, match="buffer_timeout_ms=100") as raised:
        producer.send_many("single", [b"x" * 500] * 20)
    # Then what fitted is queued and stored once the broker answers
    queued = raised.value.details["futures"]
    assert 0 < len(queued) < 20
    transport.hold = False
    transport.release()
    producer.flush(timeout=5)
    assert [f.result().offset for f in queued] == list(range(len(queued)))


def test_send_many_after_close_is_refused(real_producer: Producer, orders: str) -> None:
    real_producer.send_many(orders, [b"v"])
    real_producer.close()
    with pytest.raises(FailedPrecondition, match="closed"):
        real_producer.send_many(orders, [b"v"])


def test_calls_from_several_threads_lose_nothing_and_keep_each_calls_order(
    make_producer: Callable[..., Producer], transport: FakeTransport
) -> None:
    # Given four threads handing batches to one partition through one producer with a small buffer
    producer = make_producer(linger_ms=1, max_batch_bytes=2048, max_buffer_bytes=16_384)

    def work(n: int) -> None:
        for i in range(0, 500, 50):
            producer.send_many("single", [b"%d-%d" % (n, j) for j in range(i, i + 50)])
        producer.send("single", b"%d-end" % n)

    # When they all send at once, then flush
    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    producer.flush(timeout=10)
    # Then every record was stored exactly once, each thread's in its own order
    values = [r.value for r in transport.records("single", 0)]
    assert len(values) == 4 * 501
    for n in range(4):
        mine = [v for v in values if v is not None and v.startswith(b"%d-" % n)]
        assert mine == [b"%d-%d" % (n, i) for i in range(500)] + [b"%d-end" % n]


# -- on a real cluster ----------------------------------------------------------------------------


def test_send_many_stores_every_record_where_its_future_says(cluster: Cluster) -> None:
    # Given 3,000 records, some without a key, handed over 1,000 at a time to 3 partitions
    topic = cluster.create_topic(3, "orders")
    keys = [None if i % 10 == 0 else b"key-%d" % (i % 97) for i in range(3_000)]
    values = [b"value-%d" % i for i in range(3_000)]
    with Producer(cluster.address, linger_ms=2) as producer:
        futures: list[RecordFuture] = []
        for start in range(0, 3_000, 1_000):
            futures += producer.send_many(
                topic, values[start : start + 1_000], keys[start : start + 1_000], headers={"batch": b"%d" % start}
            )
        producer.flush(timeout=10)
    positions = [f.result(timeout=1) for f in futures]
    # When the whole topic is read back
    with Admin(cluster.address) as admin:
        records: list[Record] = stored_topic(admin, topic)
    assert len(records) == 3_000
    # Then each record is where its future said, keyed ones on their key's partition
    found = {(r.partition, r.offset): r for r in records}
    for i, pos in enumerate(positions):
        r = found[(pos.partition, pos.offset)]
        assert (r.key, r.value) == (keys[i], values[i])
        assert r.headers == (("batch", b"%d" % (i // 1_000 * 1_000)),)
        if r.key is not None:
            assert r.partition == partition_for_key(r.key, 3)
    for p in range(3):
        offsets = sorted(o for q, o in found if q == p)
        assert offsets == list(range(len(offsets)))
