"""What a batch leaves in PostgreSQL: the table made from the template, one row per record with
its metadata, a table per topic, ids and insert modes, tombstones, and the same batch written
twice leaving the same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest

from tests.connectors.postgres_sink.conftest import BASE_MS, TOPIC, MakeSink, query, record, table_rows, tables, write

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
