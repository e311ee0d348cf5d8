"""End to end on a Kafka cluster: the same connector processes, configs and tables with
``server = "kafka://..."``. Tansu (or LOGSVC_TEST_KAFKA_BOOTSTRAP's Kafka, see
:mod:`tests.fixtures.kafka`), a real PostgreSQL cluster, connectors as subprocesses.

On Tansu, ListOffsets "latest" is wrong (it answers 1): the tests take each partition's end from
the offsets the producer got back, never from the cluster's ListOffsets. New groups join after
about 3 s there, and only quickly with a short rebalance timeout, hence ``max_poll_interval_ms``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from logsvc_client import Admin, Consumer, Producer, Record, TopicPartition
from logsvc_client.errors import TopicNotFound
from tests.connectors.e2e import Connectors, PostgresTarget, order, wait_until
from tests.connectors.test_e2e_crashes import KILLS, SMALL_BATCH, Seeded, rng  # noqa: F401
from tests.fixtures.kafka import KafkaCluster

PARTITIONS = 4
#: Kafka's group settings for the test connectors (see the module docstring)
KAFKA_RUNTIME = {"max_poll_interval_ms": 6_000, "session_timeout_ms": 6_000}


@pytest.fixture
def kafka_connectors(tmp_path: Path, kafka_cluster: KafkaCluster) -> Iterator[Connectors]:
    """Connector processes against the session's Kafka cluster (SIGKILLed at the end)."""
    directory = tmp_path / "connectors"
    directory.mkdir()
    started = Connectors(directory, kafka_cluster.address)
    try:
        yield started
    finally:
        started.close()


