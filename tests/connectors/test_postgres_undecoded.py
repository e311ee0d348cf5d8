"""The PostgreSQL sink with values the runtime left undecoded (``doc`` None): in jsonb mode with
offset or key ids it asks for none, stores JSON objects from their bytes and lets PostgreSQL's
parser check them. A batch the server refuses is decoded and written again, so the outcome — bad
JSON dead-lettered as InvalidJson, a raw value stored raw under "auto" — is what decoding first
gives. Against a real PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from logsvc_client.records import TopicPartition
from logsvc_connect.postgres import PostgresSink
from logsvc_connect.postgres.config import PostgresConfig
from logsvc_connect.sink import SinkRecord
from tests.connectors.e2e import PostgresTarget, opened_sinks
from tests.fixtures.postgres import PostgresCluster

MakeSink = Callable[..., PostgresSink]
GOOD = b'{"id": 1, "text": "caf\\u00e9"}'


def undecoded(offset: int, value: bytes | None, key: bytes | None = None) -> SinkRecord:
    """A record as the runtime hands it to a sink that decodes nothing."""
    return SinkRecord("orders", 0, offset, 1_700_000_000_000 + offset, key, value, None, None)


@pytest.fixture
def target(postgres: PostgresCluster) -> PostgresTarget:
    return PostgresTarget(postgres.fresh_database("undecoded"))


@pytest.fixture
def make_sink(target: PostgresTarget) -> Iterator[MakeSink]:
    yield from opened_sinks(lambda config: PostgresSink(PostgresConfig.from_mapping({"dsn": target.dsn, **config})))


@pytest.mark.parametrize(("config", "decodes"), [
    ({}, False),
    ({"key_mode": "key"}, False),
    ({"key_mode": "fields", "key_fields": ["id"]}, True),
    ({"mode": "columns", "columns": {"id": "int"}}, True),
])  # fmt: skip
def test_only_jsonb_sinks_with_offset_or_key_ids_leave_values_undecoded(
    make_sink: MakeSink, config: dict[str, Any], decodes: bool
) -> None:
    assert make_sink(**config).decode_values is decodes


def test_undecoded_json_is_checked_by_postgres_and_bad_records_fail_as_if_decoded(
    make_sink: MakeSink, target: PostgresTarget
) -> None:
    # Given a jsonb sink reading "json", and a batch with four bad values among good ones
    sink = make_sink(value_format="json")
    batch = [
        undecoded(0, GOOD),
        undecoded(1, b'{"id": 2, oops'),
        undecoded(2, b'{"id": NaN}'),
        undecoded(3, b"[1, 2]"),
        undecoded(4, b'{"text": "NUL \\u0000"}'),
        undecoded(5, b'{"id": 6}'),
    ]

    # When it writes the batch
    failed = sink.write(batch, {}).failed

    # Then the bad ones fail with the classes decoding gives, and the good ones are stored as sent
    assert {i: e.error_class for i, e in failed.items()} == {
        1: "InvalidJson", 2: "InvalidJson", 3: "InvalidJson", 4: "NulInText"
    }  # fmt: skip
    assert target.query('SELECT "offset", value FROM orders ORDER BY 1') == [
        (0, {"id": 1, "text": "caf\u00e9"}), (5, {"id": 6})
    ]  # fmt: skip


def test_undecoded_values_that_are_not_json_are_stored_raw_under_auto(
    make_sink: MakeSink, target: PostgresTarget
) -> None:
    # Given a jsonb sink reading "auto", and a value that starts like JSON but is not
    sink = make_sink(value_format="auto")

    # When it writes it between two JSON objects
    failed = sink.write([undecoded(0, GOOD), undecoded(1, b"{not json"), undecoded(2, b'{"id": 3}')], {}).failed

    # Then nothing fails: the JSON goes to value, the other to value_bytes
    assert failed == {}
    assert target.query('SELECT "offset", value, value_bytes FROM orders ORDER BY 1') == [
        (0, {"id": 1, "text": "caf\u00e9"}, None), (1, None, b"{not json"), (2, {"id": 3}, None)
    ]  # fmt: skip


@pytest.mark.parametrize(("value_format", "failed_as", "stored_raw"), [
    ("json", {1: "InvalidJson"}, []),
    ("auto", {}, [(1, b"")]),
])  # fmt: skip
def test_an_empty_value_fails_or_is_stored_raw_like_any_value_that_is_not_json(
    make_sink: MakeSink, target: PostgresTarget, value_format: str, failed_as: dict[int, str], stored_raw: list[Any]
) -> None:
    # Given a jsonb sink, and a batch with an empty value (not a tombstone) between JSON objects
    sink = make_sink(value_format=value_format)
    batch = [undecoded(0, GOOD), undecoded(1, b""), undecoded(2, b'{"id": 3}')]

    # When it prepares and writes the batch, Then the empty value fails alone under "json" and is
    # stored raw under "auto", and the JSON objects are stored
    sink.prepare(batch)
    assert {i: e.error_class for i, e in sink.write(batch, {}).failed.items()} == failed_as
    assert target.query('SELECT "offset" FROM orders WHERE value IS NOT NULL ORDER BY 1') == [(0,), (2,)]
    assert target.query('SELECT "offset", value_bytes FROM orders WHERE value IS NULL') == stored_raw


def test_an_undecoded_upsert_through_staging_keeps_the_good_rows_of_a_refused_batch(
    make_sink: MakeSink, target: PostgresTarget
) -> None:
    # Given a key-upsert sink whose table already holds the keys (so rows go through staging)
    sink = make_sink(key_mode="key", value_format="json")
    assert sink.write([undecoded(0, b'{"v": 0}', b"a"), undecoded(1, b'{"v": 0}', b"b")], {}).failed == {}

    # When a batch updating both keys carries one bad value
    batch = [undecoded(2, b'{"v": 1}', b"a"), undecoded(3, b'{"v": oops', b"b"), undecoded(4, b'{"v": 1}', b"c")]
    failed = sink.write(batch, {}).failed

    # Then the bad one fails alone; the others are upserted
    assert {i: e.error_class for i, e in failed.items()} == {1: "InvalidJson"}
    assert target.query("SELECT key, value FROM orders ORDER BY 1") == [
        (b"a", {"v": 1}), (b"b", {"v": 0}), (b"c", {"v": 1})
    ]  # fmt: skip


def test_a_refused_row_in_a_one_transaction_batch_leaves_only_the_good_rows_and_their_offsets(
    make_sink: MakeSink, target: PostgresTarget
) -> None:
    # Given an exactly-once append sink whose first batch went straight into the table
    sink = make_sink(value_format="json", exactly_once=True, connector="billing")
    orders = TopicPartition("orders", 0)
    assert sink.write([undecoded(0, GOOD)], {orders: 1}).failed == {}

    # When the next batch has a value the server refuses and one whose row is there already
    batch = [undecoded(0, GOOD), undecoded(1, b'{"id": 2, oops'), undecoded(2, b'{"id": 3}')]
    failed = sink.write(batch, {orders: 3}).failed

    # Then the bad one fails alone, the row already there stays once, the good one is stored, and
    # the offsets stop before the failed record (the runtime stores them on once it is dead-lettered)
    assert {i: e.error_class for i, e in failed.items()} == {1: "InvalidJson"}
    assert target.query('SELECT "offset" FROM orders ORDER BY 1') == [(0,), (2,)]
    assert sink.stored_offsets([orders]) == {orders: 1}


def test_a_batch_prepared_ahead_is_written_as_if_it_was_not_and_a_stale_one_is_ignored(
    make_sink: MakeSink, target: PostgresTarget
) -> None:
    # Given a sink that prepared a batch, and batches with bad records
    sink = make_sink(value_format="json")
    first = [undecoded(0, GOOD), undecoded(1, b'{"id": 2, oops')]
    second = [undecoded(2, b'{"id": 3}'), undecoded(3, b'{"text": "NUL \\u0000"}')]
    third = [undecoded(4, b"{}")]
    sink.prepare(first)

    # When it writes that batch, then prepares the second but writes the third before it
    failed_first = sink.write(first, {}).failed
    sink.prepare(second)
    failed_third = sink.write(third, {}).failed
    failed_second = sink.write(second, {}).failed

    # Then each batch's good records are stored and its bad ones fail, as without preparing
    assert {i: e.error_class for i, e in failed_first.items()} == {1: "InvalidJson"}
    assert failed_third == {}
    assert {i: e.error_class for i, e in failed_second.items()} == {1: "NulInText"}
    assert target.query('SELECT "offset" FROM orders ORDER BY 1') == [(0,), (2,), (4,)]
