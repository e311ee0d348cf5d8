"""Handler connectors: a user's Python function as the sink, under the same runtime.

``logsvc connect python --handler package.module:function --config FILE`` — or, from Python,
:class:`HandlerConnector` (in a background thread) / :func:`run_handler` (in this thread, until
SIGTERM) — calls the handler with each batch, a list of :class:`~logsvc_connect.sink.SinkRecord`
(topic, partition, offset, timestamp_ms, key, value, headers, and ``record.decoded``: the value as
a dict when it is a JSON object or a msgpack map, decoded on access)::

    from logsvc_connect.config import RuntimeConfig
    from logsvc_connect.handler import HandlerConnector, RecordError

    def handle(records):
        return [RecordError(r, "no amount") for r in records if "amount" not in r.decoded]

    config = RuntimeConfig(name="billing", server="127.0.0.1:50051", topics=("orders",))
    with HandlerConnector(handle, config):
        ...  # consumes until the block ends: then drains, commits and leaves the group

What the handler says about a batch:

* return normally (None) — every record is handled; the runtime commits past them;
* raise :class:`~logsvc_connect.sink.TransientSinkError` (or ``ConnectionError`` /
  ``TimeoutError``) — nothing is committed, the whole batch is retried with backoff;
* raise :class:`RecordError` (one record) or :class:`RecordErrors` (several), or return a list
  of :class:`RecordError` — only those records go to the dead-letter topic, the rest commit;
* raise anything else — a bug or bad data somewhere in the batch: the batch is split in halves
  and retried until the records that fail alone are found; those are dead-lettered with the
  exception's class and message. Records of a half that succeeded may run twice (at-least-once).

Returning anything else, or a :class:`RecordError` for a record that is not in the batch, breaks
the contract: the connector stops with a :class:`HandlerContractError` naming what came back.

State across batches: make the handler a class. ``module:Class`` is instantiated once with the
``[python]`` table's ``options`` as keyword arguments; its ``setup()`` runs before the first batch,
``__call__(records)`` (or ``handle(records)``) for each batch, ``close()`` at the end.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from logsvc_client.errors import InvalidConfig, LogsvcError
from logsvc_client.records import TopicPartition
from logsvc_connect.config import RuntimeConfig, check_keys, load_runtime
from logsvc_connect.hooks import check_one_argument, import_hook
from logsvc_connect.runtime import SinkRuntime, StartFrom
from logsvc_connect.sink import DataError, Sink, SinkRecord, TransientSinkError, WriteResult

log = logging.getLogger("logsvc.connect")

TRANSIENT = (TransientSinkError, ConnectionError, TimeoutError)


class RecordError(DataError):
    """``record`` cannot be handled: it goes to the dead-letter topic, the batch goes on."""

    code = "record_error"

    def __init__(self, record: SinkRecord, message: str, error_class: str | None = None) -> None:
        super().__init__(message, error_class or "RecordError")
        self.record = record


class RecordErrors(DataError):
    """Several records of the batch failed (raise it, or return the list)."""

    code = "record_errors"

    def __init__(self, errors: Sequence[RecordError]) -> None:
        super().__init__(f"{len(errors)} record(s) failed")
        self.errors = list(errors)


class HandlerContractError(LogsvcError):
    """The handler returned something other than None or RecordErrors of its batch, or its
    ``setup()`` failed: a bug in the handler, so the connector stops (nothing is committed past
    the batch)."""

    code = "handler_contract"


@dataclasses.dataclass(frozen=True)
class HandlerConfig:
    handler: str = ""
    """``package.module:function`` or ``package.module:Class``."""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments for a handler class."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> HandlerConfig:
        check_keys(cls, values, "[python]")
        options = values.get("options", {})
        if not isinstance(options, dict):
            raise InvalidConfig("[python] options must be a table", key="options")
        return cls(handler=str(values.get("handler", "")), options=dict(options))


def load_handler(path: str, options: Mapping[str, Any] | None = None) -> Any:
    """Import ``module:attr`` and :func:`make_handler` of it (InvalidConfig naming ``path``)."""
    return make_handler(import_hook(path, "handler"), options, name=path)


def make_handler(target: Any, options: Mapping[str, Any] | None = None, *, name: str | None = None) -> Any:
    """The handler object for ``target``: a class is instantiated with ``options``; anything else
    is used as it is. Checks that it (or its ``handle`` method) takes one argument, the batch."""
    name = name or getattr(target, "__qualname__", None) or repr(target)
    if inspect.isclass(target):
        try:
            target = target(**(options or {}))
        except Exception as e:
            raise InvalidConfig(
                f"handler {name!r} cannot be created with options {dict(options or {})}: {type(e).__name__}: {e}",
                key="options",
            ) from None
    elif options:
        raise InvalidConfig(f"handler {name!r} is not a class: options are for handler classes", key="options")
    check_one_argument(
        _entry_point(target),
        name,
        "handler",
        "the list of records",
        not_callable="is not callable (nor has a handle method)",
    )
    return target


def _entry_point(target: Any) -> Any:
    handle = getattr(target, "handle", None)
    return handle if callable(handle) else target


class HandlerSink(Sink):
    """The sink adapter around a handler (see the module docstring)."""

    kind = "python"
    decode_values = False  # records carry ``decoded`` lazily: a no-op handler pays nothing
    compact_ids = False  # the handler sees every record

    def __init__(self, handler: Any) -> None:
        self._target = handler
        self._call: Callable[[list[SinkRecord]], Any] = _entry_point(handler)

    def open(self) -> None:
        setup = getattr(self._target, "setup", None)
        if not callable(setup):
            return
        try:
            setup()
        except TRANSIENT as e:
            raise TransientSinkError(f"handler setup: {type(e).__name__}: {e}") from e
        except Exception as e:
            raise HandlerContractError(f"handler setup() failed: {type(e).__name__}: {e}") from e

    def identity(self, record: SinkRecord) -> Hashable:
        return None  # no compaction: the handler sees every record

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        if not records:
            return WriteResult()
        return WriteResult(self._run(records if records.__class__ is list else list(records), 0))

    def close(self) -> None:
        close = getattr(self._target, "close", None)
        if not callable(close):
            return
        try:
            close()
        except Exception as e:  # the offsets are committed already: report it, lose nothing
            log.error("handler close() failed: %s: %s", type(e).__name__, e)

    def _run(self, records: list[SinkRecord], base: int) -> dict[int, DataError]:
        try:
            returned = self._call(records)
        except TRANSIENT as e:
            raise TransientSinkError(f"handler: {type(e).__name__}: {e}") from e
        except RecordErrors as e:
            return _failures(e.errors, records, base)
        except RecordError as e:
            return _failures([e], records, base)
        except Exception as e:
            if len(records) == 1:
                if isinstance(e, DataError):
                    return {base: e}
                return {base: DataError(f"{type(e).__name__}: {e}", type(e).__name__)}
            half = len(records) // 2
            failed = self._run(records[:half], base)
            failed.update(self._run(records[half:], base + half))
            return failed
        if returned is None:
            return {}
        if isinstance(returned, RecordErrors):
            return _failures(returned.errors, records, base)
        if isinstance(returned, RecordError):
            return _failures([returned], records, base)
        if not isinstance(returned, list | tuple):
            raise HandlerContractError(
                f"the handler returned a {type(returned).__name__}; a handler returns None or a list of RecordError"
            )
        return _failures(returned, records, base)


def _failures(errors: Sequence[Any], records: Sequence[SinkRecord], base: int) -> dict[int, DataError]:
    """{index in the batch: error} for RecordErrors naming records of ``records`` (by topic,
    partition and offset, so a changed copy of a record names it too)."""
    if not errors:
        return {}
    index: dict[tuple[Any, ...], int] = {(r.topic, r.partition, r.offset): base + i for i, r in enumerate(records)}
    out: dict[int, DataError] = {}
    for err in errors:
        if not isinstance(err, RecordError):
            raise HandlerContractError(
                f"the handler returned a list holding a {type(err).__name__}; "
                "a handler returns None or a list of RecordError"
            )
        r = err.record
        at = index.get((getattr(r, "topic", None), getattr(r, "partition", None), getattr(r, "offset", None)))
        if at is None:
            raise HandlerContractError(f"the handler returned a RecordError for a record not in its batch: {r!r:.200}")
        out[at] = err
    return out


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
    from logsvc_connect import app

    config = load_runtime({"name": name, "topics": list(topics), **runtime_keys}, "run_handler")
    target = load_handler(handler, options) if isinstance(handler, str) else make_handler(handler, options)
    adapter = HandlerConfig(handler if isinstance(handler, str) else "", dict(options or {}))
    return app.run(app.Connector("python", config, adapter, lambda: HandlerSink(target)), start_from)
