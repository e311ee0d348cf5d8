"""The connector's lag per partition, as its ``/metrics`` shows it (``logsvc_connect_lag_records``):
the log's end minus the offset the connector last committed, asked of the broker at most every
:data:`LAG_REFRESH_S` (never per batch), for the partitions it has committed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from logsvc_client import Admin, TopicPartition
from logsvc_client.errors import LogsvcError
from logsvc_connect.metrics import ConnectorMetrics

log = logging.getLogger("logsvc.connect")

LAG_REFRESH_S = 5.0


class LagGauge:
    def __init__(self, metrics: ConnectorMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._committed: dict[TopicPartition, int] = {}
        self._next_refresh = 0.0

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """The connector committed ``offsets``."""
        self._committed.update(offsets)

    def refresh(self, admin: Admin | None) -> None:
        """Set the lag gauges from the log ends ``admin`` lists, when :data:`LAG_REFRESH_S` has
        passed since the last time (a failure is only logged: the next refresh tries again)."""
        now = self._clock()
        if now < self._next_refresh or not self._committed or admin is None:
            return
        self._next_refresh = now + LAG_REFRESH_S
        try:
            for topic in {tp.topic for tp in self._committed}:
                ends = admin.list_offsets(topic, "latest")
                for tp, position in self._committed.items():
                    if tp.topic == topic and tp.partition in ends:
                        self._metrics.set_lag(topic, tp.partition, max(0, ends[tp.partition] - position))
        except LogsvcError as e:
            log.debug("lag refresh failed: %s", e)
