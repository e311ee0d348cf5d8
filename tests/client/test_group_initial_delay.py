"""Consumers started together share a backlog: the broker waits initial_rebalance_delay_ms before
an empty group's first assignment, so the first member does not take every partition alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from logsvc.server.app import Broker
from logsvc_client import Admin, Consumer, Producer, Record


def test_two_consumers_started_together_each_read_a_share_of_the_backlog(start_broker: Callable[..., Broker]) -> None:
    # Given a backlog of 4,000 records on four partitions, and a broker that waits 1 s for members
    broker = start_broker(initial_rebalance_delay_ms=1_000)
    with Admin(broker.address) as admin:
        admin.create_topic("orders", 4)
    with Producer(broker.address) as producer:
        producer.send_many("orders", [b"v"] * 4_000, [b"k%d" % i for i in range(4_000)])
        producer.flush()

    # When two members of one group start 0.3 s apart, each reading 100 records per 20 ms, until
    # the backlog is drained
    got: dict[str, list[Record]] = {"a": [], "b": []}

    def member(name: str) -> None:
        with Consumer(broker.address, group_id="g", client_id=name, max_poll_records=100) as consumer:
            consumer.subscribe(["orders"])
            deadline = time.monotonic() + 15
            while sum(map(len, got.values())) < 4_000 and time.monotonic() < deadline:
                got[name].extend(consumer.poll(timeout_ms=200))
                time.sleep(0.02)

    threads = [threading.Thread(target=member, args=(n,)) for n in got]
    for t in threads:
        t.start()
        time.sleep(0.3)
    for t in threads:
        t.join(30)

    # Then each read two of the partitions, not the same ones, and every record was read once
    partitions = {name: {r.partition for r in records} for name, records in got.items()}
    assert sorted(map(len, partitions.values())) == [2, 2], partitions
    assert partitions["a"].isdisjoint(partitions["b"])
    assert sum(map(len, got.values())) == 4_000
