"""Fixtures and helpers of the PostgreSQL sink tests: a fresh database of the real cluster per
test, opened sinks writing to it, records as the runtime hands them over, and queries to read the
tables back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from logsvc_connect.batch import compacted
from logsvc_connect.postgres import PostgresSink
from logsvc_connect.postgres.config import PostgresConfig
from logsvc_connect.sink import DataError, SinkRecord
from logsvc_connect.values import decode_value
from tests.connectors.e2e import opened_sinks
from tests.fixtures.postgres import PostgresCluster

TOPIC = "orders"
BASE_MS = 1_700_000_000_000
MakeSink = Callable[..., PostgresSink]


def record(
    offset: int,
    value: Any,
    key: bytes | str | None = None,
    *,
    partition: int = 0,
    topic: str = TOPIC,
    headers: tuple[tuple[str, bytes], ...] | None = None,
) -> SinkRecord:
    """A record as the runtime hands it over: ``value`` a dict (sent as JSON), bytes, or None."""
    raw = json.dumps(value).encode() if isinstance(value, dict) else value
    key_bytes = key.encode() if isinstance(key, str) else key
    return SinkRecord(topic, partition, offset, BASE_MS + offset, key_bytes, raw, headers, decode_value(raw, "auto"))


def write(sink: PostgresSink, records: list[SinkRecord]) -> dict[int, DataError]:
    """Write ``records`` as the runtime does: compacted first (the last record of each id), the
    failures keyed by the index in ``records``."""
    kept = compacted(records, sink.identity) or list(range(len(records)))
    failed = sink.write([records[i] for i in kept], {}).failed
    return {kept[i]: error for i, error in failed.items()}


@pytest.fixture
def dsn(postgres: PostgresCluster) -> str:
    return postgres.fresh_database()


@pytest.fixture
def make_sink(dsn: str) -> Iterator[MakeSink]:
    """Opened sinks writing to this test's database (closed at the end)."""
    yield from opened_sinks(lambda config: PostgresSink(PostgresConfig.from_mapping({"dsn": dsn, **config})))


def query(dsn: str, statement: str | sql.Composed, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(statement, params or None).fetchall()


def table_rows(dsn: str, table: str, *columns: str) -> list[tuple[Any, ...]]:
    """``columns`` of every row of ``table``, in (topic, partition, offset) order."""
    statement = sql.SQL('SELECT {} FROM {} ORDER BY topic, partition, "offset"').format(
        sql.SQL(", ").join(sql.Identifier(c) for c in columns), sql.Identifier(table)
    )
    return query(dsn, statement)


def tables(dsn: str) -> set[str]:
    return {name for (name,) in query(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
