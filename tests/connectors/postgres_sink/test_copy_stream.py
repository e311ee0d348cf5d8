"""``copy_stream.jsonb_copy``: a plain jsonb batch as binary COPY data, from the C extension and
from the pure-Python fallback alike, stores exactly the rows psycopg's ``write_row`` stores for the
rows ``RowEncoder.rows`` builds from the same records; a batch off that path has none; and the
sink writes a plain batch with it (and with rows again when the direct COPY is refused)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.types.string import BytesBinaryDumper

from logsvc_client.records import TopicPartition
from logsvc_connect.postgres import copy_stream
from logsvc_connect.postgres.config import PostgresConfig
from logsvc_connect.postgres.rows import RowEncoder
from logsvc_connect.postgres.schema import TableLayout
from logsvc_connect.sink import SinkRecord
from tests.connectors.postgres_sink.conftest import MakeSink, query, table_rows

BASE_MS = 1_700_000_000_000
TOPIC = "orders.eu-1"
COLUMNS = ("topic", "partition", "offset", "key", "value", "value_bytes", "timestamp", "headers")
JsonbCopy = Callable[[list[SinkRecord], str, bool], "bytes | None"]


def _native() -> JsonbCopy:
    from logsvc_connect.postgres import _copy

    return _copy.jsonb_copy


def both() -> list[JsonbCopy]:
    """The C and the Python function."""
    return [_native(), copy_stream.jsonb_copy_py]


def plain(seq: int, **changes: object) -> SinkRecord:
    value = b'{"order_id":%d,"price":1.5,"note":"caf\xc3\xa9","n":[1,{"a":null}]}' % seq
    key = None if seq % 4 == 0 else b"k\x00\xff%d" % seq  # no key, and bytes that are not text
    r = SinkRecord(TOPIC, seq % 3, seq * 1000, BASE_MS - 10**12 + seq * 777, key, value, None, None)
    return r._replace(**changes)


def test_the_c_extension_builds_the_copy_data_unless_pure_python_is_forced() -> None:
    assert copy_stream.NATIVE and copy_stream.jsonb_copy is _native()


def test_a_plain_batch_as_copy_data_stores_the_rows_write_row_stores(dsn: str) -> None:
    # Given a plain batch: several partitions, records with and without keys, timestamps before
    # and after 2000, non-ASCII JSON, an offset far past 2**32 and the greatest int4 partition
    records = [plain(i) for i in range(40)] + [plain(41, offset=2**40 + 7, partition=2**31 - 1)]
    config = PostgresConfig.from_mapping({"dsn": dsn})
    enc, layout = RowEncoder(config), TableLayout(config)
    enc.trust_json = True  # as PostgresSink sets it when the runtime leaves values undecoded
    rows = enc.rows(records)
    c, py = (f(records, TOPIC, False) for f in both())

    # When one table gets the rows by write_row and another the COPY data
    assert rows is not None and c is not None and c == py
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.adapters.register_dumper(None, BytesBinaryDumper)  # as the sink does
        for table in ("by_rows", "by_data"):
            conn.execute(layout.create_table(table))
        with conn.cursor() as cur, cur.copy(layout.copy("by_rows")) as copy:
            copy.set_types(layout.copy_types)
            for row in rows:
                copy.write_row(row)
        with conn.cursor() as cur, cur.copy(layout.copy("by_data")) as copy:
            copy.write(c)

    # Then both hold the same rows, every record's
    stored = table_rows(dsn, "by_data", *COLUMNS)
    assert stored == table_rows(dsn, "by_rows", *COLUMNS)
    assert len(stored) == len(records)


@pytest.mark.parametrize(
    ("odd_one", "needs_key"),
    [
        (plain(7, headers=(("trace", b"abc"),)), False),
        (plain(7, value=b'{"text":"\\u0000"}'), False),
        (plain(7, value=b'{"text":"\\\\u0000"}'), False),  # an escaped backslash: rows.py decides
        (plain(7, value=b"raw bytes"), False),
        (plain(7, value=b""), False),
        (plain(7, value=None), False),
        (plain(7, doc={"order_id": 7}), False),
        (plain(7, topic="orders.us"), False),
        (plain(7, partition=2**31), False),
        (plain(7, offset=2**63), False),
        (plain(7, timestamp_ms=-300_000_000_000_000), False),
        (plain(7, key=None), True),
        (plain(7, key="text"), False),
    ],
    ids=["headers", "escaped-nul", "escaped-backslash", "raw", "empty", "tombstone", "decoded", "another-topic",
         "partition-past-int4", "offset-past-int8", "timestamp-out-of-range", "no-key-for-key-ids", "str-key"],
)  # fmt: skip
def test_a_batch_with_one_record_off_the_plain_path_has_no_copy_data(odd_one: SinkRecord, needs_key: bool) -> None:
    records = [plain(i, key=b"k%d" % i) for i in range(1, 6)] + [odd_one]
    assert [f(records, TOPIC, needs_key) for f in both()] == [None, None]


def test_a_topic_that_is_not_ascii_or_no_records_have_no_copy_data() -> None:
    # (a topic's bytes would depend on the client encoding; topic names are ASCII anyway)
    assert [f([plain(i, topic="ördres") for i in range(3)], "ördres", False) for f in both()] == [None, None]
    assert [f([], TOPIC, False) for f in both()] == [None, None]


def test_the_sink_writes_a_plain_batch_as_copy_data_and_again_as_rows_when_refused(
    make_sink: MakeSink, dsn: str
) -> None:
    # Given an append sink that leaves JSON to the server, and a plain batch prepared for it
    sink = make_sink(key_mode="offset", insert_mode="insert", exactly_once=True, connector="c", value_format="json")
    assert not sink.decode_values
    records = [plain(i, topic="orders") for i in range(1, 30)]
    offsets = {TopicPartition("orders", p): 100_000 for p in range(3)}
    sink.prepare(records)
    prepared: Any = sink._prepared
    assert prepared[1][0].stream is not None

    # When it is written, Then every row is there, with the offsets
    assert sink.write(records, offsets).failed == {}
    assert query(dsn, "SELECT count(*) FROM orders") == [(29,)]
    assert query(dsn, "SELECT count(*) FROM logsvc_offsets WHERE connector = 'c'") == [(3,)]

    # When the same records come again with a bad one (the direct COPY is refused: existing ids)
    again = [*records, plain(99, topic="orders", value=b'{"bad": tru}')]
    sink.prepare(again)
    failed = sink.write(again, offsets).failed

    # Then the rows are written the usual way: the bad record fails alone, nothing is doubled
    assert {i: e.error_class for i, e in failed.items()} == {29: "InvalidJson"}
    assert query(dsn, "SELECT count(*) FROM orders") == [(29,)]
