"""The client library against a real broker (gRPC over TCP on port 0, LMDB in a temp dir); the
tests taking ``cluster`` also against a Kafka cluster (Tansu, or LOGSVC_TEST_KAFKA_BOOTSTRAP)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Consumer, Producer, ProducerRecord, Record, TopicPartition
from logsvc_client.consumer.fetch_options import MIN_FETCH_RECORDS, fetch_records
from logsvc_client.errors import (
    BufferFull,
    FailedPrecondition,
    InvalidPartition,
    InvalidRequest,
    OffsetOutOfRange,
    TopicAlreadyExists,
    TopicNotFound,
    Unavailable,
)
from logsvc_wire.partitioner import partition_for_key
from tests.client.cluster_records import Row, produce
from tests.client.conftest import RestartableBroker
from tests.client.stored import stored_records
from tests.fixtures.clusters import Cluster
from tests.wide_record import WideRecord

NEVER_MS = 600_000
T0 = 1_700_000_000_000


def consume_all(consumer: Consumer, expected: int, timeout_ms: int = 5_000) -> list[Record]:
    records: list[Record] = []
    while len(records) < expected:
        got = consumer.poll(timeout_ms=timeout_ms)
        assert got, f"no records after {len(records)} of {expected}"
        records += got
    return records


# -- admin ------------------------------------------------------------------------------------


def test_admin_creates_describes_and_lists_topics(cluster: Cluster) -> None:
    name = cluster.name("orders")
    with Admin(cluster.address) as admin:
        # Given a topic created with a config (logsvc's name for it; Kafka's is retention.ms)
        created = admin.create_topic(name, 3, {"retention_ms": "60000"})
        # Then its description is a plain value with three empty partitions
        assert created.name == name and created.partition_count == 3
        if "topic_config" not in cluster.quirks:
            assert created.config["retention_ms" if cluster.kind == "logsvc" else "retention.ms"] == "60000"
        assert [(p.partition, p.next_offset, p.first_timestamp_ms) for p in created.partitions] == [
            (0, 0, -1),
            (1, 0, -1),
            (2, 0, -1),
        ]
        assert admin.describe_topic(name) == created
        assert (name, 3) in [(t.name, t.partitions) for t in admin.list_topics()]
        # When it is created again, or a missing one described, the errors are the project's own
        with pytest.raises(TopicAlreadyExists, match=name):
            admin.create_topic(name, 1)
        with pytest.raises(TopicNotFound, match="missing"):
            admin.describe_topic(cluster.name("missing"))


def test_admin_deletes_topics(cluster: Cluster) -> None:
    cluster.skip_if("delete_topic", "the topic would stay")
    name = cluster.create_topic(1)
    with Admin(cluster.address) as admin:
        admin.delete_topic(name)
        with pytest.raises(TopicNotFound, match=name):
            admin.delete_topic(name)
        with pytest.raises(TopicNotFound):
            admin.describe_topic(name)


def test_admin_produce_records_lets_the_broker_partition_and_reports_positions(cluster: Cluster) -> None:
    # Given a 4-partition topic
    topic = cluster.create_topic(4, "events")
    with Admin(cluster.address) as admin:
        # When records go through the convenience path
        positions = admin.produce_records(
            topic,
            [
                ProducerRecord(b"a", key=b"user-1"),
                ProducerRecord("b", key="user-1", headers={"h": "1"}),
                ProducerRecord(b"c", partition=3, timestamp_ms=T0),
                b"plain",
            ],
        )
        # Then keyed records follow Kafka's partitioner, the explicit one wins, offsets are dense
        p = partition_for_key(b"user-1", 4)
        assert positions[0].partition == positions[1].partition == p
        assert positions[1].offset == positions[0].offset + 1
        assert positions[2].partition == 3
        stored = stored_records(admin, topic, p)
        assert [(r.offset, r.key, r.value, r.headers) for r in stored[:2]] == [
            (positions[0].offset, b"user-1", b"a", None),
            (positions[1].offset, b"user-1", b"b", (("h", b"1"),)),
        ]
        assert stored_records(admin, topic, 3)[0].timestamp_ms == T0
        assert admin.produce_records(topic, []) == []
        with pytest.raises(InvalidPartition, match="partition 4"):
            admin.produce_records(topic, [ProducerRecord(b"x", partition=4)])


def test_list_offsets_trim_and_offsets_for_time(cluster: Cluster) -> None:
    cluster.skip_if("latest_offsets", "the next offsets and time lookups are checked")
    cluster.skip_if("delete_records", "trim is DeleteRecords")
    t = cluster.create_topic(1)
    with Admin(cluster.address) as admin:
        # Given 10 records with timestamps T0, T0+10, ... on one partition
        admin.produce_records(t, [ProducerRecord(b"v%d" % i, timestamp_ms=T0 + 10 * i) for i in range(10)])
        # Then earliest/latest/time lookups answer as Kafka's would
        assert admin.list_offsets(t, "earliest") == {0: 0}
        assert admin.list_offsets(t, "latest") == {0: 10}
        assert admin.list_offsets(t, "timestamp", timestamp_ms=T0 + 25) == {0: 3}
        assert admin.offsets_for_time(t, T0 + 30)[0] == (3, T0 + 30)
        assert admin.offsets_for_time(t, T0 + 1_000)[0] == (10, None)
        # When the partition is trimmed before offset 4
        assert admin.trim(t, 0, 4) == 4
        assert admin.list_offsets(t, "earliest", partitions=[0]) == {0: 4}


def test_bad_offset_lookups_are_refused_naming_what_is_wrong(cluster: Cluster) -> None:
    t = cluster.create_topic(1)
    with Admin(cluster.address) as admin:
        with pytest.raises(InvalidRequest, match="middle"):
            admin.list_offsets(t, "middle")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequest, match="timestamp_ms"):
            admin.list_offsets(t, "timestamp")
        with pytest.raises(InvalidPartition, match="partition 1"):
            admin.list_offsets(t, "earliest", partitions=[1])
        with pytest.raises(TopicNotFound, match="missing"):
            admin.list_offsets(cluster.name("missing"), "earliest")


# -- producer and consumer --------------------------------------------------------------------


def test_produced_records_come_back_in_offset_order_per_partition(cluster: Cluster) -> None:
    # Given 3,000 keyed records produced to 3 partitions
    topic = cluster.create_topic(3)
    produce(cluster, topic, [(b"value-%d" % i, b"key-%d" % (i % 97), None, None, None) for i in range(3_000)])
    # When a consumer reads the whole topic in small polls (prefetching between them)
    with Consumer(cluster.address, max_poll_records=128) as consumer:
        consumer.assign_topic(topic)
        records = consume_all(consumer, 3_000)
        assert consumer.poll(timeout_ms=50) == []
        ends = {tp: consumer.position(tp) for tp in consumer.assignment()}
    # Then every record arrived once, on its key's partition (Kafka's partitioner), in offset order
    by_partition: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        by_partition[r.partition].append(r)
    for p, recs in by_partition.items():
        assert [r.offset for r in recs] == list(range(len(recs)))
        assert all(r.key is not None and partition_for_key(r.key, 3) == p for r in recs)
    assert sorted(r.value for r in records if r.value) == sorted(b"value-%d" % i for i in range(3_000))
    assert sum(ends.values()) == 3_000


def test_tombstones_headers_and_timestamps_survive_the_round_trip(cluster: Cluster) -> None:
    # Given a record with headers and a timestamp, an empty value without a key, and a tombstone
    # (Tansu never returns a tombstone: there the round trip goes without it)
    topic = cluster.create_topic(1)
    rows: list[Row] = [
        ("välue".encode(), b"k", None, T0, [("trace", b"\x00\x01"), ("src", b"svc")]),
        (b"", None, None, None, None),
    ]
    tombstones = "tombstones" not in cluster.quirks
    if tombstones:
        rows.append((None, b"k", None, T0 + 1, None))
    produce(cluster, topic, rows)
    # When a consumer reads them
    with Consumer(cluster.address) as consumer:
        consumer.assign([TopicPartition(topic, 0)])
        got = consume_all(consumer, len(rows))
    # Then every field is what was produced
    first, empty = got[:2]
    assert (first.key, first.value, first.timestamp_ms) == (b"k", "välue".encode(), T0)
    assert first.headers == (("trace", b"\x00\x01"), ("src", b"svc"))
    assert (empty.key, empty.value, empty.headers) == (None, b"", None)
    if tombstones:
        tombstone = got[2]
        assert (tombstone.key, tombstone.value, tombstone.headers, tombstone.timestamp_ms) == (b"k", None, None, T0 + 1)


def test_a_consumer_decodes_into_a_wider_record_type_with_none_past_records_fields(cluster: Cluster) -> None:
    # Given records with and without headers
    topic = cluster.create_topic(1)
    produce(cluster, topic, [(b"v0", b"k", None, T0, [("trace", b"t")]), (b"v1", None, None, T0 + 1, None)])

    # When a consumer built with that record type reads them
    with Consumer(cluster.address, record_type=WideRecord) as consumer:
        consumer.assign([TopicPartition(topic, 0)])
        got = consume_all(consumer, 2)

    # Then they are of that type: Record's fields as produced, None in the other
    assert all(type(r) is WideRecord for r in got)
    assert [r[:7] for r in got] == [
        (topic, 0, 0, T0, b"k", b"v0", (("trace", b"t"),)),
        (topic, 0, 1, T0 + 1, None, b"v1", None),
    ]
    assert [r.note for r in got] == [None, None]


def test_many_batches_of_one_partition_go_in_one_request_and_keep_their_order(cluster: Cluster) -> None:
    # Given 1 KiB batches and records that fill one batch each, held until flush
    t = cluster.create_topic(1)
    with Producer(cluster.address, linger_ms=NEVER_MS, max_batch_bytes=1024) as producer:
        futures = [producer.send(t, b"%03d" % i + b"x" * 600) for i in range(20)]
        producer.flush(timeout=10)
    # Then the broker stored them all, in order
    assert [f.result().offset for f in futures] == list(range(20))
    with Admin(cluster.address) as admin:
        assert [r.value[:3] for r in stored_records(admin, t) if r.value] == [b"%03d" % i for i in range(20)]


def test_seek_to_time_beginning_end_and_an_offset(cluster: Cluster) -> None:
    cluster.skip_if("latest_offsets", "seek_to_time and seek_to_end need ListOffsets by time and latest")
    # Given 100 records one millisecond apart on 2 partitions
    topic = cluster.create_topic(2)
    produce(cluster, topic, [(b"v%d" % i, None, i % 2, T0 + i, None) for i in range(100)])
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with Consumer(cluster.address) as consumer:
        consumer.assign([tp0, tp1])
        # When seeking to a time: the first record at or after it, per partition
        consumer.seek_to_time(T0 + 60)
        assert (consumer.position(tp0), consumer.position(tp1)) == (30, 30)
        records = consume_all(consumer, 40)
        assert min(r.timestamp_ms for r in records) == T0 + 60
        # When seeking to the end: nothing until new records arrive
        consumer.seek_to_end()
        assert consumer.poll(timeout_ms=50) == []
        produce(cluster, topic, [(b"late", None, 1, None, None)])
        assert [r.value for r in consume_all(consumer, 1)] == [b"late"]
        # When seeking one partition back to an offset, and to the beginning
        consumer.seek(tp0, 48)
        assert [(r.partition, r.offset) for r in consume_all(consumer, 2)] == [(0, 48), (0, 49)]
        consumer.seek_to_beginning([tp1])
        assert consume_all(consumer, 51)[0].offset == 0


def test_a_seek_discards_what_was_prefetched(cluster: Cluster) -> None:
    topic = cluster.create_topic(1)
    produce(cluster, topic, [(b"%d" % i, None, None, None, None) for i in range(500)])
    with Consumer(cluster.address, max_poll_records=100) as consumer:
        consumer.assign_topic(topic)
        assert consume_all(consumer, 1)[0].offset == 0
        # When seeking back while a prefetch is in flight and records are buffered
        consumer.seek(TopicPartition(topic, 0), 5)
        # Then the next record is offset 5, not the buffered ones
        assert consumer.poll(timeout_ms=5_000, max_records=1)[0].offset == 5


def test_a_small_max_poll_records_bounds_each_poll_not_each_fetch(broker: Broker, admin: Admin) -> None:
    # Given 30,000 records in 30 batches
    admin.create_topic("t", 1)
    with Producer(broker.address, linger_ms=60_000) as producer:
        for _ in range(30):
            producer.send_many("t", [b"v"] * 1_000)
            producer.flush()

    def fetch_calls() -> float:
        labels = {"method": "Fetch", "code": "OK"}
        return broker.metrics.registry.get_sample_value("logsvc_request_seconds_count", labels) or 0.0

    before = fetch_calls()
    # When a consumer with Kafka's max_poll_records of 500 reads them all
    with Consumer(broker.address, max_poll_records=500) as consumer:
        consumer.assign_topic("t")
        polls = []
        while sum(polls) < 30_000:
            polls.append(len(consumer.poll(timeout_ms=5_000)))
    # Then every poll handed out at most 500 records, in order, but each Fetch brought many polls'
    # worth (fetch_records(500) = 10,000 records: a handful of round trips, not 60)
    assert max(polls) == 500 and len(polls) == 60
    assert fetch_records(500) == MIN_FETCH_RECORDS == 10_000 and fetch_records(20_000) == 20_000
    assert fetch_calls() - before <= 8, fetch_calls() - before


def test_a_trimmed_position_resets_to_the_log_start_under_earliest(admin: Admin, address: str) -> None:
    admin.create_topic("t", 1)
    admin.produce_records("t", [b"v%d" % i for i in range(50)])
    tp = TopicPartition("t", 0)
    with Consumer(address) as consumer:
        consumer.assign([tp])
        consumer.seek(tp, 10)
        # When the records before offset 30 are trimmed away
        admin.trim("t", 0, 30)
        # Then the consumer continues from the new log start
        assert consume_all(consumer, 1)[0].offset == 30


def test_an_out_of_range_position_raises_under_none_and_jumps_to_the_end_under_latest(
    admin: Admin, address: str
) -> None:
    admin.create_topic("t", 1)
    admin.produce_records("t", [b"v%d" % i for i in range(20)])
    admin.trim("t", 0, 10)
    tp = TopicPartition("t", 0)
    with Consumer(address, auto_offset_reset="none") as consumer:
        consumer.assign([tp])
        consumer.seek(tp, 5)
        with pytest.raises(OffsetOutOfRange, match="t/0"):
            consumer.poll(timeout_ms=1_000)
    with Consumer(address, auto_offset_reset="latest") as consumer:
        consumer.assign([tp])
        assert consumer.position(tp) == 20  # never positioned: the end under 'latest'
        consumer.seek(tp, 500)
        assert consumer.poll(timeout_ms=200) == []
        assert consumer.position(tp) == 20


def test_consumer_errors_are_the_projects_own(cluster: Cluster) -> None:
    missing = cluster.name("missing")
    with Consumer(cluster.address) as consumer:
        with pytest.raises(FailedPrecondition, match="no partitions"):
            consumer.poll(timeout_ms=0)
        with pytest.raises(TopicNotFound, match=missing):
            consumer.assign_topic(missing)
        consumer.assign([TopicPartition(missing, 0)])
        with pytest.raises(TopicNotFound):
            consumer.poll(timeout_ms=100)
        with pytest.raises(FailedPrecondition, match="not assigned"):
            consumer.seek(TopicPartition("other", 0), 0)


def test_numbers_past_a_64_bit_long_are_refused_naming_them_before_anything_is_sent(cluster: Cluster) -> None:
    # Given a topic and a consumer of a group assigned to it
    topic = cluster.create_topic(1)
    tp = TopicPartition(topic, 0)
    past = 2**63  # one past the largest offset and timestamp Kafka (and a committed offset) can hold
    with Consumer(cluster.address, cluster.name("g")) as consumer, Admin(cluster.address) as admin:
        consumer.assign([tp])
        # When a seek, a commit, a seek by time or an offset lookup names it, then each is
        # InvalidRequest naming the value, raised by the call itself
        with pytest.raises(InvalidRequest, match=f"{past}.*9223372036854775807"):
            consumer.seek(tp, past)
        with pytest.raises(InvalidRequest, match=f"{past}.*9223372036854775807"):
            consumer.commit({tp: past})
        with pytest.raises(InvalidRequest, match=str(past)):
            consumer.seek_to_time(past)
        with pytest.raises(InvalidRequest, match=str(past)):
            admin.offsets_for_time(topic, past)
        # and so are a partition count and a partition number no topic can have, and a trim past it
        with pytest.raises(InvalidPartition, match=str(2**40)):
            admin.create_topic(cluster.name("huge"), 2**40)
        with pytest.raises(InvalidPartition, match=f"partition {2**40} of {topic} is out of range"):
            consumer.assign([tp, TopicPartition(topic, 2**40)])
        with pytest.raises(InvalidRequest, match=str(2**64)):
            admin.trim(topic, 0, 2**64)
        # And the consumer still reads from where it was
        assert consumer.position(tp) == 0
        assert consumer.committed(tp) is None


def test_iterating_a_consumer_yields_records_as_they_arrive(cluster: Cluster) -> None:
    topic = cluster.create_topic(1)
    with Consumer(cluster.address) as consumer:
        consumer.assign_topic(topic)
        late = threading.Timer(
            0.1, produce, (cluster, topic, [(b"a", None, None, None, None), (b"b", None, None, None, None)])
        )
        late.start()
        it = iter(consumer)
        assert [next(it).value, next(it).value] == [b"a", b"b"]
        late.join()


def test_a_producer_to_a_missing_topic_or_partition_fails_at_send(cluster: Cluster) -> None:
    t = cluster.create_topic(2)
    with Producer(cluster.address) as producer:
        with pytest.raises(TopicNotFound, match="missing"):
            producer.send(cluster.name("missing"), b"v")
        with pytest.raises(InvalidPartition, match="partition 2"):
            producer.send(t, b"v", partition=2)


def test_a_full_buffer_raises_buffer_full_in_raise_mode(cluster: Cluster) -> None:
    # Given records that linger in a 64 KiB buffer that raises when full
    t = cluster.create_topic(1)
    with Producer(cluster.address, linger_ms=NEVER_MS, max_buffer_bytes=64 * 1024, buffer_full="raise") as producer:
        sent = []
        # When more than 64 KiB is sent
        with pytest.raises(BufferFull):
            for i in range(1_000):
                sent.append(producer.send(t, b"%04d" % i + b"x" * 1_000))
        # Then what fitted is delivered once flushed
        assert 50 < len(sent) <= 64 * 1024 // 1_004  # the overhead counted per record differs
        producer.flush(timeout=10)
        assert [f.result().offset for f in sent] == list(range(len(sent)))


def test_a_full_buffer_blocks_send_until_space_frees_in_block_mode(cluster: Cluster) -> None:
    # Given a 4 KiB buffer that blocks when full, and records that linger 20 ms
    t = cluster.create_topic(1)
    options = {"linger_ms": 20, "max_batch_bytes": 1024, "max_buffer_bytes": 4096, "buffer_timeout_ms": 10_000}
    with Producer(cluster.address, **options) as producer:  # type: ignore[arg-type]
        # When about 26 KiB is sent
        futures = [producer.send(t, b"%03d" % i + b"x" * 500) for i in range(50)]
        # Then send waited for space instead of raising, and every record was stored in order
        assert [f.result(timeout=10).offset for f in futures] == list(range(50))


def test_a_full_buffer_sends_what_lingers_instead_of_waiting_for_linger_ms(cluster: Cluster) -> None:
    # Given records that would linger for ever in a 4 KiB buffer that blocks for at most 5 s
    t = cluster.create_topic(1)
    with Producer(cluster.address, linger_ms=NEVER_MS, max_buffer_bytes=4096, buffer_timeout_ms=5_000) as producer:
        # When more than the buffer holds is sent
        started = time.monotonic()
        futures = [producer.send(t, b"%03d" % i + b"x" * 500) for i in range(20)]
        # Then the full buffer sent the lingering records (send did not wait out buffer_timeout_ms)
        assert time.monotonic() - started < 4
        assert sum(f.done() for f in futures) >= 10
        # And once the rest is flushed every record is stored in order
        producer.flush(timeout=10)
        assert [f.result().offset for f in futures] == list(range(20))


def test_a_producer_retries_while_the_broker_restarts(restartable_broker: RestartableBroker) -> None:
    # Given a topic, and a producer that has already talked to the broker
    with Admin(restartable_broker.address) as admin:
        admin.create_topic("t", 1)
    with Producer(restartable_broker.address, linger_ms=0, retries=8, retry_backoff_ms=100) as producer:
        assert producer.send("t", b"before").result(timeout=5).offset == 0
        # When the broker goes away, a record is sent, and the broker comes back on the same port
        restartable_broker.stop()
        future = producer.send("t", b"during")
        threading.Timer(0.5, restartable_broker.start).start()
        # Then the record is stored once the broker is back
        assert future.result(timeout=20).offset == 1
    with Consumer(restartable_broker.address) as consumer:
        consumer.assign_topic("t")
        assert [r.value for r in consume_all(consumer, 2)] == [b"before", b"during"]


def test_a_consumer_and_admin_ride_out_a_broker_restart(restartable_broker: RestartableBroker) -> None:
    address = restartable_broker.address
    with Admin(address, retry_backoff_ms=100, retries=8) as admin:
        admin.create_topic("t", 1)
        admin.produce_records("t", [b"a"])
        with Consumer(address, retry_backoff_ms=100) as consumer:
            consumer.assign_topic("t")
            assert [r.value for r in consume_all(consumer, 1)] == [b"a"]
            # When the broker restarts while the consumer polls
            restartable_broker.stop()
            timer = threading.Timer(0.5, restartable_broker.start)
            timer.start()
            assert consumer.poll(timeout_ms=200) == []
            timer.join()
            # Then admin calls are retried and the consumer picks up new records
            assert admin.list_offsets("t", "latest") == {0: 1}
            admin.produce_records("t", [b"b"])
            assert [r.value for r in consume_all(consumer, 1, timeout_ms=10_000)] == [b"b"]


def test_without_a_broker_calls_fail_with_unavailable() -> None:
    with Admin("127.0.0.1:1", retries=1, retry_backoff_ms=10, request_timeout_ms=2_000) as admin:
        with pytest.raises(Unavailable):
            admin.list_topics()
        with pytest.raises(Unavailable):
            admin.create_topic("t", 1)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_batches_are_stored_compressed_and_read_back_like_any_other(
    admin: Admin, address: str, compression: str
) -> None:
    # Given the same 2,000 JSON records produced plainly into one topic and compressed into another
    records = [(b"order-%d" % i, b'{"symbol": "AAPL", "side": "buy", "qty": %d}' % i) for i in range(2_000)]
    sizes = {}
    for topic, codec_name in (("plain", "none"), ("packed", compression)):
        admin.create_topic(topic, 1)
        with Producer(address, linger_ms=5, compression=codec_name) as producer:
            for i, (key, value) in enumerate(records):
                producer.send(topic, value, key, timestamp_ms=1_700_000_000_000 + i)
            producer.flush(timeout=10)
        sizes[topic] = admin.describe_topic(topic).partitions[0].bytes
    # Then the compressed topic takes a fraction of the space
    assert sizes["packed"] < sizes["plain"] // 3
    # And a consumer reads the same records from it, and time lookups find records inside its batches
    with Consumer(address) as consumer:
        consumer.assign_topic("packed")
        got: list[tuple[bytes | None, bytes | None]] = []
        while len(got) < len(records):
            got += [(r.key, r.value) for r in consumer.poll(timeout_ms=1_000)]
    assert got == records
    found = admin.offsets_for_time("packed", 1_700_000_000_000 + 1_234)[0]
    assert (found.offset, found.timestamp_ms) == (1_234, 1_700_000_001_234)
