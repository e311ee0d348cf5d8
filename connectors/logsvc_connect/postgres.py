"""The PostgreSQL sink: a batch goes in as one transaction — a ``DELETE`` for its tombstones'
keys, its rows (below), and with ``exactly_once`` the next offsets upserted into the offsets table,
then a single COMMIT.

Rows take the fast path when they can: a binary COPY straight into the table (jsonb mode, when the
table's last direct attempts met no existing ids). Otherwise, and whenever that COPY is refused,
they are COPYed into the session's temporary staging table and moved by one
``INSERT … SELECT … ON CONFLICT``.

In jsonb mode with offset or key ids nothing needs the value decoded: the sink asks the runtime
not to decode (``decode_values``), stores a JSON object's own bytes and leaves checking them to
PostgreSQL's JSON parser, which reads them anyway. Such rows go in under a savepoint of their
own; when the server refuses any, the group is decoded in Python and written again the usual way,
so bad JSON, a raw value under ``value_format = "auto"`` and the errors' classes come out as if
decoded first.

Configuration: :class:`~logsvc_connect.postgres_config.PostgresConfig`; tables and statements:
:mod:`~logsvc_connect.postgres_schema`; records → rows: :mod:`~logsvc_connect.postgres_rows`.

Errors are translated here, once:

* the database failing (connection refused or lost, server shutting down, timeouts,
  serialization failures and deadlocks, a read-only server after a failover) →
  :class:`~logsvc_connect.sink.TransientSinkError` naming the server; the connection is dropped
  and the next call connects again;
* one record's data → :class:`~logsvc_connect.sink.DataError` in :attr:`WriteResult.failed`, the
  others written in the same transaction. Python validates what it cheaply can before the COPY;
  rows the INSERT refuses (a bad cast, a constraint) are isolated on the server in one round trip
  (``pg_temp.logsvc_isolate``, a subtransaction per row); rows the COPY refuses by bisecting;
* anything else (a table that does not match the configuration, missing privileges) →
  :class:`~logsvc_client.errors.InvalidConfig`.

Ids: ``(topic, partition, offset)``, ``(table, key)`` or ``(table, *key field values)``. With
``insert_mode = "insert"`` a row whose id already belongs to *another* record is a DataError for
the new record; the same record written again (a redelivery) is not, so writes stay idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import BytesBinaryDumper

from logsvc_client.errors import InvalidConfig, LogsvcError
from logsvc_client.records import TopicPartition

from .postgres_config import PostgresConfig
from .postgres_errors import describe_server, is_data_error, refused, translate
from .postgres_rows import Row, RowEncoder
from .postgres_schema import TableLayout
from .sink import DataError, Sink, SinkRecord, TransientSinkError, WriteResult

__all__ = ["PostgresConfig", "PostgresSink"]  # the config is re-exported: app.py loads both from here

log = logging.getLogger("logsvc.connect.postgres")

CONNECT_TIMEOUT_S = 10
#: after a direct COPY into a table met an existing id, stage this many batches before trying again
DIRECT_BACKOFF_BATCHES = 16
STAGING_BUFFERS = "64MB"
#: fields of a SinkRecord tuple, for per-record work done by C iterators
_TOPIC, _ORIGIN, _VALUE = itemgetter(0), itemgetter(1, 2), itemgetter(5)


@dataclass
class _Group:
    """One topic's share of a batch, ready to write."""

    topic: str
    #: rows whose JSON only PostgreSQL has checked (RowEncoder.trust_json)
    trusted: bool = False
    #: the records to insert (indexes into the batch), and the rows of those that encoded
    live: list[int] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    delete_keys: list[bytes] = field(default_factory=list)


