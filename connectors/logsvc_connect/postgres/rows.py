"""Records → staging rows for the PostgreSQL sink, validated in Python before the COPY.

Everything PostgreSQL would refuse for one record and Python can see cheaply is refused here as a
:class:`~logsvc_connect.sink.DataError` for that record alone: NUL in text or JSON (``\\u0000``;
neither ``text`` nor ``jsonb`` can hold it), a value that is not a JSON object / msgpack map, a
missing key or key field, a field that does not convert to its column's type. What only the server
can judge (a date it cannot parse, a user's CHECK constraint) is isolated after the fact by the
sink.

The rules for values that JSON cannot hold directly (a msgpack value): binary data becomes its
base64 text, a timestamp its ISO 8601 text, NaN/Infinity are refused. A JSON value that arrived as
a JSON object is stored from its original bytes, never re-serialized.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from itertools import repeat
from operator import eq, itemgetter, mul, sub
from typing import Any

from ..sink import DataError, SinkRecord
from ..values import decode_value
from .config import PostgresConfig

#: 2000-01-01T00:00:00Z in Unix ms: PostgreSQL's binary timestamptz counts µs from there
PG_EPOCH_MS = 946_684_800_000
#: the Unix-ms range of PostgreSQL's timestamptz (4714-11-24 BC to 294277 AD, exclusive)
MIN_TIMESTAMP_MS = -210_866_803_200_000
END_TIMESTAMP_MS = 9_224_318_016_000_000
#: the binary jsonb format: a version byte, then the JSON text
JSONB_V1 = b"\x01"

_NUL_ESCAPE_BYTES = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_BOOLEANS = {"true", "false", "t", "f", "yes", "no", "y", "n", "on", "off", "1", "0"}
_INT_RANGES = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}

Row = tuple[Any, ...]
Converter = Callable[[Any], str]

_FIRST_BYTE = itemgetter(0)
_OPEN_BRACE = 0x7B


def nul_error(where: str) -> DataError:
    return DataError(f"{where} contains NUL (\\u0000), which PostgreSQL text and jsonb cannot store", "NulInText")


def _json_default(o: object) -> object:
    if isinstance(o, bytes | bytearray | memoryview):
        return base64.b64encode(o).decode()
    if isinstance(o, dt.datetime | dt.date | dt.time):
        return o.isoformat()
    raise TypeError(f"a {type(o).__name__} cannot be stored as JSON")


def json_text(doc: object, where: str = "value") -> str:
    """``doc`` as compact JSON text (DataError for what JSON or jsonb cannot hold)."""
    try:
        text = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError, RecursionError) as e:
        raise DataError(f"{where} cannot be stored as JSON: {e}", "InvalidJson") from None
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise nul_error(where)
    return text


def headers_jsonb(headers: Sequence[tuple[str, bytes]]) -> bytes:
    items: list[dict[str, str]] = []
    for name, value in headers:
        try:
            text = value.decode()
        except UnicodeDecodeError:
            text = "\x00"
        if "\x00" in text:
            items.append({"name": name, "base64": base64.b64encode(value).decode()})
        else:
            items.append({"name": name, "value": text})
    return JSONB_V1 + json_text(items, "a header name").encode()


# -- column converters: a value from the doc → the text PostgreSQL casts to the column's type ------


def _text(v: Any) -> str:
    if v.__class__ is str:
        s: str = v
    elif v.__class__ is bool:
        s = "true" if v else "false"
    elif isinstance(v, int | float | Decimal):
        s = repr(v) if v.__class__ is float else str(v)
    elif isinstance(v, dict | list):
        return json_text(v)
    elif isinstance(v, bytes):
        s = v.decode()  # UnicodeDecodeError is a ValueError: "not text"
    elif isinstance(v, dt.datetime | dt.date | dt.time):
        s = v.isoformat()
    else:
        raise ValueError(f"a {type(v).__name__} is not text")
    if "\x00" in s:
        raise ValueError("text contains NUL (\\x00), which PostgreSQL cannot store")
    return s


def _varchar(limit: int) -> Converter:
    def convert(v: Any) -> str:
        s = _text(v)
        if len(s) > limit:
            raise ValueError(f"text of {len(s)} characters is longer than varchar({limit})")
        return s

    return convert


def _integer(type_name: str) -> Converter:
    bound = _INT_RANGES[type_name]

    def convert(v: Any) -> str:
        if v.__class__ is int:
            i: int = v
        elif (v.__class__ is float and v.is_integer()) or (v.__class__ is str and _INTEGER.fullmatch(v)):
            i = int(v)
        else:
            raise ValueError(f"{v!r} is not an integer")
        if not -bound <= i < bound:
            raise ValueError(f"{i} is out of range for {type_name}")
        return str(i)

    return convert


def _numeric(v: Any) -> str:
    if v.__class__ is int or isinstance(v, Decimal):
        return str(v)
    if v.__class__ is float:
        return repr(v)
    if v.__class__ is str:
        try:
            Decimal(v.strip())
        except InvalidOperation:
            raise ValueError(f"{v!r} is not a number") from None
        return v.strip()
    raise ValueError(f"{v!r} is not a number")


def _double(v: Any) -> str:
    if v.__class__ is float:
        return repr(v)
    if v.__class__ is int or isinstance(v, Decimal):
        return repr(float(v))
    if v.__class__ is str:
        try:
            return repr(float(v))
        except ValueError:
            raise ValueError(f"{v!r} is not a number") from None
    raise ValueError(f"{v!r} is not a number")


def _boolean(v: Any) -> str:
    if v.__class__ is bool:
        return "true" if v else "false"
    if v.__class__ is int and v in (0, 1):
        return "true" if v else "false"
    if v.__class__ is str and v.strip().lower() in _BOOLEANS:
        return v.strip()
    raise ValueError(f"{v!r} is not a boolean")


def _temporal(v: Any) -> str:
    """Dates and times: text that the server parses (a bad one is isolated by the sink)."""
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if v.__class__ is not str:
        raise ValueError(f"{v!r} is not a date/time string")
    return _text(v)


def _uuid(v: Any) -> str:
    try:
        if isinstance(v, bytes):
            return str(uuid.UUID(bytes=v))
        if v.__class__ is str:
            return str(uuid.UUID(v))
    except ValueError:
        pass
    raise ValueError(f"{v!r} is not a UUID")


def _json(v: Any) -> str:
    return json_text(v)


def _bytea(v: Any) -> str:
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    if v.__class__ is str:
        return "\\x" + v.encode().hex()
    raise ValueError(f"{v!r} is not bytes or text")


def converter(sql_type: str) -> Converter:
    """The converter for a canonical column type (see :data:`.config.COLUMN_TYPES`)."""
    base, _, size = sql_type.partition("(")
    if base == "varchar" and size:
        return _varchar(int(size.rstrip(")")))
    if base in _INT_RANGES:
        return _integer(base)
    simple: dict[str, Converter] = {
        "text": _text,
        "varchar": _text,
        "numeric": _numeric,
        "real": _double,
        "double precision": _double,
        "boolean": _boolean,
        "date": _temporal,
        "time": _temporal,
        "timestamp": _temporal,
        "timestamptz": _temporal,
        "uuid": _uuid,
        "json": _json,
        "jsonb": _json,
        "bytea": _bytea,
    }
    return simple[base]


def _key_text(v: Any) -> str:
    """A key field's value as the text of a ``key_<field>`` column (jsonb mode)."""
    if isinstance(v, dict | list):
        raise ValueError("an object or array cannot be a key field")
    return _text(v)


