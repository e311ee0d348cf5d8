"""The PostgreSQL sink's configuration: one frozen dataclass, validated once by :meth:`from_mapping`.

Keys (unknown keys are an :class:`~logsvc_client.errors.InvalidConfig`):

=================  ============  ==================================================================
key                default       meaning
=================  ============  ==================================================================
``dsn``            (required)    libpq connection string or URI
``table``          ``"{topic}"`` table name template; ``.`` and ``-`` in the topic become ``_``;
                                 two topics that give one table name are an error at start
``schema``         ``"public"``  schema of the tables (created when missing)
``mode``           ``"jsonb"``   ``"jsonb"`` (the value in a JSONB column) or ``"columns"``
``columns``        —             columns mode: value field → PostgreSQL type (an allow-list)
``insert_mode``    ``"upsert"``  ``"upsert"``, ``"insert"`` (a duplicate id is a data error) or
                                 ``"insert-ignore"`` (the row already there wins)
``key_mode``       ``"offset"``  row id: ``"offset"`` (topic, partition, offset), ``"key"`` (the
                                 record key) or ``"fields"`` (the value fields in ``key_fields``)
``key_fields``     —             ``key_mode = "fields"``: the value fields that form the id
``exactly_once``   ``false``     store the next offsets in ``offsets_table``, in the same
                                 transaction as the rows; a restart resumes from them, and
                                 commits them to the group where its commits are behind (a
                                 process killed between the two), so its lag is true
``offsets_table``  ``"logsvc_offsets"``
``connector``      —             the connector's name (owner of its rows in ``offsets_table``;
                                 required with ``exactly_once``)
``value_format``   ``"auto"``    ``"auto"``, ``"json"``, ``"msgpack"`` or ``"raw"`` (see
                                 :mod:`logsvc_connect.values`): how to decode a record that
                                 arrives without ``doc`` (the runtime normally decodes)
=================  ============  ==================================================================

Values from the environment are text: ``exactly_once`` takes true/false/1/0/yes/no,
``key_fields`` a comma-separated list, ``columns`` a JSON object.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from logsvc_client.errors import InvalidConfig

from ..config import check_keys
from ..values import VALUE_FORMATS

MODES = ("jsonb", "columns")
INSERT_MODES = ("upsert", "insert", "insert-ignore")
KEY_MODES = ("offset", "key", "fields")

#: PostgreSQL's longest identifier (NAMEDATALEN - 1); longer names would be truncated silently
MAX_IDENTIFIER_BYTES = 63

#: the columns every table has besides the configured ones (a configured column may not reuse them)
META_COLUMNS = ("topic", "partition", "offset", "key", "value", "value_bytes", "timestamp", "headers")

#: the column types ``columns`` may name, and the canonical spelling each one is created with
COLUMN_TYPES = {
    "text": "text",
    "varchar": "varchar",
    "character varying": "varchar",
    "smallint": "smallint",
    "int2": "smallint",
    "integer": "integer",
    "int": "integer",
    "int4": "integer",
    "bigint": "bigint",
    "int8": "bigint",
    "numeric": "numeric",
    "decimal": "numeric",
    "real": "real",
    "float4": "real",
    "double precision": "double precision",
    "float8": "double precision",
    "float": "double precision",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamp without time zone": "timestamp",
    "timestamptz": "timestamptz",
    "timestamp with time zone": "timestamptz",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "jsonb",
    "bytea": "bytea",
}
_SIZED_TYPE = re.compile(r"(varchar|character varying|numeric|decimal)\s*\(\s*(\d{1,4})\s*(?:,\s*(\d{1,4})\s*)?\)")


def column_type(spec: str) -> str:
    """The canonical PostgreSQL type for ``spec`` ("int" → "integer", "decimal(10,2)" →
    "numeric(10,2)"); InvalidConfig when it is not in the allow-list."""
    text = " ".join(spec.lower().split())
    if text in COLUMN_TYPES:
        return COLUMN_TYPES[text]
    m = _SIZED_TYPE.fullmatch(text)
    if m:
        base = COLUMN_TYPES[m.group(1)]
        if base == "varchar" and m.group(3) is None and int(m.group(2)) > 0:
            return f"varchar({int(m.group(2))})"
        if base == "numeric" and 0 < int(m.group(2)) <= 1000:
            scale = "" if m.group(3) is None else f",{int(m.group(3))}"
            return f"numeric({int(m.group(2))}{scale})"
    allowed = ", ".join(sorted(set(COLUMN_TYPES.values())))
    raise InvalidConfig(
        f"column type {spec!r} is not supported (use one of {allowed}, varchar(n), numeric(p,s))", key="columns"
    )


def safe_identifier(name: str) -> str:
    """``name`` shortened to PostgreSQL's 63 bytes, keeping distinct long names distinct (a hash
    suffix replaces the tail) instead of letting the server truncate them into one."""
    data = name.encode()
    if len(data) <= MAX_IDENTIFIER_BYTES:
        return name
    digest = hashlib.sha1(data).hexdigest()[:8]
    head = data[: MAX_IDENTIFIER_BYTES - 9].decode(errors="ignore")
    return f"{head}_{digest}"


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _str(d: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = d.get(key, default)
    if value is not None and not isinstance(value, str):
        raise InvalidConfig(f"{key} must be a string, not {type(value).__name__}", key=key)
    return value


def _bool(d: Mapping[str, Any], key: str, default: bool) -> bool:
    value = d.get(key, default)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:  # from the environment
        return value.strip().lower() in _TRUE
    if not isinstance(value, bool):
        raise InvalidConfig(f"{key} must be true or false, not {value!r}", key=key)
    return value


def _choice(d: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _str(d, key, default)
    if value not in allowed:
        raise InvalidConfig(f"{key} must be one of {', '.join(allowed)}, not {value!r}", key=key)
    return value


def _name(value: str | None, key: str) -> str:
    if not value:
        raise InvalidConfig(f"{key} must not be empty", key=key)
    if "\x00" in value:
        raise InvalidConfig(f"{key} must not contain NUL", key=key)
    if len(value.encode()) > MAX_IDENTIFIER_BYTES:
        raise InvalidConfig(f"{key} {value!r} is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes", key=key)
    return value


@dataclass(frozen=True)
class PostgresConfig:
    """A validated configuration of :class:`~logsvc_connect.postgres.PostgresSink` (keys: module doc)."""

    dsn: str
    table: str = "{topic}"
    schema: str = "public"
    mode: str = "jsonb"
    #: (field, canonical column type) pairs, in the configured order (columns mode)
    columns: tuple[tuple[str, str], ...] = ()
    insert_mode: str = "upsert"
    key_mode: str = "offset"
    key_fields: tuple[str, ...] = ()
    exactly_once: bool = False
    offsets_table: str = "logsvc_offsets"
    connector: str | None = None
    value_format: str = "auto"

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> PostgresConfig:
        """Validate a mapping (a TOML table, parsed flags); InvalidConfig names the bad key."""
        check_keys(cls, d, "[postgres]")
        dsn = _str(d, "dsn")
        if not dsn:
            raise InvalidConfig("dsn is required (a libpq connection string or URI)", key="dsn")
        try:
            conninfo_to_dict(dsn)
        except Exception:  # psycopg's message may quote the DSN, password included: keep it out
            raise InvalidConfig("dsn is not a valid libpq connection string or URI", key="dsn") from None
        table = _str(d, "table", "{topic}") or ""
        rest = table.replace("{topic}", "")
        if "{" in rest or "}" in rest:
            raise InvalidConfig(f"table {table!r} may only contain the placeholder {{topic}}", key="table")
        _name(table.replace("{topic}", "t"), "table")
        mode = _choice(d, "mode", "jsonb", MODES)
        key_mode = _choice(d, "key_mode", "offset", KEY_MODES)
        columns = _columns(d.get("columns"), mode)
        key_fields = _key_fields(d.get("key_fields"), key_mode, mode, columns)
        exactly_once = _bool(d, "exactly_once", False)
        connector = _str(d, "connector")
        if exactly_once and not connector:
            raise InvalidConfig("exactly_once needs connector (the name its offsets are stored under)", key="connector")
        return cls(
            dsn=dsn,
            table=table,
            schema=_name(_str(d, "schema", "public"), "schema"),
            mode=mode,
            columns=columns,
            insert_mode=_choice(d, "insert_mode", "upsert", INSERT_MODES),
            key_mode=key_mode,
            key_fields=key_fields,
            exactly_once=exactly_once,
            offsets_table=_name(_str(d, "offsets_table", "logsvc_offsets"), "offsets_table"),
            connector=connector,
            value_format=_choice(d, "value_format", "auto", VALUE_FORMATS),
        )

    def table_name(self, topic: str) -> str:
        """The table a topic's records go to."""
        return safe_identifier(self.table.replace("{topic}", topic.replace(".", "_").replace("-", "_")))


