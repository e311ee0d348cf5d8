"""The consumer on a Kafka cluster (Tansu, or LOGSVC_TEST_KAFKA_BOOTSTRAP): what only Kafka's
group protocol and librdkafka's fetcher decide — members sharing partitions, commits that a
restarted member resumes from, on_assign seeking, static members, lanes pausing partitions — and
the options refused before anything is sent. The behaviour both clusters share is tested through
the ``cluster`` fixture in the other consumer test modules."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message

from logsvc_client import Consumer, Record, TopicPartition
from logsvc_client.errors import (
    FencedInstance,
    InvalidConfig,
    InvalidPartition,
    InvalidRequest,
    OffsetOutOfRange,
    TopicNotFound,
)
from logsvc_client.kafka.consumer import KafkaConsumer
from tests.client.cluster_records import numbered, produce
from tests.client.group_helpers import group_options, poll_all, wait_until
from tests.fixtures.clusters import Cluster
from tests.fixtures.kafka import KafkaCluster

UNUSED_KAFKA = "kafka://127.0.0.1:9"  # options are checked before anything is sent


@pytest.fixture
def kafka(kafka_cluster: KafkaCluster) -> Cluster:
    return Cluster("kafka", kafka_cluster.address, kafka_cluster.quirks, kafka_cluster)


def read_until(consumer: Consumer, count: int, timeout_s: float = 20) -> list[Record]:
    records: list[Record] = []
    wait_until(lambda: len(records) >= count, timeout_s, f"{count} records", lambda: records.extend(consumer.poll(100)))
    return records


def test_confluent_kafka_is_imported_only_for_a_kafka_address() -> None:
    # Given a fresh interpreter that imports the client and makes a consumer of a logsvc broker
    script = (
        "import sys; from logsvc_client import Consumer; Consumer('127.0.0.1:9').close(); "
        "print('confluent_kafka' in sys.modules)"
    )
    # Then librdkafka was never loaded (it is an optional extra)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_a_kafka_address_gives_a_kafka_consumer_with_the_consumer_api() -> None:
    with Consumer(UNUSED_KAFKA, "g") as consumer:
        assert isinstance(consumer, KafkaConsumer) and isinstance(consumer, Consumer)
        assert consumer.assignment() == [] and consumer.group_metadata().member_id == ""


@pytest.mark.parametrize(
    ("options", "key", "named"),
    [
        ({"assignor": "roundrobin"}, "assignor", "roundrobin"),
        ({"auto_offset_reset": "smallest"}, "auto_offset_reset", "smallest"),
        ({"max_poll_records": 0}, "max_poll_records", "max_poll_records=0"),
        ({"session_timeout_ms": "10s"}, "session_timeout_ms", "10s"),
        ({"priority": "weighted", "lane_weights": [1, -1]}, "lane_weights", "-1"),
    ],
)
def test_bad_options_on_a_kafka_address_are_refused_naming_the_value(
    options: dict[str, Any], key: str, named: str
) -> None:
    with pytest.raises(InvalidConfig, match=named) as raised:
        Consumer(UNUSED_KAFKA, "g", **options)
    assert raised.value.details["key"] == key


def test_a_bad_kafka_address_or_librdkafka_property_is_refused_naming_it() -> None:
    with pytest.raises(InvalidConfig, match="b1:x"):
        Consumer("kafka://b1:x", "g")
    with pytest.raises(InvalidConfig, match="abc"):
        Consumer(UNUSED_KAFKA + "?fetch.wait.max.ms=abc", "g")
    with pytest.raises(InvalidConfig, match=r"no\.such\.property"):
        Consumer(UNUSED_KAFKA + "?no.such.property=1", "g")


def test_two_members_share_the_partitions_and_read_every_record_once(
    kafka: Cluster, consumers: Callable[..., Consumer]
) -> None:
    # Given 400 records in 4 partitions and two members of one group
    topic, group = kafka.create_topic(4), kafka.name("g")
    produce(kafka, topic, numbered(400))
    first = consumers(kafka.address, group, **group_options(kafka))
    second = consumers(kafka.address, group, **group_options(kafka))
    read: dict[str, list[Record]] = {"first": [], "second": []}

    def step() -> None:
        read["first"] += first.poll(timeout_ms=20)
        if "second" in joined:
            read["second"] += second.poll(timeout_ms=20)

    joined = ["first"]
    first.subscribe([topic])
    wait_until(lambda: len(first.assignment()) == 4, 10, "the first member's partitions", step)
    second.subscribe([topic])
    joined.append("second")

    # When both poll until Kafka's group protocol has split the partitions and all is read

    wait_until(lambda: len(second.assignment()) == 2 and len(first.assignment()) == 2, 20, "a split", step)
    wait_until(lambda: sum(len(r) for r in read.values()) >= 400, 10, "every record", step)

    # Then each owns two partitions, none both, and every record was read once (the revoked
    # partitions' positions were committed, so the newcomer went on from there)
    assert set(first.assignment()).isdisjoint(second.assignment())
    keys = sorted(r.key for records in read.values() for r in records if r.key)
    assert keys == sorted(b"key-%d" % i for i in range(400))
    assert {TopicPartition(r.topic, r.partition) for r in read["second"]} <= set(second.assignment())


def test_a_restarted_member_resumes_after_the_last_commit_and_on_assign_may_seek(kafka: Cluster) -> None:
    # Given a member that processed 30 of 50 records and committed after processing them
    topic, group = kafka.create_topic(1), kafka.name("g")
    tp = TopicPartition(topic, 0)
    produce(kafka, topic, numbered(50))
    with Consumer(kafka.address, group, enable_auto_commit=False, **group_options(kafka)) as consumer:
        consumer.subscribe(topic)
        got = read_until(consumer, 1)
        consumer.seek(tp, 0)
        got = wait_until(lambda: consumer.poll(timeout_ms=500, max_records=30), 10, "30 records")
        assert [r.offset for r in got] == list(range(30))
        consumer.commit()
        assert consumer.committed(tp) == 30 and consumer.position(tp) == 30
        assert consumer.group_metadata().member_id

    # When the member starts again
    # Then it resumes at offset 30, positioned there before on_assign is called
    at_assign: list[int] = []
    with Consumer(kafka.address, group, on_assign=lambda ps: at_assign.append(restarted.position(tp)),
                  **group_options(kafka)) as restarted:  # fmt: skip
        restarted.subscribe(topic)
        assert read_until(restarted, 20)[0].offset == 30
        assert at_assign == [30]

    # And a member whose on_assign seeks (offsets kept elsewhere, as an exactly-once sink does)
    # starts where it seeked
    def seek_to_stored(partitions: list[TopicPartition]) -> None:
        for p in partitions:
            exactly_once.seek(p, 42)

    with Consumer(kafka.address, group, on_assign=seek_to_stored, **group_options(kafka)) as exactly_once:
        exactly_once.subscribe(topic)
        assert [r.offset for r in read_until(exactly_once, 8)] == list(range(42, 50))


def test_a_static_member_that_comes_back_within_its_session_gets_its_partitions_back(
    kafka: Cluster, consumers: Callable[..., Consumer]
) -> None:
    # Given a static member that owns all 4 partitions
    topic, group = kafka.create_topic(4), kafka.name("g")
    options = {**group_options(kafka), "session_timeout_ms": 6_000, "instance_id": "worker-1"}
    first = consumers(kafka.address, group, **options)
    first.subscribe([topic])
    wait_until(lambda: len(first.assignment()) == 4, 20, "the partitions", poll_all(first))
    member_id = first.group_metadata().member_id

    # When it closes (a static member does not leave the group) and comes back within its session
    first.close()
    again = consumers(kafka.address, group, **options)
    again.subscribe([topic])

    # Then it owns the same partitions, as the same member
    wait_until(lambda: len(again.assignment()) == 4, 20, "the partitions back", poll_all(again))
    assert again.group_metadata().member_id == member_id


def test_a_second_consumer_with_a_static_members_instance_id_fences_one_of_them(
    kafka: Cluster, consumers: Callable[..., Consumer]
) -> None:
    kafka.skip_if("static_fencing", "a duplicate instance id is never fenced there")
    # Given a static member that owns all 4 partitions
    topic, group = kafka.create_topic(4), kafka.name("g")
    options = {**group_options(kafka), "instance_id": "worker-1"}
    first = consumers(kafka.address, group, **options)
    first.subscribe([topic])
    wait_until(lambda: len(first.assignment()) == 4, 20, "the partitions", poll_all(first))

    # When a second process joins with the same instance id by mistake
    duplicate = consumers(kafka.address, group, **options)
    duplicate.subscribe([topic])

    # Then one of the two is fenced: its polls raise FencedInstance naming the instance id
    def fenced() -> FencedInstance | None:
        for c in (first, duplicate):
            try:
                c.poll(timeout_ms=20)
            except FencedInstance as e:
                return e
        return None

    error = wait_until(fenced, 20, "a fenced member")
    assert "'worker-1'" in str(error)


def test_a_position_outside_the_log_raises_under_none_until_a_seek(kafka: Cluster) -> None:
    kafka.skip_if("fetch_out_of_range", "a Fetch past the end is answered without an error there")
    # Given 20 records and a consumer under auto_offset_reset="none" placed past them
    topic = kafka.create_topic(1)
    tp = TopicPartition(topic, 0)
    produce(kafka, topic, numbered(20))
    with Consumer(kafka.address, auto_offset_reset="none") as consumer:
        consumer.assign([tp])
        consumer.seek(tp, 500)
        # When it polls, then it raises OffsetOutOfRange naming the partition, every poll
        with pytest.raises(OffsetOutOfRange, match=f"{topic}/0"):
            wait_until(lambda: consumer.poll(timeout_ms=200) and False, 10, "an out-of-range error")
        with pytest.raises(OffsetOutOfRange):
            consumer.poll(timeout_ms=50)
        # And after a seek it reads on from there
        consumer.seek(tp, 15)
        assert [r.offset for r in read_until(consumer, 5)] == list(range(15, 20))
        with pytest.raises(InvalidRequest, match="-1"):
            consumer.seek(tp, -1)


def test_a_not_found_error_for_a_topic_the_cluster_still_has_is_a_stale_answer_and_polling_goes_on(
    kafka: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a consumer of a 2-partition topic holding 10 records
    topic = kafka.create_topic(2)
    produce(kafka, topic, numbered(10))
    with Consumer(kafka.address) as consumer:
        assert isinstance(consumer, KafkaConsumer)
        consumer.assign_topic(topic)
        # When librdkafka hands out UNKNOWN_TOPIC_OR_PART for it (as a broker that has not yet seen
        # the topic answers) — fed here as librdkafka's own error object, in place of a record
        with caplog.at_level("WARNING", logger="logsvc_client.consumer"):
            consumer._consumer_error(
                Message(topic=topic, partition=1, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
            )
        # Then the cluster's metadata was asked, the error logged as stale, and every record still read
        assert f"{topic}/1" in caplog.text and "stale answer" in caplog.text
        assert sorted(r.value for r in read_until(consumer, 10)) == [b"value-%d" % i for i in range(10)]
        # But a topic the metadata lacks, or a partition past its count, is raised naming it
        with pytest.raises(TopicNotFound, match="never-created-topic"):
            consumer._consumer_error(
                Message(topic="never-created-topic", partition=0, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
            )
        with pytest.raises(InvalidPartition, match=f"{topic}/2"):
            consumer._consumer_error(Message(topic=topic, partition=2, error=KafkaError(KafkaError._UNKNOWN_PARTITION)))


def test_lanes_pause_the_partitions_of_a_lane_that_is_not_being_taken_from(kafka: Cluster) -> None:
    # Given a critical and a bulk topic with a backlog each, read with strict lanes
    critical, bulk = kafka.create_topic(1, prefix="critical"), kafka.create_topic(2, prefix="bulk")
    produce(kafka, critical, numbered(3_000))
    produce(kafka, bulk, numbered(6_000))
    with Consumer(kafka.address, priority="strict", max_poll_records=100, max_lane_wait_ms=60_000) as consumer:
        consumer.assign([TopicPartition(critical, 0), TopicPartition(bulk, 0), TopicPartition(bulk, 1)])
        lanes = consumer._lanes  # type: ignore[attr-defined]
        bulk_partitions = {TopicPartition(bulk, 0), TopicPartition(bulk, 1)}
        first: list[Record] = []

        # When it takes 100 records at a time, slowly
        def step() -> None:
            time.sleep(0.05)
            first.extend(consumer.poll(timeout_ms=500))

        # Then the bulk lane's partitions are paused once it holds its share (so librdkafka stops
        # fetching them) while only the critical lane comes, with at most a fetch more buffered
        wait_until(lambda: lanes.paused == bulk_partitions, 10, "the bulk lane to be paused", step)
        assert first and {r.topic for r in first} == {critical}
        assert len(lanes.buffers[bulk]) < 6_000
        # And the bulk lane is resumed and read in full once the critical one is drained
        rest = read_until(consumer, 9_000 - len(first), timeout_s=30)
        assert sum(r.topic == bulk for r in rest) == 6_000 and not lanes.paused


def test_a_member_that_stops_polling_loses_its_partitions_and_the_next_poll_joins_again(
    kafka: Cluster, consumers: Callable[..., Consumer]
) -> None:
    # Given two members sharing 4 partitions (max_poll_interval_ms is short on Tansu anyway)
    topic, group = kafka.create_topic(4), kafka.name("g")
    options = {"session_timeout_ms": 6_000, "max_poll_interval_ms": 6_000, **group_options(kafka)}
    lost: list[list[TopicPartition]] = []
    slow = consumers(kafka.address, group, on_revoke=lambda ps: lost.append(list(ps)), **options)
    busy = consumers(kafka.address, group, **options)
    slow.subscribe(topic)
    busy.subscribe(topic)
    wait_until(lambda: len(slow.assignment()) == 2 and len(busy.assignment()) == 2, 20, "a split", poll_all(slow, busy))
    held = slow.assignment()
    lost.clear()

    # When the slow one does not poll for longer than max_poll_interval_ms
    # Then the other member owns all 4 partitions
    wait_until(lambda: len(busy.assignment()) == 4, 20, "the busy member to own everything", poll_all(busy))

    # And when the slow one polls again it drops what it had (on_revoke), joins again, and the
    # two share again
    wait_until(
        lambda: len(slow.assignment()) == 2 and len(busy.assignment()) == 2, 20, "a new split", poll_all(slow, busy)
    )
    assert lost[0] == held
