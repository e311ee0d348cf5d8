"""A connector process: run a configured connector's runtime in this thread until SIGTERM.

:func:`run` serves ``/metrics`` when asked, handles SIGTERM/SIGINT (from the main thread) by
finishing the batch in flight, and returns the finished runtime. ``logsvc connect`` builds the
:class:`Connector` with :func:`logsvc_connect.app.load`; :func:`logsvc_connect.handler.run_handler`
builds it from Python.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from logsvc_connect.config import RuntimeConfig
from logsvc_connect.runtime import SinkRuntime, StartFrom
from logsvc_connect.sink import Sink

log = logging.getLogger("logsvc.connect")


@dataclass(frozen=True)
class Connector:
    kind: str
    runtime: RuntimeConfig
    adapter_config: Any
    sink_factory: Callable[[], Sink]


def tune_gc() -> None:
    """Garbage-collector settings for a process that only runs a connector (``logsvc connect``).

    A batch allocates a few tuples per record (records, rows, documents), all freed by reference
    counting. At the default threshold (700 allocations) the cyclic collector would run some
    hundred times per 10,000-record batch, each pass also walking what the batch still holds:
    10-25% of a connector's CPU. Start-up's objects are frozen out of collection, and the
    collector runs every 50,000 allocations instead."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def run(connector: Connector, start_from: StartFrom | None = None) -> SinkRuntime:
    """Run until SIGTERM/SIGINT (handled while it runs, from the main thread); returns the
    finished runtime."""
    runtime = SinkRuntime(connector.runtime, connector.sink_factory(), start_from=start_from)
    cfg = connector.runtime
    if cfg.metrics_port >= 0:
        port = runtime.metrics.serve_http(cfg.metrics_host, cfg.metrics_port, cfg.metrics_token_file)
        log.info("metrics on http://%s:%d/metrics", cfg.metrics_host, port)

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received %s: finishing the batch in flight", signal.Signals(signum).name)
        runtime.stop()

    # Signal handlers can only be set from the main thread; elsewhere the caller stops the runtime.
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    log.info("%s connector %s consuming %s from %s", connector.kind, cfg.name, ", ".join(cfg.topics), cfg.server)
    try:
        runtime.run()
    finally:
        runtime.metrics.stop_http()
        for number, handler in previous.items():
            signal.signal(number, handler)
    return runtime
