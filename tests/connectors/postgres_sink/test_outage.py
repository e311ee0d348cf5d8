"""The PostgreSQL sink with its database going away: a stopped or unreachable server is a
transient error naming it, and the next write after a restart succeeds."""

from __future__ import annotations

import time

import pytest

from logsvc_client.records import TopicPartition
from logsvc_connect.postgres import PostgresSink
from logsvc_connect.postgres.config import PostgresConfig
from logsvc_connect.sink import TransientSinkError
from tests.connectors.postgres_sink.conftest import TOPIC, MakeSink, query, record
from tests.fixtures.postgres import PostgresCluster

OUTAGE_S = 10


def test_a_stopped_database_is_a_transient_error_and_the_next_write_after_restart_succeeds(
    postgres: PostgresCluster, make_sink: MakeSink, dsn: str
) -> None:
    # Given a sink mid-stream
    sink = make_sink(exactly_once=True, connector="c")
    tp = TopicPartition(TOPIC, 0)
    sink.write([record(0, {"n": 0})], {tp: 1})

    # When the database stops for 10 s, every write meanwhile fails as a transient error naming it
    postgres.stop()
    errors = []
    try:
        until = time.monotonic() + OUTAGE_S
        while time.monotonic() < until:
            with pytest.raises(TransientSinkError) as raised:
                sink.write([record(1, {"n": 1})], {tp: 2})
            errors.append(str(raised.value))
            time.sleep(1)
    finally:
        postgres.start()
    assert len(errors) >= OUTAGE_S // 2
    assert all(f"127.0.0.1:{postgres.port}" in e for e in errors)

    # Then once it is back, the next write succeeds on a new connection and nothing failed is left
    assert sink.write([record(1, {"n": 1}), record(2, {"n": 2})], {tp: 3}).failed == {}
    assert query(dsn, 'SELECT "offset" FROM orders ORDER BY "offset"') == [(0,), (1,), (2,)]
    assert sink.stored_offsets([tp]) == {tp: 3}


def test_opening_an_unreachable_database_is_a_transient_error() -> None:
    # Given a sink pointed at a port nobody listens on
    sink = PostgresSink(PostgresConfig.from_mapping({"dsn": "host=127.0.0.1 port=1 user=postgres connect_timeout=2"}))

    # When it opens, Then the error is transient and names the server
    with pytest.raises(TransientSinkError, match=r"127\.0\.0\.1:1\b"):
        sink.open()