def produce(address: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[int, int]:
    """Send ``(key, value)`` pairs, wait for every acknowledgement; each partition's end offset
    as the acknowledgements tell it (one past the highest offset acknowledged)."""
    with Producer(address, linger_ms=5) as producer:
        futures = [producer.send(topic, v, k) for k, v in records]
        producer.flush(60)
    ends: dict[int, int] = {}
    for future in futures:
        position = future.result()
        ends[position.partition] = max(ends.get(position.partition, 0), position.offset + 1)
    return ends


def committed(address: str, group: str) -> dict[int, int]:
    with Admin(address) as admin:
        return {tp.partition: c.offset for tp, c in admin.committed_offsets(group).items()}


def read(address: str, topic: str, wanted: int, timeout_s: float = 30) -> list[Record]:
    """The first ``wanted`` records of ``topic`` (fails when fewer arrive within ``timeout_s``)."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    with Consumer(address) as consumer:
        wait_until(f"topic {topic}", lambda: _assigned(consumer, topic), bool, timeout_s)
        while len(records) < wanted and time.monotonic() < deadline:
            records.extend(consumer.poll(timeout_ms=500))
    assert len(records) >= wanted, f"read {len(records)} of the {wanted} records of {topic}"
    return sorted(records, key=lambda r: (r.partition, r.offset))


def _assigned(consumer: Consumer, topic: str) -> bool:
    """Assign every partition of ``topic``; False while it does not exist yet."""
    try:
        consumer.assign_topic(topic)
    except TopicNotFound:
        return False
    return True


def logsvc(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "--server", address, *args], capture_output=True, text=True, timeout=60
    )


def test_postgres_exactly_once_connector_on_kafka_killed_five_times_ends_with_one_row_per_record(
    kafka_cluster: KafkaCluster,
    kafka_connectors: Connectors,
    pg_target: PostgresTarget,
    rng: Seeded,  # noqa: F811
) -> None:
    # Given 30,000 orders in a Kafka topic and an exactly-once append connector on it
    address, total = kafka_cluster.address, 30_000
    topic, name = kafka_cluster.name("orders"), kafka_cluster.name("orders-pg-eos")
    with Admin(address) as admin:
        admin.create_topic(topic, PARTITIONS)
    ends = produce(address, topic, (order(seq) for seq in range(total)))
    config = kafka_connectors.config(
        name,
        pg_target,
        [topic],
        {"insert_mode": "insert", "exactly_once": True, "table": "orders"},
        instance_id=f"{name}-1",
        batch_max_records=SMALL_BATCH,
        **KAFKA_RUNTIME,
    )
    seed = str(rng)

    def stored() -> int:
        """Records the connector stored past (0 before it created its offsets table)."""
        try:
            return sum(pg_target.stored_offsets(name).values())
        except psycopg.errors.UndefinedTable:
            return 0

    # When the connector is SIGKILLed five times at random points while it sinks them
    thresholds = sorted(rng.sample(range(total // 20, total * 3 // 4), KILLS))
    process = kafka_connectors.start("postgres", config)
    at_kill = []
    for threshold in thresholds:
        wait_until(f"{threshold} rows stored ({seed})", stored, threshold.__le__, 90)
        time.sleep(rng.uniform(0, 0.05))
        process.kill()
        at_kill.append(stored())
        process = kafka_connectors.start("postgres", config)

    # Then every kill hit a connector with records still to write ...
    assert all(n < total for n in at_kill), (seed, at_kill)
    # ... and the table ends with exactly one row per record, its offsets at the topic's end
    wait_until(f"{total} rows ({seed})", pg_target.count, lambda n: n >= total, 90)
    assert pg_target.count() == total, seed
    assert len(set(pg_target.origins())) == total, seed
    seqs = pg_target.query("SELECT count(DISTINCT (value->>'seq')::int), min((value->>'seq')::int) FROM orders")
    assert seqs == [(total, 0)], seed
    assert pg_target.stored_offsets(name) == ends, seed
    # ... and the group's commits on Kafka catch up with it
    wait_until("the group's commits on Kafka", lambda: committed(address, name), ends.__eq__, 60)
    assert process.terminate() == 0, process.log()


def test_a_refused_record_on_kafka_is_dead_lettered_to_name_dlq_and_replayed_once_by_the_cli(
    kafka_cluster: KafkaCluster, kafka_connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given a Postgres connector on Kafka writing into a table that refuses orders of quantity 0
    address = kafka_cluster.address
    topic, name = kafka_cluster.name("orders"), kafka_cluster.name("orders-pg")
    with Admin(address) as admin:
        admin.create_topic(topic, 2)
    config = kafka_connectors.config(name, pg_target, [topic], {"table": "orders"}, **KAFKA_RUNTIME)
    process = kafka_connectors.start("postgres", config)
    produce(address, topic, [order(0)])
    wait_until("the table", pg_target.count, lambda n: n == 1, 60)
    check = sql.SQL("ALTER TABLE {} ADD CONSTRAINT positive_quantity CHECK ((value->>'quantity')::int > 0)")
    pg_target.query(check.format(pg_target.target))

    # When an order of quantity 0 arrives between two good ones
    key, value = order(1)
    bad = json.loads(value) | {"quantity": 0}
    produce(address, topic, [order(2)])
    with Producer(address) as producer:
        refused = producer.send(topic, json.dumps(bad).encode(), key).result(30)
    produce(address, topic, [order(3)])

    # Then it lands in <name>.dlq on the same Kafka cluster, naming the violated constraint
    (letter,) = read(address, f"{name}.dlq", 1, 60)
    assert b"positive_quantity" in dict(letter.headers or ())["dlq.error.message"]
    wait_until("the good orders", pg_target.count, lambda n: n == 3)
    # ... and `logsvc dlq list` shows it from Kafka
    listed = logsvc(address, "dlq", "list", name, "--output", "json")
    assert listed.returncode == 0, listed.stderr
    assert [d["source"]["topic"] for d in json.loads(listed.stdout)] == [topic]

    # ... and `logsvc records status` says the connector processed it by dead-lettering it
    status = logsvc(
        address, "records", "status", topic, "-p", str(refused.partition), "--offset", str(refused.offset), "-o", "json"
    )
    assert status.returncode == 0, status.stderr
    assert [(d["connector"], d["dlq_offset"]) for d in json.loads(status.stdout)["dead_letters"]] == [(name, 0)]

    # When the table is repaired and the dead letter replayed
    pg_target.query(sql.SQL("ALTER TABLE {} DROP CONSTRAINT positive_quantity").format(pg_target.target))
    replayed = logsvc(address, "dlq", "replay", name, "--offset", "0", "--output", "json")
    assert replayed.returncode == 0, replayed.stderr

    # Then the running connector writes it once, and a second replay is refused
    wait_until("the replayed order", pg_target.count, lambda n: n == 4, 60)
    again = logsvc(address, "dlq", "replay", name, "--offset", "0")
    assert again.returncode == 1
    assert "already replayed" in again.stderr
    assert process.terminate() == 0, process.log()


def test_two_connector_processes_on_kafka_share_the_partitions_through_kafkas_group(
    kafka_cluster: KafkaCluster, kafka_connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given a topic of four partitions and two processes of the same connector
    address, total = kafka_cluster.address, 8_000
    topic, name = kafka_cluster.name("orders"), kafka_cluster.name("orders-pg-shared")
    with Admin(address) as admin:
        admin.create_topic(topic, PARTITIONS)
    config = kafka_connectors.config(name, pg_target, [topic], {"table": "orders"}, **KAFKA_RUNTIME)
    first = kafka_connectors.start("postgres", config)
    second = kafka_connectors.start("postgres", config)

    # When records arrive on every partition
    ends = produce(address, topic, (order(seq) for seq in range(total)))

    # Then every record is written once, the two processes each writing a share of them
    wait_until(f"{total} rows", pg_target.count, lambda n: n == total, 60)
    assert len(set(pg_target.origins())) == total
    wait_until("the group's commits", lambda: committed(address, name), ends.__eq__, 60)
    written = [first.counter("records_written"), second.counter("records_written")]
    assert sum(written) == total and all(written), written
    # ... and, where the cluster describes its group members (Tansu does not), two members own
    # two partitions each
    if "group_members" not in kafka_cluster.quirks:
        with Admin(address) as admin:
            shares = [set(m.assignment) for m in admin.describe_group(name).members]
        assert sorted(map(len, shares)) == [2, 2]
        assert set().union(*shares) == {TopicPartition(topic, p) for p in range(PARTITIONS)}
    assert first.terminate() == 0 and second.terminate() == 0
