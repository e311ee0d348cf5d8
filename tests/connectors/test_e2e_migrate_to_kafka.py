"""The migration the product promises: a Postgres connector that ran on logsvc, its topic mirrored
onto Kafka with ``logsvc mirror --groups``, then the same connector config pointed at Kafka goes
on exactly where it stopped: one row per record, none twice, none missing.

Offsets are the same on both clusters here (the source was never trimmed), which is what an
exactly-once connector keyed by offset needs: its table holds the offsets it wrote. Against Tansu
(:mod:`tests.fixtures.kafka`), a real PostgreSQL cluster, processes for broker, connectors and mirror.
"""

from __future__ import annotations

from pathlib import Path

from logsvc_client import Admin
from tests.conftest import BrokerProcess
from tests.connectors.e2e import Connectors, PostgresTarget, order, produce, wait_until
from tests.connectors.test_e2e_kafka import KAFKA_RUNTIME
from tests.fixtures.kafka import KafkaCluster
from tests.mirror.helpers import MirrorProcess, wait_caught_up


def test_an_exactly_once_postgres_connector_moves_from_logsvc_to_kafka_and_goes_on_where_it_stopped(
    broker_process: BrokerProcess,
    connectors: Connectors,
    kafka_cluster: KafkaCluster,
    pg_target: PostgresTarget,
    tmp_path: Path,
) -> None:
    # Given an exactly-once connector that sank part of a topic on logsvc and was stopped
    source, kafka = broker_process.address, kafka_cluster.address
    topic, name = kafka_cluster.name("orders"), kafka_cluster.name("orders-pg")
    with Admin(source) as admin:
        admin.create_topic(topic, 2)
    produce(source, topic, (order(seq) for seq in range(2_000)))
    adapter = {"insert_mode": "insert", "exactly_once": True, "table": "orders"}
    on_logsvc = connectors.start(
        "postgres", connectors.config(name, pg_target, [topic], adapter, batch_max_records=250)
    )
    wait_until("the first rows", pg_target.count, lambda n: n >= 500, 60)
    assert on_logsvc.terminate() == 0, on_logsvc.log()
    written_on_logsvc = pg_target.count()
    # ... and more records arrived on logsvc after it stopped
    produce(source, topic, (order(seq) for seq in range(2_000, 3_000)))

    # When the topic and the connector's group are mirrored onto Kafka
    state = tmp_path / "mirror"
    mirror = MirrorProcess().start(
        "--from", source, "--to", kafka, "--topics", topic, "--groups", name, "--state-dir", str(state),
        "--group-interval-ms", "200",
    )  # fmt: skip
    try:
        wait_caught_up(state, source, kafka)
        with Admin(source) as admin:
            on_source = {tp.partition: c.offset for tp, c in admin.committed_offsets(name).items()}
        with Admin(kafka) as admin:
            wait_until(
                "the group's offsets on Kafka",
                lambda: {tp.partition: c.offset for tp, c in admin.committed_offsets(name).items()},
                on_source.__eq__,
                60,
            )
    finally:
        assert mirror.terminate() == 0, mirror.stderr_text()

    # ... and the same connector is started against Kafka
    on_kafka = Connectors(tmp_path / "on-kafka", kafka)
    (tmp_path / "on-kafka").mkdir()
    try:
        process = on_kafka.start(
            "postgres", on_kafka.config(name, pg_target, [topic], adapter, batch_max_records=250, **KAFKA_RUNTIME)
        )
        # Then it writes the rest: every record once, the table's offsets at the topic's end
        wait_until("every row", pg_target.count, lambda n: n >= 3_000, 90)
        assert pg_target.count() == 3_000, written_on_logsvc
        seqs = pg_target.query("SELECT count(DISTINCT (value->>'seq')::int), min((value->>'seq')::int) FROM orders")
        assert seqs == [(3_000, 0)]
        assert sum(pg_target.stored_offsets(name).values()) == 3_000
        assert process.terminate() == 0, process.log()
    finally:
        on_kafka.close()
