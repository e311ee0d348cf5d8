"""Requests whose bytes are not a valid protobuf message: INVALID_ARGUMENT and one log line.

gRPC would log each with a full traceback (``grpc._common``: "Exception deserializing message!")
and answer INTERNAL. The broker wraps each unary method's request deserializer instead
(:func:`lenient`): a message that does not parse becomes a :class:`Malformed` value the handler
refuses with INVALID_ARGUMENT naming the method, and the broker logs it on one line, at most once
per :data:`LOG_INTERVAL_S` (with the count of those not logged). :class:`QuietDeserializeErrors`
does the same for the handlers it does not wrap (health Watch, reflection), which gRPC answers
with UNKNOWN.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from logsvc_wire.errors import InvalidRequest

log = logging.getLogger("logsvc.server")

LOG_INTERVAL_S = 10.0  # at most one line per interval, however many malformed requests come


class Malformed:
    """What a request that did not parse is handed to the handler as."""

    def __init__(self, method: str, nbytes: int, reason: str) -> None:
        self.method = method
        self.nbytes = nbytes
        self.reason = reason

    def error(self) -> InvalidRequest:
        return InvalidRequest(
            f"the request to {self.method} is not a valid protobuf message ({self.nbytes} bytes: {self.reason})",
            method=self.method,
        )


class RateLimitedLog:
    """Logs a warning at most once per ``interval_s``, saying how many were not logged between."""

    def __init__(self, interval_s: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next = -float("inf")
        self._suppressed = 0

    def warning(self, message: str) -> bool:
        """Log ``message`` unless one was logged less than ``interval_s`` ago; whether it was."""
        with self._lock:
            now = self._clock()
            if now < self._next:
                self._suppressed += 1
                return False
            suppressed, self._suppressed = self._suppressed, 0
            self._next = now + self._interval_s
        more = f" ({suppressed} more since the last one logged)" if suppressed else ""
        log.warning("%s%s", message, more)
        return True


MALFORMED_LOG = RateLimitedLog()


def lenient(deserialize: Callable[[bytes], Any] | None, method: str) -> Callable[[bytes], Any] | None:
    """``deserialize`` that returns :class:`Malformed` instead of raising."""
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as e:
            bad = Malformed(method, len(data), f"{type(e).__name__}: {e}")
            MALFORMED_LOG.warning(f"refused a malformed request: {bad.error().message}")
            return bad

    return parse


class QuietDeserializeErrors(logging.Filter):
    """For gRPC's loggers: "Exception deserializing message!" (``grpc._common``) and the asyncio
    server's "Unexpected [DecodeError] raised by servicer method" (``grpc._cython.cygrpc``) become
    one line, without the traceback, rate-limited like the broker's own."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if "deserializing" not in str(record.msg) and not isinstance(error, DecodeError):
            return True
        reason = f": {record.exc_info[1]!r}" if record.exc_info and record.exc_info[1] is not None else ""
        MALFORMED_LOG.warning(f"refused a malformed request (grpc){reason}")
        return False


GRPC_LOGGERS = ("grpc._common", "grpc._cython.cygrpc")


def install_log_filter() -> None:
    """Add :class:`QuietDeserializeErrors` to gRPC's loggers (once each)."""
    for name in GRPC_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, QuietDeserializeErrors) for f in logger.filters):
            logger.addFilter(QuietDeserializeErrors())
