"""The PostgreSQL sink against a real cluster (a fresh database per test): tables, rows, ids and
insert modes, tombstones, columns mode, poison records, hostile names, idempotence, exactly-once
offsets and a database outage. Plus the value decoding every adapter shares."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import msgpack
import psycopg
import pytest
from psycopg import sql

from logsvc_client.errors import InvalidConfig
from logsvc_client.records import TopicPartition
from logsvc_connect.postgres import PostgresSink
from logsvc_connect.postgres_config import PostgresConfig
from logsvc_connect.sink import DataError, SinkRecord, TransientSinkError
from logsvc_connect.values import decode_value
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
    return sink.write(records, {}).failed


@pytest.fixture
def dsn(postgres: PostgresCluster) -> str:
    return postgres.fresh_database()


@pytest.fixture
def make_sink(dsn: str) -> Iterator[MakeSink]:
    """Opened sinks writing to this test's database (closed at the end)."""
    sinks: list[PostgresSink] = []

    def make(**config: Any) -> PostgresSink:
        sink = PostgresSink(PostgresConfig.from_mapping({"dsn": dsn, **config}))
        sink.open()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


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


# -- tables and rows ---------------------------------------------------------------------------------


def test_the_table_is_created_from_the_template_with_dots_and_dashes_replaced(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink whose table template prefixes the topic
    sink = make_sink(table="orders_{topic}")

    # When it writes a record of a topic with "." and "-" in its name
    assert write(sink, [record(0, {"id": 1}, topic="shop.eu-1")]) == {}

    # Then the table exists under the substituted name, keyed by (topic, partition, offset)
    assert "orders_shop_eu_1" in tables(dsn)
    primary_key = query(
        dsn,
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = 'orders_shop_eu_1'::regclass AND i.indisprimary ORDER BY a.attnum",
    )
    assert [name for (name,) in primary_key] == ["topic", "partition", "offset"]


def test_jsonb_append_stores_each_record_with_its_metadata(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink in the default mode (jsonb, offset ids)
    sink = make_sink()
    packed = msgpack.packb({"id": 3, "blob": b"\x00\xff"})
    records = [
        record(
            0, {"id": 1, "text": "caf\u00e9 \\u0000 is not NUL"}, "k1", headers=(("trace", b"abc"), ("bin", b"\xff"))
        ),
        record(1, b"plain bytes, not JSON", "k2", partition=1),
        record(2, packed, None, partition=1),
    ]

    # When it writes JSON, raw and msgpack values
    assert write(sink, records) == {}

    # Then each record is one row: JSON and msgpack maps in value, raw bytes in value_bytes
    rows = table_rows(dsn, TOPIC, "topic", "partition", "offset", "key", "value", "value_bytes", "timestamp", "headers")
    assert rows == [
        (
            TOPIC, 0, 0, b"k1", {"id": 1, "text": "caf\u00e9 \\u0000 is not NUL"}, None,
            datetime.fromtimestamp(BASE_MS / 1000, UTC),
            [{"name": "trace", "value": "abc"}, {"name": "bin", "base64": "/w=="}],
        ),
        (TOPIC, 1, 1, b"k2", None, b"plain bytes, not JSON", datetime.fromtimestamp((BASE_MS + 1) / 1000, UTC), None),
        (TOPIC, 1, 2, None, {"id": 3, "blob": "AP8="}, None, datetime.fromtimestamp((BASE_MS + 2) / 1000, UTC), None),
    ]  # fmt: skip


def test_records_of_several_topics_go_to_their_own_tables(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink and a batch mixing two topics
    sink = make_sink()
    batch = [record(0, {"n": 0}, topic="a"), record(0, {"n": 1}, topic="b"), record(1, {"n": 2}, topic="a")]

    # When it writes the batch
    assert write(sink, batch) == {}

    # Then each topic has its table with its own records
    assert table_rows(dsn, "a", "offset", "value") == [(0, {"n": 0}), (1, {"n": 2})]
    assert table_rows(dsn, "b", "offset", "value") == [(0, {"n": 1})]


# -- ids and insert modes ----------------------------------------------------------------------------


def test_upsert_by_key_keeps_the_last_value_of_each_key(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink that upserts by record key, and rows already written for k1 and k2
    sink = make_sink(key_mode="key", insert_mode="upsert")
    assert write(sink, [record(0, {"v": 1}, "k1"), record(1, {"v": 1}, "k2")]) == {}

    # When later records of k1 (twice in one batch) and k3 arrive
    assert write(sink, [record(2, {"v": 2}, "k1"), record(3, {"v": 1}, "k3"), record(4, {"v": 3}, "k1")]) == {}

    # Then there is one row per key, holding its last value and the offset it came from
    rows = query(dsn, 'SELECT key, value, "offset" FROM orders ORDER BY key')
    assert rows == [(b"k1", {"v": 3}, 4), (b"k2", {"v": 1}, 1), (b"k3", {"v": 1}, 3)]


def test_insert_ignore_keeps_the_row_already_there(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink in insert-ignore mode by key, and a row for k1
    sink = make_sink(key_mode="key", insert_mode="insert-ignore")
    assert write(sink, [record(0, {"v": "first"}, "k1")]) == {}

    # When another record of k1 and a new key arrive
    failed = write(sink, [record(1, {"v": "second"}, "k1"), record(2, {"v": "new"}, "k2")])

    # Then nothing failed, k1 keeps its first value and k2 is written
    assert failed == {}
    assert query(dsn, "SELECT key, value FROM orders ORDER BY key") == [(b"k1", {"v": "first"}), (b"k2", {"v": "new"})]


def test_insert_of_a_taken_key_fails_that_record_only_and_a_redelivery_does_not(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink in insert mode by key, and a row for k1 from offset 0
    sink = make_sink(key_mode="key", insert_mode="insert")
    first = [record(0, {"v": "first"}, "k1")]
    assert write(sink, first) == {}

    # When a batch brings another record of k1 between two new keys
    failed = write(sink, [record(1, {"v": 1}, "k2"), record(2, {"v": "second"}, "k1"), record(3, {"v": 3}, "k3")])

    # Then only that record fails, as a unique violation; the others are written
    assert list(failed) == [1]
    assert failed[1].error_class == "UniqueViolation"
    assert query(dsn, "SELECT key, value FROM orders ORDER BY key") == [
        (b"k1", {"v": "first"}), (b"k2", {"v": 1}), (b"k3", {"v": 3}),
    ]  # fmt: skip
    # And the first record delivered again is no duplicate of itself
    assert write(sink, first) == {}


def test_records_without_a_key_fail_in_key_mode(make_sink: MakeSink, dsn: str) -> None:
    # Given a sink keyed by record key
    sink = make_sink(key_mode="key")

    # When a batch holds a record without a key
    failed = write(sink, [record(0, {"v": 0}, None), record(1, {"v": 1}, "k")])

    # Then that record is a data error and the other one is written
    assert failed[0].error_class == "MissingKey"
    assert query(dsn, "SELECT key FROM orders") == [(b"k",)]


@pytest.mark.parametrize(
    "options",
    [{"key_mode": "offset"}, {"key_mode": "key"}, {"key_mode": "fields", "key_fields": ["id"]}],
    ids=["offset", "key", "fields"],
)
def test_a_tombstone_deletes_the_rows_of_its_key_in_every_key_mode(
    make_sink: MakeSink, dsn: str, options: dict[str, Any]
) -> None:
    # Given rows for keys k1 and k2
    sink = make_sink(**options)
    assert write(sink, [record(0, {"id": 1}, "k1"), record(1, {"id": 2}, "k2")]) == {}

    # When a batch brings a tombstone for k1, then a new value of k2 followed by its tombstone,
    # then a new value of k1
    batch = [record(2, None, "k1"), record(3, {"id": 22}, "k2"), record(4, None, "k2"), record(5, {"id": 11}, "k1")]
    assert write(sink, batch) == {}

    # Then k2 is gone, and k1 has only the value written after its tombstone
    assert query(dsn, "SELECT key, value FROM orders") == [(b"k1", {"id": 11})]


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


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"key_mode": "key"},
        {"insert_mode": "insert"},
        {"key_mode": "key", "insert_mode": "insert"},
        {"key_mode": "fields", "key_fields": ["id"], "insert_mode": "insert-ignore"},
        {"mode": "columns", "columns": {"id": "bigint", "v": "jsonb"}, "key_mode": "fields", "key_fields": ["id"]},
    ],
    ids=["offset-upsert", "key-upsert", "offset-insert", "key-insert", "fields-insert-ignore", "columns"],
)
def test_writing_the_same_batch_twice_leaves_the_same_rows(
    make_sink: MakeSink, dsn: str, options: dict[str, Any]
) -> None:
    # Given a batch with updates, a tombstone and a poison record
    sink = make_sink(**options)
    batch = [record(i, {"id": i % 7, "v": {"n": i}}, f"k{i % 5}") for i in range(40)]
    batch[10] = record(10, None, "k3")
    batch[20] = record(20, {"id": 99, "v": "\u0000"}, "poison")

    # When it is written twice
    first = write(sink, batch)
    snapshot = query(dsn, 'SELECT * FROM orders ORDER BY "offset"')
    second = write(sink, batch)

    # Then the table is the same after both, and the same records failed each time
    assert query(dsn, 'SELECT * FROM orders ORDER BY "offset"') == snapshot
    assert snapshot
    assert sorted(first) == sorted(second)
    assert first[20].error_class == "NulInText"


# -- exactly once ------------------------------------------------------------------------------------


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


# -- the database failing ----------------------------------------------------------------------------

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


def test_a_table_keyed_another_way_is_a_configuration_error(make_sink: MakeSink) -> None:
    # Given a table written with offset ids
    assert write(make_sink(), [record(0, {"n": 0}, "k")]) == {}

    # When a sink keyed by record key writes to it, Then it is told to fix its configuration
    with pytest.raises(InvalidConfig, match=r"primary key \(topic, partition, offset\)") as raised:
        write(make_sink(key_mode="key"), [record(1, {"n": 1}, "k")])
    assert raised.value.details["key"] == "key_mode"


def test_a_table_without_the_sinks_columns_is_a_configuration_error(make_sink: MakeSink, dsn: str) -> None:
    # Given an existing table "orders" keyed right but lacking the sink's other columns
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            'CREATE TABLE orders (topic text, partition int, "offset" bigint, PRIMARY KEY (topic, partition, "offset"))'
        )

    # When the sink writes to it, Then it is told to fix its configuration, not to retry
    with pytest.raises(InvalidConfig, match='column "key" of relation "orders" does not exist'):
        write(make_sink(), [record(0, {"n": 0})])


# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"dsn": "host=x", "tabel": "t"}, "tabel"),  # and the message names it: "unknown … option 'tabel'"
        ({}, "dsn"),
        ({"dsn": "host=x", "mode": "columns"}, "columns"),
        ({"dsn": "host=x", "mode": "columns", "columns": {"a": "text; DROP TABLE x"}}, "columns"),
        ({"dsn": "host=x", "mode": "columns", "columns": {"offset": "int"}}, "columns"),
        ({"dsn": "host=x", "key_mode": "fields"}, "key_fields"),
        ({"dsn": "host=x", "exactly_once": True}, "connector"),
        ({"dsn": "host=x", "insert_mode": "merge"}, "insert_mode"),
        ({"dsn": "host=x", "table": "{topic}_{partition}"}, "table"),
        ({"dsn": "host=x", "schema": "s" * 64}, "schema"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_key(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidConfig) as raised:
        PostgresConfig.from_mapping(settings)
    assert raised.value.details["key"] == named


def test_configuration_accepts_type_aliases_and_strings_from_the_environment() -> None:
    config = PostgresConfig.from_mapping(
        {"dsn": "host=x", "mode": "columns", "columns": '{"p": "DECIMAL(10, 2)", "n": "int8", "t": "varchar(5)"}',
         "key_mode": "fields", "key_fields": "p, n", "exactly_once": "true", "connector": "c"}
    )  # fmt: skip
    assert config.columns == (("p", "numeric(10,2)"), ("n", "bigint"), ("t", "varchar(5)"))
    assert config.key_fields == ("p", "n")
    assert config.exactly_once is True
    assert config.table_name("a" * 100) != config.table_name("a" * 99 + "b")
    assert len(config.table_name("a" * 100)) == 63


# -- value decoding (shared by the adapters) -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "value_format", "doc"),
    [
        (b'{"a": 1}', "auto", {"a": 1}),
        (b' {"a": 1}', "json", {"a": 1}),
        (msgpack.packb({"a": b"\x00"}), "auto", {"a": b"\x00"}),
        (msgpack.packb({"a": 1}), "msgpack", {"a": 1}),
        (b"[1, 2]", "auto", b"[1, 2]"),
        (b"{not json", "auto", b"{not json"),
        (b"\x81\xc1", "auto", b"\x81\xc1"),
        (b'{"a": NaN}', "auto", b'{"a": NaN}'),
        (b'{"a": 1}', "raw", b'{"a": 1}'),
        (None, "json", None),
    ],
)
def test_decode_value_reads_each_format(value: bytes | None, value_format: str, doc: object) -> None:
    assert decode_value(value, value_format) == doc


@pytest.mark.parametrize(
    ("value", "value_format", "error_class"),
    [
        (b"[1, 2]", "json", "InvalidJson"),
        (b"{oops", "json", "InvalidJson"),
        (b'{"a": Infinity}', "json", "InvalidJson"),
        (b'{"a": "\xff"}', "json", "InvalidJson"),
        (msgpack.packb([1]), "msgpack", "InvalidMsgpack"),
        (b"\x81", "msgpack", "InvalidMsgpack"),
        (msgpack.packb({1: 2}), "msgpack", "InvalidMsgpack"),
    ],
)
def test_decode_value_refuses_a_bad_value_in_a_strict_format(value: bytes, value_format: str, error_class: str) -> None:
    with pytest.raises(DataError) as raised:
        decode_value(value, value_format)
    assert raised.value.error_class == error_class
