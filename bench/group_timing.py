"""The group figures of ``make bench`` (:mod:`produce_fetch`): one group consumer reading a topic
from joining to its last record, and a rebalance after a member leaves."""

from __future__ import annotations

import time
import uuid

from logsvc_client import Consumer, TopicPartition


def group_consume(address: str, topic: str, records: int) -> tuple[int, float]:
    """Read at least ``records`` records as the only member of a new group; (count, seconds)."""
    with Consumer(address, f"bench-group-{uuid.uuid4().hex[:8]}", enable_auto_commit=True) as consumer:
        started = time.perf_counter()
        consumer.subscribe([topic])
        seen = 0
        while seen < records:
            got = consumer.poll(timeout_ms=5000)
            if not got:
                raise SystemExit(f"group consumer stalled after {seen:,} records")
            seen += len(got)
        return seen, time.perf_counter() - started


def rebalance_ms(address: str, topic: str, partitions: int, timeout_s: float = 30) -> float:
    """Two members share ``topic``; one leaves; ms until the other reads every partition."""
    group = f"bench-rebalance-{uuid.uuid4().hex[:8]}"
    everything = [TopicPartition(topic, p) for p in range(partitions)]
    with Consumer(address, group) as leaving, Consumer(address, group) as staying:
        leaving.subscribe([topic])
        staying.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while not (leaving.assignment() and staying.assignment()) or (
            sorted(leaving.assignment() + staying.assignment()) != everything
        ):
            if time.monotonic() > deadline:
                raise SystemExit("the two group consumers never shared the topic")
            leaving.poll(timeout_ms=10, max_records=1)
            staying.poll(timeout_ms=10, max_records=1)
        started = time.perf_counter()
        leaving.close()
        while staying.assignment() != everything:
            if time.monotonic() > deadline:
                raise SystemExit("the survivor never got every partition")
            staying.poll(timeout_ms=5, max_records=1)
        return (time.perf_counter() - started) * 1000
