"""Prometheus metrics of the broker, served on ``/metrics`` of the admin HTTP port.

Counters and histograms are updated per request (never per record); partition offsets and storage
size are read from the store when Prometheus scrapes, so they cost nothing in between.

Label cardinality is bounded by what exists: ``topic`` and ``group`` labels are names of topics
and groups in the store (a deleted topic's counters are removed with it), ``method`` one of the
broker's methods or ``unknown`` (a call to a made-up name), ``code`` a gRPC status code. Nothing
an unauthenticated caller sends becomes a label.

The HTTP server (:mod:`logsvc_wire.metrics_http`, shared with the connectors) listens on
``metrics_host`` (127.0.0.1 by default, whatever ``listen`` says) and, with ``metrics_token_file``,
answers 401 to a scrape without ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from logsvc.errors import LogsvcError
from logsvc.server.lag import partition_lag
from logsvc.storage.base import Store
from logsvc_wire.metrics_http import MetricsHttpServer

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _StoreCollector(Collector):
    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        next_offsets = GaugeMetricFamily(
            "logsvc_partition_next_offset",
            "Next offset (high watermark) of each partition",
            labels=["topic", "partition"],
        )
        start_offsets = GaugeMetricFamily(
            "logsvc_partition_log_start_offset", "Log start offset of each partition", labels=["topic", "partition"]
        )
        part_bytes = GaugeMetricFamily(
            "logsvc_partition_bytes", "Stored batch bytes of each partition", labels=["topic", "partition"]
        )
        try:
            for meta in self._store.list_topics():
                for st in self._store.partition_states(meta.name):
                    labels = [meta.name, str(st.partition)]
                    next_offsets.add_metric(labels, st.next_offset)
                    start_offsets.add_metric(labels, st.log_start_offset)
                    part_bytes.add_metric(labels, st.bytes)
            size = self._store.storage_bytes()
        except LogsvcError:  # a topic deleted mid-scrape or the store closing: report what we have
            size = 0
        yield next_offsets
        yield start_offsets
        yield part_bytes
        storage = GaugeMetricFamily("logsvc_storage_bytes", "Size of the LMDB data file")
        storage.add_metric([], size)
        yield storage
        stats = getattr(self._store, "stats", None)  # the LMDB store's writer (WriterStats)
        if stats is not None:
            for name, doc, value in (
                (
                    "logsvc_storage_commits",
                    "Write transactions committed (each one fsync in fsync durability)",
                    stats.commits,
                ),
                ("logsvc_storage_write_ops", "Write requests completed by those commits", stats.ops),
                ("logsvc_storage_write_batches", "Record batches carried by those requests", stats.batches),
            ):
                counter = CounterMetricFamily(name, doc)
                counter.add_metric([], value)
                yield counter


class BrokerMetrics:
    """The broker's metrics on their own registry (several brokers may live in one test process)."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.produce_records = Counter("logsvc_produce_records", "Records appended", ["topic"], registry=self.registry)
        self.produce_bytes = Counter("logsvc_produce_bytes", "Batch bytes appended", ["topic"], registry=self.registry)
        self.fetch_records = Counter(
            "logsvc_fetch_records", "Records returned by Fetch", ["topic"], registry=self.registry
        )
        self.fetch_bytes = Counter(
            "logsvc_fetch_bytes", "Batch bytes returned by Fetch", ["topic"], registry=self.registry
        )
        self.request_seconds = Histogram(
            "logsvc_request_seconds",
            "gRPC request latency by method and status code",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.unauthenticated_calls = Counter(
            "logsvc_unauthenticated_calls",
            "Calls refused for a missing or unknown bearer token (one series: no label)",
            registry=self.registry,
        )
        self.fetches_waiting = Gauge(
            "logsvc_fetches_waiting",
            "Long-polling Fetch calls waiting for data now (Kafka's fetch purgatory size)",
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(store))
        self.registry.register(_GroupLagCollector(store, lambda: time.time_ns() // 1_000_000))
        self._http: MetricsHttpServer | None = None
        self.port: int | None = None
        self._produced: dict[str, tuple[Counter, Counter]] = {}  # see produced()

    def produced(self, topic: str) -> tuple[Counter, Counter]:
        """``topic``'s produce_records and produce_bytes series, looked up once per topic (a
        ``labels()`` lookup takes a lock and builds a key: a few µs on every produce)."""
        series = self._produced.get(topic)
        if series is None:
            series = self._produced[topic] = (self.produce_records.labels(topic), self.produce_bytes.labels(topic))
        return series

    def forget_topic(self, topic: str) -> None:
        """Remove a deleted topic's counter series (its store gauges go by themselves)."""
        self._produced.pop(topic, None)
        for counter in (self.produce_records, self.produce_bytes, self.fetch_records, self.fetch_bytes):
            with contextlib.suppress(KeyError):  # never produced to or fetched from
                counter.remove(topic)

    def serve_http(self, host: str, port: int, token: bytes | None = None) -> int:
        """Start the /metrics HTTP server on ``host``; return its port (``port`` 0 picks a free
        one). With ``token``, a scrape must send ``Authorization: Bearer TOKEN`` (else 401)."""
        self._http = MetricsHttpServer(self.registry, host, port, token)
        self.port = self._http.port
        return self.port

    def stop_http(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None


class _GroupLagCollector(Collector):
    """logsvc_group_lag_records / logsvc_group_lag_seconds per group and partition, at scrape time."""

    def __init__(self, store: Store, clock_ms: Callable[[], int]) -> None:
        self._store = store
        self._clock_ms = clock_ms

    def collect(self) -> Iterator[GaugeMetricFamily]:
        records = GaugeMetricFamily(
            "logsvc_group_lag_records",
            "Records after the group's committed offset",
            labels=["group", "topic", "partition"],
        )
        seconds = GaugeMetricFamily(
            "logsvc_group_lag_seconds",
            "Age of the first record after the group's committed offset",
            labels=["group", "topic", "partition"],
        )
        try:
            now = self._clock_ms()
            for group in self._store.list_groups():
                for lag in partition_lag(self._store, group, now):
                    labels = [group, lag.topic, str(lag.partition)]
                    records.add_metric(labels, lag.lag)
                    seconds.add_metric(labels, lag.lag_ms / 1000)
        except LogsvcError:  # the store closing during a scrape
            pass
        yield records
        yield seconds
