"""Rows into a table, inside the PostgreSQL sink's transaction, and the rows refused isolated.

Rows take the fast path when they can: a binary COPY straight into the table (jsonb mode, when the
table's last direct attempts met no existing ids). Otherwise, and whenever that COPY is refused,
they are COPYed into the session's temporary staging table and moved by one
``INSERT … SELECT … ON CONFLICT``. After a direct COPY met an existing id (an update, a
redelivery) or a bad record, the table's next :data:`DIRECT_BACKOFF_BATCHES` batches go through
staging.

A data error does not fail the others' rows: rows the INSERT refuses (a bad cast, a constraint)
are isolated on the server in one round trip (``pg_temp.logsvc_isolate``, a subtransaction per
row); rows the COPY refuses, or all of them when the session has no PL/pgSQL for that function, by
bisecting. Each refused record becomes a :class:`~logsvc_connect.sink.DataError` in ``failed``.
With ``insert_mode = "insert"`` a row whose id belongs to *another* record's row is one too.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

from ..errors import DataError
from .errors import is_data_error, refused
from .rows import Row
from .schema import TableLayout

log = logging.getLogger("logsvc.connect.postgres")

#: after a direct COPY into a table met an existing id, stage this many batches before trying again
DIRECT_BACKOFF_BATCHES = 16


class RowLoader:
    """Writes rows into tables of one sink's layout, the bad ones isolated (see the module doc)."""

    def __init__(self, layout: TableLayout, server: str, *, report_duplicates: bool) -> None:
        self.layout = layout
        #: how messages name the server
        self.server = server
        #: an id that belongs to another record's row is that record's DataError ("insert")
        self.report_duplicates = report_duplicates
        #: the session has ``pg_temp.logsvc_isolate`` (:meth:`create_isolate`); else bisect
        self.can_isolate = False
        #: staging may hold rows of the current transaction (set False when one begins)
        self.staging_dirty = False
        self._skip_direct: dict[str, int] = {}

    def create_isolate(self, conn: psycopg.Connection[Any]) -> None:
        """Create the isolation function; without PL/pgSQL, refused rows are found by bisecting."""
        try:
            with conn.transaction():
                conn.execute(self.layout.create_isolate())
        except psycopg.ProgrammingError as e:
            log.warning("%s: refused records will be isolated by bisecting (%s)", self.server, e)
            self.can_isolate = False
            return
        self.can_isolate = True

    def can_copy_direct(self, table: str) -> bool:
        """Whether rows go straight into ``table`` now (jsonb mode, and the table's last direct
        attempts met no existing ids)."""
        return self.layout.direct and not self._skip_direct.get(table, 0)

    def copy_direct(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row]) -> None:
        """COPY ``rows`` straight into ``table`` with no savepoint of its own: a row refused fails
        the caller's transaction, which then calls :meth:`refused_direct` and writes again."""
        self._copy(cur, self.layout.copy(table), rows)

    def copy_direct_data(self, cur: psycopg.Cursor[Any], table: str, data: bytes) -> None:
        """:meth:`copy_direct` of rows given as their binary COPY data, signature to trailer
        (:mod:`~logsvc_connect.postgres.copy_stream`)."""
        with cur.copy(self.layout.copy(table)) as copy:
            copy.write(data)

    def refused_direct(self, table: str) -> None:
        """A :meth:`copy_direct` into ``table`` was refused: the batch written again and the next
        :data:`DIRECT_BACKOFF_BATCHES` go through staging, as after a refused direct :meth:`load`."""
        self._skip_direct[table] = DIRECT_BACKOFF_BATCHES + 1

    def load(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row], indexes: list[int],
             failed: dict[int, DataError], strict: bool = False) -> None:  # fmt: skip
        """COPY ``rows`` (of the records ``indexes``) straight into the table when they can be
        (jsonb mode, and the last direct attempts met no existing ids), else through staging.
        ``strict``: a data error propagates instead of being isolated."""
        if self.layout.direct:
            skip = self._skip_direct.get(table, 0)
            if skip:
                self._skip_direct[table] = skip - 1
            else:
                try:
                    with cur.connection.transaction():
                        self._copy(cur, self.layout.copy(table), rows)
                    return
                except psycopg.Error as e:
                    if not is_data_error(e):
                        raise
                # an id already there (an update, a redelivery) or a bad record: staging sorts it
                # out; stay on that path for a while
                self._skip_direct[table] = DIRECT_BACKOFF_BATCHES
        self._stage(cur, table, rows, indexes, failed, strict)

    def _stage(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row], indexes: list[int],
               failed: dict[int, DataError], strict: bool = False) -> None:  # fmt: skip
        """COPY ``rows`` into staging and INSERT them into ``table``, each under a savepoint.
        Rows the INSERT refuses are isolated on the server (one round trip); rows the COPY refuses
        by bisecting. Either way the good rows are written (``strict``: a data error propagates)."""
        try:
            with cur.connection.transaction():
                if self.staging_dirty:
                    cur.execute(self.layout.truncate_staging())
                self._copy(cur, self.layout.copy(), rows)
                try:
                    with cur.connection.transaction():
                        cur.execute(self.layout.insert(table))
                        if self.report_duplicates and cur.rowcount < len(rows):
                            self._report_duplicates(cur, table, rows, indexes, failed)
                except psycopg.Error as e:
                    if strict or not (is_data_error(e) and self.can_isolate):
                        raise
                    self._isolate(cur, table, rows, indexes, failed)
            self.staging_dirty = True
        except psycopg.Error as e:
            if strict or not is_data_error(e):
                raise
            self._bisect(cur, table, rows, indexes, failed, e)

    def _isolate(self, cur: psycopg.Cursor[Any], table: str, rows: list[Row], indexes: list[int],
                 failed: dict[int, DataError]) -> None:  # fmt: skip
        """Insert the staged rows one by one on the server; the refused ones fail alone."""
        statement = self.layout.insert(table, one_row=True).as_string(cur.connection)
        rejects = cur.execute("SELECT * FROM pg_temp.logsvc_isolate(%s)", (statement,)).fetchall()
        if self.report_duplicates:
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
