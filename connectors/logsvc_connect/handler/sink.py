"""Handler connectors: a user's Python function as the sink, under the same runtime.

``logsvc connect python --handler package.module:function --config FILE`` — or, from Python,
:class:`~logsvc_connect.handler.HandlerConnector` (in a background thread) /
:func:`~logsvc_connect.handler.run_handler` (in this thread, until SIGTERM) — calls the handler
with each batch, a list of :class:`~logsvc_connect.sink.SinkRecord` (topic, partition, offset,
timestamp_ms, key, value, headers, and ``record.decoded``: the value as a dict when it is a JSON
object or a msgpack map, decoded on access)::

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
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from logsvc_client.errors import InvalidConfig, LogsvcError
from logsvc_client.records import TopicPartition
from logsvc_connect.config import RuntimeConfig, check_keys
from logsvc_connect.hooks import check_one_argument, import_hook
from logsvc_connect.registry import Adapter
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


def configure(values: dict[str, Any], runtime: RuntimeConfig) -> Adapter:
    """The ``[python]`` table (its ``handler`` key set by ``--handler``) as a :class:`HandlerConfig`
    and a factory of its sink. The handler is imported and checked here, so a path that does not
    import or a function with the wrong signature fails at start-up."""
    config = HandlerConfig.from_mapping(values)
    if not config.handler:
        raise InvalidConfig("a python connector needs --handler package.module:function", key="handler")
    target = load_handler(config.handler, config.options)
    return Adapter(config, lambda: HandlerSink(target))


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
