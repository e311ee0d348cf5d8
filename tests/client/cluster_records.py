"""Producing test records on either cluster of the ``cluster`` fixture (:mod:`tests.fixtures.clusters`).

:func:`produce` writes through :class:`logsvc_client.Producer` on logsvc and through
``confluent_kafka.Producer`` on Kafka, where the logsvc Producer does not run yet (it comes with
the Kafka producer work); switching is then this one function.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from logsvc_client import Producer
from tests.fixtures.clusters import Cluster

#: one record to produce: (value, key, partition or None, timestamp_ms or None, headers or None)
Row = tuple[bytes | None, bytes | None, int | None, int | None, Sequence[tuple[str, bytes]] | None]


def produce(cluster: Cluster, topic: str, rows: Iterable[Row], **logsvc_options: Any) -> None:
    """Write ``rows`` to ``topic`` and wait until the cluster acknowledged every one
    (``logsvc_options`` go to the logsvc Producer: batch sizes, linger)."""
    if cluster.kind == "logsvc":
        with Producer(cluster.address, **{"linger_ms": 1, **logsvc_options}) as producer:
            for value, key, partition, timestamp_ms, headers in rows:
                producer.send(topic, value, key, partition=partition, timestamp_ms=timestamp_ms, headers=headers)
            producer.flush(timeout=30)
        return
    from confluent_kafka import KafkaException
    from confluent_kafka import Producer as RdProducer

    failed: list[str] = []
    producer = RdProducer(
        {
            "bootstrap.servers": cluster.address.removeprefix("kafka://"),
            "linger.ms": 5,
            "partitioner": "murmur2_random",  # Kafka's (and logsvc's) key -> partition
        }
    )

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failed.append(str(error))

    for value, key, partition, timestamp_ms, headers in rows:
        extra: dict[str, object] = {}
        if partition is not None:
            extra["partition"] = partition
        if timestamp_ms is not None:
            extra["timestamp"] = timestamp_ms
        if headers:
            extra["headers"] = list(headers)
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=delivered, **extra)
                break
            except BufferError:
                producer.poll(0.05)
    left = producer.flush(30)
    if left or failed:
        raise KafkaException(f"{left} record(s) not delivered to {topic}; errors: {failed[:3]}")


def numbered(count: int, start: int = 0, partition: int | None = None) -> list[Row]:
    """``count`` records ``value-i`` keyed ``key-i`` (i from ``start``), to ``partition`` or by key."""
    return [(b"value-%d" % i, b"key-%d" % i, partition, None, None) for i in range(start, start + count)]
