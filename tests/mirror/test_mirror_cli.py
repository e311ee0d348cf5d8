"""``logsvc mirror`` refusing what it cannot do, with one error line and no traceback, and
``logsvc mirror status`` as a table."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from tests.conftest import BrokerProcess, cli_env
from tests.fixtures.kafka import KafkaCluster
from tests.mirror.helpers import MirrorProcess, produce, source_topic, wait_caught_up


def mirror(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "mirror", *args], capture_output=True, text=True, timeout=60, env=cli_env()
    )


def one_error_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_kafka_topic_with_fewer_partitions_is_refused(
    source: BrokerProcess, kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    # Given a logsvc topic with 3 partitions and a Kafka topic of the same name with 1
    topic = source_topic(source.address, kafka_cluster, "narrow", 3)
    kafka_admin = AdminClient({"bootstrap.servers": kafka_cluster.bootstrap})
    kafka_admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)

    # When the mirror is started, Then it refuses, saying why
    done = mirror(
        "--from", source.address, "--to", kafka_cluster.address, "--topics", topic, "--state-dir", str(tmp_path)
    )
    line = one_error_line(done)
    assert f"Kafka topic '{topic}' has 1 partitions, fewer than the 3 of the logsvc topic" in line


def test_wrong_addresses_and_missing_topics_are_one_error_line(source: BrokerProcess, tmp_path: Path) -> None:
    state = str(tmp_path)
    assert "--to kafka://HOST:PORT is needed" in one_error_line(mirror("--from", source.address), code=2)
    assert "must be a Kafka cluster" in one_error_line(
        mirror("--from", source.address, "--to", source.address, "--topics", "t", "--state-dir", state)
    )
    assert "must be a logsvc broker" in one_error_line(
        mirror("--from", "kafka://h:9092", "--to", "kafka://h:9092", "--topics", "t", "--state-dir", state)
    )
    assert "name the topics" in one_error_line(
        mirror("--from", source.address, "--to", "kafka://127.0.0.1:9", "--state-dir", state)
    )
    assert "no mirror checkpoint in" in one_error_line(
        mirror("status", "--from", source.address, "--to", "kafka://127.0.0.1:9", "--state-dir", state)
    )


def test_a_missing_source_topic_is_one_error_line(
    source: BrokerProcess, kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    done = mirror(
        "--from", source.address, "--to", kafka_cluster.address, "--topics", "no-such-topic",
        "--state-dir", str(tmp_path),
    )  # fmt: skip
    assert "no-such-topic" in one_error_line(done)


def test_status_shows_each_partition_as_a_table(
    source: BrokerProcess, kafka_cluster: KafkaCluster, mirrors: list[MirrorProcess], tmp_path: Path
) -> None:
    # Given a mirror that copied 10 records of a 2-partition topic and was stopped
    topic = source_topic(source.address, kafka_cluster, "shown", 2, 10)
    state = tmp_path / "state"
    proc = MirrorProcess().start(
        "--from", source.address, "--to", kafka_cluster.address, "--topics", topic, "--state-dir", str(state)
    )
    mirrors.append(proc)
    wait_caught_up(state, source.address, kafka_cluster.address)
    assert proc.proc is not None
    proc.proc.send_signal(signal.SIGINT)  # Ctrl-C stops it as SIGTERM does: exit 0
    assert proc.proc.wait(30) == 0
    proc.kill()
    # And 4 more records produced since
    produce(source.address, topic, 2, 4, start=10)

    # When its status is shown as a table
    done = mirror("status", "--from", source.address, "--to", kafka_cluster.address, "--state-dir", str(state))

    # Then each partition says how far the copy got and how far behind it is
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "TOPIC" + " " * (len(topic) - 3) + "PARTITION  SOURCE-NEXT  COPIED-TO  KAFKA-NEXT  BEHIND",
        f"{topic}          0            7          5           5       2",
        f"{topic}          1            7          5           5       2",
    ]
