"""Records MongoDB cannot take fail alone as data errors while the rest of the batch is written;
hostile keys and field names are stored as data, never read as queries or operators."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.database import Database

from tests.connectors.mongo_sink.conftest import TOPIC, MakeSink, contents, record, write

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
