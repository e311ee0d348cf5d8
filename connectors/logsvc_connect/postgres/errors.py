"""psycopg's errors as the sink contract's, decided once, here.

* :func:`is_data_error` — PostgreSQL refused one record's data (class 22 data exceptions, class 23
  constraint violations, an over-long row or index entry, a trigger's ``RAISE``): that record
  becomes a :class:`~logsvc_connect.sink.DataError` (:func:`refused`).
* :func:`is_transient` — the server failed, not the data (connection refused or lost, shutdown,
  timeouts, serialization failures, deadlocks, a read-only standby after a failover):
  :class:`~logsvc_connect.sink.TransientSinkError`, retried by the runtime.
* the rest (:func:`translate`): a table that does not match the configuration, missing privileges
  → :class:`~logsvc_client.errors.InvalidConfig`; anything else → ``InternalError``.

Messages name the server (host, port, database; never the password).
"""

from __future__ import annotations

import psycopg
from psycopg.conninfo import conninfo_to_dict

from logsvc_client.errors import InternalError, InvalidConfig, LogsvcError

from ..errors import DataError, TransientSinkError

#: SQLSTATEs psycopg files under OperationalError that are about one record, not the server
DATA_STATES = frozenset({"54000", "54001", "P0001"})
#: SQLSTATEs outside OperationalError that a retry can cure (25006: a read-only standby after failover)
TRANSIENT_STATES = frozenset({"25006"})


def is_data_error(e: psycopg.Error) -> bool:
    return isinstance(e, psycopg.DataError | psycopg.IntegrityError) or e.sqlstate in DATA_STATES


def is_transient(e: psycopg.Error) -> bool:
    if e.sqlstate in TRANSIENT_STATES:
        return True
    return isinstance(e, psycopg.OperationalError | psycopg.InterfaceError) and not is_data_error(e)


def describe_server(dsn: str) -> str:
    """How messages name the server: PostgreSQL at host:port/dbname."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "PostgreSQL"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    db = params.get("dbname")
    return f"PostgreSQL at {host}:{port}" + (f"/{db}" if db else "")


def refused(server: str, message: str, sqlstate: str | None, table: str) -> DataError:
    """The DataError of a record PostgreSQL refused; its class is the SQLSTATE's name
    (``CheckViolation``, ``InvalidTextRepresentation``, …)."""
    try:
        error_class = psycopg.errors.lookup(sqlstate).__name__ if sqlstate else "DataError"
    except KeyError:
        error_class = "DatabaseError"
    return DataError(f"{server} refused the record: {message}", error_class, sqlstate=sqlstate, table=table)


def translate(e: psycopg.Error, server: str) -> LogsvcError:
    """The project's exception for a psycopg error that is not one record's fault. A missing
    table is transient: it vanished under the sink, and the next write creates it again."""
    message = " ".join(str(e).split()) or type(e).__name__
    if is_transient(e) or isinstance(e, psycopg.errors.UndefinedTable):
        return TransientSinkError(f"{server} is unavailable: {message}", sqlstate=e.sqlstate)
    if isinstance(e, psycopg.ProgrammingError | psycopg.NotSupportedError):
        return InvalidConfig(f"{server} refused the sink's statements: {message}", sqlstate=e.sqlstate)
    return InternalError(f"{server} failed: {message}", sqlstate=e.sqlstate)
