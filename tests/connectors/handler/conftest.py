"""Fixtures and helpers of the handler connector tests: a topic of three partitions on the
in-process broker, JSON records ``{"n": n}`` produced into it, and what the broker then holds (the
records of a topic, a group's committed offsets)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Consumer, Producer, Record, TopicPartition


def wait_until(predicate: Callable[[], object], timeout_s: float = 30, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def topic(broker: Broker) -> str:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    with Admin(broker.address) as admin:
        admin.create_topic(name, 3)
    return name


def produce(address: str, topic: str, numbers: Sequence[int]) -> None:
    """One JSON record ``{"n": n}`` per number, keyed by it (so spread over the partitions)."""
    with Producer(address, linger_ms=5) as producer:
        for n in numbers:
            producer.send(topic, json.dumps({"n": n}).encode(), str(n).encode())
        producer.flush()


def read_topic(address: str, topic: str) -> list[Record]:
    """Every record of ``topic`` (an empty list when it does not exist)."""
    with Admin(address) as admin:
        if topic not in {t.name for t in admin.list_topics()}:
            return []
        ends = admin.list_offsets(topic, "latest")
    records: list[Record] = []
    with Consumer(address) as consumer:
        consumer.assign_topic(topic)
        consumer.seek_to_beginning()
        while any(consumer.position(TopicPartition(topic, p)) < end for p, end in ends.items()):
            records.extend(consumer.poll(timeout_ms=1000))
    return records


def header(record: Record, name: str) -> str:
    return dict(record.headers or ()).get(name, b"").decode()


def committed(address: str, group: str) -> dict[int, int]:
    with Admin(address) as admin:
        return {tp.partition: c.offset for tp, c in admin.committed_offsets(group).items()}


def caught_up(address: str, group: str, topic: str) -> bool:
    with Admin(address) as admin:
        ends = admin.list_offsets(topic, "latest")
    done = committed(address, group)
    return all(done.get(p, 0) >= end for p, end in ends.items())