class PostgresSink(Sink):
    """Writes batches to PostgreSQL, idempotently (see the module doc)."""

    kind = "postgres"

    def __init__(self, config: PostgresConfig) -> None:
        self.config = config
        self.layout = TableLayout(config)
        self.encoder = RowEncoder(config)
        self.server = describe_server(config.dsn)
        self._conn: psycopg.Connection[Any] | None = None
        self._tables: dict[str, str] = {}
        self._created: set[str] = set()
        self._key_indexed: set[str] = set()
        self._staging_dirty = False
        self._skip_direct: dict[str, int] = {}
        self._can_isolate = False
        # upsert needs one row per id in a statement; insert reports the extra ones, insert-ignore skips them
        self._dedupe = config.insert_mode == "upsert" and config.key_mode != "offset"
        # an offset id can only conflict with the same record written again: nothing to report
        self._report = config.insert_mode == "insert" and config.key_mode != "offset"
        # jsonb mode with offset or key ids needs no decoded value: a JSON object's own bytes are
        # stored, and PostgreSQL parses them anyway. The runtime then skips decoding, and a batch
        # the server refuses is decoded here and written again (_load), so bad JSON, a raw value
        # ("auto") and the errors' classes are what decoding first would give.
        self.decode_values = config.mode != "jsonb" or config.key_mode == "fields"
        # offset ids are unique within a batch: the runtime need not compact them (_prepare checks)
        self.compact_ids = config.key_mode != "offset"
        self._trust_json = not self.decode_values and config.value_format in ("json", "auto")

    # -- the contract ------------------------------------------------------------------------------

    def open(self) -> None:
        self._connection()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def identity(self, record: SinkRecord) -> Hashable:
        mode = self.config.key_mode
        if mode == "offset" or (mode == "key" and record.key is None):
            return (record.topic, record.partition, record.offset)
        table = self._table(record.topic)
        if mode == "key":
            return (table, record.key)
        if record.value is None:
            return ("tombstone", table, record.key)
        try:
            return ("fields", table, self.encoder.key_values(self.encoder.doc(record)))
        except DataError:
            return (record.topic, record.partition, record.offset)

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        failed: dict[int, DataError] = {}
        groups = self._prepare(records)
        for group in groups:
            self._encode(records, group, failed)
        conn = self._connection()
        try:
            self._create_tables(conn, groups)
            self._staging_dirty = False
            with conn.transaction(), conn.cursor() as cur:
                for group in groups:
                    if group.delete_keys:
                        cur.execute(self.layout.delete_keys(self._table(group.topic)), (group.delete_keys,))
                    if group.rows:
                        self._load(cur, self._table(group.topic), records, group, failed)
                if self.config.exactly_once and offsets:
                    tps = list(_offsets_before_failures(records, failed, offsets).items())
                    cur.execute(
                        self.layout.store_offsets(),
                        (self.config.connector, [tp.topic for tp, _ in tps], [tp.partition for tp, _ in tps],
                         [o for _, o in tps]),
                    )  # fmt: skip
        except psycopg.Error as e:
            raise self._translate(e) from e
        return WriteResult(failed)

    @property
    def stores_offsets(self) -> bool:
        return self.config.exactly_once

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int] | None:
        if not self.config.exactly_once:
            return None
        conn = self._connection()
        try:
            rows = conn.execute(self.layout.select_offsets(), (self.config.connector,)).fetchall()
        except psycopg.Error as e:
            raise self._translate(e) from e
        wanted = set(partitions)
        stored = {TopicPartition(t, p): o for t, p, o in rows}
        return {tp: o for tp, o in stored.items() if tp in wanted}

    # -- records → groups of rows ------------------------------------------------------------------

    def _prepare(self, records: Sequence[SinkRecord]) -> list[_Group]:
        # the per-record checks run as C iterators over the record tuples (see _TOPIC and friends)
        by_topic: dict[str, list[int]] = {}
        topics = set(map(_TOPIC, records))
        if len(topics) <= 1:
            by_topic = {topics.pop(): list(range(len(records)))} if records else {}
        else:
            for i, r in enumerate(records):
                by_topic.setdefault(r.topic, []).append(i)
        groups = []
        for topic, indexes in by_topic.items():
            group = _Group(topic)
            live = indexes
            if None in map(_VALUE, map(records.__getitem__, indexes)):
                live = self._apply_tombstones(records, indexes, group)
            if self._dedupe:
                last = {self.identity(records[i]): i for i in live}
                if len(last) < len(live):
                    live = sorted(last.values())
            elif not self.compact_ids:  # offset ids: unique, unless a record came twice (last wins)
                origins = dict(zip(map(_ORIGIN, map(records.__getitem__, live)), live, strict=True))
                if len(origins) < len(live):
                    live = sorted(origins.values())
            group.live = live
            groups.append(group)
        return groups

    @staticmethod
    def _apply_tombstones(records: Sequence[SinkRecord], indexes: list[int], group: _Group) -> list[int]:
        """Collect the tombstones' keys and drop the records a later tombstone deletes anyway
        (the DELETE runs before the INSERT)."""
        deleted: set[bytes] = set()
        live = []
        for i in reversed(indexes):
            r = records[i]
            if r.value is None:
                if r.key is not None and r.key not in deleted:
                    deleted.add(r.key)
                    group.delete_keys.append(r.key)
            elif r.key is None or r.key not in deleted:
                live.append(i)
        live.reverse()
        return live

    def _encode(
        self, records: Sequence[SinkRecord], group: _Group, failed: dict[int, DataError], trust: bool | None = None
    ) -> None:
        """The group's staging rows; a record that cannot be encoded goes to ``failed``. ``trust``:
        leave JSON to PostgreSQL to check (default: whenever this configuration can)."""
        group.trusted = self.encoder.trust_json = self._trust_json if trust is None else trust
        group.rows, group.indexes = [], []
        encode = self.encoder.row
        try:
            group.rows = [encode(records[i]) for i in group.live]
            group.indexes = group.live
            return
        except DataError:
            pass
        for i in group.live:  # some record is bad: again, one at a time
            try:
                group.rows.append(encode(records[i]))
            except DataError as e:
                failed[i] = e
                continue
            group.indexes.append(i)

    # -- the database ------------------------------------------------------------------------------

    def _table(self, topic: str) -> str:
        table = self._tables.get(topic)
        if table is None:
            table = self._tables[topic] = self.config.table_name(topic)
        return table

    def _load(self, cur: psycopg.Cursor[Any], table: str, records: Sequence[SinkRecord], group: _Group,
              failed: dict[int, DataError]) -> None:  # fmt: skip
        """Write a group's rows. Rows with JSON only PostgreSQL has checked go first under a
        savepoint of their own, refused as a whole on any data error; then the records are decoded
        and encoded again, and written as any others (bad records found and dead-lettered)."""
        if group.trusted:
            try:
                with cur.connection.transaction():
                    self._load_rows(cur, table, group, failed, strict=True)
                return
            except psycopg.Error as e:
                if not is_data_error(e):
                    raise
            for i in group.live:
                failed.pop(i, None)
            self._encode(records, group, failed, trust=False)
            if not group.rows:
                return
        self._load_rows(cur, table, group, failed)

    def _load_rows(self, cur: psycopg.Cursor[Any], table: str, group: _Group, failed: dict[int, DataError],
                   strict: bool = False) -> None:  # fmt: skip
        """COPY a group's rows straight into the table when they can be (jsonb mode, and the last
        direct attempts met no existing ids), else through staging. ``strict``: a data error
        propagates instead of being isolated."""
        if self.layout.direct:
            skip = self._skip_direct.get(table, 0)
            if skip:
                self._skip_direct[table] = skip - 1
            else:
                try:
                    with cur.connection.transaction():
                        self._copy(cur, self.layout.copy(table), group.rows)
                    return
                except psycopg.Error as e:
                    if not is_data_error(e):
                        raise
                # an id already there (an update, a redelivery) or a bad record: staging sorts it
                # out; stay on that path for a while
                self._skip_direct[table] = DIRECT_BACKOFF_BATCHES
        self._stage(cur, table, group.rows, group.indexes, failed, strict)

    def _stage(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row], indexes: list[int],
               failed: dict[int, DataError], strict: bool = False) -> None:  # fmt: skip
        """COPY ``rows`` into staging and INSERT them into ``table``, each under a savepoint.
        Rows the INSERT refuses are isolated on the server (one round trip); rows the COPY refuses
        by bisecting. Either way the good rows are written (``strict``: a data error propagates)."""
        try:
            with cur.connection.transaction():
                if self._staging_dirty:
                    cur.execute(self.layout.truncate_staging())
                self._copy(cur, self.layout.copy(), rows)
                try:
                    with cur.connection.transaction():
                        cur.execute(self.layout.insert(table))
                        if self._report and cur.rowcount < len(rows):
                            self._report_duplicates(cur, table, rows, indexes, failed)
                except psycopg.Error as e:
                    if strict or not (is_data_error(e) and self._can_isolate):
                        raise
                    self._isolate(cur, table, rows, indexes, failed)
            self._staging_dirty = True
        except psycopg.Error as e:
            if strict or not is_data_error(e):
                raise
            self._bisect(cur, table, rows, indexes, failed, e)

    def _isolate(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row], indexes: list[int],
                 failed: dict[int, DataError]) -> None:  # fmt: skip
        """Insert the staged rows one by one on the server; the refused ones fail alone."""
        statement = self.layout.insert(table, one_row=True).as_string(cur.connection)
        rejects = cur.execute("SELECT * FROM pg_temp.logsvc_isolate(%s)", (statement,)).fetchall()
        if self._report:
            self._report_duplicates(cur, table, rows, indexes, failed)
        position = {row[:3]: i for row, i in zip(rows, indexes, strict=True)}
        for topic, partition, offset, state, message in rejects:
            failed[position[topic, partition, offset]] = refused(self.server, message, state, table)

    def _bisect(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row], indexes: list[int],
                failed: dict[int, DataError], error: psycopg.Error) -> None:  # fmt: skip
        """The COPY refused ``rows``: stage each half on its own until every refused record is
        alone (2·log2(n) attempts for one bad record)."""
        if len(rows) == 1:
            message = error.diag.message_primary or str(error)
            failed[indexes[0]] = refused(self.server, message, error.sqlstate, table)
            return
        mid = len(rows) // 2
        self._stage(cur, table, rows[:mid], indexes[:mid], failed)
        self._stage(cur, table, rows[mid:], indexes[mid:], failed)

    def _copy(self, cur: psycopg.Cursor[Any], statement: sql.Composed, rows: list[Row]) -> None:
        with cur.copy(statement) as copy:
            copy.set_types(self.layout.copy_types)
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def _report_duplicates(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row], indexes: list[int],
                           failed: dict[int, DataError]) -> None:  # fmt: skip
        """The rows an "insert" skipped because their id belongs to another record's row."""
        position = {row[:3]: i for row, i in zip(rows, indexes, strict=True)}
        for origin in cur.execute(self.layout.conflicts(table)).fetchall():
            failed[position[origin]] = DataError(
                f"table {table!r} already has a row with this record's id (insert_mode = 'insert')",
                "UniqueViolation", table=table,
            )  # fmt: skip

    def _create_tables(self, conn: psycopg.Connection[Any], groups: list[_Group]) -> None:
        """Create missing tables (and the key index tombstones need) in their own transactions:
        a concurrent creation by another connector must not fail the data transaction."""
        for group in groups:
            table = self._table(group.topic)
            if table not in self._created:
                self._ddl(conn, self.layout.create_table(table))
                self._check_primary_key(conn, table)
                self._created.add(table)
            if group.delete_keys and table not in self._key_indexed:
                statement = self.layout.key_index(table)
                if statement is not None:
                    self._ddl(conn, statement)
                self._key_indexed.add(table)

    def _check_primary_key(self, conn: psycopg.Connection[Any], table: str) -> None:
        """An existing table must be keyed the way the configuration ids its rows."""
        rows = conn.execute(self.layout.primary_key_of(), (self.config.schema, table)).fetchall()
        found = tuple(name for (name,) in rows)
        if found != self.layout.primary_key:
            raise InvalidConfig(
                f"table {self.config.schema}.{table} has the primary key ({', '.join(found) or 'none'}), but"
                f" key_mode = {self.config.key_mode!r} ids rows by ({', '.join(self.layout.primary_key)})",
                key="key_mode",
            )

    @staticmethod
    def _ddl(conn: psycopg.Connection[Any], statement: sql.Composed) -> None:
        for attempt in (1, 2):
            try:
                with conn.transaction():
                    conn.execute(statement)
                return
            except psycopg.errors.UniqueViolation:  # the IF NOT EXISTS race: created meanwhile
                if attempt == 2:
                    raise

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = None
        extra: dict[str, Any] = {"application_name": f"logsvc-connect {self.config.connector or 'postgres'}"}
        if "connect_timeout" not in conninfo_to_dict(self.config.dsn):
            extra["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            conn = psycopg.connect(self.config.dsn, autocommit=True, **extra)
        except psycopg.Error as e:
            raise self._translate(e) from e
        # COPY bytea through the C dumper (by oid, psycopg would pick the Python DB-API one)
        conn.adapters.register_dumper(None, BytesBinaryDumper)
        try:
            # temp_buffers before the session touches a temporary table: room for a staged batch;
            # a COMMIT must be durable (write() promises it), so never synchronous_commit = off
            conn.execute(
                "SELECT set_config('temp_buffers', %s, false),"
                " CASE WHEN current_setting('synchronous_commit') = 'off'"
                " THEN set_config('synchronous_commit', 'on', false) END",
                (STAGING_BUFFERS,),
            )
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.config.schema,)).fetchone()
            if not exists:
                self._ddl(conn, self.layout.create_schema())
            if self.config.exactly_once:
                self._ddl(conn, self.layout.create_offsets())
            conn.execute(self.layout.create_staging())
            self._can_isolate = self._create_isolate(conn)
        except psycopg.Error as e:
            conn.close()
            raise self._translate(e) from e
        self._conn = conn
        return conn

    def _create_isolate(self, conn: psycopg.Connection[Any]) -> bool:
        """Create the isolation function; without PL/pgSQL, refused rows are found by bisecting."""
        try:
            with conn.transaction():
                conn.execute(self.layout.create_isolate())
        except psycopg.ProgrammingError as e:
            log.warning("%s: refused records will be isolated by bisecting (%s)", self.server, e)
            return False
        return True

    def _translate(self, e: psycopg.Error) -> LogsvcError:
        """Drop the connection (a new one is made on the next call) and translate ``e``."""
        self.close()
        error = translate(e, self.server)
        if isinstance(error, TransientSinkError):  # the tables may be gone: create them again
            self._created.clear()
            self._key_indexed.clear()
        return error


def _offsets_before_failures(
    records: Sequence[SinkRecord], failed: Mapping[int, DataError], offsets: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """The offsets to store with the rows: never past a record that failed, so that a crash
    before the runtime dead-letters it replays it (the runtime stores the full offsets with an
    empty write once the dead letters are acknowledged)."""
    out = dict(offsets)
    for index in failed:
        r = records[index]
        tp = TopicPartition(r.topic, r.partition)
        if r.offset < out.get(tp, r.offset + 1):
            out[tp] = r.offset
    return out
