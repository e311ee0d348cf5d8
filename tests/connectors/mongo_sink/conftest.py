"""Fixtures and helpers of the MongoDB sink tests: a fresh database of the real server
(nx-27017, or LOGSVC_TEST_MONGO_URI) per test, opened sinks writing to it, records as the runtime
hands them over and the collection as the test reads it back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymongo.database import Database

from logsvc_connect.mongo import MongoConfig, MongoSink
from logsvc_connect.sink import DataError, SinkRecord
from logsvc_connect.values import decode_value
from tests.connectors.e2e import opened_sinks
from tests.fixtures.mongo import MongoServer

TOPIC = "orders"
MakeSink = Callable[..., MongoSink]


def record(
    offset: int, value: Any, key: bytes | str | None = None, *, partition: int = 0, topic: str = TOPIC
) -> SinkRecord:
    """A record as the runtime hands it over: ``value`` a dict (sent as JSON), bytes, or None."""
    raw = json.dumps(value).encode() if isinstance(value, dict) else value
    key_bytes = key.encode() if isinstance(key, str) else key
    doc = decode_value(raw, "auto")
    return SinkRecord(topic, partition, offset, 1_700_000_000_000 + offset, key_bytes, raw, None, doc)


def write(sink: MongoSink, records: list[SinkRecord]) -> dict[int, DataError]:
    return sink.write(records, {}).failed


@pytest.fixture
def database(mongo: MongoServer) -> Database[dict[str, Any]]:
    return mongo.client[mongo.fresh_database()]


@pytest.fixture
def make_sink(mongo: MongoServer, database: Database[dict[str, Any]]) -> Iterator[MakeSink]:
    """Opened sinks writing to this test's database (closed at the end)."""
    settings = {"uri": mongo.uri, "database": database.name, "server_selection_timeout_ms": 3000}
    yield from opened_sinks(lambda config: MongoSink(MongoConfig.from_mapping({**settings, **config})))


def contents(database: Database[dict[str, Any]], collection: str = TOPIC) -> dict[Any, dict[str, Any]]:
    """The collection as {_id: document without _id}, bytes ids as bytes."""
    return {doc.pop("_id"): doc for doc in database[collection].find()}
