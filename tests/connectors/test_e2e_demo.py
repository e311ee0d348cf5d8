"""The market-orders example: its connector configs (as docker compose runs them) and the demo
script, run end to end on a small count against a broker subprocess, PostgreSQL and MongoDB."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from logsvc_connect import app
from tests.conftest import BrokerProcess
from tests.connectors.e2e import MongoTarget, PostgresTarget

EXAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "examples"


@pytest.mark.parametrize(("kind", "group", "port", "variable"), [
    ("postgres", "orders-pg", 9101, "LOGSVC_CONNECT_POSTGRES_DSN"),
    ("mongo", "orders-mongo", 9102, "LOGSVC_CONNECT_MONGO_URI"),
])  # fmt: skip
def test_the_example_configs_take_docker_compose_environment(kind: str, group: str, port: int, variable: str) -> None:
    # Given the environment docker-compose.yml gives the connector
    env = {"LOGSVC_CONNECT_SERVER": "broker:50051", "LOGSVC_CONNECT_METRICS_HOST": "0.0.0.0", variable: "from-env"}
    if kind == "postgres":
        env[variable] = "host=postgres user=logsvc password=logsvc dbname=logsvc"

    # When the example config is loaded with it
    connector = app.load(kind, str(EXAMPLES / f"{kind}.toml"), env)

    # Then the environment wins over the file, and the rest is the example's
    assert (connector.runtime.name, connector.runtime.topics) == (group, ("orders",))
    assert (connector.runtime.server, connector.runtime.metrics_host) == ("broker:50051", "0.0.0.0")
    assert connector.runtime.metrics_port == port
    settings = connector.adapter_config
    assert (settings.dsn if kind == "postgres" else settings.uri) == env[variable]


def test_the_market_orders_demo_runs_both_connectors_until_every_order_is_written(
    broker_process: BrokerProcess, pg_target: PostgresTarget, mongo_target: MongoTarget
) -> None:
    # Given a broker and empty PostgreSQL and MongoDB databases
    # When the demo produces 2,000 orders and starts the two connectors itself
    demo = subprocess.run(
        [sys.executable, str(EXAMPLES / "market_orders.py"), "--server", broker_process.address, "--orders", "2000",
         "--pg-dsn", pg_target.dsn, "--mongo-uri", mongo_target.uri, "--mongo-database", mongo_target.database.name,
         "--start-connectors", "--timeout-s", "60"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    # Then it finishes once both hold every order, having reported progress on the way
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "produced 2,000" in demo.stdout
    assert "done: 2,000 orders" in demo.stdout
    assert pg_target.count() == 2_000
    assert mongo_target.count() == 2_000
    # ... as typed columns keyed by order id in PostgreSQL, and documents by order id in MongoDB
    symbol, side, price, quantity, order_time = pg_target.query(
        "SELECT symbol, side, price, quantity, order_time FROM orders WHERE order_id LIKE '%-0'"
    )[0]
    document = mongo_target.collection.find_one({"_id": {"$regex": "-0$"}})
    assert document is not None
    assert (document["symbol"], document["side"], document["quantity"]) == (symbol, side, quantity)
    assert Decimal(str(document["price"])) == price
    assert document["timestamp"].startswith(order_time.strftime("%Y-%m-%dT%H:%M:%S"))
