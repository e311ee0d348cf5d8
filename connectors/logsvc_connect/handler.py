"""Handler connectors: a user's Python function as the sink, under the same runtime.

``logsvc connect python --handler package.module:function --config FILE`` — or, from Python,
:func:`run_handler` / :class:`HandlerConnector` — calls the handler with each batch, a list of
:class:`~logsvc_connect.sink.SinkRecord` (topic, partition, offset, timestamp_ms, key, value,
headers, and ``record.decoded``: the value as a dict when it is a JSON object or a msgpack map).

What the handler says about a batch:

* return normally (None) — every record is handled; the runtime commits past them;
* raise :class:`~logsvc_connect.sink.TransientSinkError` (or ``ConnectionError`` /
  ``TimeoutError``) — nothing is committed, the whole batch is retried with backoff;
* raise :class:`RecordError` (one record) or :class:`RecordErrors` (several), or return a list
  of :class:`RecordError` — only those records go to the dead-letter topic, the rest commit;
* raise anything else — a bug or bad data somewhere in the batch: the batch is split in halves
  and retried until the records that fail alone are found; those are dead-lettered with the
  exception's class and message. Records of a half that succeeded may run twice (at-least-once).

State across batches: make the handler a class. ``module:Class`` is instantiated once with the
``[python]`` table's ``options`` as keyword arguments; its ``setup()`` runs before the first batch,
``__call__(records)`` (or ``handle(records)``) for each batch, ``close()`` at the end.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from logsvc_client.errors import InvalidConfig
from logsvc_client.records import TopicPartition
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.runtime import SinkRuntime, StartFrom
from logsvc_connect.sink import DataError, Sink, SinkRecord, TransientSinkError, WriteResult

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


@dataclasses.dataclass(frozen=True)
class HandlerConfig:
    handler: str = ""
    """``package.module:function`` or ``package.module:Class``."""
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Keyword arguments for a handler class."""

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> HandlerConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                raise InvalidConfig(f"[python]: unknown key {key!r}; known: {', '.join(sorted(known))}", key=key)
        options = values.get("options", {})
        if not isinstance(options, dict):
            raise InvalidConfig("[python] options must be a table", key="options")
        return cls(handler=str(values.get("handler", "")), options=dict(options))


def load_handler(path: str, options: Mapping[str, Any] | None = None) -> Any:
    """Import ``module:attr``; instantiate it when it is a class; check it takes one batch."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InvalidConfig(f"handler {path!r} must look like package.module:function", key="handler")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or the module failing while it imports
        raise InvalidConfig(f"handler {path!r} does not import: {type(e).__name__}: {e}", key="handler") from None
    try:
        target = getattr(module, attr)
    except AttributeError:
        raise InvalidConfig(f"handler {path!r}: module {module_name} has no {attr!r}", key="handler") from None
    if inspect.isclass(target):
        try:
            target = target(**(options or {}))
        except TypeError as e:
            raise InvalidConfig(
                f"handler {path!r} cannot be created with options {options}: {e}", key="options"
            ) from None
    elif options:
        raise InvalidConfig(f"handler {path!r} is a function: options are for handler classes", key="options")
    func = getattr(target, "handle", None) or target
    if not callable(func):
        raise InvalidConfig(f"handler {path!r} is not callable", key="handler")
    try:
        inspect.signature(func).bind([])
    except TypeError:
        raise InvalidConfig(
            f"handler {path!r} must take one argument, the list of records (its signature is "
            f"{inspect.signature(func)})",
            key="handler",
        ) from None
    except ValueError:
        pass  # builtins without a signature: trust them
    return target


class HandlerSink(Sink):
    """The sink adapter around a handler (see the module docstring)."""

    kind = "python"
    decode_values = False  # records carry ``decoded`` lazily: a no-op handler pays nothing
    compact_ids = False  # the handler sees every record

    def __init__(self, handler: Any) -> None:
        self._target = handler
        self._call: Callable[[list[SinkRecord]], Any] = getattr(handler, "handle", None) or handler

    def open(self) -> None:
        setup = getattr(self._target, "setup", None)
        if callable(setup):
            self._guard(setup)

    def identity(self, record: SinkRecord) -> Hashable:
        return None  # no compaction: the handler sees every record

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        return WriteResult(self._run(list(records), 0)) if records else WriteResult()

    def close(self) -> None:
        close = getattr(self._target, "close", None)
        if callable(close):
            close()

    @staticmethod
    def _guard(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except TRANSIENT as e:
            raise TransientSinkError(f"handler: {type(e).__name__}: {e}") from e

    def _run(self, records: list[SinkRecord], base: int) -> dict[int, DataError]:
        index = {id(r): base + i for i, r in enumerate(records)}
        try:
            returned = self._call(records)
        except TRANSIENT as e:
            raise TransientSinkError(f"handler: {type(e).__name__}: {e}") from e
        except RecordErrors as e:
            return self._failures(e.errors, index)
        except RecordError as e:
            return self._failures([e], index)
        except Exception as e:
            if len(records) == 1:
                return {base: DataError(f"{type(e).__name__}: {e}", type(e).__name__)}
            half = len(records) // 2
            failed = self._run(records[:half], base)
            failed.update(self._run(records[half:], base + half))
            return failed
        if returned:
            return self._failures(list(returned), index)
        return {}

    @staticmethod
    def _failures(errors: Sequence[Any], index: Mapping[int, int]) -> dict[int, DataError]:
        out: dict[int, DataError] = {}
        for err in errors:
            if not isinstance(err, RecordError):
                raise TypeError(f"a handler returns None or a list of RecordError, not {type(err).__name__}")
            at = index.get(id(err.record))
            if at is None:
                raise TypeError("a RecordError names a record that is not in this batch")
            out[at] = err
        return out


class HandlerConnector:
    """Run a handler from Python, in a background thread: ``start()``, then ``stop()``.

    ``config`` is the runtime config (name = consumer group, server, topics, batch sizes, ...).
    """

    def __init__(self, handler: Any, config: RuntimeConfig, start_from: StartFrom | None = None) -> None:
        if isinstance(handler, str):
            handler = load_handler(handler)
        self.runtime = SinkRuntime(config.validate(), HandlerSink(handler), start_from=start_from)
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> HandlerConnector:
        def run() -> None:
            try:
                self.runtime.run()
            except BaseException as e:  # surfaced by stop()
                self.error = e

        self._thread = threading.Thread(target=run, name="logsvc-handler", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 30) -> None:
        """Finish the batch in flight, commit, leave the group; re-raise what stopped the runtime."""
        self.runtime.stop()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.error is not None:
            raise self.error

    def __enter__(self) -> HandlerConnector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_handler(handler: Any, *, name: str, topics: Sequence[str], **options: Any) -> SinkRuntime:
    """Run ``handler`` in this thread until the runtime is stopped (e.g. from a signal handler).

    ``options`` are runtime keys (server, batch_max_records, linger_ms, dlq_topic, ...)."""
    config = RuntimeConfig(name=name, topics=tuple(topics), **options)
    runtime = SinkRuntime(
        config.validate(), HandlerSink(load_handler(handler) if isinstance(handler, str) else handler)
    )
    runtime.run()
    return runtime
