"""A connector started before its topic exists (docker compose starts everything at once), or
before its broker listens, waits for them, saying so, instead of exiting; once the topic is
created it sinks it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from logsvc_client import Admin, Producer
from tests.conftest import BrokerProcess
from tests.connectors.e2e import Connectors, PostgresTarget, create_topic, order, produce, wait_until
from tests.fixtures.ports import free_port


def test_a_connector_started_before_its_topic_waits_for_it_then_sinks_it(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given a Postgres connector for a topic nobody has created yet
    address = broker_process.address
    process = connectors.start("postgres", connectors.config("orders-pg", pg_target, ["orders"]))

    # Then it keeps running, saying once that it waits for the topic
    wait_until("the waiting line", process.log, lambda log: "topic 'orders' does not exist yet" in log)
    time.sleep(0.5)
    assert process.alive(), process.log()
    assert process.log().count("does not exist yet") == 1

    # When the topic is created and records arrive
    with Admin(address) as admin:
        admin.create_topic("orders", 2)
    with Producer(address, linger_ms=0) as producer:
        for seq in range(3):
            producer.send("orders", order(seq)[1], order(seq)[0])

    # Then it sinks them, and stops cleanly
    wait_until("the rows", pg_target.count, lambda n: n == 3, 30)
    assert sorted(json.loads(v)["seq"] for (v,) in pg_target.query("SELECT value::text FROM orders")) == [0, 1, 2]
    assert process.terminate() == 0, process.log()


def test_sigterm_while_waiting_for_the_topic_exits_cleanly(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    process = connectors.start("postgres", connectors.config("orders-pg", pg_target, ["nothing-yet"]))
    wait_until("the waiting line", process.log, lambda log: "does not exist yet" in log)
    assert process.terminate() == 0, process.log()


def test_a_connector_started_before_its_broker_waits_for_it_then_sinks_its_topic(
    tmp_path: Path, pg_target: PostgresTarget
) -> None:
    # Given a Postgres connector whose broker does not listen yet
    address = f"127.0.0.1:{free_port()}"
    connectors = Connectors(tmp_path, address)
    broker = BrokerProcess(tmp_path / "data")
    try:
        process = connectors.start("postgres", connectors.config("orders-pg", pg_target, ["orders"]))

        # Then it keeps running, saying that it waits for the broker
        wait_until("the waiting line", process.log, lambda log: "cannot reach the broker yet" in log)
        assert process.alive(), process.log()

        # When the broker starts, the topic is created and records arrive
        broker.start(listen=address)
        create_topic(address, "orders", 2)
        produce(address, "orders", (order(seq) for seq in range(100)))

        # Then it sinks them, and stops cleanly
        wait_until("the rows", pg_target.count, lambda n: n == 100, 30)
        assert process.terminate() == 0, process.log()
    finally:
        connectors.close()
        broker.kill()
