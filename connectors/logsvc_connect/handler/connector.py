"""Running a handler from Python: :class:`HandlerConnector` in a background thread (``start()`` /
``stop()``, or a ``with`` block), :func:`run_handler` in this thread until SIGTERM, as
``logsvc connect python`` does. The handler's contract is :mod:`.sink`'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from logsvc_connect.config import RuntimeConfig, load_runtime
from logsvc_connect.process import Connector, run
from logsvc_connect.runtime import SinkRuntime, StartFrom

from .sink import HandlerConfig, HandlerSink, load_handler, make_handler

log = logging.getLogger("logsvc.connect")


class HandlerConnector:
    """Run a handler from Python, in a background thread: ``start()``, then ``stop()`` — or use
    it as a context manager.

    ``handler`` is a function or object taking the batch, a class (instantiated with ``options``)
    or a ``"module:attr"`` path. ``config`` is the runtime config (name = consumer group, server,
    topics, batch sizes, filter and field transforms, ...); with ``metrics_port >= 0`` the
    connector serves ``/metrics`` (the port is :attr:`metrics_port` once started).
    """

    def __init__(
        self,
        handler: Any,
        config: RuntimeConfig,
        start_from: StartFrom | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.handler = load_handler(handler, options) if isinstance(handler, str) else make_handler(handler, options)
        self.runtime = SinkRuntime(config.validate(), HandlerSink(self.handler), start_from=start_from)
        self.metrics_port: int | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> HandlerConnector:
        cfg = self.runtime.config
        if cfg.metrics_port >= 0:
            metrics = self.runtime.metrics
            self.metrics_port = metrics.serve_http(cfg.metrics_host, cfg.metrics_port, cfg.metrics_token_file)

        def run() -> None:
            try:
                self.runtime.run()
            except BaseException as e:  # surfaced by stop()
                log.error("handler connector %s stopped: %s: %s", cfg.name, type(e).__name__, e)
                self.error = e

        self._thread = threading.Thread(target=run, name=f"logsvc-handler-{cfg.name}", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the batch in flight, commit, leave the group; re-raise what stopped the runtime.
        Waits up to ``timeout`` seconds (default: the config's shutdown timeout and a margin)."""
        self.runtime.stop()
        if timeout is None:
            timeout = self.runtime.config.shutdown_timeout_ms / 1000 + 10
        try:
            if self._thread is not None:
                self._thread.join(timeout)
                if self._thread.is_alive():
                    raise TimeoutError(f"the handler connector did not stop within {timeout:.0f} s")
        finally:
            self.runtime.metrics.stop_http()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> HandlerConnector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_handler(
    handler: Any,
    *,
    name: str,
    topics: Sequence[str],
    options: Mapping[str, Any] | None = None,
    start_from: StartFrom | None = None,
    **runtime_keys: Any,
) -> SinkRuntime:
    """Run ``handler`` in this (main) thread until SIGTERM or Ctrl-C, as ``logsvc connect python``
    does; returns the finished runtime.

    ``handler`` and ``options`` are as for :class:`HandlerConnector`; ``runtime_keys`` are the
    config file's runtime keys (server, batch_max_records, linger_ms, dlq_topic, filter,
    metrics_port, ...), unknown ones an InvalidConfig."""
    config = load_runtime({"name": name, "topics": list(topics), **runtime_keys}, "run_handler")
    target = load_handler(handler, options) if isinstance(handler, str) else make_handler(handler, options)
    adapter = HandlerConfig(handler if isinstance(handler, str) else "", dict(options or {}))
    return run(Connector("python", config, adapter, lambda: HandlerSink(target)), start_from)
