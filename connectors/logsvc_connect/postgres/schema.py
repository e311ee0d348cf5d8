"""The tables the PostgreSQL sink writes, and every SQL statement it sends, composed with
:mod:`psycopg.sql` only (identifiers through ``sql.Identifier``, never string formatting).

A topic's table (``CREATE TABLE IF NOT EXISTS``, named by the ``table`` template):

* jsonb mode: ``topic text, partition integer, "offset" bigint, key bytea, [key_<field> text …],
  value jsonb, value_bytes bytea, "timestamp" timestamptz, headers jsonb``. A JSON object or
  msgpack map goes to ``value``; a raw value to ``value_bytes`` (``value`` NULL then).
* columns mode: ``topic, partition, "offset", key, "timestamp"`` and the configured columns.
* the primary key: ``(topic, partition, "offset")`` (key_mode offset), ``(key)`` (key), or the
  key fields' columns (fields: ``key_<field>`` text columns in jsonb mode, the configured typed
  columns in columns mode).

``headers`` is a JSON array of ``{"name": …, "value": text}`` objects, ``{"name": …, "base64": …}``
when a header value is not UTF-8 text. A tombstone deletes the rows whose ``key`` column equals its
key, in every key mode; the index on ``key`` this needs (offset and fields modes) is created the
first time a table receives a tombstone, so append-only tables never pay for it.

A batch is COPYed (binary) either straight into the table (jsonb mode, when no id can be taken)
or into the session's temporary staging table ``logsvc_staging`` (``ON COMMIT DELETE ROWS``, the
same columns), then moved by one ``INSERT … SELECT … ON CONFLICT``. In columns mode the staging
table holds the configured columns as text, cast to their types by that INSERT. The session
function ``pg_temp.logsvc_isolate`` re-runs that INSERT row by row when it is refused.

Names longer than PostgreSQL's 63 bytes are shortened with a hash suffix rather than left to the
server, which would truncate two long names into one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from psycopg import sql

from .config import PostgresConfig, safe_identifier

STAGING = sql.Identifier("pg_temp", "logsvc_staging")
#: the metadata columns that say which record a row came from
ORIGIN = ("topic", "partition", "offset")


class Column(NamedTuple):
    name: str
    #: the column's type in the target table
    sql_type: str
    #: its type in the staging table ("text" for a configured column: cast on the way to the target)
    staged_type: str
    #: the psycopg dumper the binary COPY uses for it (the value is already in that wire format)
    copy_type: str


class TableLayout:
    """The columns and statements of every table one sink configuration writes."""

    def __init__(self, config: PostgresConfig) -> None:
        self.config = config
        self.schema = config.schema
        meta = [
            Column("topic", "text", "text", "text"),
            Column("partition", "integer", "integer", "int4"),
            Column("offset", "bigint", "bigint", "int8"),
            Column("key", "bytea", "bytea", "bytea"),
        ]
        #: names of the staging columns that hold the key fields (in ``key_fields`` order)
        self.key_field_columns: tuple[str, ...]
        if config.mode == "jsonb":
            keys = [Column("key_" + f, "text", "text", "text") for f in config.key_fields]
            body = [
                Column("value", "jsonb", "jsonb", "bytea"),  # jsonb binary: b"\x01" + JSON text
                Column("value_bytes", "bytea", "bytea", "bytea"),
                Column("timestamp", "timestamptz", "timestamptz", "int8"),  # µs since 2000-01-01 UTC
                Column("headers", "jsonb", "jsonb", "bytea"),
            ]
            self.staged = (*meta, *keys, *body)
            self.key_field_columns = tuple(c.name for c in keys)
        else:
            body = [Column("timestamp", "timestamptz", "timestamptz", "int8")]
            configured = [Column(name, sql_type, "text", "text") for name, sql_type in config.columns]
            self.staged = (*meta, *body, *configured)
            self.key_field_columns = config.key_fields
        self.copy_types = [c.copy_type for c in self.staged]
        #: whether a batch can be COPYed straight into the table (no column needs a cast)
        self.direct = all(c.staged_type == c.sql_type for c in self.staged)
        if config.key_mode == "offset":
            self.primary_key: tuple[str, ...] = ORIGIN
        elif config.key_mode == "key":
            self.primary_key = ("key",)
        else:
            self.primary_key = self.key_field_columns
        self._updated = [c.name for c in self.staged if c.name not in self.primary_key]

    def target(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.schema, table)

    # -- DDL ---------------------------------------------------------------------------------------

    def create_schema(self) -> sql.Composed:
        return sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))

    def create_table(self, table: str) -> sql.Composed:
        columns = []
        for c in self.staged:
            not_null = c.name in self.primary_key or c.name in ORIGIN
            columns.append(
                sql.SQL("{} {}{}").format(
                    sql.Identifier(c.name), sql.SQL(c.sql_type), sql.SQL(" NOT NULL" if not_null else "")
                )
            )
        columns.append(sql.SQL("PRIMARY KEY ({})").format(_names(self.primary_key)))
        return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(self.target(table), sql.SQL(", ").join(columns))

    @staticmethod
    def relation_exists() -> sql.Composed:
        """Whether the table or index named by the parameters (schema, name) exists. The sink asks
        before any ``CREATE … IF NOT EXISTS``: PostgreSQL checks the CREATE privilege on the schema
        even when the relation exists, and a user granted only what writing needs has none."""
        return sql.SQL("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL").format()

    @staticmethod
    def primary_key_of() -> sql.Composed:
        """The primary key columns of the table named by the parameters (schema, table), in order."""
        return sql.SQL(
            "SELECT a.attname FROM pg_index i"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
            " WHERE i.indrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) AND i.indisprimary"
            " ORDER BY k.ord"
        ).format()

    def create_staging(self) -> sql.Composed:
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.staged_type)) for c in self.staged
        )
        return sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
            sql.Identifier("logsvc_staging"), columns
        )

    @staticmethod
    def create_isolate() -> sql.Composed:
        """A session function that runs an :meth:`insert` statement (``one_row``) for each staged
        row in a subtransaction of its own, and returns the rows PostgreSQL refused on their data
        with the reason: a whole batch isolated in one round trip, the good rows written."""
        return sql.SQL(
            "CREATE OR REPLACE FUNCTION pg_temp.logsvc_isolate(statement text)"
            " RETURNS TABLE (r_topic text, r_partition integer, r_offset bigint, r_state text, r_message text)"
            " LANGUAGE plpgsql AS $fn$"
            " DECLARE row_id tid;"
            " BEGIN"
            "  FOR row_id IN SELECT s.ctid FROM {staging} s LOOP"
            "   BEGIN"
            "    EXECUTE statement USING row_id;"
            "   EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded"
            "    OR raise_exception THEN"
            "    SELECT s.{t}, s.{p}, s.{o} INTO r_topic, r_partition, r_offset FROM {staging} s WHERE s.ctid = row_id;"
            "    r_state := SQLSTATE; r_message := SQLERRM;"
            "    RETURN NEXT;"
            "   END;"
            "  END LOOP;"
            " END $fn$"
        ).format(staging=STAGING, t=sql.Identifier("topic"), p=sql.Identifier("partition"), o=sql.Identifier("offset"))

    def key_index_name(self, table: str) -> str | None:
        """The name of the index tombstones need on ``key`` (None when ``key`` is the primary key)."""
        return None if self.primary_key == ("key",) else safe_identifier(table + "_key_idx")

    def key_index(self, table: str) -> sql.Composed | None:
        """The index tombstones need on ``key`` (None when ``key`` is the primary key)."""
        name = self.key_index_name(table)
        if name is None:
            return None
        return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(name), self.target(table), sql.Identifier("key")
        )

    # -- one batch ---------------------------------------------------------------------------------

    def copy(self, table: str | None = None) -> sql.Composed:
        """COPY into the staging table, or straight into ``table`` (when :attr:`direct`)."""
        return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            STAGING if table is None else self.target(table), _names(c.name for c in self.staged)
        )

    def truncate_staging(self) -> sql.Composed:
        return sql.SQL("TRUNCATE {}").format(STAGING)

    def insert(self, table: str, one_row: bool = False) -> sql.Composed:
        """Staging → ``table``, with the insert mode's conflict clause; ``one_row``: only the
        staged row whose ctid is ``$1`` (the statement :meth:`create_isolate`'s function runs)."""
        select = sql.SQL(", ").join(
            sql.SQL("s.{}").format(sql.Identifier(c.name))
            if c.staged_type == c.sql_type
            else sql.SQL("s.{}::{}").format(sql.Identifier(c.name), sql.SQL(c.sql_type))
            for c in self.staged
        )
        statement = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} s {}ON CONFLICT ({}) ").format(
            self.target(table),
            _names(c.name for c in self.staged),
            select,
            STAGING,
            sql.SQL("WHERE s.ctid = $1 " if one_row else ""),
            _names(self.primary_key),
        )
        if self.config.insert_mode != "upsert" or not self._updated:
            return statement + sql.SQL("DO NOTHING")
        updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in self._updated)
        return statement + sql.SQL("DO UPDATE SET ") + updates

    def conflicts(self, table: str) -> sql.Composed:
        """(topic, partition, offset) of the staged rows whose id belongs to a row from another
        record — the duplicates an "insert" skipped."""
        casts = {c.name: c.sql_type for c in self.staged if c.staged_type != c.sql_type}
        match = sql.SQL(" AND ").join(
            sql.SQL("t.{0} = s.{0}::{1}").format(sql.Identifier(n), sql.SQL(casts[n]))
            if n in casts
            else sql.SQL("t.{0} = s.{0}").format(sql.Identifier(n))
            for n in self.primary_key
        )
        return sql.SQL(
            "SELECT s.{topic}, s.{p}, s.{o} FROM {staging} s JOIN {target} t ON {match}"
            " WHERE (t.{topic}, t.{p}, t.{o}) IS DISTINCT FROM (s.{topic}, s.{p}, s.{o})"
        ).format(
            p=sql.Identifier("partition"),
            o=sql.Identifier("offset"),
            topic=sql.Identifier("topic"),
            staging=STAGING,
            target=self.target(table),
            match=match,
        )

    def delete_keys(self, table: str) -> sql.Composed:
        """Delete the rows whose ``key`` is in the one parameter (a list of bytes)."""
        return sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(self.target(table), sql.Identifier("key"))

    # -- exactly-once offsets ----------------------------------------------------------------------

    def offsets(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.config.offsets_table)

    def create_offsets(self) -> sql.Composed:
        return sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (connector text NOT NULL, topic text NOT NULL,"
            " partition integer NOT NULL, next_offset bigint NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (connector, topic, partition))"
        ).format(self.offsets())

    def store_offsets(self) -> sql.Composed:
        """Upsert (connector, topics[], partitions[], next_offsets[])."""
        return sql.SQL(
            "INSERT INTO {} (connector, topic, partition, next_offset)"
            " SELECT %s, u.t, u.p, u.o FROM unnest(%s::text[], %s::integer[], %s::bigint[]) AS u(t, p, o)"
            " ON CONFLICT (connector, topic, partition)"
            " DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()"
        ).format(self.offsets())

    def select_offsets(self) -> sql.Composed:
        return sql.SQL("SELECT topic, partition, next_offset FROM {} WHERE connector = %s").format(self.offsets())


def _names(names: Iterable[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in names)
