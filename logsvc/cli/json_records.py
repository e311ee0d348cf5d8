"""``logsvc produce --jsonl``: one JSON object per input record, the shape ``consume -o json`` prints.

::

    {"key": "k1", "value": "text", "headers": {"source": "app"}, "partition": 0, "timestamp": 1767323045000}

``key``, ``value`` and header values are text (sent as UTF-8), null (a null key; a tombstone),
or ``{"base64": "..."}`` for bytes that are not text, exactly as ``consume -o json`` shows them,
so ``consume -o json | produce --jsonl`` copies records. ``headers`` is an object or a list of
``[name, value]`` pairs (order and repeated names kept). ``partition`` and ``timestamp`` (epoch
ms) are optional. Every field is optional (a missing value is null); ``topic`` and ``offset``
(printed by ``consume -o json``) are ignored; any other field is an error naming it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from typing import Any

FIELDS = ("key", "value", "headers", "partition", "timestamp")
IGNORED = ("topic", "offset")


@dataclasses.dataclass(frozen=True)
class JsonRecord:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    partition: int | None
    timestamp_ms: int | None


def _bytes(doc: Any, what: str) -> bytes | None:
    if doc is None or isinstance(doc, str):
        return None if doc is None else doc.encode()
    if isinstance(doc, dict) and set(doc) == {"base64"} and isinstance(doc["base64"], str):
        try:
            return base64.b64decode(doc["base64"], validate=True)
        except binascii.Error:
            raise ValueError(f"{what}: {doc['base64']!r} is not base64") from None
    raise ValueError(f'{what} must be text, null or {{"base64": "..."}}, not {json.dumps(doc)[:60]}')


def _headers(doc: Any) -> list[tuple[str, bytes]]:
    pairs: list[Any]
    if doc is None:
        return []
    if isinstance(doc, dict):
        pairs = list(doc.items())
    elif isinstance(doc, list) and all(isinstance(p, list) and len(p) == 2 for p in doc):
        pairs = doc
    else:
        raise ValueError('"headers" must be an object or a list of [name, value] pairs')
    headers = []
    for name, value in pairs:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a header name must be non-empty text, not {json.dumps(name)}")
        data = _bytes(value, f"header {name!r}")
        if data is None:
            raise ValueError(f"header {name!r} has no value (null)")
        headers.append((name, data))
    return headers


def _natural(doc: Any, what: str) -> int | None:
    if doc is None:
        return None
    if not isinstance(doc, int) or isinstance(doc, bool) or doc < 0:
        raise ValueError(f'"{what}" must be an integer >= 0, not {json.dumps(doc)}')
    return doc


def parse_json_record(line: bytes) -> JsonRecord:
    """One input record as JSON; ValueError saying what is wrong (the caller names the line)."""
    try:
        doc = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError(f'not a JSON object like {{"key": ..., "value": ...}}: {line[:60]!r}')
    unknown = sorted(set(doc) - set(FIELDS) - set(IGNORED))
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}: use {', '.join(FIELDS)}")
    return JsonRecord(
        key=_bytes(doc.get("key"), '"key"'),
        value=_bytes(doc.get("value"), '"value"'),
        headers=_headers(doc.get("headers")),
        partition=_natural(doc.get("partition"), "partition"),
        timestamp_ms=_natural(doc.get("timestamp"), "timestamp"),
    )
