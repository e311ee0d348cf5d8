"""A WARNING line for each dead-lettered record, rate-limited so a flood of bad records cannot fill
the log: at most :data:`LINES_PER_WINDOW` lines per :data:`WINDOW_S` seconds, then one line with
the count of those not shown when the window ends (or with the next line after it).

Each line names the record (topic, partition, offset), the error class and message, and where
the dead letter went, so ``logsvc dlq list`` / ``show`` can take over. Clock-injected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from logsvc_connect.errors import DataError
from logsvc_connect.sink import SinkRecord

WINDOW_S = 10.0
LINES_PER_WINDOW = 10
MESSAGE_CHARS = 300

log = logging.getLogger("logsvc.connect")


class DeadLetterLog:
    """Logs dead-lettered records (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log) -> None:
        self._clock = clock
        self._log = logger
        self._window_start = float("-inf")
        self._shown = 0
        self._hidden = 0

    def report(self, failed: Sequence[tuple[SinkRecord, DataError]], dlq_topic: str) -> None:
        """Log ``failed`` (just sent to ``dlq_topic``) within the rate limit."""
        for record, error in failed:
            now = self._clock()
            if now - self._window_start >= WINDOW_S:
                self._close_window(dlq_topic)
                self._window_start, self._shown = now, 0
            if self._shown < LINES_PER_WINDOW:
                self._shown += 1
                self._log.warning(
                    "dead-lettered %s/%d@%d to %s: %s: %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    dlq_topic,
                    error.error_class,
                    error.message[:MESSAGE_CHARS],
                )
            else:
                self._hidden += 1

    def flush(self, dlq_topic: str) -> None:
        """Say how many were not shown in the current window (at the end of a run)."""
        self._close_window(dlq_topic)

    def _close_window(self, dlq_topic: str) -> None:
        if self._hidden:
            self._log.warning(
                "dead-lettered %d more records to %s in %.0f s without a line each (see logsvc dlq list)",
                self._hidden,
                dlq_topic,
                WINDOW_S,
            )
            self._hidden = 0
