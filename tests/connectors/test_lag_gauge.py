"""LagGauge: the connector's lag per partition from the broker's log ends, asked at most every
LAG_REFRESH_S (a real broker; a fake clock)."""

from __future__ import annotations

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer, TopicPartition
from logsvc_connect.lag import LAG_REFRESH_S, LagGauge
from logsvc_connect.metrics import ConnectorMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def lag(metrics: ConnectorMetrics, partition: int) -> float | None:
    labels = {"connector": "orders-pg", "kind": "postgres", "topic": "orders", "partition": str(partition)}
    return metrics.registry.get_sample_value("logsvc_connect_lag_records", labels)


def produce(address: str, partition: int, count: int) -> None:
    with Producer(address, linger_ms=0) as producer:
        for i in range(count):
            producer.send("orders", b"v%d" % i, partition=partition)


def test_the_lag_is_the_log_end_minus_the_committed_offset_refreshed_at_most_every_interval(broker: Broker) -> None:
    clock, metrics = Clock(), ConnectorMetrics("orders-pg", "postgres")
    gauge = LagGauge(metrics, clock)
    with Admin(broker.address) as admin:
        admin.create_topic("orders", 2)
        produce(broker.address, 0, 10)

        # Nothing committed yet: nothing to say
        gauge.refresh(admin)
        assert lag(metrics, 0) is None

        # Committed up to 4 of partition 0's 10 records: 6 behind
        gauge.committed({TopicPartition("orders", 0): 4})
        gauge.refresh(admin)
        assert lag(metrics, 0) == 6 and lag(metrics, 1) is None

        # More records and a commit within the interval: not asked again yet
        produce(broker.address, 0, 5)
        gauge.committed({TopicPartition("orders", 0): 12})
        clock.now += LAG_REFRESH_S - 0.1
        gauge.refresh(admin)
        assert lag(metrics, 0) == 6

        # Once the interval has passed: 15 - 12
        clock.now += 0.1
        gauge.refresh(admin)
        assert lag(metrics, 0) == 3
