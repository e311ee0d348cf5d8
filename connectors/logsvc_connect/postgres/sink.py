"""The PostgreSQL sink: a batch goes in as one transaction — a ``DELETE`` for its tombstones'
keys, its rows (below), and with ``exactly_once`` the next offsets upserted into the offsets table,
then a single COMMIT.

A batch is split per topic (:mod:`~logsvc_connect.postgres.groups`: tombstones applied, rows
encoded; the runtime has compacted duplicate ids already), and each group's rows go into its table by
:class:`~logsvc_connect.postgres.loader.RowLoader`: a binary COPY straight into the table when
they can (jsonb mode, when the table's last direct attempts met no existing ids), otherwise a COPY
into the session's temporary staging table and one ``INSERT … SELECT … ON CONFLICT``. The common
batch — trusted JSON (below), no tombstones, every table taking a direct COPY — goes in as
``BEGIN``, the COPYs, the offsets, ``COMMIT`` with no savepoint; when the server refuses a row that
transaction is rolled back whole and the batch written again the usual way. Such a batch's rows are
not built as tuples at all: :meth:`PostgresSink.prepare` turns its records into the COPY's binary
data in one pass (:mod:`~logsvc_connect.postgres.copy_stream`), and the write sends that block.

In jsonb mode with offset or key ids nothing needs the value decoded: the sink asks the runtime
not to decode (``decode_values``), stores a JSON object's own bytes and leaves checking them to
PostgreSQL's JSON parser, which reads them anyway. Such rows go in under a savepoint of their
own; when the server refuses any, the group is decoded in Python and written again the usual way,
so bad JSON, a raw value under ``value_format = "auto"`` and the errors' classes come out as if
decoded first.

Configuration: :class:`~logsvc_connect.postgres.config.PostgresConfig`; tables and statements:
:mod:`~logsvc_connect.postgres.schema`; records → rows: :mod:`~logsvc_connect.postgres.rows`.

Errors are translated once, at this boundary:

* the database failing (connection refused or lost, server shutting down, timeouts,
  serialization failures and deadlocks, a read-only server after a failover) →
  :class:`~logsvc_connect.sink.TransientSinkError` naming the server; the connection is dropped
  and the next call connects again;
* one record's data → :class:`~logsvc_connect.sink.DataError` in :attr:`WriteResult.failed`, the
  others written in the same transaction. Python validates what it cheaply can before the COPY;
  the rows the server refuses are isolated by the loader — those the INSERT refuses (a bad cast, a
  constraint) on the server in one round trip (``pg_temp.logsvc_isolate``, a subtransaction per
  row), those the COPY refuses by bisecting;
* anything else (a table that does not match the configuration, missing privileges) →
  :class:`~logsvc_client.errors.InvalidConfig`.

Ids: ``(topic, partition, offset)``, ``(table, key)`` or ``(table, *key field values)``. With
``insert_mode = "insert"`` a row whose id already belongs to *another* record is a DataError for
the new record; the same record written again (a redelivery) is not, so writes stay idempotent.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import BytesBinaryDumper

from logsvc_client.errors import InvalidConfig, LogsvcError
from logsvc_client.records import TopicPartition

from ..config import RuntimeConfig, check_one_target_per_topic
from ..registry import Adapter
from ..sink import DataError, Sink, SinkRecord, TransientSinkError, WriteResult
from .config import PostgresConfig
from .errors import describe_server, is_data_error, translate
from .groups import TopicGroup, group_records
from .loader import RowLoader
from .rows import RowEncoder
from .schema import TableLayout

CONNECT_TIMEOUT_S = 10
#: (topic, partition, offset) of a SinkRecord tuple, by a C getter
_ORIGIN = itemgetter(0, 1, 2)
STAGING_BUFFERS = "64MB"


def configure(values: dict[str, Any], runtime: RuntimeConfig) -> Adapter:
    """The ``[postgres]`` table as a :class:`PostgresConfig` and a factory of its sink. The
    connector's name owns its exactly-once offsets; what the sink decodes itself (a value the
    runtime left undecoded) follows the runtime's ``value_format``; the sink creates the tables of
    the runtime's topics when it opens."""
    config = PostgresConfig.from_mapping({"connector": runtime.name, "value_format": runtime.value_format, **values})
    check_one_target_per_topic(runtime.topics, config.table_name, "table", "table")
    return Adapter(config, lambda: PostgresSink(config, runtime.topics))


