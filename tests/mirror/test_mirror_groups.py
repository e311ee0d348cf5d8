"""``logsvc mirror --groups``: a group that committed on logsvc resumes on Kafka at the same
record, also where the source was trimmed (so its offsets differ from Kafka's). Against Tansu."""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient

from logsvc_client import Admin, TopicPartition
from tests.conftest import BrokerProcess
from tests.fixtures.kafka import KafkaCluster
from tests.mirror.helpers import MirrorProcess, Row, produce, read_source, wait_caught_up


def kafka_committed(kafka: KafkaCluster, group: str, topic: str, partitions: int) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    request = ConsumerGroupTopicPartitions(group, [KafkaPartition(topic, p) for p in range(partitions)])
    listed = admin.list_consumer_group_offsets([request])[group].result(30).topic_partitions
    return {p.partition: p.offset for p in listed if p.offset >= 0}


def wait_kafka_committed(
    kafka: KafkaCluster, group: str, topic: str, want: dict[int, int], mirror: MirrorProcess, timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while (got := kafka_committed(kafka, group, topic, len(want))) != want:
        assert time.monotonic() < deadline, f"{group} on Kafka: {got}, not {want}\n{mirror.stderr_text()}"
        time.sleep(0.2)


def consume_as_group(kafka: KafkaCluster, group: str, topic: str, partitions: int) -> dict[int, list[Row]]:
    """What a Kafka consumer of ``group`` reads of partitions ``0 .. partitions - 1`` from its
    committed offsets to their end. Other partitions of the topic are not looked at: where the
    group has no commit, "latest" should read nothing, but Tansu's ListOffsets for latest is not
    reliable (its ``latest_offsets`` quirk) and may start them at 0."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "latest",  # a partition without a committed offset reads nothing
            # Tansu answers a new group's JoinGroup only near the end of the rebalance timeout
            "max.poll.interval.ms": 6000,
            "session.timeout.ms": 6000,
        }
    )
    out: dict[int, list[Row]] = {p: [] for p in range(partitions)}
    at_end: set[int] = set()
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"group {group} did not read {topic} to its end"
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.partition() not in out:
                    continue
                error = msg.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end.add(msg.partition())
                    continue
                _, ts = msg.timestamp()
                headers = tuple(msg.headers() or ())
                out[msg.partition()].append((msg.partition(), msg.offset(), ts, msg.key(), msg.value(), headers))
    finally:
        consumer.close()
    return out


def test_groups_resume_on_kafka_at_the_record_they_would_read_next_on_logsvc(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a topic whose partition 0 was trimmed before offset 300 (Kafka offsets will differ)
    topic = kafka_cluster.name("ledger")
    audit, behind = kafka_cluster.name("audit"), kafka_cluster.name("behind")
    with Admin(source.address) as admin:
        admin.create_topic(topic, 2)
        produce(source.address, topic, 2, 2_000)
        admin.trim(topic, 0, 300)
        # And a group that committed within the copied records, and one still before the trim
        admin.commit_offsets(audit, {TopicPartition(topic, 0): 500, TopicPartition(topic, 1): 250})
        admin.commit_offsets(behind, {TopicPartition(topic, 0): 100})

        # When the mirror copies the topic with both groups
        mirror = MirrorProcess().start(
            "--from", source.address, "--to", kafka_cluster.address, "--topics", topic,
            "--groups", f"{audit},{behind}", "--state-dir", str(tmp_path / "state"), "--group-interval-ms", "200",
        )  # fmt: skip
        mirrors.append(mirror)
        wait_caught_up(tmp_path / "state", source.address, kafka_cluster.address)

        # Then each group's offsets are the Kafka offsets of the same records
        wait_kafka_committed(kafka_cluster, audit, topic, {0: 200, 1: 250}, mirror)
        wait_kafka_committed(kafka_cluster, behind, topic, {0: 0}, mirror)

        # And when the group moves on on logsvc, the mirror follows it
        admin.commit_offsets(audit, {TopicPartition(topic, 0): 800, TopicPartition(topic, 1): 900})
        wait_kafka_committed(kafka_cluster, audit, topic, {0: 500, 1: 900}, mirror)
    assert mirror.terminate() == 0

    # And a Kafka consumer of the group reads from exactly the next record: none skipped or repeated
    want = read_source(source.address, topic)
    got = consume_as_group(kafka_cluster, audit, topic, 2)
    assert [r[2:] for r in got[0]] == [r[2:] for r in want[0] if r[1] >= 800]
    assert [r[2:] for r in got[1]] == [r[2:] for r in want[1] if r[1] >= 900]
    # And the group still before the trim starts at the first record logsvc still has
    got_behind = consume_as_group(kafka_cluster, behind, topic, 1)
    assert got_behind[0][0][2:] == want[0][0][2:] and want[0][0][1] == 300


def test_records_trimmed_while_the_mirror_was_down_are_skipped_and_groups_map_across_the_gap(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given 100 records mirrored, the mirror stopped, 100 more produced and the first 150 trimmed
    topic = kafka_cluster.name("gappy")
    group = kafka_cluster.name("reader")
    state = tmp_path / "state"
    args = ["--from", source.address, "--to", kafka_cluster.address, "--topics", topic, "--state-dir", str(state)]
    with Admin(source.address) as admin:
        admin.create_topic(topic, 1)
        produce(source.address, topic, 1, 100)
        first = MirrorProcess().start(*args)
        mirrors.append(first)
        wait_caught_up(state, source.address, kafka_cluster.address)
        assert first.terminate() == 0
        produce(source.address, topic, 1, 100, start=100)
        admin.trim(topic, 0, 150)
        # And a group that committed in the middle of the trimmed records
        admin.commit_offsets(group, {TopicPartition(topic, 0): 120})

    # When the mirror runs again with the group
    again = MirrorProcess().start(*args, "--groups", group, "--group-interval-ms", "200")
    mirrors.append(again)
    rows = wait_caught_up(state, source.address, kafka_cluster.address)

    # Then Kafka holds source 0..99 then 150..199, and the mirror said what it skipped
    assert [(r["copied_to"], r["kafka_next"], r["behind"]) for r in rows] == [(200, 150, 0)]
    again.wait_for("source offsets 100 to 149 are gone")
    # And the group resumes on Kafka at the first record after the gap (Kafka offset 100)
    wait_kafka_committed(kafka_cluster, group, topic, {0: 100}, again)
    assert again.terminate() == 0
    want = read_source(source.address, topic)[0]
    got = consume_as_group(kafka_cluster, group, topic, 1)[0]
    assert [r[2:] for r in got] == [r[2:] for r in want] and want[0][1] == 150


def test_a_kafka_group_with_members_is_not_translated_until_they_leave(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a topic with a group committed on logsvc, and a member of that group live on Kafka
    topic = kafka_cluster.name("busy")
    group = kafka_cluster.name("live")
    with Admin(source.address) as admin:
        admin.create_topic(topic, 1)
        produce(source.address, topic, 1, 50)
        admin.commit_offsets(group, {TopicPartition(topic, 0): 30})
    state = tmp_path / "state"
    args = ["--from", source.address, "--to", kafka_cluster.address, "--topics", topic, "--state-dir", str(state)]
    first = MirrorProcess().start(*args)  # the topic must exist on Kafka before a member joins
    mirrors.append(first)
    wait_caught_up(state, source.address, kafka_cluster.address)
    assert first.terminate() == 0
    member = Consumer(
        {
            "bootstrap.servers": kafka_cluster.bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "max.poll.interval.ms": 6000,
            "session.timeout.ms": 6000,
        }
    )
    member.subscribe([topic])
    deadline = time.monotonic() + 30
    while not member.assignment():
        assert time.monotonic() < deadline, "the Kafka member never got its partition"
        member.poll(0.2)

    # When the mirror runs with the group
    mirror = MirrorProcess().start(*args, "--groups", group, "--group-interval-ms", "200")
    mirrors.append(mirror)
    # Then it waits while the member is there, leaving the Kafka offsets alone
    mirror.wait_for(f"Kafka group {group} has members")
    assert kafka_committed(kafka_cluster, group, topic, 1) == {}
    # And once the member left, the translated offset is committed
    member.close()
    wait_kafka_committed(kafka_cluster, group, topic, {0: 30}, mirror)
    assert mirror.terminate() == 0


def test_a_kafka_offset_the_mirror_did_not_commit_is_left_alone(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a group committed on logsvc, and the same group already committed on Kafka by others
    topic = kafka_cluster.name("owned")
    group = kafka_cluster.name("moved")
    with Admin(source.address) as admin:
        admin.create_topic(topic, 1)
        produce(source.address, topic, 1, 50)
        admin.commit_offsets(group, {TopicPartition(topic, 0): 30})
    state = tmp_path / "state"
    args = ["--from", source.address, "--to", kafka_cluster.address, "--topics", topic, "--state-dir", str(state)]
    first = MirrorProcess().start(*args)  # the topic must exist on Kafka before anyone commits there
    mirrors.append(first)
    wait_caught_up(state, source.address, kafka_cluster.address)
    assert first.terminate() == 0
    kafka_admin = AdminClient({"bootstrap.servers": kafka_cluster.bootstrap})
    request = ConsumerGroupTopicPartitions(group, [KafkaPartition(topic, 0, 45)])
    kafka_admin.alter_consumer_group_offsets([request])[group].result(30)

    # When the mirror runs with the group
    mirror = MirrorProcess().start(*args, "--groups", group, "--group-interval-ms", "200")
    mirrors.append(mirror)

    # Then it says it leaves the Kafka offset alone, and does
    mirror.wait_for(f"Kafka group {group} committed {topic}[0] at 45 itself")
    assert kafka_committed(kafka_cluster, group, topic, 1) == {0: 45}
    assert mirror.terminate() == 0
    assert kafka_committed(kafka_cluster, group, topic, 1) == {0: 45}
