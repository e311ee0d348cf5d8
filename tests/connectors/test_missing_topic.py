"""A connector started before its topic exists (docker compose starts everything at once) waits
for the topic, saying so, instead of exiting; once the topic is created it sinks it."""

from __future__ import annotations

import json
import time

from logsvc_client import Admin, Producer
from tests.conftest import BrokerProcess
from tests.connectors.e2e import Connectors, PostgresTarget, order, wait_until


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
