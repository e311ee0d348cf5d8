"""The MongoDB sink with its database going away: a stopped or unreachable server is a transient
error, and writes resume once it is back."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from logsvc_connect.mongo import MongoConfig, MongoSink
from logsvc_connect.sink import TransientSinkError
from tests.connectors.mongo_sink.conftest import MakeSink, contents, record, write
from tests.fixtures.mongo import MongoServer


def test_a_stopped_database_is_a_transient_error_and_writes_resume_after_restart(
    mongo: MongoServer, make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given a sink that has written, with a short server selection timeout
    sink = make_sink(server_selection_timeout_ms=500, connect_timeout_ms=500)
    write(sink, [record(0, {"n": 0})])
    # When the database is down, a write raises TransientSinkError (nothing is dead-lettered)
    with mongo.stopped(), pytest.raises(TransientSinkError, match="MongoDB unavailable"):
        write(sink, [record(1, {"n": 1})])
    # Then once it is back, the retried batch and the next one are written
    assert write(sink, [record(1, {"n": 1})]) == {}
    assert write(sink, [record(2, {"n": 2})]) == {}
    assert set(contents(database)) == {"orders-0-0", "orders-0-1", "orders-0-2"}


def test_opening_an_unreachable_database_is_a_transient_error() -> None:
    # Given a URI where nothing listens
    sink = MongoSink(
        MongoConfig.from_mapping({"uri": "mongodb://127.0.0.1:9/", "database": "d", "server_selection_timeout_ms": 200})
    )
    # When it is opened, Then the failure is transient
    with pytest.raises(TransientSinkError):
        sink.open()
