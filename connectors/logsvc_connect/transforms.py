"""Filters and field transforms, applied by the runtime to every connector's records.

Runtime config keys (top level of the connector's TOML):

``filter = "package.module:function"``
    Called with each record; returns the record (possibly changed, e.g. ``record._replace(...)``)
    to keep it, or None to skip it. A skipped record is counted in ``/metrics`` and committed
    past like a written one. A filter that raises, or returns something other than a record or
    None, makes that record a data error (dead-lettered); the partition goes on. A filter that
    replaces ``value`` alone gets ``doc`` decoded again from it; one that replaces a dict ``doc``
    alone gets ``value`` re-encoded as compact JSON, so the two never disagree.
``keep_fields = ["a", "b"]`` / ``drop_fields = ["c"]``
    Keep only / remove these top-level fields of a JSON-object or msgpack-map value.
``rename_fields = {old = "new"}``
    Rename top-level fields (a renamed field replaces a field already named ``new``; swaps work).
``header_fields = {header_name = "field"}``
    Copy a header into a field (UTF-8 text, or base64 when the bytes are not UTF-8).
``key_field = "field"``
    Copy the record key into a field (same encoding rule).

Field transforms run after the filter, in the order above (keep, then drop, then rename, then
the header and key fields), on values that decoded to a dict;
other values pass unchanged. A changed value is re-encoded as compact JSON, so adapters that
store the value's own bytes store the transformed document.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from logsvc_client.errors import InvalidConfig
from logsvc_connect.hooks import check_one_argument, import_hook
from logsvc_connect.sink import DataError, SinkRecord
from logsvc_connect.values import decode_value

Filter = Callable[[SinkRecord], SinkRecord | None]


def load_filter(path: str) -> Filter:
    """Import ``module:function`` and check it takes one record (InvalidConfig otherwise)."""
    func = import_hook(path, "filter")
    check_one_argument(func, path, "filter", "the record")
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
        value_format: str = "auto",
    ) -> None:
        self._filter = load_filter(filter) if filter else None
        self._keep = frozenset(keep_fields)
        self._drop = frozenset(drop_fields)
        self._rename = dict(rename_fields or {})
        self._headers = dict(header_fields or {})
        self._key_field = key_field
        self._value_format = value_format
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
                if out is not r:
                    if not isinstance(out, SinkRecord):
                        error = DataError(
                            f"filter returned a {type(out).__name__}, not a record or None", "FilterError"
                        )
                        failed.append((r, error))
                        continue
                    try:
                        r = self._consistent(r, out)
                    except DataError as e:  # the filter's new value does not decode
                        failed.append((out, e))
                        continue
            if self.changes_fields and r.doc.__class__ is dict:
                r = self._fields(r)
            kept.append(r)
        return kept, failed, skipped

    def _fields(self, r: SinkRecord) -> SinkRecord:
        doc: dict[str, Any] = r.doc  # type: ignore[assignment]
        keep, drop, rename = self._keep, self._drop, self._rename
        # A new dict either way: the decoded document is never changed in place.
        doc = {k: v for k, v in doc.items() if (not keep or k in keep) and k not in drop} if keep or drop else dict(doc)
        if rename:  # all at once, so that swaps work; a renamed field wins over one of its new name
            doc = {k: v for k, v in doc.items() if k not in rename} | {
                new: doc[old] for old, new in rename.items() if old in doc
            }
        if self._headers and r.headers:
            for name, value in r.headers:
                field = self._headers.get(name)
                if field is not None:
                    doc[field] = _text(value)
        if self._key_field and r.key is not None:
            doc[self._key_field] = _text(r.key)
        return r._replace(doc=doc, value=_encode(doc))

    def _consistent(self, before: SinkRecord, after: SinkRecord) -> SinkRecord:
        """``after`` with ``doc`` and ``value`` agreeing again when a filter changed only one of
        them (DataError when a new value does not decode by ``value_format``)."""
        value_changed = after.value is not before.value and after.value != before.value
        doc_changed = after.doc is not before.doc
        if value_changed and not doc_changed:
            decoded = before.doc is not None or self.changes_fields  # else adapters decode on access
            return after._replace(doc=decode_value(after.value, self._value_format) if decoded else None)
        if doc_changed and not value_changed and after.doc.__class__ is dict:
            return after._replace(value=_encode(after.doc))
        return after


def _encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode()
