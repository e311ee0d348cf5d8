"""Producing test records on either cluster of the ``cluster`` fixture (:mod:`tests.fixtures.clusters`).

:func:`produce` writes through :class:`logsvc_client.Producer`, which picks the transport from
the cluster's address.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from logsvc_client import Producer
from tests.fixtures.clusters import Cluster

#: one record to produce: (value, key, partition or None, timestamp_ms or None, headers or None)
Row = tuple[bytes | None, bytes | None, int | None, int | None, Sequence[tuple[str, bytes]] | None]


def produce(cluster: Cluster, topic: str, rows: Iterable[Row], **options: Any) -> None:
    """Write ``rows`` to ``topic`` through :class:`logsvc_client.Producer` (on either cluster) and
    wait until the cluster acknowledged every one (``options`` go to the Producer: batch sizes,
    linger)."""
    with Producer(cluster.address, **{"linger_ms": 1, **options}) as producer:
        futures = [
            producer.send(topic, value, key, partition=partition, timestamp_ms=timestamp_ms, headers=headers)
            for value, key, partition, timestamp_ms, headers in rows
        ]
        producer.flush(timeout=30)
    for future in futures:
        future.result(0)


def numbered(count: int, start: int = 0, partition: int | None = None) -> list[Row]:
    """``count`` records ``value-i`` keyed ``key-i`` (i from ``start``), to ``partition`` or by key."""
    return [(b"value-%d" % i, b"key-%d" % i, partition, None, None) for i in range(start, start + count)]
