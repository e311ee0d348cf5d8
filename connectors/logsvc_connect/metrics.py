"""Prometheus metrics of a connector process, on ``/metrics`` of its own HTTP port.

Updated per batch, never per record: records written / skipped / dead-lettered, batch sizes,
write latency, retries (of writes; of commits and dead letters while the broker was unreachable),
and the consumer lag per partition.

The HTTP server is the broker's (:mod:`logsvc_wire.metrics_http`): with ``metrics_token_file``
a scrape without ``Authorization: Bearer TOKEN`` gets 401, the token file read as the broker reads
its own (:func:`logsvc_wire.metrics_http.load_metrics_token`: one token of 16+ characters).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from logsvc_wire.metrics_http import MetricsHttpServer, load_metrics_token

BATCH_BUCKETS = (1, 10, 100, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000)
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ConnectorMetrics:
    def __init__(self, connector: str, kind: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"connector": connector, "kind": kind}
        names = list(labels)

        def counter(name: str, doc: str) -> Any:
            return Counter(name, doc, names, registry=self.registry).labels(**labels)

        self.records_written = counter(
            "logsvc_connect_records_written",
            "Records written to the sink (with those a later record of their batch replaced: same id)",
        )
        self.rows_written = counter(
            "logsvc_connect_rows_written", "Rows or documents the sink wrote (after compacting same ids)"
        )
        self.records_skipped = counter("logsvc_connect_records_skipped", "Records a filter skipped")
        self.records_dead_lettered = counter(
            "logsvc_connect_records_dead_lettered", "Records sent to the dead-letter topic"
        )
        self.retries = counter("logsvc_connect_retries", "Batch writes retried after a transient error")
        self.broker_retries = counter(
            "logsvc_connect_broker_retries", "Commits and dead-letter sends tried again: the broker was unreachable"
        )
        self.batch_records = Histogram(
            "logsvc_connect_batch_records", "Records per written batch", names, buckets=BATCH_BUCKETS,
            registry=self.registry,
        ).labels(**labels)  # fmt: skip
        self.write_seconds = Histogram(
            "logsvc_connect_write_seconds", "Latency of one batch write (until durable)", names,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        ).labels(**labels)  # fmt: skip
        self.lag = Gauge(
            "logsvc_connect_lag_records", "Records not yet written, per partition", [*names, "topic", "partition"],
            registry=self.registry,
        )  # fmt: skip
        self._labels = labels
        self._http: MetricsHttpServer | None = None
        self.port: int | None = None

    def set_lag(self, topic: str, partition: int, lag: int) -> None:
        self.lag.labels(**self._labels, topic=topic, partition=str(partition)).set(lag)

    def serve_http(self, host: str, port: int, token_file: str = "") -> int:
        """Start ``/metrics`` on ``host``; return its port (``port`` 0 picks a free one). With
        ``token_file`` (the config's ``metrics_token_file``), a scrape must send its token as
        ``Authorization: Bearer TOKEN`` (else 401); InvalidConfig when the file is unreadable or
        does not hold one token of at least 16 characters."""
        token = load_metrics_token(token_file) if token_file else None
        self._http = MetricsHttpServer(
            self.registry, host, port, token, owner="the connector's", thread_name="logsvc-connect-metrics"
        )
        self.port = self._http.port
        return self.port

    def stop_http(self) -> None:
        if self._http is not None:
            self._http.stop()
            self._http = None
