"""What the mirror tests share: source records made reproducible, a mirror as a subprocess, and
Kafka read back to the end of every partition with confluent_kafka."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import Consumer, KafkaError
from confluent_kafka import TopicPartition as KafkaPartition

from logsvc_client import Admin, Producer
from logsvc_client import Consumer as LogsvcConsumer
from tests.conftest import ChildProcess, cli_env
from tests.fixtures.kafka import KafkaCluster

#: (partition, offset, timestamp_ms, key, value, headers) of one record
Row = tuple[int, int, int, bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]


def produce(address: str, topic: str, partitions: int, count: int, start: int = 0) -> None:
    """``count`` records numbered from ``start``: keys, two headers, explicit timestamps, spread
    over the partitions (never a null value: Tansu's Fetch does not return them)."""
    with Producer(address, linger_ms=5) as producer:
        for i in range(start, start + count):
            producer.send(
                topic,
                b"value-%d" % i,
                key=b"key-%d" % (i % 97),
                partition=i % partitions,
                headers=[("n", b"%d" % i), ("src", b"logsvc")],
                timestamp_ms=1_700_000_000_000 + i,
            )
        producer.flush()


def source_topic(
    address: str,
    kafka: KafkaCluster,
    prefix: str,
    partitions: int,
    records: int = 0,
    config: dict[str, str] | None = None,
) -> str:
    """A new topic on the logsvc broker at ``address``, named by ``kafka`` (Tansu cannot delete,
    so a name is never reused), holding ``records`` of :func:`produce`."""
    topic = kafka.name(prefix)
    with Admin(address) as admin:
        admin.create_topic(topic, partitions, config)
    if records:
        produce(address, topic, partitions, records)
    return topic


def read_source(address: str, topic: str) -> dict[int, list[Row]]:
    """Every record of the logsvc topic, per partition, in offset order."""
    out: dict[int, list[Row]] = {}
    with Admin(address) as admin:
        ends = admin.list_offsets(topic, "latest")
    with LogsvcConsumer(address) as consumer:
        tps = consumer.assign_topic(topic)
        done = {tp.partition for tp in tps if ends[tp.partition] == 0}
        while len(done) < len(tps):
            for r in consumer.poll(timeout_ms=500):
                out.setdefault(r.partition, []).append(
                    (r.partition, r.offset, r.timestamp_ms, r.key, r.value, tuple(r.headers or ()))
                )
                if r.offset + 1 >= ends[r.partition]:
                    done.add(r.partition)
    return out


def read_kafka(bootstrap: str, topic: str, partitions: int, timeout_s: float = 60) -> dict[int, list[Row]]:
    """Every record of the Kafka topic, per partition, read to the end (EOF) with confluent_kafka."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"mirror-test-reader-{time.monotonic_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    out: dict[int, list[Row]] = {p: [] for p in range(partitions)}
    try:
        consumer.assign([KafkaPartition(topic, p, 0) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, f"Kafka topic {topic} not read to its end in {timeout_s} s"
            for msg in consumer.consume(10_000, timeout=0.5):
                error = msg.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    at_end.add(msg.partition())
                    continue
                _, ts = msg.timestamp()
                headers = tuple((k, v) for k, v in (msg.headers() or ()))
                out[msg.partition()].append((msg.partition(), msg.offset(), ts, msg.key(), msg.value(), headers))
    finally:
        consumer.close()
    return out


def same_records(source: Iterable[Row], kafka: Iterable[Row]) -> bool:
    """Equal but for the offsets (which differ where the source was trimmed)."""
    return [r[:1] + r[2:] for r in source] == [r[:1] + r[2:] for r in kafka]


class MirrorProcess(ChildProcess):
    """``logsvc mirror ...`` as a child process; :meth:`wait_for` watches its log lines."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def start(self, *args: str) -> MirrorProcess:
        self.stderr_lines = []
        self.spawn([sys.executable, "-m", "logsvc.cli", "mirror", *args], cli_env())
        return self

    def on_stderr_line(self, line: bytes) -> None:
        with self._changed:
            self._changed.notify_all()

    def exit_errors(self, timeout_s: float = 60) -> list[str]:
        """Wait for the mirror to exit with 1 (a refusal); its ``error: `` lines, read to the end."""
        assert self.proc is not None and self.proc.wait(timeout_s) == 1, self.stderr_text()
        self.kill()  # joins the stderr reader: every line is in
        return [line for line in self.stderr_text().splitlines() if line.startswith("error: ")]

    def wait_for(self, text: str, timeout_s: float = 60, after: int = 0) -> None:
        """Until a log line (from the ``after``-th on) contains ``text``; fails with the log."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not any(text.encode() in line for line in self.stderr_lines[after:]):
                assert self.proc is not None
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, f"no {text!r} from the mirror:\n{self.stderr_text()}"
                self._changed.wait(min(left, 0.2))


def status(state_dir: Path, source: str, target: str) -> list[dict[str, object]]:
    """``logsvc mirror status -o json``, run as a subprocess."""
    argv = [sys.executable, "-m", "logsvc.cli", "mirror", "status", "--from", source, "--to", target]
    done = subprocess.run(
        [*argv, "--state-dir", str(state_dir), "-o", "json"],
        capture_output=True,
        timeout=60,
        env=cli_env(),
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return rows


def wait_caught_up(state_dir: Path, source: str, target: str, timeout_s: float = 60) -> list[dict[str, object]]:
    """Until ``mirror status`` shows no partition behind; its rows."""
    deadline = time.monotonic() + timeout_s
    while not (state_dir / "checkpoint.json").exists():  # the mirror is starting
        assert time.monotonic() < deadline, "the mirror wrote no checkpoint"
        time.sleep(0.05)
    while True:
        rows = status(state_dir, source, target)
        if all(row["behind"] == 0 for row in rows):
            return rows
        assert time.monotonic() < deadline, f"the mirror did not catch up: {rows}"
        time.sleep(0.5)