def _columns(value: object, mode: str) -> tuple[tuple[str, str], ...]:
    if mode != "columns":
        if value:
            raise InvalidConfig("columns is only used with mode = 'columns'", key="columns")
        return ()
    if isinstance(value, str):  # from the environment: a JSON object
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidConfig(
                "columns must be a JSON object of field: type when given as text", key="columns"
            ) from None
    if not isinstance(value, Mapping) or not value:
        raise InvalidConfig("mode = 'columns' needs columns: a table of field = PostgreSQL type", key="columns")
    out = []
    for name, spec in value.items():
        if not isinstance(name, str) or not isinstance(spec, str):
            raise InvalidConfig(
                f"columns entry {name!r} = {spec!r} must map a field name to a type name", key="columns"
            )
        _name(name, f"column {name!r}")
        if name in META_COLUMNS:
            raise InvalidConfig(
                f"column {name!r} collides with a column every table has ({', '.join(META_COLUMNS)})", key="columns"
            )
        out.append((name, column_type(spec)))
    return tuple(out)


def _key_fields(value: object, key_mode: str, mode: str, columns: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    if key_mode != "fields":
        if value:
            raise InvalidConfig("key_fields is only used with key_mode = 'fields'", key="key_fields")
        return ()
    if isinstance(value, str):  # from the environment: comma-separated
        value = [f.strip() for f in value.split(",")]
    if not isinstance(value, list | tuple) or not value or not all(isinstance(f, str) and f for f in value):
        raise InvalidConfig("key_mode = 'fields' needs key_fields: a list of value field names", key="key_fields")
    if len(set(value)) != len(value):
        raise InvalidConfig(f"key_fields {list(value)!r} names a field twice", key="key_fields")
    if mode == "columns":
        configured = {name for name, _ in columns}
        for f in value:
            if f not in configured:
                raise InvalidConfig(f"key field {f!r} is not one of the configured columns", key="key_fields")
    else:
        for f in value:
            _name("key_" + f, f"key field {f!r}")
    return tuple(value)
