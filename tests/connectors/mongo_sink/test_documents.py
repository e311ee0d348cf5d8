"""What a batch leaves in MongoDB: the document of each id mode, the replace, insert and update
write models, tombstones, and the same batch written twice leaving the same documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from pymongo.database import Database

from tests.connectors.mongo_sink.conftest import TOPIC, MakeSink, contents, record, write

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