class PostgresSink(Sink):
    """Writes batches to PostgreSQL, idempotently (see the module doc)."""

    kind = "postgres"
    #: the runtime overlaps a write with polling the next batch: the server parses, indexes and
    #: syncs one batch while this process decodes and encodes the next
    write_in_background = True

    def __init__(self, config: PostgresConfig, topics: Sequence[str] = ()) -> None:
        self.config = config
        #: the topics the connector reads: their tables are created (or checked) by open()
        self.topics = tuple(topics)
        self.layout = TableLayout(config)
        self.encoder = RowEncoder(config)
        self.server = describe_server(config.dsn)
        self._conn: psycopg.Connection[Any] | None = None
        self._tables: dict[str, str] = {}
        self._created: set[str] = set()
        self._key_indexed: set[str] = set()
        # an offset id can only conflict with the same record written again: nothing to report
        self.loader = RowLoader(
            self.layout, self.server, report_duplicates=config.insert_mode == "insert" and config.key_mode != "offset"
        )
        # jsonb mode with offset or key ids needs no decoded value: a JSON object's own bytes are
        # stored, and PostgreSQL parses them anyway. The runtime then skips decoding, and a batch
        # the server refuses is decoded here and written again (_load), so bad JSON, a raw value
        # ("auto") and the errors' classes are what decoding first would give.
        self.decode_values = config.mode != "jsonb" or config.key_mode == "fields"
        # ids (offset ids too: a record can come twice) are compacted by the runtime, so a batch
        # holds one record per id: what upsert needs (one row per id in a statement)
        self._trust_json = not self.decode_values and config.value_format in ("json", "auto")
        # prepare() encodes the next batch while a write runs: an encoder of its own (the write
        # may re-encode with trust_json off), and what it made for which records
        self._ahead = RowEncoder(config)
        self._prepared: tuple[Sequence[SinkRecord], list[TopicGroup], dict[int, DataError]] | None = None
        if config.key_mode == "offset":  # what identity() returns, with no Python call per record
            self.identity = _ORIGIN  # type: ignore[method-assign,assignment]

    # -- the contract ------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect, and create the tables of :attr:`topics` (or check the primary key of those
        that exist): a table the connector cannot create or that is keyed otherwise fails at
        start-up, and the first batch does not wait for DDL. A write creates any other table it
        needs, and creates them again after the connection was lost."""
        conn = self._connection()
        try:
            for topic in self.topics:
                self._create_table(conn, self._table(topic))
        except psycopg.Error as e:
            raise self._translate(e) from e

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

    def prepare(self, records: list[SinkRecord]) -> None:
        failed: dict[int, DataError] = {}
        groups = group_records(records)
        for group in groups:
            group.encode(records, self._ahead, failed, self._trust_json, self._streams(group))
        self._prepared = (records, groups, failed)

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared[0] is records:
            groups, failed = prepared[1], dict(prepared[2])
        else:
            failed = {}
            groups = group_records(records)
            for group in groups:
                group.encode(records, self.encoder, failed, self._trust_json, self._streams(group))
        conn = self._connection()
        try:
            self._create_tables(conn, groups)
            if self._write_direct(conn, records, groups, failed, offsets):
                return WriteResult(failed)
            for group in groups:  # COPY data goes only straight into a table: rows for the rest
                if group.stream is not None:
                    group.encode(records, self.encoder, failed, self._trust_json)
            self.loader.staging_dirty = False
            with conn.transaction(), conn.cursor() as cur:
                for group in groups:
                    if group.delete_keys:
                        cur.execute(self.layout.delete_keys(self._table(group.topic)), (group.delete_keys,))
                    if group.rows:
                        self._load(cur, self._table(group.topic), records, group, failed)
                self._store_offsets(cur, records, failed, offsets)
        except psycopg.Error as e:
            raise self._translate(e) from e
        return WriteResult(failed)

    def _write_direct(self, conn: psycopg.Connection[Any], records: Sequence[SinkRecord], groups: list[TopicGroup],
                      failed: dict[int, DataError], offsets: Mapping[TopicPartition, int]) -> bool:  # fmt: skip
        """The common case in one transaction with no savepoint: every group's rows COPYed straight
        into its table (trusted JSON, no tombstones, direct COPY allowed), then the offsets. True
        when written; False when it does not apply, or when the server refused a row — then the
        transaction was rolled back, nothing is written, and the caller writes the batch the usual
        way, which finds the refused records (a savepoint per step costs round trips, and a
        subtransaction, on every batch)."""
        tables = [self._table(group.topic) for group in groups]
        for group, table in zip(groups, tables, strict=True):
            rows = group.rows or group.stream is not None
            if not (group.trusted and rows and not group.delete_keys and self.loader.can_copy_direct(table)):
                return False
        try:
            with conn.transaction(), conn.cursor() as cur:
                for group, table in zip(groups, tables, strict=True):
                    if group.stream is not None:
                        self.loader.copy_direct_data(cur, table, group.stream)
                    else:
                        self.loader.copy_direct(cur, table, group.rows)
                self._store_offsets(cur, records, failed, offsets)
        except psycopg.Error as e:
            if not is_data_error(e):
                raise
            for table in tables:
                self.loader.refused_direct(table)
            return False
        return True

    def _streams(self, group: TopicGroup) -> bool:
        """Whether ``group`` is encoded as COPY data when it is plain (its rows likely go straight
        into its table: no tombstones, and direct COPYs allowed there now)."""
        return not group.delete_keys and self.loader.can_copy_direct(self._table(group.topic))

    def _store_offsets(self, cur: psycopg.Cursor[Any], records: Sequence[SinkRecord], failed: dict[int, DataError],
                       offsets: Mapping[TopicPartition, int]) -> None:  # fmt: skip
        """Exactly-once: upsert the batch's next offsets (never past a failed record)."""
        if self.config.exactly_once and offsets:
            tps = list(_offsets_before_failures(records, failed, offsets).items())
            cur.execute(
                self.layout.store_offsets(),
                (self.config.connector, [tp.topic for tp, _ in tps], [tp.partition for tp, _ in tps],
                 [o for _, o in tps]),
            )  # fmt: skip

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

    # -- the database ------------------------------------------------------------------------------

    def _table(self, topic: str) -> str:
        table = self._tables.get(topic)
        if table is None:
            table = self._tables[topic] = self.config.table_name(topic)
        return table

    def _load(self, cur: psycopg.Cursor[Any], table: str, records: Sequence[SinkRecord], group: TopicGroup,
              failed: dict[int, DataError]) -> None:  # fmt: skip
        """Write a group's rows. Rows with JSON only PostgreSQL has checked go first under a
        savepoint of their own, refused as a whole on any data error; then the records are decoded
        and encoded again, and written as any others (bad records found and dead-lettered)."""
        if group.trusted:
            try:
                with cur.connection.transaction():
                    self.loader.load(cur, table, group.rows, group.indexes, failed, strict=True)
                return
            except psycopg.Error as e:
                if not is_data_error(e):
                    raise
            for i in group.live:
                failed.pop(i, None)
            group.encode(records, self.encoder, failed, trust=False)
            if not group.rows:
                return
        self.loader.load(cur, table, group.rows, group.indexes, failed)

    def _create_tables(self, conn: psycopg.Connection[Any], groups: list[TopicGroup]) -> None:
        """Create missing tables (and the key index tombstones need) in their own transactions:
        a concurrent creation by another connector must not fail the data transaction."""
        for group in groups:
            table = self._table(group.topic)
            self._create_table(conn, table)
            if group.delete_keys and table not in self._key_indexed:
                index = self.layout.key_index_name(table)
                statement = self.layout.key_index(table)
                if index is not None and statement is not None and not self._exists(conn, index):
                    self._ddl(conn, statement)
                self._key_indexed.add(table)

    def _create_table(self, conn: psycopg.Connection[Any], table: str) -> None:
        """Create ``table`` when missing, else check its primary key (once; again after the
        connection was lost)."""
        if table not in self._created:
            if not self._exists(conn, table):
                self._ddl(conn, self.layout.create_table(table))
            self._check_primary_key(conn, table)
            self._created.add(table)

    def _exists(self, conn: psycopg.Connection[Any], name: str) -> bool:
        """Whether table or index ``name`` exists in the configured schema (see
        :meth:`~logsvc_connect.postgres.schema.TableLayout.relation_exists`)."""
        row = conn.execute(self.layout.relation_exists(), (self.config.schema, name)).fetchone()
        return bool(row and row[0])

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
            if self.config.exactly_once and not self._exists(conn, self.config.offsets_table):
                self._ddl(conn, self.layout.create_offsets())
            conn.execute(self.layout.create_staging())
            self.loader.create_isolate(conn)
        except psycopg.Error as e:
            conn.close()
            raise self._translate(e) from e
        self._conn = conn
        return conn

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
