"""Calls the broker refuses before any work: what they cost is one small handler and, at most,
one log line per client address per :data:`LOG_INTERVAL_S`.

* :func:`refusing_handler` answers a call with an error *without reading its request*: it is a
  stream-request handler whatever the method's kind, so gRPC never asks for (or parses) the
  request bytes — a 16 MiB Produce without a token is not buffered whole — and the handler
  returns at once instead of holding a worker while a stream stays open.
* :class:`RefusalLog` logs a refused call once per client address (the peer's host, without its
  port: a reconnecting client is still one address) per interval, with the count of those not
  logged in between. It remembers at most :data:`MAX_ADDRESSES` addresses; beyond that the rest
  are counted under ``"other addresses"``, so a flood from many addresses costs bounded memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from logsvc.errors import LogsvcError, trailing_metadata

log = logging.getLogger("logsvc.server")

LOG_INTERVAL_S = 60.0
MAX_ADDRESSES = 1_024
OTHER = "other addresses"


def peer_host(peer: str) -> str:
    """``ipv4:10.0.0.7:53124`` -> ``10.0.0.7``, ``ipv6:[::1]:5000`` -> ``::1``; others as given."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6") and rest:
        host = rest.rsplit(":", 1)[0] if rest.rsplit(":", 1)[-1].isdigit() else rest
        return host.strip("[]")
    return peer


class RefusalLog:
    """One warning per client address per ``interval_s``, saying how many were refused between."""

    def __init__(
        self,
        interval_s: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
        logger: logging.Logger = log,
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._max = max_addresses
        self._log = logger
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}  # address -> (time of its last line, refused since)

    def refused(self, peer: str, what: str, reason: str) -> bool:
        """Count one refused call from ``peer``; log it unless its address was logged less than
        ``interval_s`` ago. Whether a line was written."""
        address = peer_host(peer)
        lines: list[str] = []
        with self._lock:
            now = self._clock()
            if address not in self._seen and len(self._seen) >= self._max:
                lines.extend(self._forget_quiet(now))
                if len(self._seen) >= self._max:
                    address = OTHER
            logged_at, since = self._seen.get(address, (-float("inf"), 0))
            if now - logged_at < self._interval_s:
                self._seen[address] = (logged_at, since + 1)
                written = False
            else:
                self._seen[address] = (now, 0)
                more = f" ({since} more refused since the last line)" if since else ""
                lines.append(f"refused {what} from {address}: {reason}{more}")
                written = True
        for line in lines:
            self._log.warning("%s", line)
        return written

    def _forget_quiet(self, now: float) -> list[str]:
        """Drop the addresses not logged within the interval; the lines for their unlogged counts."""
        lines = []
        for address, (logged_at, since) in list(self._seen.items()):
            if now - logged_at >= self._interval_s:
                del self._seen[address]
                if since:
                    lines.append(f"refused {since} more calls from {address} since the last line")
        return lines

    def __len__(self) -> int:
        return len(self._seen)


def refusing_handler(
    error: LogsvcError, on_refuse: Callable[[grpc.aio.ServicerContext], None] | None = None
) -> grpc.RpcMethodHandler:
    """A handler that answers ``error`` without reading the request (see the module docstring)."""

    async def refuse(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        if on_refuse is not None:
            on_refuse(context)
        context.set_trailing_metadata(trailing_metadata(error))
        await context.abort(error.status, error.message)

    return grpc.stream_unary_rpc_method_handler(refuse)
