"""End to end: connector processes SIGKILLed at random points while sinking, and stopped with
SIGTERM. Nothing is lost, nothing is written twice where ids allow it, and offsets end at the
topic's end. A real broker subprocess, a real PostgreSQL cluster, nx-27017 or a real MongoDB.

The kill points are random: the seed is in every failure message (set ``LOGSVC_TEST_SEED`` to
replay one). Killed connectors use a static ``instance_id``, as a supervised deployment would, so
each restart takes its partitions back at once instead of after the session timeout.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from tests.conftest import BrokerProcess
from tests.connectors.e2e import (
    ConnectorProcess,
    Connectors,
    MongoTarget,
    PostgresTarget,
    committed,
    create_topic,
    dead_letters,
    describe_group,
    end_offsets,
    order,
    produce,
    wait_until,
)

KILLS = 5
PARTITIONS = 4
# Small batches give the killed (or SIGTERMed) connectors many commit points, so a signal lands
# mid-stream rather than after the last batch (with 2,000-record batches an upsert run can finish within the 20 ms
# between two progress probes).
SMALL_BATCH = 250


class Seeded(random.Random):
    """A random generator that remembers its seed (for failure messages)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.seed_value = seed

    def __str__(self) -> str:
        return f"LOGSVC_TEST_SEED={self.seed_value}"


@pytest.fixture
def rng() -> Seeded:
    return Seeded(int(os.environ.get("LOGSVC_TEST_SEED") or random.SystemRandom().randrange(2**32)))


def progress(address: str, group: str) -> int:
    """Records the connector group has committed past (all partitions)."""
    return sum(committed(address, group).values())


