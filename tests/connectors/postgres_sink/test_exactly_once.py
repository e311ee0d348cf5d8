"""The exactly-once PostgreSQL sink stores the offsets a batch completes in the transaction of its
rows: both or neither."""

from __future__ import annotations

import psycopg
import pytest

from logsvc_client.records import TopicPartition
from logsvc_connect.sink import TransientSinkError
from tests.connectors.postgres_sink.conftest import TOPIC, MakeSink, query, record


def test_exactly_once_stores_the_offsets_with_the_rows(make_sink: MakeSink, dsn: str) -> None:
    # Given an exactly-once sink
    sink = make_sink(exactly_once=True, connector="orders-pg", insert_mode="insert")
    tp0, tp1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)

    # When two batches are written with the offsets they complete
    sink.write([record(0, {"n": 0}), record(0, {"n": 1}, partition=1)], {tp0: 1, tp1: 1})
    sink.write([record(1, {"n": 2})], {tp0: 2})

    # Then stored_offsets returns the latest next offsets, and only for the partitions asked about
    assert sink.stored_offsets([tp0, tp1, TopicPartition("other", 0)]) == {tp0: 2, tp1: 1}
    assert sink.stored_offsets([tp1]) == {tp1: 1}
    assert query(dsn, "SELECT connector, topic, partition, next_offset FROM logsvc_offsets ORDER BY partition") == [
        ("orders-pg", TOPIC, 0, 2), ("orders-pg", TOPIC, 1, 1),
    ]  # fmt: skip
    # And a sink that is not exactly-once keeps none
    assert make_sink().stored_offsets([tp0]) is None


def test_a_failed_exactly_once_write_leaves_neither_rows_nor_offsets(make_sink: MakeSink, dsn: str) -> None:
    # Given an exactly-once sink with a first batch written
    sink = make_sink(exactly_once=True, connector="c")
    tp = TopicPartition(TOPIC, 0)
    sink.write([record(0, {"n": 0})], {tp: 1})
    # ... and an offsets table whose next update fails the way a serialization conflict does
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION conflict() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = 'serialization_failure'; END$$"
        )
        conn.execute("CREATE TRIGGER conflict BEFORE UPDATE ON logsvc_offsets FOR EACH ROW EXECUTE FUNCTION conflict()")

    # When the next batch is written
    with pytest.raises(TransientSinkError):
        sink.write([record(1, {"n": 1}), record(2, {"n": 2})], {tp: 3})

    # Then neither its rows nor its offsets are stored
    assert query(dsn, 'SELECT "offset" FROM orders') == [(0,)]
    assert sink.stored_offsets([tp]) == {tp: 1}
