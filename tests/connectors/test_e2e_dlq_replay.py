"""End to end: a record the table refused is dead-lettered; once the table is repaired,
`logsvc dlq replay` puts it back on its source partition and the running connector writes it."""

from __future__ import annotations

import json
import subprocess
import sys

from psycopg import sql

from tests.conftest import BrokerProcess
from tests.connectors.e2e import Connectors, PostgresTarget, create_topic, dead_letters, order, produce, wait_until


def logsvc(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "--server", address, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_dead_lettered_record_replayed_after_the_table_is_repaired_lands_in_the_table(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given a Postgres connector writing orders into a table whose owner added a rule that
    # refuses orders of quantity 0
    name, address = "orders-pg", broker_process.address
    create_topic(address, "orders", 2)
    process = connectors.start("postgres", connectors.config(name, pg_target, ["orders"]))
    produce(address, "orders", [order(0)])
    wait_until("the table", pg_target.count, lambda n: n == 1)
    check = sql.SQL("ALTER TABLE {} ADD CONSTRAINT positive_quantity CHECK ((value->>'quantity')::int > 0)")
    pg_target.query(check.format(pg_target.target))

    # When an order of quantity 0 arrives between two good ones
    key, value = order(1)
    bad = json.loads(value) | {"quantity": 0}
    produce(address, "orders", [order(2), (key, json.dumps(bad).encode()), order(3)])

    # Then it is dead-lettered naming the violated constraint, and the good ones are written
    letters = wait_until("the dead letter", lambda: dead_letters(address, name), lambda d: len(d) == 1)
    headers = dict(letters[0].headers or ())
    assert b"positive_quantity" in headers["dlq.error.message"]
    wait_until("the good orders", pg_target.count, lambda n: n == 3)

    # When the table is repaired and the dead letter replayed
    pg_target.query(sql.SQL("ALTER TABLE {} DROP CONSTRAINT positive_quantity").format(pg_target.target))
    replayed = logsvc(address, "dlq", "replay", name, "--offset", "0", "--output", "json")
    assert replayed.returncode == 0, replayed.stderr

    # Then the running connector writes it: the order of quantity 0 is in the table
    wait_until("the replayed order", pg_target.count, lambda n: n == 4)
    quantities = pg_target.query(sql.SQL("SELECT value->>'quantity' FROM {}").format(pg_target.target))
    assert ("0",) in quantities
    # And a second replay is refused, so it cannot land twice by accident
    again = logsvc(address, "dlq", "replay", name, "--offset", "0")
    assert again.returncode == 1
    assert "already replayed" in again.stderr
    assert process.terminate() == 0