def kill_at_random_points(
    connectors: Connectors, kind: str, config: Path, group: str, total: int, rng: random.Random
) -> tuple[ConnectorProcess, list[int]]:
    """Start the connector, then KILLS times: let it commit past a random share of ``total``
    records, SIGKILL it 0-50 ms later (mid-batch) and start it again. The last process, and how
    far the group had committed at each kill."""
    address = connectors.server
    thresholds = sorted(rng.sample(range(total // 20, total * 3 // 4), KILLS))
    process = connectors.start(kind, config)
    at_kill = []
    for threshold in thresholds:
        wait_until(f"{threshold} records committed", lambda: progress(address, group), threshold.__le__, 60)
        time.sleep(rng.uniform(0, 0.05))
        process.kill()
        at_kill.append(progress(address, group))
        process = connectors.start(kind, config)
    return process, at_kill


def test_postgres_exactly_once_connector_killed_five_times_ends_with_one_row_per_record(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget, rng: Seeded
) -> None:
    # Given 50,000 orders in a topic and an exactly-once append connector (offsets in PostgreSQL)
    total, name, address = 50_000, "orders-pg-eos", broker_process.address
    create_topic(address, "orders", PARTITIONS)
    produce(address, "orders", (order(seq) for seq in range(total)))
    config = connectors.config(
        name,
        pg_target,
        ["orders"],
        {"insert_mode": "insert", "exactly_once": True},
        instance_id=f"{name}-1",
        batch_max_records=SMALL_BATCH,
    )
    seed = str(rng)

    # When the connector is SIGKILLed five times at random points while it sinks them
    process, at_kill = kill_at_random_points(connectors, "postgres", config, name, total, rng)

    # Then every kill hit a connector with records still to write ...
    assert all(n < total for n in at_kill), (seed, at_kill)
    # ... and the table ends with exactly one row per record
    wait_until(f"{total} rows ({seed})", pg_target.count, lambda n: n >= total, 60)
    assert pg_target.count() == total, seed
    assert len(set(pg_target.origins())) == total, seed
    seqs = pg_target.query("SELECT count(DISTINCT (value->>'seq')::int), min((value->>'seq')::int) FROM orders")
    assert seqs == [(total, 0)], seed
    # ... the offsets stored with the rows are the topic's end, and the group commits catch up
    ends = end_offsets(address, "orders")
    assert pg_target.stored_offsets(name) == ends, seed
    wait_until("the group's commits", lambda: progress(address, name), lambda n: n == total)
    assert dead_letters(address, name) == []
    assert process.terminate() == 0


def test_postgres_upsert_by_key_connector_killed_five_times_keeps_the_last_value_of_each_key(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget, rng: Seeded
) -> None:
    # Given 30,000 orders updating 3,000 order ids ten times each (keyed, so in order per id)
    total, keys, name, address = 30_000, 3_000, "orders-pg-upsert", broker_process.address
    create_topic(address, "orders", PARTITIONS)
    produce(address, "orders", (order(seq, key_space=keys) for seq in range(total)))
    config = connectors.config(
        name, pg_target, ["orders"], {"key_mode": "key"}, instance_id=f"{name}-1", batch_max_records=SMALL_BATCH
    )
    seed = str(rng)

    # When the upsert connector (at-least-once) is SIGKILLed five times at random points
    process, at_kill = kill_at_random_points(connectors, "postgres", config, name, total, rng)
    assert all(n < total for n in at_kill), (seed, at_kill)

    # Then once the group has committed everything, each order id has one row: its last version
    wait_until(f"the group's commits ({seed})", lambda: progress(address, name), lambda n: n == total, 60)
    rows = pg_target.query("SELECT key, (value->>'order_id')::int, (value->>'seq')::int FROM orders")
    assert len(rows) == keys, seed
    assert {key: seq for key, _, seq in rows} == {b"order-%d" % k: total - keys + k for k in range(keys)}, seed
    assert dead_letters(address, name) == []
    assert process.terminate() == 0


def test_mongo_connector_killed_five_times_ends_with_every_document_once(
    broker_process: BrokerProcess, connectors: Connectors, mongo_target: MongoTarget, rng: Seeded
) -> None:
    # Given 50,000 orders and a Mongo connector (offset ids, replace)
    total, name, address = 50_000, "orders-mongo", broker_process.address
    create_topic(address, "orders", PARTITIONS)
    produce(address, "orders", (order(seq) for seq in range(total)))
    config = connectors.config(name, mongo_target, ["orders"], instance_id=f"{name}-1", batch_max_records=SMALL_BATCH)
    seed = str(rng)

    # When the connector is SIGKILLed five times at random points while it sinks them
    process, at_kill = kill_at_random_points(connectors, "mongo", config, name, total, rng)
    assert all(n < total for n in at_kill), (seed, at_kill)

    # Then every record is one document, present once, under its topic-partition-offset id
    wait_until(f"the group's commits ({seed})", lambda: progress(address, name), lambda n: n == total, 90)
    ends = end_offsets(address, "orders")
    expected_ids = {f"orders-{p}-{o}" for p, end in ends.items() for o in range(end)}
    documents = list(mongo_target.collection.find({}, {"_id": 1, "seq": 1}))
    assert len(documents) == total, seed
    assert {d["_id"] for d in documents} == expected_ids, seed
    assert sorted(d["seq"] for d in documents) == list(range(total)), seed
    assert dead_letters(address, name) == []
    assert process.terminate() == 0


def test_sigterm_finishes_the_batch_in_flight_commits_it_and_leaves_the_group(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given 30,000 orders and a running connector (at-least-once, default upsert by offset)
    total, name, address = 30_000, "orders-pg", broker_process.address
    create_topic(address, "orders", PARTITIONS)
    produce(address, "orders", (order(seq) for seq in range(total)))
    config = connectors.config(name, pg_target, ["orders"], batch_max_records=SMALL_BATCH)
    process = connectors.start("postgres", config)
    wait_until("the first rows", pg_target.count, lambda n: n >= 3_000)

    # When it gets SIGTERM mid-stream
    code = process.terminate()

    # Then it exits 0, having committed exactly what it wrote: no row past a commit, none missing
    assert code == 0, process.log()
    assert "received SIGTERM" in process.log()
    rows = dict(pg_target.query("SELECT partition, count(*) FROM orders GROUP BY partition"))
    offsets = {tp.partition: offset for tp, offset in committed(address, name).items()}
    assert 0 < sum(rows.values()) < total
    assert rows == {p: n for p, n in offsets.items() if n}
    # ... and it left the group, so the partitions are free at once
    group = describe_group(address, name)
    assert group is not None and group.members == ()

    # When it is started again
    process = connectors.start("postgres", config)

    # Then it continues where it committed, and ends with the group's lag at 0
    wait_until("every row", pg_target.count, lambda n: n == total)
    wait_until(
        "lag 0",
        lambda: describe_group(address, name),
        lambda g: g is not None and all(p.lag == 0 and p.committed_offset is not None for p in g.partitions),
    )
    assert len(set(pg_target.origins())) == total
    assert process.terminate() == 0
