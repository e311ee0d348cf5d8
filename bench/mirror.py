"""Mirror benchmark: ``logsvc mirror`` copying a topic from logsvc onto a Kafka-protocol broker.

Starts its own broker (``logsvc serve`` on a temporary data directory) unless given ``--server``,
and its own Tansu (``python -m tests.fixtures.kafka``, memory storage) unless given ``--kafka
kafka://...``; then:

1. produces ``--records`` records (``--value-bytes`` values, keys, one header, explicit
   timestamps) into a new topic of ``--partitions`` partitions and waits for every acknowledgement;
2. starts ONE ``logsvc mirror`` process for the topic with a fresh state directory;
3. times from its "mirroring" log line (start-up, topic creation and the Kafka tail read done)
   until its "caught up" line (every record logsvc holds acknowledged by Kafka); then SIGTERMs it.

Tansu shares the machine's cores with the broker and the mirror, so the rate is a floor for the
mirror on its own.

Last line: ``mirror_rps=N``
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from own_broker import broker

from logsvc_client import Admin, Producer

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def kafka(address: str | None) -> Iterator[str]:
    """``address`` when given, else a Tansu broker of our own (stopped at the end)."""
    if address:
        yield address
        return
    proc = subprocess.Popen([sys.executable, "-m", "tests.fixtures.kafka"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("kafka://"):
            raise SystemExit(f"tansu did not start: {line!r}")
        yield line
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def produce(address: str, topic: str, records: int, partitions: int, value_bytes: int) -> None:
    payload = os.urandom(value_bytes // 2).hex().encode()[:value_bytes]
    with Producer(address, linger_ms=5) as producer:
        for i in range(records):
            producer.send(
                topic,
                payload,
                key=b"key-%d" % (i % 1000),
                partition=i % partitions,
                headers=[("n", b"%d" % i)],
                timestamp_ms=1_700_000_000_000 + i,
            )
        producer.flush()


def time_mirror(source: str, target: str, topic: str) -> float:
    """Seconds from the mirror's "mirroring" line to its "caught up" line (its checkpoint kept in a
    temporary directory, removed after)."""
    with tempfile.TemporaryDirectory(prefix="logsvc-bench-mirror-") as state_dir:
        return _time_mirror(source, target, topic, state_dir)


def _time_mirror(source: str, target: str, topic: str, state_dir: str) -> float:
    argv = [sys.executable, "-m", "logsvc.cli", "mirror", "--from", source, "--to", target, "--topics", topic]
    proc = subprocess.Popen([*argv, "--state-dir", state_dir], stderr=subprocess.PIPE, text=True)
    started = None
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "mirroring" in line and started is None:
                started = time.monotonic()
            elif "caught up" in line and started is not None:
                return time.monotonic() - started
            elif "error:" in line or "ERROR" in line:
                raise SystemExit(f"the mirror failed: {line.strip()}")
        raise SystemExit(f"the mirror exited with {proc.wait()} before catching up")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="a running logsvc broker (default: start one)")
    parser.add_argument("--kafka", help="kafka://host:port of a running cluster (default: start Tansu)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--value-bytes", type=int, default=100)
    args = parser.parse_args()
    with broker(args.server) as source, kafka(args.kafka) as target:
        topic = f"bench-mirror-{uuid.uuid4().hex[:8]}"
        with Admin(source) as admin:
            admin.create_topic(topic, args.partitions)
        started = time.monotonic()
        produce(source, topic, args.records, args.partitions, args.value_bytes)
        print(f"produced {args.records} records in {time.monotonic() - started:.1f} s", flush=True)
        seconds = time_mirror(source, target, topic)
        print(f"mirror_seconds={seconds:.2f}")
        print(f"mirror_rps={args.records / seconds:.0f}")


if __name__ == "__main__":
    main()
