"""Filters and field transforms, applied by the runtime to every connector's records.

Runtime config keys (top level of the connector's TOML):

``filter = "package.module:function"``
    Called with each record; returns the record (possibly changed, e.g. ``record._replace(...)``)
    to keep it, or None to skip it. A skipped record is counted in ``/metrics`` and committed
    past like a written one. A filter that raises makes that record a data error (dead-lettered).
``keep_fields = ["a", "b"]`` / ``drop_fields = ["c"]``
    Keep only / remove these top-level fields of a JSON-object or msgpack-map value.
``rename_fields = {old = "new"}``
    Rename top-level fields.
``header_fields = {header_name = "field"}``
    Copy a header into a field (UTF-8 text, or base64 when the bytes are not UTF-8).
``key_field = "field"``
    Copy the record key into a field (same encoding rule).

Field transforms run after the filter, in the order above, on values that decoded to a dict;
other values pass unchanged. A changed value is re-encoded as compact JSON, so adapters that
store the value's own bytes store the transformed document.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from logsvc_client.errors import InvalidConfig
from logsvc_connect.sink import DataError, SinkRecord

Filter = Callable[[SinkRecord], SinkRecord | None]


def load_filter(path: str) -> Filter:
    """Import ``module:function`` and check it takes one record (InvalidConfig otherwise)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InvalidConfig(f"filter {path!r} must look like package.module:function", key="filter")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except Exception as e:  # ImportError, AttributeError, or the module failing while it imports
        raise InvalidConfig(f"filter {path!r} does not import: {type(e).__name__}: {e}", key="filter") from None
    if not callable(func):
        raise InvalidConfig(f"filter {path!r} is not callable", key="filter")
    try:
        inspect.signature(func).bind(None)
    except TypeError:
        raise InvalidConfig(
            f"filter {path!r} must take one argument, the record (its signature is {inspect.signature(func)})",
            key="filter",
        ) from None
    except ValueError:
        pass
    return func


def _text(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return base64.b64encode(data).decode()


class Transforms:
    """The configured filter and field transforms; :meth:`apply` runs them over a batch."""

    def __init__(
        self,
        filter: str = "",
        keep_fields: Sequence[str] = (),
        drop_fields: Sequence[str] = (),
        rename_fields: Mapping[str, str] | None = None,
        header_fields: Mapping[str, str] | None = None,
        key_field: str = "",
    ) -> None:
        self._filter = load_filter(filter) if filter else None
        self._keep = frozenset(keep_fields)
        self._drop = frozenset(drop_fields)
        self._rename = dict(rename_fields or {})
        self._headers = dict(header_fields or {})
        self._key_field = key_field
        for name, mapping in (("rename_fields", self._rename), ("header_fields", self._headers)):
            for k, v in mapping.items():
                if not isinstance(v, str) or not v:
                    raise InvalidConfig(f"{name}: {k!r} must map to a field name, not {v!r}", key=name)
        self.changes_fields = bool(self._keep or self._drop or self._rename or self._headers or self._key_field)

    @property
    def active(self) -> bool:
        return self._filter is not None or self.changes_fields

    def apply(self, records: list[SinkRecord]) -> tuple[list[SinkRecord], list[tuple[SinkRecord, DataError]], int]:
        """(records to write, records that failed, how many the filter skipped)."""
        kept: list[SinkRecord] = []
        failed: list[tuple[SinkRecord, DataError]] = []
        skipped = 0
        flt = self._filter
        for r in records:
            if flt is not None:
                try:
                    out = flt(r)
                except Exception as e:
                    failed.append((r, DataError(f"filter raised {type(e).__name__}: {e}", "FilterError")))
                    continue
                if out is None:
                    skipped += 1
                    continue
                if not isinstance(out, SinkRecord):
                    failed.append((r, DataError(f"filter returned {type(out).__name__}, not a record", "FilterError")))
                    continue
                r = out
            if self.changes_fields and r.doc.__class__ is dict:
                r = self._fields(r)
            kept.append(r)
        return kept, failed, skipped

    def _fields(self, r: SinkRecord) -> SinkRecord:
        doc: dict[str, Any] = r.doc  # type: ignore[assignment]
        if self._keep:
            doc = {k: v for k, v in doc.items() if k in self._keep}
        elif self._drop:
            doc = {k: v for k, v in doc.items() if k not in self._drop}
        else:
            doc = dict(doc)
        for old, new in self._rename.items():
            if old in doc:
                doc[new] = doc.pop(old)
        if self._headers and r.headers:
            for name, value in r.headers:
                field = self._headers.get(name)
                if field is not None:
                    doc[field] = _text(value)
        if self._key_field and r.key is not None:
            doc[self._key_field] = _text(r.key)
        value = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        return r._replace(doc=doc, value=value)
