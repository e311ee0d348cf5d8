"""``logsvc mirror`` against a real logsvc broker and a real Kafka-protocol broker (Tansu): the
copy is exact, it tails, it survives kill -9, and its status says how far it got."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from logsvc_client import Admin
from logsvc_client import Producer as LogsvcProducer
from tests.conftest import BrokerProcess
from tests.fixtures.kafka import KafkaCluster
from tests.mirror.helpers import (
    MirrorProcess,
    produce,
    read_kafka,
    read_source,
    same_records,
    source_topic,
    status,
    wait_caught_up,
)


def mirror_args(source: BrokerProcess, kafka: KafkaCluster, state_dir: Path, *topics: str) -> list[str]:
    return [
        "--from", source.address, "--to", kafka.address, "--topics", ",".join(topics),
        "--state-dir", str(state_dir), "--checkpoint-interval-ms", "200",
    ]  # fmt: skip


def copy_to_end(
    mirrors: list[MirrorProcess], source: BrokerProcess, kafka: KafkaCluster, state_dir: Path, *topics: str
) -> None:
    """Run a mirror of ``topics`` until it has caught up, then stop it (SIGTERM, exit 0)."""
    mirror = MirrorProcess().start(*mirror_args(source, kafka, state_dir, *topics))
    mirrors.append(mirror)
    wait_caught_up(state_dir, source.address, kafka.address)
    assert mirror.terminate() == 0


def kafka_partitions(kafka: KafkaCluster, topic: str) -> int:
    """The topic's partition count, from the metadata of all topics (naming one creates it on Tansu)."""
    return len(AdminClient({"bootstrap.servers": kafka.bootstrap}).list_topics(timeout=10).topics[topic].partitions)


