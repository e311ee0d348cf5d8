"""Fixtures and helpers of the handler connector tests: a topic of three partitions on the
in-process broker, JSON records ``{"n": n}`` produced into it, and what the broker then holds (the
records of a topic, a group's committed offsets)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer, Record


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


def header(record: Record, name: str) -> str:
    return dict(record.headers or ()).get(name, b"").decode()


def committed(address: str, group: str) -> dict[int, int]:
    with Admin(address) as admin:
        return {tp.partition: c.offset for tp, c in admin.committed_offsets(group).items()}
