"""``RowEncoder.rows``: a batch of plain JSON objects (jsonb mode, values left undecoded) is
encoded column by column, into exactly the rows the record-by-record encoder builds; any record
off that path sends the whole batch back to the record-by-record encoder."""

from __future__ import annotations

import pytest

from logsvc_connect.postgres.config import PostgresConfig
from logsvc_connect.postgres.rows import RowEncoder
from logsvc_connect.sink import SinkRecord

BASE_MS = 1_700_000_000_000


def encoder(**options: object) -> RowEncoder:
    enc = RowEncoder(PostgresConfig.from_mapping({"dsn": "postgresql:///unused", **options}))
    enc.trust_json = True  # as PostgresSink sets it when the runtime leaves values undecoded
    return enc


def plain(offset: int, **changes: object) -> SinkRecord:
    value = b'{"order_id":%d,"price":1.5,"note":"caf\xc3\xa9"}' % offset
    r = SinkRecord("orders", offset % 3, offset, BASE_MS + offset, b"k%d" % offset, value, None, None)
    return r._replace(**changes)


@pytest.mark.parametrize("key_mode", ["offset", "key"])
def test_a_plain_batch_is_encoded_into_the_same_rows_as_record_by_record(key_mode: str) -> None:
    # Given a batch of JSON objects with keys, no headers, left undecoded
    enc = encoder(key_mode=key_mode)
    records = [plain(i) for i in range(50)]

    # When it is encoded column by column
    rows = enc.rows(records)

    # Then the rows are those of the record-by-record encoder
    assert rows == [enc.row(r) for r in records]


@pytest.mark.parametrize(
    "odd_one",
    [
        plain(7, headers=(("trace", b"abc"),)),
        plain(7, value=b'{"text":"\\u0000"}'),
        plain(7, value=b"[1, 2]"),
        plain(7, value=b"raw bytes"),
        plain(7, doc={"order_id": 7}),
        plain(7, timestamp_ms=-300_000_000_000_000),
    ],
    ids=["headers", "escaped-nul", "json-array", "raw", "decoded", "timestamp-out-of-range"],
)
def test_one_record_off_the_plain_path_sends_the_batch_back_to_record_by_record(odd_one: SinkRecord) -> None:
    # Given a batch of plain records and one that needs the record-by-record encoder
    records = [plain(i) for i in range(5)] + [odd_one]

    # When it is encoded column by column, then it is not
    assert encoder().rows(records) is None


def test_a_record_without_a_key_sends_the_batch_back_when_the_key_is_the_id() -> None:
    records = [plain(0), plain(1, key=None)]
    assert encoder(key_mode="key").rows(records) is None
    assert encoder(key_mode="offset").rows(records) == [encoder().row(r) for r in records]


def test_the_columns_and_key_fields_modes_are_always_encoded_record_by_record() -> None:
    records = [plain(0)]
    assert encoder(key_mode="fields", key_fields=["order_id"]).rows(records) is None
    assert encoder(mode="columns", columns={"order_id": "bigint"}).rows(records) is None
