"""A connector process: load its config, build the adapter, run the runtime until SIGTERM.

``logsvc connect postgres|mongo|python --config FILE`` (see :mod:`logsvc.cli.connect`) calls
:func:`load` then :func:`run`. Several processes with the same connector name form one consumer
group and share the partitions.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from logsvc.server.security import load_metrics_token
from logsvc_client.errors import InvalidConfig
from logsvc_connect.config import RuntimeConfig, check_one_target_per_topic, load_runtime, read_file, split_sources
from logsvc_connect.runtime import SinkRuntime, StartFrom
from logsvc_connect.sink import Sink

log = logging.getLogger("logsvc.connect")

# kind -> (module, config class, sink class); imported lazily so a Mongo connector does not need
# psycopg and the other way round.
ADAPTERS = {
    "postgres": ("logsvc_connect.postgres", "PostgresConfig", "PostgresSink"),
    "mongo": ("logsvc_connect.mongo", "MongoConfig", "MongoSink"),
    "python": ("logsvc_connect.handler", "HandlerConfig", "HandlerSink"),
}


@dataclass(frozen=True)
class Connector:
    kind: str
    runtime: RuntimeConfig
    adapter_config: Any
    sink_factory: Callable[[], Sink]


def load(kind: str, path: str, environ: Mapping[str, str] | None = None, handler: str | None = None) -> Connector:
    """Read and validate a connector config (file < ``LOGSVC_CONNECT_*`` environment < ``handler``,
    the ``--handler`` flag of a python connector). A handler is imported here, so a path that does
    not import or a function with the wrong signature fails at start-up."""
    if kind not in ADAPTERS:
        raise InvalidConfig(f"unknown connector kind {kind!r}; known: {', '.join(ADAPTERS)}")
    env = os.environ if environ is None else environ
    runtime_values, adapter_values = split_sources(kind, read_file(path), env, path)
    runtime = load_runtime(runtime_values, path)
    if runtime.metrics_token_file:  # a bad token file fails here, before any connection is made
        load_metrics_token(runtime.metrics_token_file)
    module_name, config_name, sink_name = ADAPTERS[kind]
    module = importlib.import_module(module_name)
    if kind == "postgres":
        adapter_values.setdefault("connector", runtime.name)  # owner of its exactly-once offsets
    if kind in ("postgres", "mongo"):
        # what an adapter decodes itself (a value the runtime left undecoded) follows the runtime
        adapter_values.setdefault("value_format", runtime.value_format)
    if handler:
        adapter_values["handler"] = handler
    adapter_config = getattr(module, config_name).from_mapping(adapter_values)
    if kind == "postgres":
        check_one_target_per_topic(runtime.topics, adapter_config.table_name, "table", "table")
    elif kind == "mongo":
        check_one_target_per_topic(runtime.topics, adapter_config.collection_name, "collection", "collection")
    sink_cls = getattr(module, sink_name)
    if kind == "python":
        if not adapter_config.handler:
            raise InvalidConfig("a python connector needs --handler package.module:function", key="handler")
        target = module.load_handler(adapter_config.handler, adapter_config.options)
        return Connector(kind, runtime, adapter_config, lambda: sink_cls(target))
    return Connector(kind, runtime, adapter_config, lambda: sink_cls(adapter_config))


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
