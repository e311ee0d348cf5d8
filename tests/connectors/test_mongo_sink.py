"""The MongoDB sink against a real server (nx-27017, or LOGSVC_TEST_MONGO_URI): documents, ids,
write models, tombstones, poison records, hostile names, idempotence and a database outage."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from pymongo.database import Database

from logsvc_client.errors import InvalidConfig
from logsvc_connect.mongo import MongoConfig, MongoSink
from logsvc_connect.sink import DataError, SinkRecord, TransientSinkError
from logsvc_connect.values import decode_value
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
    sinks: list[MongoSink] = []

    def make(**config: Any) -> MongoSink:
        settings = {"uri": mongo.uri, "database": database.name, "server_selection_timeout_ms": 3000, **config}
        sink = MongoSink(MongoConfig.from_mapping(settings))
        sink.open()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


def contents(database: Database[dict[str, Any]], collection: str = TOPIC) -> dict[Any, dict[str, Any]]:
    """The collection as {_id: document without _id}, bytes ids as bytes."""
    return {doc.pop("_id"): doc for doc in database[collection].find()}


# -- documents per id mode -------------------------------------------------------------------------


def test_offset_mode_writes_one_document_per_record_with_its_metadata(
    make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given a sink in the default mode (offset ids, replace)
    sink = make_sink()
    # When two records, one with a binary key, are written
    failed = write(
        sink, [record(7, {"order": 1, "total": 9.5}, "k1"), record(8, {"order": 2}, b"\xff\x00", partition=3)]
    )
    # Then each is a document whose _id is topic-partition-offset, with the metadata under _logsvc
    assert failed == {}
    docs = contents(database)
    assert set(docs) == {"orders-0-7", "orders-3-8"}
    first = docs["orders-0-7"]
    assert first["order"] == 1 and first["total"] == 9.5
    assert first["_logsvc"] == {
        "topic": TOPIC,
        "partition": 0,
        "offset": 7,
        "timestamp": datetime(2023, 11, 14, 22, 13, 20, 7000),
        "key": "k1",
    }
    assert docs["orders-3-8"]["_logsvc"]["key"] == b"\xff\x00"


def test_key_mode_uses_the_key_as_a_text_or_binary_id(make_sink: MakeSink, database: Database[dict[str, Any]]) -> None:
    # Given a sink with key ids
    sink = make_sink(id_mode="key")
    # When records with a UTF-8 key and a non-UTF-8 key are written
    write(sink, [record(0, {"n": 1}, "customer-1"), record(1, {"n": 2}, b"\xfe\xff")])
    # Then the ids are the key as a string and as binary
    assert {_id: doc["n"] for _id, doc in contents(database).items()} == {"customer-1": 1, b"\xfe\xff": 2}


def test_field_mode_uses_the_value_of_the_id_field(make_sink: MakeSink, database: Database[dict[str, Any]]) -> None:
    # Given a sink taking the id from a nested field
    sink = make_sink(id_mode="field", id_field="order.id")
    # When records with string and integer ids are written
    failed = write(sink, [record(0, {"order": {"id": "A-1"}}, "k"), record(1, {"order": {"id": 42}})])
    # Then those values are the ids
    assert failed == {}
    assert set(contents(database)) == {"A-1", 42}


def test_a_raw_value_is_stored_as_binary_next_to_its_key(
    make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given a sink reading values as raw bytes
    sink = make_sink(value_format="raw")
    # When a record whose value is not JSON is written (the adapter decodes it: doc is None)
    write(sink, [record(0, b"\x00\x01binary", "k")._replace(doc=None)])
    # Then it is stored as {"value": Binary, "key": ...}
    doc = contents(database)["orders-0-0"]
    assert doc["value"] == b"\x00\x01binary" and doc["key"] == "k"


# -- write models ----------------------------------------------------------------------------------


def test_replace_keeps_the_last_value_of_an_id(make_sink: MakeSink, database: Database[dict[str, Any]]) -> None:
    # Given a document written under key "c1"
    sink = make_sink(id_mode="key")
    write(sink, [record(0, {"name": "old", "gone": True}, "c1")])
    # When a later value for "c1" is written
    write(sink, [record(1, {"name": "new"}, "c1")])
    # Then the document is that value only
    doc = contents(database)["c1"]
    assert doc["name"] == "new" and "gone" not in doc and doc["_logsvc"]["offset"] == 1


def test_an_offset_delivered_again_with_another_value_replaces_its_document(
    make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given offset 5 written (offset mode sends inserts first)
    sink = make_sink()
    write(sink, [record(5, {"v": "before", "old": 1})])
    # When offset 5 comes again with another value (say a transform changed), next to a new offset
    failed = write(sink, [record(5, {"v": "after"}), record(6, {"v": "new"})])
    # Then the existing document is replaced and the new one inserted
    assert failed == {}
    docs = contents(database)
    assert docs["orders-0-5"]["v"] == "after" and "old" not in docs["orders-0-5"]
    assert docs["orders-0-6"]["v"] == "new"


def test_insert_of_an_existing_id_counts_as_written_and_keeps_the_first_value(
    make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given an insert-mode sink and a document under key "c1"
    sink = make_sink(id_mode="key", write_model="insert")
    write(sink, [record(0, {"name": "first"}, "c1")])
    # When a batch inserts "c1" again next to a new id
    failed = write(sink, [record(1, {"name": "second"}, "c1"), record(2, {"name": "other"}, "c2")])
    # Then nothing failed, "c1" keeps its first value and "c2" is there
    assert failed == {}
    docs = contents(database)
    assert docs["c1"]["name"] == "first" and docs["c2"]["name"] == "other"


def test_update_sets_the_value_fields_and_keeps_the_others(
    make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given an update-mode sink and a document with fields a and b
    sink = make_sink(id_mode="key", write_model="update")
    write(sink, [record(0, {"a": 1, "b": 1}, "c1")])
    # When a value with fields b and c (and an _id of its own) is written for the same key
    failed = write(sink, [record(1, {"b": 2, "c": 3, "_id": "ignored"}, "c1")])
    # Then a is kept, b and c are set, and the id did not change
    assert failed == {}
    docs = contents(database)
    assert list(docs) == ["c1"]
    assert {k: docs["c1"][k] for k in "abc"} == {"a": 1, "b": 2, "c": 3}
    assert docs["c1"]["_logsvc"]["offset"] == 1


# -- tombstones ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_mode", "extra"), [("offset", {}), ("key", {}), ("field", {"id_field": "id"})], ids=["offset", "key", "field"]
)
def test_a_tombstone_deletes_the_document_of_its_key_in_every_id_mode(
    make_sink: MakeSink, database: Database[dict[str, Any]], id_mode: str, extra: dict[str, Any]
) -> None:
    # Given documents for keys k1 and k2
    sink = make_sink(id_mode=id_mode, **extra)
    write(sink, [record(0, {"id": 1}, "k1"), record(1, {"id": 2}, "k2")])
    # When a tombstone for k1 arrives (and one without a key, which has nothing to delete)
    failed = write(sink, [record(2, None, "k1"), record(3, None)])
    # Then only k2's document is left
    assert failed == {}
    assert [doc["_logsvc"]["key"] for doc in contents(database).values()] == ["k2"]


@pytest.mark.parametrize("id_mode", ["offset", "key"])
def test_a_value_after_a_tombstone_in_the_same_batch_survives(
    make_sink: MakeSink, database: Database[dict[str, Any]], id_mode: str
) -> None:
    # Given a sink with no compaction in front of it (the runtime's job)
    sink = make_sink(id_mode=id_mode)
    # When one batch holds: value, tombstone, value for the same key (plus a tombstone-then-nothing key)
    batch = [record(0, {"v": 1}, "k"), record(1, {"w": 1}, "x"), record(2, None, "k"), record(3, None, "x")]
    failed = write(sink, [*batch, record(4, {"v": 3}, "k")])
    # Then the batch ends as if applied in order: only the last value of k is stored
    assert failed == {}
    assert [(doc["_logsvc"]["key"], doc["_logsvc"]["offset"]) for doc in contents(database).values()] == [("k", 4)]


# -- poison records --------------------------------------------------------------------------------


def test_a_poison_record_fails_alone_and_the_others_are_written(
    make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given a sink taking ids from field "id"
    sink = make_sink(id_mode="field", id_field="id")
    huge = "x" * (17 * 1024 * 1024)
    # When a batch mixes good records with an object id, a missing id, a 17 MiB document,
    # an integer BSON cannot hold, and a NUL in a field name
    batch = [
        record(0, {"id": "good-1"}),
        record(1, {"id": {"$gt": ""}}),
        record(2, {"no_id": True}),
        record(3, {"id": "huge", "blob": huge}),
        record(4, {"id": "int", "n": 2**70}),
        record(5, {"id": "nul", "a\0b": 1}),
        record(6, {"id": "good-2"}),
    ]
    failed = write(sink, batch)
    # Then each poison record has its own DataError and both good records are stored
    assert sorted(failed) == [1, 2, 3, 4, 5]
    assert failed[1].error_class == "InvalidId" and "scalar" in failed[1].message
    assert failed[2].error_class == "MissingId"
    assert failed[3].error_class == "DocumentTooLarge"
    assert "8-byte" in failed[4].message
    assert "NULL" in failed[5].message
    assert set(contents(database)) == {"good-1", "good-2"}


def test_a_record_the_server_refuses_fails_alone(make_sink: MakeSink, database: Database[dict[str, Any]]) -> None:
    # Given a unique index on email and a document holding email "a"
    database[TOPIC].create_index("email", unique=True)
    sink = make_sink(id_mode="key")
    write(sink, [record(0, {"email": "a"}, "c1")])
    # When another id with the same email is written next to a good record (in replace and insert)
    failed = write(sink, [record(1, {"email": "a"}, "c2"), record(2, {"email": "b"}, "c3")])
    failed_insert = write(make_sink(id_mode="key", write_model="insert"), [record(3, {"email": "a"}, "c4")])
    # Then that record is a DataError carrying the server's code, and the other one is written
    assert list(failed) == [0] and list(failed_insert) == [0]
    assert failed[0].error_class == "MongoWriteError11000" and failed[0].details["code"] == 11000
    assert set(contents(database)) == {"c1", "c3"}


def test_a_record_without_a_key_in_key_mode_is_a_data_error(make_sink: MakeSink) -> None:
    # Given a key-mode sink
    sink = make_sink(id_mode="key")
    # When a record without a key is written next to one with a key
    failed = write(sink, [record(0, {"a": 1}), record(1, {"a": 2}, "k")])
    # Then only the keyless one fails
    assert list(failed) == [0] and failed[0].error_class == "MissingId"


# -- hostile keys and names ------------------------------------------------------------------------

HOSTILE_KEYS = ['{"$ne": null}', "$set", "a.b", '{"$gt": ""}']


def test_hostile_keys_are_plain_string_ids_never_queries(
    make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given a key-mode sink and an innocent document
    sink = make_sink(id_mode="key")
    write(sink, [record(0, {"n": 0}, "innocent")])
    # When records keyed by query-looking strings are written, then tombstoned
    failed = write(sink, [record(n + 1, {"n": n + 1}, key) for n, key in enumerate(HOSTILE_KEYS)])
    # Then each is stored under its key as a string
    assert failed == {}
    assert set(contents(database)) == {"innocent", *HOSTILE_KEYS}
    # When tombstones with those keys arrive (in key mode and in offset mode)
    write(sink, [record(10 + n, None, key) for n, key in enumerate(HOSTILE_KEYS)])
    write(make_sink(), [record(20 + n, None, key) for n, key in enumerate(HOSTILE_KEYS)])
    # Then only those documents are gone: the innocent one was never matched by a query
    assert set(contents(database)) == {"innocent"}


@pytest.mark.parametrize("write_model", ["replace", "insert", "update"])
def test_field_names_mongodb_rejects_are_escaped(
    make_sink: MakeSink, database: Database[dict[str, Any]], write_model: str
) -> None:
    # Given a sink with the default "escape" rule
    sink = make_sink(write_model=write_model)
    value = {"$where": "sleep(1)", "a.b": 1, "price$": 2, "nested": {"$ne": None, "list": [{"x.y": [{"$z": 1}]}, 3]}}
    # When a value with $-prefixed and dotted names at several depths is written
    failed = write(sink, [record(0, value, "k")])
    # Then it is stored with fullwidth dollar signs (U+FF04) and full stops (U+FF0E) in those names
    assert failed == {}
    doc = contents(database)["orders-0-0"]
    del doc["_logsvc"]
    assert doc == {
        "\uff04where": "sleep(1)",
        "a\uff0eb": 1,
        "price$": 2,
        "nested": {"\uff04ne": None, "list": [{"x\uff0ey": [{"\uff04z": 1}]}, 3]},
    }


def test_field_names_mongodb_rejects_are_data_errors_with_the_reject_rule(
    make_sink: MakeSink, database: Database[dict[str, Any]]
) -> None:
    # Given a sink with the "reject" rule
    sink = make_sink(field_names="reject")
    # When a clean value and values with a $-name and a nested dotted name are written
    failed = write(sink, [record(0, {"ok": 1}), record(1, {"$where": 1}), record(2, {"a": [{"b.c": 1}]})])
    # Then the two are DataErrors naming the field, and the clean one is stored
    assert sorted(failed) == [1, 2]
    assert "'$where'" in failed[1].message and "'a/[0]/b.c'" in failed[2].message
    assert set(contents(database)) == {"orders-0-0"}


def test_names_that_collide_once_escaped_are_a_data_error(make_sink: MakeSink) -> None:
    # Given the "escape" rule
    sink = make_sink()
    # When a value holds both "a.b" and its escaped form
    failed = write(sink, [record(0, {"a.b": 1, "a\uff0eb": 2})])
    # Then it is a DataError rather than a silently lost field
    assert list(failed) == [0] and failed[0].error_class == "InvalidFieldName"


# -- idempotence -----------------------------------------------------------------------------------


@pytest.mark.parametrize("write_model", ["replace", "insert", "update"])
@pytest.mark.parametrize("id_mode", ["offset", "key"])
def test_writing_the_same_batch_twice_leaves_the_same_documents(
    make_sink: MakeSink, database: Database[dict[str, Any]], write_model: str, id_mode: str
) -> None:
    # Given a batch of values, a rewrite and a tombstone
    sink = make_sink(id_mode=id_mode, write_model=write_model)
    batch = [record(n, {"n": n, "tags": ["a", n]}, f"k{n % 5}") for n in range(20)] + [record(20, None, "k1")]
    # When it is written once, then again (at-least-once redelivery)
    assert write(sink, batch) == {}
    once = contents(database)
    assert write(sink, batch) == {}
    # Then the collection is the same
    assert contents(database) == once


# -- the database going away -----------------------------------------------------------------------


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


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"colection": "x"}, "colection"),
        ({"id_mode": "field"}, "id_field"),
        ({"id_field": "id"}, "id_field"),
        ({"write_model": "upsert"}, "write_model"),
        ({"field_names": "drop"}, "field_names"),
        ({"value_format": "xml"}, "value_format"),
        ({"collection": "{partition}"}, "collection"),
        ({"write_concern": {"w": 0}}, "write_concern"),
        ({"write_concern": {"fsync": True}}, "write_concern"),
        ({"server_selection_timeout_ms": 0}, "server_selection_timeout_ms"),
        ({"socket_timeout_ms": "soon"}, "socket_timeout_ms"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_key(settings: dict[str, Any], named: str) -> None:
    # Given settings with one bad key or value; When they are loaded; Then InvalidConfig names the key
    with pytest.raises(InvalidConfig, match=named) as caught:
        MongoConfig.from_mapping({"uri": "mongodb://127.0.0.1/", "database": "d", **settings})
    assert caught.value.details.get("key") == named


def test_configuration_from_the_environment_may_use_strings() -> None:
    # Given values as environment variables carry them: digits and a JSON object
    settings = {"socket_timeout_ms": "1500", "write_concern": '{"w": "majority", "wtimeout_ms": 200}'}
    # When they are loaded
    config = MongoConfig.from_mapping({"uri": "mongodb://127.0.0.1/", "database": "d", **settings})
    # Then they are typed
    assert config.socket_timeout_ms == 1500
    assert dict(config.write_concern) == {"w": "majority", "j": True, "wtimeout_ms": 200}