def wait_until_checkpointed(state_dir: Path, records: int, mirror: MirrorProcess, timeout_s: float = 30) -> None:
    """Until the mirror's checkpoint covers ``records`` records (summed over partitions)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            saved = json.loads((state_dir / "checkpoint.json").read_text())
            if sum(p["kafka_next"] for p in saved["partitions"]) >= records:
                return
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, f"no checkpoint of {records} records:\n{mirror.stderr_text()}"
        time.sleep(0.01)


def test_records_are_copied_to_the_same_partition_in_order_and_new_ones_follow(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a logsvc topic with records in three partitions
    topic = source_topic(source.address, kafka_cluster, "orders", 3, 3_000, {"retention_ms": "86400000"})

    # When the mirror copies it and catches up, and more records are produced after that
    mirror = MirrorProcess().start(*mirror_args(source, kafka_cluster, tmp_path / "state", topic))
    mirrors.append(mirror)
    mirror.wait_for("caught up")
    seen = len(mirror.stderr_lines)
    produce(source.address, topic, 3, 500, start=3_000)
    mirror.wait_for("caught up", after=seen)

    # Then the Kafka topic has the same partition count (the retention it got cannot be read back
    # from Tansu: DescribeConfigs answers nothing)
    assert kafka_partitions(kafka_cluster, topic) == 3
    # And Kafka holds every record on its partition, in order, with key, value, headers, timestamp
    want = read_source(source.address, topic)
    got = read_kafka(kafka_cluster.bootstrap, topic, 3)
    for p in range(3):
        assert same_records(want[p], got[p]), f"partition {p} differs"
        assert [r[1] for r in got[p]] == list(range(len(want[p])))
    # And the status shows nothing behind
    rows = status(tmp_path / "state", source.address, kafka_cluster.address)
    assert [(r["partition"], r["copied_to"], r["kafka_next"], r["behind"]) for r in rows] == [
        (p, len(want[p]), len(want[p]), 0) for p in range(3)
    ]
    # And SIGTERM ends it with exit 0 after a last checkpoint
    assert mirror.terminate() == 0, mirror.stderr_text()
    assert "checkpoint written" in mirror.stderr_text()
    assert "Traceback" not in mirror.stderr_text()


def test_a_kafka_partition_someone_else_wrote_to_stops_the_mirror(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a topic mirrored to the end and the mirror stopped
    topic = source_topic(source.address, kafka_cluster, "shared", 1, 20)
    copy_to_end(mirrors, source, kafka_cluster, tmp_path / "state", topic)
    # And a record another producer wrote to the Kafka partition since, and one more on logsvc
    other = Producer({"bootstrap.servers": kafka_cluster.bootstrap})
    other.produce(topic, b"not from logsvc", partition=0)
    assert other.flush(30) == 0
    produce(source.address, topic, 1, 1, start=20)

    # When the mirror restarts, Then it refuses to take that record for a copy of logsvc's
    again = MirrorProcess().start(*mirror_args(source, kafka_cluster, tmp_path / "state", topic))
    mirrors.append(again)
    errors = again.exit_errors()
    assert len(errors) == 1 and "ends with a record that is not the copy of logsvc's record at offset 20" in errors[0]


def test_a_mirror_killed_three_times_copies_every_record_exactly_once(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given 100,000 records in four partitions
    topic = source_topic(source.address, kafka_cluster, "payments", 4, 100_000)
    # (throttled to 25,000 records/s, so that each kill falls inside the copy, at a known point)
    args = [*mirror_args(source, kafka_cluster, tmp_path / "state", topic), "--max-records-per-second", "25000"]

    # When the mirror is killed with SIGKILL three times while it copies, and then runs to the end
    copied = []
    for threshold in (15_000, 45_000, 75_000):
        mirror = MirrorProcess().start(*args)
        mirrors.append(mirror)
        wait_until_checkpointed(tmp_path / "state", threshold, mirror)
        time.sleep(0.1)  # half a checkpoint interval on: Kafka holds records past the checkpoint
        mirror.kill()
        copied.append(sum(len(rows) for rows in read_kafka(kafka_cluster.bootstrap, topic, 4).values()))
    assert copied == sorted(copied) and copied[-1] < 100_000, f"not killed while copying: {copied}"
    mirror = MirrorProcess().start(*args)
    mirrors.append(mirror)
    wait_caught_up(tmp_path / "state", source.address, kafka_cluster.address)

    # Then every record is on Kafka exactly once, same partition, same order
    want = read_source(source.address, topic)
    got = read_kafka(kafka_cluster.bootstrap, topic, 4)
    for p in range(4):
        assert len(got[p]) == len(want[p]) == 25_000
        assert same_records(want[p], got[p]), f"partition {p} differs"
    # And the restarts found records Kafka acknowledged after the last checkpoint (the case a
    # naive resume from the checkpoint would copy twice)
    assert any("not copied again" in m.stderr_text() for m in mirrors[1:]), copied
    assert mirror.terminate() == 0


def copy_and_compare(
    source: BrokerProcess, kafka: KafkaCluster, mirrors: list[MirrorProcess], state: Path, records: list[dict[str, Any]]
) -> None:
    """Produce ``records`` (send() keywords) to a new 1-partition topic, mirror it, compare."""
    topic = kafka.name("odd")
    with Admin(source.address) as admin:
        admin.create_topic(topic, 1)
    with LogsvcProducer(source.address) as producer:
        for i, record in enumerate(records):
            producer.send(topic, partition=0, timestamp_ms=1_700_000_000_000 + i, **record)
        producer.flush()
    copy_to_end(mirrors, source, kafka, state, topic)
    assert same_records(read_source(source.address, topic)[0], read_kafka(kafka.bootstrap, topic, 1)[0])


def test_records_without_key_or_headers_empty_or_large_values_are_copied_as_they_are(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    records = [
        {"value": b"no key", "headers": [("h", b""), ("h", b"twice")]},
        {"value": b"", "key": b""},
        {"value": b"bare", "key": b"k"},
        {"value": b"x" * (3 << 20), "key": b"large"},  # above librdkafka's default message.max.bytes
    ]
    copy_and_compare(source, kafka_cluster, mirrors, tmp_path / "state", records)


def test_tombstones_are_copied_as_tombstones(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    kafka_cluster.skip_if(
        "tombstones", "a record with a null value is never returned by a Fetch, so it cannot be read back"
    )
    records = [{"value": b"v", "key": b"gone"}, {"value": None, "key": b"gone"}, {"value": b"after", "key": b"k"}]
    copy_and_compare(source, kafka_cluster, mirrors, tmp_path / "state", records)


def test_the_mirror_waits_out_a_logsvc_restart_and_copies_on(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a mirror that caught up with a topic
    topic = source_topic(source.address, kafka_cluster, "restarted", 2, 1_000)
    mirror = MirrorProcess().start(*mirror_args(source, kafka_cluster, tmp_path / "state", topic))
    mirrors.append(mirror)
    wait_caught_up(tmp_path / "state", source.address, kafka_cluster.address)

    # When the logsvc broker goes away, comes back on the same port and gets more records
    seen = len(mirror.stderr_lines)
    source.kill()
    mirror.wait_for("is unavailable", after=seen)
    source.start(listen=f"127.0.0.1:{source.port}")
    produce(source.address, topic, 2, 1_000, start=1_000)

    # Then the mirror said it was back, and copies everything exactly once
    mirror.wait_for("is back", after=seen)
    wait_caught_up(tmp_path / "state", source.address, kafka_cluster.address)
    want, got = read_source(source.address, topic), read_kafka(kafka_cluster.bootstrap, topic, 2)
    assert all(len(got[p]) == 1_000 and same_records(want[p], got[p]) for p in range(2))
    assert mirror.terminate() == 0


def test_a_mirror_started_before_logsvc_waits_for_it_and_copies(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a topic on a logsvc broker that is stopped when the mirror starts
    topic = source_topic(source.address, kafka_cluster, "late", 2, 500)
    source.kill()
    mirror = MirrorProcess().start(*mirror_args(source, kafka_cluster, tmp_path / "state", topic))
    mirrors.append(mirror)

    # Then it waits, saying so
    mirror.wait_for("cannot reach logsvc or Kafka yet")
    assert mirror.proc is not None and mirror.proc.poll() is None, mirror.stderr_text()

    # When the broker starts, Then the mirror copies everything once
    source.start(listen=f"127.0.0.1:{source.port}")
    wait_caught_up(tmp_path / "state", source.address, kafka_cluster.address)
    want, got = read_source(source.address, topic), read_kafka(kafka_cluster.bootstrap, topic, 2)
    assert sum(map(len, got.values())) == 500
    assert all(same_records(want[p], got[p]) for p in range(2))
    assert mirror.terminate() == 0


def test_a_topic_left_out_of_one_run_resumes_where_it_stopped_when_named_again(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given two topics mirrored to the end
    one, two = kafka_cluster.name("one"), kafka_cluster.name("two")
    with Admin(source.address) as admin:
        admin.create_topic(one, 1)
        admin.create_topic(two, 1)
    produce(source.address, one, 1, 100)
    produce(source.address, two, 1, 100)
    state = tmp_path / "state"
    for names in ((one, two), (one,)):  # When a second run names only the first one
        copy_to_end(mirrors, source, kafka_cluster, state, *names)
    # And a third names both again, after more records in the second
    produce(source.address, two, 1, 50, start=100)
    copy_to_end(mirrors, source, kafka_cluster, state, one, two)

    # Then the second topic holds each record once
    assert same_records(read_source(source.address, two)[0], read_kafka(kafka_cluster.bootstrap, two, 1)[0])


def test_a_kafka_partition_shorter_than_the_checkpoint_stops_the_mirror(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a mirrored topic whose checkpoint claims more than Kafka holds (as after Kafka lost
    # records, e.g. a Tansu with memory storage restarted)
    topic = source_topic(source.address, kafka_cluster, "lost", 1, 20)
    state = tmp_path / "state"
    copy_to_end(mirrors, source, kafka_cluster, state, topic)
    saved = json.loads((state / "checkpoint.json").read_text())
    saved["partitions"][0]["kafka_next"] += 1000
    (state / "checkpoint.json").write_text(json.dumps(saved))

    # When the mirror restarts, Then it stops with one error line saying what is wrong
    again = MirrorProcess().start(*mirror_args(source, kafka_cluster, state, topic))
    mirrors.append(again)
    errors = again.exit_errors()
    assert len(errors) == 1 and "lost records the checkpoint" in errors[0], again.stderr_text()
    assert "Kafka ends at offset 20, before the checkpoint's 1020" in errors[0]


def test_partitions_added_on_logsvc_are_copied_without_a_restart(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a logsvc topic of 2 partitions mirrored to the end (Tansu cannot grow a topic, so there
    # its Kafka topic is made with 3 partitions beforehand; a Kafka cluster gets them from the mirror)
    topic = source_topic(source.address, kafka_cluster, "growing", 2)
    if "create_partitions" in kafka_cluster.quirks:
        kafka_admin = AdminClient({"bootstrap.servers": kafka_cluster.bootstrap})
        kafka_admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    produce(source.address, topic, 2, 400)
    args = mirror_args(source, kafka_cluster, tmp_path / "state", topic)
    mirror = MirrorProcess().start(*args, "--refresh-interval-ms", "200")
    mirrors.append(mirror)
    mirror.wait_for("caught up")

    # When the logsvc topic grows to 3 partitions and records go to every partition
    seen = len(mirror.stderr_lines)
    with Admin(source.address) as admin:
        admin.alter_topic(topic, partitions=3)
    produce(source.address, topic, 3, 300, start=400)

    # Then the running mirror takes up the new partition and copies every record, in order
    mirror.wait_for(f"copying {topic}[2] from their log start", after=seen)
    mirror.wait_for("caught up", after=seen)
    assert kafka_partitions(kafka_cluster, topic) == 3
    want = read_source(source.address, topic)
    got = read_kafka(kafka_cluster.bootstrap, topic, 3)
    for p in range(3):
        assert want[p] and same_records(want[p], got[p]), f"partition {p} differs"
    # And its status and checkpoint hold the new partition, with nothing behind, and a restart
    # copies nothing twice
    rows = wait_caught_up(tmp_path / "state", source.address, kafka_cluster.address)
    assert sorted(row["partition"] for row in rows) == [0, 1, 2]
    # (and looking again every 200 ms while idle says nothing: no "caught up" for nothing new)
    said = mirror.stderr_text().count("caught up")
    time.sleep(1.0)
    assert mirror.stderr_text().count("caught up") == said
    assert mirror.terminate() == 0
    again = MirrorProcess().start(*args)
    mirrors.append(again)
    again.wait_for("caught up")
    assert again.terminate() == 0
    assert read_kafka(kafka_cluster.bootstrap, topic, 3) == got


def test_a_partition_added_on_logsvc_that_kafka_cannot_take_stops_the_mirror(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    if "create_partitions" not in kafka_cluster.quirks:
        pytest.skip(f"{kafka_cluster.kind} can add partitions: the mirror grows its topic (the test above)")
    # (on Tansu, which offers no CreatePartitions)
    # Given a topic of 1 partition mirrored to a Kafka topic the mirror made with 1
    topic = source_topic(source.address, kafka_cluster, "cannot-grow", 1, 50)
    mirror = MirrorProcess().start(*mirror_args(source, kafka_cluster, tmp_path / "state", topic))
    mirrors.append(mirror)
    mirror.wait_for("caught up")

    # When the logsvc topic grows to 2 partitions
    with Admin(source.address) as admin:
        admin.alter_topic(topic, partitions=2)
    produce(source.address, topic, 2, 10, start=50)

    # Then the mirror stops with one error line saying why, and what it copied is true
    errors = mirror.exit_errors()
    assert len(errors) == 1, mirror.stderr_text()
    assert f"Kafka topic '{topic}' has 1 partitions, fewer than the 2 of the logsvc topic" in errors[0]
    assert "Traceback" not in mirror.stderr_text()
    copied = read_kafka(kafka_cluster.bootstrap, topic, 1)[0]
    assert len(copied) >= 50 and same_records(read_source(source.address, topic)[0][: len(copied)], copied)
