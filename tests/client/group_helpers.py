"""Helpers for the group-consumer tests against a real broker: waiting, a group's stable
description, polling several consumers, producing numbered records."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from logsvc_client import Admin, Consumer, Producer, TopicPartition
from logsvc_client.errors import GroupNotFound
from logsvc_client.group.descriptions import GroupDescription
from tests.fixtures.clusters import Cluster


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, step: Callable[[], None] | None = None
) -> Any:
    """Call ``step`` (or sleep a little) until ``condition()`` is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if step is None:
            time.sleep(0.02)
        else:
            step()


def stable_with(admin: Admin, group: str, members: int) -> GroupDescription | None:
    """The group's description once it is Stable with ``members`` members, else None."""
    try:
        desc = admin.describe_group(group)
    except GroupNotFound:
        return None
    return desc if desc.state == "Stable" and len(desc.members) == members else None


def poll_all(*consumers: Consumer) -> Callable[[], None]:
    def step() -> None:
        for c in consumers:
            c.poll(timeout_ms=20)

    return step


def produce(address: str, topic: str, count: int, start: int = 0) -> None:
    with Producer(address, linger_ms=1) as producer:
        for i in range(start, start + count):
            producer.send(topic, b"value-%d" % i, key=b"key-%d" % i)
        producer.flush()


def tps(topic: str, partitions: Sequence[int]) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in partitions]


def group_options(cluster: Cluster) -> dict[str, int]:
    """Group consumer options for ``cluster``: on Tansu (``slow_join``) a JoinGroup is answered
    after about half of the rebalance timeout (``max_poll_interval_ms``), so short timeouts keep
    a join near 1 s; none elsewhere."""
    if "slow_join" in cluster.quirks:
        return {"session_timeout_ms": 1_500, "max_poll_interval_ms": 1_500}
    return {}
