"""End to end: what goes wrong around a running connector process — the database stopped for 10 s
mid-stream, the broker killed under a batch's write, poison records, hostile identifiers and
keys — against a real broker subprocess, PostgreSQL and MongoDB (nx-27017, or
LOGSVC_TEST_MONGO_URI)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import BrokerProcess
from tests.connectors.e2e import (
    Connectors,
    MongoTarget,
    PostgresTarget,
    Target,
    caught_up,
    create_topic,
    dead_letters,
    order,
    produce,
    read_topic,
    wait_until,
)
from tests.fixtures.mongo import MongoServer
from tests.fixtures.ports import free_port
from tests.fixtures.postgres import PostgresCluster

OUTAGE_S = 10.0


@contextmanager
def database_down(target: Target, request: pytest.FixtureRequest) -> Iterator[None]:
    """The target's server is stopped inside the block and started again after it."""
    if isinstance(target, PostgresTarget):
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        cluster.stop()
        try:
            yield
        finally:
            cluster.start()
    else:
        server: MongoServer = request.getfixturevalue("mongo")
        with server.stopped():
            yield


def test_a_database_stopped_for_ten_seconds_mid_stream_loses_and_dead_letters_nothing(
    broker_process: BrokerProcess, connectors: Connectors, target: Target, request: pytest.FixtureRequest
) -> None:
    # Given a connector that has written a first part of the stream
    name, address = f"orders-{target.kind}", broker_process.address
    create_topic(address, "orders", 4)
    process = connectors.start(target.kind, connectors.config(name, target, ["orders"]))
    seq = produce(address, "orders", (order(n) for n in range(1_000)))
    wait_until("the first part", target.count, lambda n: n == 1_000)

    # When the database is stopped for 10 s while orders keep coming, then started again
    with database_down(target, request):
        stopped_at = time.monotonic()
        while time.monotonic() - stopped_at < OUTAGE_S:
            seq += produce(address, "orders", (order(n) for n in range(seq, seq + 100)))
            time.sleep(0.25)
    seq += produce(address, "orders", (order(n) for n in range(seq, seq + 1_000)))

    # Then the connector retried, and resumed: every record is written once, nothing dead-lettered
    wait_until("every record after the outage", target.count, lambda n: n >= seq, 60)
    assert target.count() == seq
    assert len(set(target.origins())) == seq
    assert dead_letters(address, name) == []
    assert process.alive()
    assert "retry" in process.log()
    assert process.terminate() == 0


@pytest.mark.parametrize("poison", [False, True], ids=["orders", "with-a-dead-letter"])
def test_a_broker_killed_while_a_batch_is_written_leaves_the_connector_running_and_it_goes_on_once_back(
    tmp_path: Path, pg_target: PostgresTarget, poison: bool
) -> None:
    # Given a connector that has written a first part of the stream, from a broker on a port
    # it can be started on again
    broker = BrokerProcess(tmp_path / "data").start(listen=f"127.0.0.1:{free_port()}")
    connectors = Connectors(tmp_path, broker.address)
    try:
        address, name = broker.address, "orders-pg"
        create_topic(address, "orders", 2)
        config = connectors.config(name, pg_target, ["orders"], value_format="json", metrics_port=0)
        process = connectors.start("postgres", config)
        seq = produce(address, "orders", (order(n) for n in range(1_000)))
        wait_until("the first part", pg_target.count, lambda n: n == 1_000)

        # When the broker is killed while the next batch's write waits on a table lock, so the
        # write succeeds and what comes after it finds no broker: the commit, and first, for a
        # record PostgreSQL cannot store, its dead letter
        with psycopg.connect(pg_target.dsn) as conn:
            conn.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            held = [order(n) for n in range(seq, seq + 100)]
            refused = [(b"nul", json.dumps({"note": "NUL \u0000"}).encode())] if poison else []
            produce(address, "orders", held + refused, partition=0)  # one batch: fetched together
            seq += len(held)
            wait_until("the write to wait on the lock", lambda: lock_waiters(conn), bool)
            broker.kill()
        failed = "dead-lettering failed" if poison else "commit of"
        wait_until(f"'{failed}'", process.log, lambda log: failed in log)

        # ... and started again, and more orders come
        broker.start(listen=address)
        seq += produce(address, "orders", (order(n) for n in range(seq, seq + 1_000)))

        # Then the connector never stopped: every order is written once, the poison record is
        # dead-lettered, and the group catches up past it
        wait_until("every order", pg_target.count, lambda n: n == seq, 60)
        wait_until("the group to catch up", lambda: caught_up(address, name, "orders"), bool, 60)
        assert len(set(pg_target.origins())) == seq
        # (at least once: a batch whose commit the restarted broker refused is written again, and
        # its dead letter sent again)
        poisoned = {(r.key, str(r.offset).encode()) for r in read_topic(address, "orders") if r.key == b"nul"}
        assert {(d.key, dict(d.headers or ())["dlq.offset"]) for d in dead_letters(address, name)} == poisoned
        assert len(poisoned) == poison
        assert process.alive(), process.log()
        assert process.counter("broker_retries") >= 1
        assert process.terminate() == 0
    finally:
        connectors.close()
        broker.kill()


