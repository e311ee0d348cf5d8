"""Records PostgreSQL cannot take fail alone as data errors while the rest of the batch is
written (columns mode conversions, NUL in text, timestamps out of range, constraints only the
server checks); hostile topic names, field names and keys are stored as data, never run as SQL."""

from __future__ import annotations

from typing import Any

import msgpack
import psycopg
import pytest

from logsvc_connect.sink import SinkRecord
from tests.connectors.postgres_sink.conftest import BASE_MS, TOPIC, MakeSink, query, record, table_rows, tables, write

# -- columns mode and data errors ------------------------------------------------------------------


COLUMNS = {"symbol": "text", "price": "numeric(10,2)", "qty": "int", "active": "bool", "placed": "date"}


def test_columns_mode_converts_fields_and_fails_only_the_bad_records(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink mapping fields to typed columns, keyed by symbol
    sink = make_sink(mode="columns", columns=COLUMNS, key_mode="fields", key_fields=["symbol"])
    good = {"symbol": "ACME", "price": "12.5", "qty": 3.0, "active": True, "placed": "2024-05-01", "extra": [1]}

    # When a batch holds good records, one whose qty is not an integer (seen in Python) and one
    # whose date only the server can refuse
    failed = write(
        sink,
        [
            record(0, good),
            record(1, {**good, "symbol": "BAD1", "qty": "ten"}),
            record(2, {"symbol": "PART", "qty": 7}),
            record(3, {**good, "symbol": "BAD2", "placed": "2024-13-45"}),
            record(4, {**good, "symbol": "ZED", "price": 99}),
        ],
    )

    # Then exactly the two bad records failed, each with its reason, and the others are rows
    assert sorted(failed) == [1, 3]
    assert failed[1].error_class == "InvalidValue" and "qty" in str(failed[1])
    assert failed[3].error_class == "DatetimeFieldOverflow"
    rows = query(dsn, "SELECT symbol, price::text, qty, active, placed::text FROM orders ORDER BY symbol")
    assert rows == [
        ("ACME", "12.50", 3, True, "2024-05-01"),
        ("PART", None, 7, None, None),
        ("ZED", "99.00", 3, True, "2024-05-01"),
    ]


@pytest.mark.parametrize(
    ("options", "value"),
    [
        ({}, {"note": "a\u0000b"}),
        ({"key_mode": "fields", "key_fields": ["id"]}, {"id": "a\u0000b"}),
        ({"mode": "columns", "columns": {"note": "text"}}, {"note": "a\u0000b"}),
        ({}, msgpack.packb({"note": "a\u0000b"})),
    ],
    ids=["jsonb", "key-field", "column", "msgpack"],
)
def test_text_with_nul_is_a_data_error_for_that_record(
    make_sink: MakeSink, dsn: str, options: dict[str, Any], value: Any
) -> None:
    # Given a sink
    sink = make_sink(**options)

    # When a value holds NUL in text, next to a good record
    failed = write(sink, [record(0, value, "k"), record(1, {"note": "fine", "id": "x"}, "k2")])

    # Then that record fails and the other is written
    assert list(failed) == [0]
    assert "NUL" in str(failed[0])
    assert query(dsn, 'SELECT "offset" FROM orders') == [(1,)]


def test_a_timestamp_postgresql_cannot_hold_is_a_data_error_for_that_record(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink, and records timestamped at the edges of timestamptz and beyond
    sink = make_sink()
    first_ms, end_ms = -210_866_803_200_000, 9_224_318_016_000_000
    batch = [
        record(i, {"n": i})._replace(timestamp_ms=ts) for i, ts in enumerate([first_ms, end_ms - 1, end_ms, 2**62])
    ]

    # When they are written
    failed = write(sink, batch)

    # Then the two out of range fail alone and the edges are stored
    assert {i: e.error_class for i, e in failed.items()} == {2: "TimestampOutOfRange", 3: "TimestampOutOfRange"}
    assert query(dsn, 'SELECT "offset", "timestamp"::text FROM orders ORDER BY 1') == [
        (0, "4714-11-24 00:00:00+00 BC"), (1, "294276-12-31 23:59:59.999+00"),
    ]  # fmt: skip


def test_a_record_only_the_server_refuses_fails_alone(make_sink: MakeSink, dsn: str) -> None:
    # Given a table whose owner added a CHECK constraint
    sink = make_sink()
    assert write(sink, [record(0, {"qty": 1})]) == {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE orders ADD CONSTRAINT qty_positive CHECK ((value->>'qty')::int >= 0)")

    # When a batch of 100 holds two records violating it and one with a lone surrogate
    batch = [record(i, {"qty": -1 if i in (17, 80) else i}) for i in range(1, 101)]
    batch[50] = SinkRecord(TOPIC, 0, 51, BASE_MS, None, b'{"qty": 1, "s": "\\ud800"}', None, {"qty": 1, "s": "\ud800"})
    failed = write(sink, batch)

    # Then exactly those records fail, with the server's reason, and the other 97 are written
    assert sorted(failed) == [16, 50, 79]
    assert failed[16].error_class == "CheckViolation"
    assert query(dsn, "SELECT count(*) FROM orders") == [(98,)]


# -- hostile names -----------------------------------------------------------------------------------


HOSTILE_TOPICS = ['x"; DROP TABLE victim; --', "Mixed.Case", "it's", 'a"b']


def test_hostile_topic_names_field_names_and_keys_are_only_data(make_sink: MakeSink, dsn: str) -> None:
    # Given a table the sink must never touch
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE victim (id int)")
        conn.execute("INSERT INTO victim VALUES (1)")
    # ... and a sink with hostile column names, and one keyed by the record key
    fields = {'q"uote': "text", "; DROP TABLE victim; --": "text", "Upper": "int"}
    columns_sink = make_sink(mode="columns", columns=fields, table="c_{topic}")
    key_sink = make_sink(key_mode="key")

    # When records of hostile topics, with hostile fields and keys, are written
    value = {'q"uote': "'; DROP TABLE victim; --", "; DROP TABLE victim; --": '"', "Upper": 1}
    hostile_key = '{"$ne": null}'
    assert write(columns_sink, [record(i, value, hostile_key, topic=t) for i, t in enumerate(HOSTILE_TOPICS)]) == {}
    assert write(key_sink, [record(0, value, hostile_key, topic=t) for t in HOSTILE_TOPICS]) == {}

    # Then the names are tables and columns, the values and keys are stored as data
    names = [t.replace(".", "_").replace("-", "_") for t in HOSTILE_TOPICS]
    assert tables(dsn) == {"victim", *names, *(f"c_{name}" for name in names)}
    assert query(dsn, "SELECT * FROM victim") == [(1,)]
    row = table_rows(dsn, 'c_x"; DROP TABLE victim; __', "key", 'q"uote', "; DROP TABLE victim; --", "Upper")
    assert row == [(hostile_key.encode(), "'; DROP TABLE victim; --", '"', 1)]
    assert table_rows(dsn, "Mixed_Case", "key", "value") == [(hostile_key.encode(), value)]
