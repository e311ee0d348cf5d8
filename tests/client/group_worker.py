"""A group consumer in its own process, for tests that kill one (run with ``sys.executable``).

    python group_worker.py ADDRESS GROUP TOPIC LOG_FILE [--session-timeout-ms N] [--instance-id ID]
                           [--revoke-ms N]

Consumes TOPIC as a member of GROUP (auto-commit every 200 ms) until SIGTERM, then closes (which
commits and leaves). Appends one JSON object per line to LOG_FILE, flushed at once, so what a
SIGKILL'd worker did is still there:

* ``{"ev": "assign" | "revoke", "t": wall time s, "member": id, "gen": n, "partitions": [p, ...]}``
  from the rebalance callbacks; the revoke callback takes ``--revoke-ms`` (finishing work in
  flight) and logs at its end, so the partitions must still be this worker's until then;
* ``{"ev": "records", "t": ..., "member": ..., "gen": ..., "partition": p, "offsets": [first, last]}``
  for each partition of each poll (the offsets of one poll and partition are contiguous);
* ``{"ev": "closed", "t": ...}`` after a clean close.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from logsvc_client import Consumer, TopicPartition

AUTO_COMMIT_INTERVAL_MS = 200


class Log:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.consumer: Consumer | None = None

    def write(self, ev: str, **fields: Any) -> None:
        meta = self.consumer.group_metadata() if self.consumer is not None else None
        line = {"ev": ev, "t": time.time(), "member": meta and meta.member_id, "gen": meta and meta.generation}
        line.update(fields)
        self.stream.write(json.dumps(line) + "\n")
        self.stream.flush()

    def rebalance(self, ev: str, busy_ms: int = 0) -> Any:
        def callback(tps: Sequence[TopicPartition]) -> None:
            time.sleep(busy_ms / 1000)
            self.write(ev, partitions=[tp.partition for tp in tps])

        return callback


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("log_file")
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    parser.add_argument("--instance-id", default=None)
    parser.add_argument("--revoke-ms", type=int, default=0)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with open(args.log_file, "a", encoding="utf-8") as stream:
        log = Log(stream)
        consumer = Consumer(
            args.address,
            args.group,
            instance_id=args.instance_id,
            session_timeout_ms=args.session_timeout_ms,
            auto_commit_interval_ms=AUTO_COMMIT_INTERVAL_MS,
            on_assign=log.rebalance("assign"),
            on_revoke=log.rebalance("revoke", args.revoke_ms),
            max_poll_records=500,
        )
        log.consumer = consumer
        with consumer:
            consumer.subscribe([args.topic])
            while not stop.is_set():
                spans: dict[int, list[int]] = {}
                for r in consumer.poll(timeout_ms=100):
                    span = spans.setdefault(r.partition, [r.offset, r.offset])
                    span[1] = r.offset
                for partition, offsets in sorted(spans.items()):
                    log.write("records", partition=partition, offsets=offsets)
        log.consumer = None
        log.write("closed")


if __name__ == "__main__":
    main()