def lock_waiters(conn: psycopg.Connection[Any]) -> int:
    """How many other sessions wait on a lock."""
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchone()
    return int(row[0]) if row else 0


POISON_HEADERS = [("trace-id", b"t-42")]


def test_poison_records_go_to_the_dead_letter_topic_with_their_headers_and_the_partition_goes_on(
    broker_process: BrokerProcess, connectors: Connectors, target: Target
) -> None:
    # Given a connector reading JSON (exactly-once into PostgreSQL), and on one partition: 500
    # orders, two poison records (not JSON; then one the database refuses), 500 orders
    name, address = f"orders-{target.kind}", broker_process.address
    create_topic(address, "orders", 2)
    exactly_once = {"exactly_once": True} if target.kind == "postgres" else {}
    config = connectors.config(name, target, ["orders"], exactly_once, value_format="json")
    process = connectors.start(target.kind, config)
    if target.kind == "postgres":
        refused, refused_class = json.dumps({"order_id": -1, "note": "NUL \u0000 in text"}).encode(), "NulInText"
    else:
        refused, refused_class = json.dumps({"a.b": 1, "a\uff0eb": 2}).encode(), "InvalidFieldName"
    poison = [(b"bad-1", b'{"order_id": 1, oops'), (b"bad-2", refused)]
    produce(address, "orders", (order(n) for n in range(500)), partition=0)
    produce(address, "orders", poison, partition=0, headers=POISON_HEADERS)
    produce(address, "orders", (order(n) for n in range(500, 1_000)), partition=0)

    # When the connector has sunk the partition
    wait_until("the orders after the poison", target.count, lambda n: n >= 1_000)

    # Then the orders on both sides of the poison are written ...
    assert sorted(o for p, o in target.origins()) == [*range(500), *range(502, 1_002)]
    # ... and the two poison records are in orders-<kind>.dlq, as they were, with the reason
    letters = wait_until("two dead letters", lambda: dead_letters(address, name), lambda d: len(d) == 2)
    assert [(d.key, d.value) for d in letters] == poison
    sources = {r.offset: r for r in read_topic(address, "orders") if r.partition == 0}
    for letter, offset, error_class in zip(letters, (500, 501), ("InvalidJson", refused_class), strict=True):
        headers = dict(letter.headers or ())
        assert headers.pop("dlq.error.message")
        # the dead letter's own time is when it was dead-lettered, not before its source's
        assert letter.timestamp_ms >= sources[offset].timestamp_ms
        assert headers == {
            "trace-id": b"t-42",
            "dlq.topic": b"orders",
            "dlq.partition": b"0",
            "dlq.offset": str(offset).encode(),
            "dlq.timestamp": str(sources[offset].timestamp_ms).encode(),
            "dlq.connector": name.encode(),
            "dlq.error.class": error_class.encode(),
            "dlq.attempts": b"1",
        }

    # When the connector is restarted and more orders arrive
    assert process.terminate() == 0
    process = connectors.start(target.kind, config)
    produce(address, "orders", (order(n) for n in range(1_000, 1_010)), partition=0)

    # Then they are written, and the poison records are not tried again
    wait_until("the orders after the restart", target.count, lambda n: n >= 1_010)
    assert target.count() == 1_010
    assert len(dead_letters(address, name)) == 2
    assert process.terminate() == 0


HOSTILE_KEYS = [b'{"$ne": null}', b"'; DROP TABLE victim; --", b"Robert'); DROP TABLE victim;--", b"a.b", b"$set"]
HOSTILE_FIELDS = {'"; DROP TABLE victim; --': "x'y\"z", "$set": "dollar", "a.b": "dotted", '{"$ne": null}': "ne"}