# -- rows ------------------------------------------------------------------------------------------


class RowEncoder:
    """Builds the staging row of a record (see :class:`.schema.TableLayout` for the
    columns), or raises DataError for that record."""

    def __init__(self, config: PostgresConfig) -> None:
        self.value_format = config.value_format
        self.needs_key = config.key_mode == "key"
        self.key_fields = config.key_fields
        types = dict(config.columns)
        if config.mode == "columns":
            self.columns = [(name, converter(sql_type)) for name, sql_type in config.columns]
            self.key_converters = [(f, converter(types[f])) for f in config.key_fields]
            self.row: Callable[[SinkRecord], Row] = self._columns_row
        else:
            self.columns = []
            self.key_converters = [(f, _key_text) for f in config.key_fields]
            self.row = self._jsonb_row_with_keys if config.key_fields else self._jsonb_row
        #: jsonb mode: a value the runtime left undecoded (``doc`` None) that starts with "{" goes to
        #: PostgreSQL as it is, and PostgreSQL's JSON parser checks it (see PostgresSink._load);
        #: False: decoded here first, which tells bad JSON from a raw value
        self.trust_json = False
        #: jsonb mode without key fields: the rows that :meth:`rows` can build column by column
        self.plain_jsonb = config.mode == "jsonb" and not config.key_fields

    def rows(self, records: Sequence[SinkRecord]) -> list[Row] | None:
        """The rows of ``records`` built column by column, with no Python code run per record,
        when every record takes :meth:`row`'s plainest path — jsonb mode without key fields,
        ``trust_json``, values left undecoded that start with "{" and hold no ``\\u0000``, a key
        where the id needs one, no headers, timestamps in range: then the same rows :meth:`row`
        builds. None when any record does not (build them one by one then)."""
        if not (self.plain_jsonb and self.trust_json and records):
            return None
        topics, partitions, offsets, stamps, keys, values, headers, docs = zip(*records, strict=True)
        try:
            if (
                docs.count(None) < len(docs)
                or any(headers)
                or (self.needs_key and None in keys)
                or not all(map(eq, map(_FIRST_BYTE, values), repeat(_OPEN_BRACE)))
                # every value starts with "{", so a \\u0000 in them joined is in one of them: one
                # search instead of one per value
                or b"\\u0000" in b"".join(values)
                or min(stamps) < MIN_TIMESTAMP_MS
                or max(stamps) >= END_TIMESTAMP_MS
            ):
                return None
        except (TypeError, IndexError):  # a value that is not bytes, empty, or none (a tombstone)
            return None
        micros = map(mul, map(sub, stamps, repeat(PG_EPOCH_MS)), repeat(1000))
        return list(
            zip(topics, partitions, offsets, keys, map(JSONB_V1.__add__, values), repeat(None), micros, repeat(None))
        )

    def doc(self, r: SinkRecord) -> dict[str, Any] | bytes:
        doc = r.doc
        if doc is None and r.value is not None:
            doc = decode_value(r.value, self.value_format)
        assert doc is not None, "tombstones have no row"
        return doc

    def key_values(self, doc: dict[str, Any] | bytes) -> tuple[str, ...]:
        """The key fields of a value (key_mode fields), as the text the staging table holds."""
        if doc.__class__ is not dict:
            raise DataError("key_mode = 'fields' needs a JSON object or msgpack map value", "NotAnObject")
        out = []
        for name, convert in self.key_converters:
            v = doc.get(name)
            if v is None:
                raise DataError(f"key field {name!r} is missing or null", "MissingKeyField")
            try:
                out.append(convert(v))
            except ValueError as e:
                raise DataError(f"key field {name!r}: {e}", "InvalidValue") from None
        return tuple(out)

    @staticmethod
    def _timestamp(r: SinkRecord) -> int:
        """The record's timestamp as binary timestamptz: µs since 2000-01-01 UTC."""
        ts = r.timestamp_ms
        if not MIN_TIMESTAMP_MS <= ts < END_TIMESTAMP_MS:
            raise DataError(f"timestamp {ts} ms is outside PostgreSQL's timestamptz range", "TimestampOutOfRange")
        return (ts - PG_EPOCH_MS) * 1000

    def _check_key(self, r: SinkRecord) -> None:
        if self.needs_key and r.key is None:
            raise DataError("the record has no key, and key_mode = 'key' makes the key its id", "MissingKey")

    def _value(self, r: SinkRecord) -> tuple[bytes | None, bytes | None]:
        """(jsonb binary, raw bytes) for the value columns."""
        v: bytes = r.value  # type: ignore[assignment]
        doc = r.doc
        if doc is None:
            if v[:1] == b"{" and self.trust_json:  # the server parses it anyway: no Python decode
                if b"\\u0000" in v and _NUL_ESCAPE_BYTES.search(v):
                    raise nul_error("value")
                return JSONB_V1 + v, None
            doc = self.doc(r)
        if doc.__class__ is not dict:
            return None, doc  # type: ignore[return-value]
        if v[0] == 0x7B:  # a JSON object (a msgpack map never starts with "{"): keep its bytes
            if b"\\u0000" in v and _NUL_ESCAPE_BYTES.search(v):
                raise nul_error("value")
            return JSONB_V1 + v, None
        return JSONB_V1 + json_text(doc).encode(), None

    def _jsonb_row(self, r: SinkRecord) -> Row:
        if self.needs_key and r.key is None:
            self._check_key(r)
        value, raw = self._value(r)
        h = r.headers
        return (
            r.topic, r.partition, r.offset, r.key, value, raw,
            self._timestamp(r), headers_jsonb(h) if h else None,
        )  # fmt: skip

    def _jsonb_row_with_keys(self, r: SinkRecord) -> Row:
        keys = self.key_values(self.doc(r))
        value, raw = self._value(r)
        h = r.headers
        return (
            r.topic, r.partition, r.offset, r.key, *keys, value, raw,
            self._timestamp(r), headers_jsonb(h) if h else None,
        )  # fmt: skip

    def _columns_row(self, r: SinkRecord) -> Row:
        self._check_key(r)
        doc = self.doc(r)
        if doc.__class__ is not dict:
            raise DataError("mode = 'columns' needs a JSON object or msgpack map value", "NotAnObject")
        get = doc.get
        for name in self.key_fields:
            if get(name) is None:
                raise DataError(f"key field {name!r} is missing or null", "MissingKeyField")
        values: list[str | None] = []
        for name, convert in self.columns:
            v = get(name)
            if v is None:
                values.append(None)
                continue
            try:
                values.append(convert(v))
            except ValueError as e:
                raise DataError(f"field {name!r}: {e}", "InvalidValue") from None
        return (r.topic, r.partition, r.offset, r.key, self._timestamp(r), *values)
