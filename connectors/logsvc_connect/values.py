"""Record values as documents: the one rule every adapter shares for turning value bytes into ``doc``.

``value_format`` says how to read a value:

* ``"json"`` — UTF-8 JSON whose top level is an object; anything else is a :class:`DataError`.
  ``NaN``/``Infinity`` are refused too (neither JSON nor PostgreSQL accepts them).
* ``"msgpack"`` — a msgpack map with string keys (nested maps may have any msgpack keys);
  strings must be UTF-8; a msgpack timestamp becomes a timezone-aware ``datetime``.
* ``"raw"`` — the bytes as they are.
* ``"auto"`` — a JSON object when the value parses as one, else a msgpack map when it starts
  with a map marker and parses as one, else the raw bytes. Never an error.

A tombstone (value None) is None in every format.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack

from .errors import DataError

VALUE_FORMATS = ("auto", "json", "msgpack", "raw")

_JSON_START = frozenset(b"{ \t\r\n")
_MSGPACK_MAP_START = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_decode_json = json.JSONDecoder(parse_constant=_refuse_constant).decode


def decode_value(value: bytes | None, value_format: str) -> dict[str, Any] | bytes | None:
    """``value`` as a document: a dict, raw bytes, or None for a tombstone (see the module doc).

    Raises :class:`DataError` when a "json"/"msgpack" value is not an object/map of that format,
    and ``ValueError`` for an unknown ``value_format``.
    """
    if value is None:
        return None
    if value_format == "auto":
        if value and value[0] in _JSON_START:
            try:
                return _json_object(value)
            except DataError:
                return value
        if value and value[0] in _MSGPACK_MAP_START:
            try:
                return _msgpack_map(value)
            except DataError:
                return value
        return value
    if value_format == "json":
        return _json_object(value)
    if value_format == "msgpack":
        return _msgpack_map(value)
    if value_format == "raw":
        return value
    raise ValueError(f"unknown value_format {value_format!r} (expected one of {', '.join(VALUE_FORMATS)})")


def _json_object(value: bytes) -> dict[str, Any]:
    try:
        doc = _decode_json(value.decode())
    except UnicodeDecodeError as e:
        raise DataError(f"value is not UTF-8 JSON: {e}", "InvalidJson") from None
    except (ValueError, RecursionError) as e:
        raise DataError(f"value is not valid JSON: {e}", "InvalidJson") from None
    if doc.__class__ is not dict:
        raise DataError(f"value is JSON but not an object (a {_json_type(doc)})", "InvalidJson")
    return doc


def _msgpack_map(value: bytes) -> dict[str, Any]:
    try:
        doc = msgpack.unpackb(value, raw=False, timestamp=3)
    except Exception as e:  # msgpack documents no narrower class for "not valid msgpack"
        raise DataError(f"value is not valid msgpack: {e}", "InvalidMsgpack") from None
    if doc.__class__ is not dict:
        raise DataError(f"value is msgpack but not a map (a {type(doc).__name__})", "InvalidMsgpack")
    if not all(k.__class__ is str for k in doc):
        raise DataError("value is a msgpack map whose keys are not all strings", "InvalidMsgpack")
    return doc


def _json_type(doc: object) -> str:
    if isinstance(doc, list):
        return "array"
    if isinstance(doc, str):
        return "string"
    if doc is None:
        return "null"
    if isinstance(doc, bool):
        return "boolean"
    return "number"