def test_hostile_postgres_identifiers_and_keys_are_stored_as_data(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given a table that must survive, and a connector whose schema, table and columns are SQL
    schema, table = "s'chema\"; DROP TABLE victim; --", "o'rd\"ers; DROP TABLE victim; --{topic}"
    pg_target.query("CREATE TABLE victim (id int); INSERT INTO victim VALUES (1)")
    name, address = "orders-pg", broker_process.address
    create_topic(address, "orders", 2)
    columns = {"order_id": "bigint", **{field: "text" for field in HOSTILE_FIELDS}}
    adapter = {"schema": schema, "table": table, "mode": "columns", "columns": columns, "key_mode": "key"}
    process = connectors.start("postgres", connectors.config(name, pg_target, ["orders"], adapter))

    # When records keyed by injection attempts, with such fields, arrive — and one whose order_id
    # is an injection attempt instead of an integer
    records = [(key, json.dumps({"order_id": n, **HOSTILE_FIELDS}).encode()) for n, key in enumerate(HOSTILE_KEYS)]
    records.append((b"k", json.dumps({"order_id": "1; DROP TABLE victim"}).encode()))
    produce(address, "orders", records)

    # Then the rows are in the table named exactly so, keyed by the keys as they were ...
    stored = PostgresTarget(pg_target.dsn, table.replace("{topic}", "orders"), schema)
    wait_until("the rows", stored.count, lambda n: n == len(HOSTILE_KEYS))
    selected = sql.SQL("SELECT key, order_id, {} FROM {} ORDER BY order_id").format(
        sql.SQL(", ").join(map(sql.Identifier, HOSTILE_FIELDS)), stored.target
    )
    expected = [(key, n, *HOSTILE_FIELDS.values()) for n, key in enumerate(HOSTILE_KEYS)]
    assert pg_target.query(selected) == expected
    # ... the injected statements never ran, and the non-integer was refused (dead-lettered)
    assert pg_target.query("SELECT id FROM victim") == [(1,)]
    letters = wait_until("the refused record", lambda: dead_letters(address, name), lambda d: len(d) == 1)
    assert dict(letters[0].headers or ())["dlq.error.class"] == b"InvalidValue"
    assert process.terminate() == 0


def test_hostile_mongo_keys_and_field_names_are_stored_as_data(
    broker_process: BrokerProcess, connectors: Connectors, mongo_target: MongoTarget
) -> None:
    # Given a collection that must survive, and a connector that ids documents by record key
    mongo_target.database["victim"].insert_one({"_id": 1})
    name, address = "orders-mongo", broker_process.address
    create_topic(address, "orders", 2)
    config = connectors.config(name, mongo_target, ["orders"], {"id_mode": "key"})
    process = connectors.start("mongo", config)

    # When records keyed by query operators and injection attempts arrive, with operator and
    # dotted field names (nested too) — and one whose names collide once escaped
    value = {**HOSTILE_FIELDS, "nested": {"$where": "sleep(1000)", "x.y": [{"$gt": ""}]}}
    records = [(key, json.dumps({"order_id": n, **value}).encode()) for n, key in enumerate(HOSTILE_KEYS)]
    records.append((b"collide", json.dumps({"a.b": 1, "a\uff0eb": 2}).encode()))
    produce(address, "orders", records)

    # Then each key is one document whose _id is the key's text, never a query ...
    stored = mongo_target.collection
    wait_until("the documents", lambda: stored.count_documents({}), lambda n: n == len(HOSTILE_KEYS))
    assert sorted(d["_id"] for d in stored.find()) == sorted(k.decode() for k in HOSTILE_KEYS)
    document = stored.find_one({"_id": '{"$ne": null}'})
    assert document is not None and document["order_id"] == 0
    # ... with '$' and '.' in field names escaped to their fullwidth forms, values untouched
    assert {k: document[k] for k in document if k not in ("_id", "_logsvc", "order_id")} == {
        '"; DROP TABLE victim; --': "x'y\"z",
        "\uff04set": "dollar",
        "a\uff0eb": "dotted",
        '{"$ne": null}': "ne",  # not a leading $: MongoDB accepts it
        "nested": {"\uff04where": "sleep(1000)", "x\uff0ey": [{"\uff04gt": ""}]},
    }
    # ... the other collection is untouched, and the colliding names were dead-lettered
    assert list(mongo_target.database["victim"].find()) == [{"_id": 1}]
    letters = wait_until("the refused record", lambda: dead_letters(address, name), lambda d: len(d) == 1)
    assert dict(letters[0].headers or ())["dlq.error.class"] == b"InvalidFieldName"
    assert process.terminate() == 0
