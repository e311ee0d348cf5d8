"""The market-orders example: its connector configs (as docker compose runs them) and the demo
script, run end to end on a small count against a broker subprocess, PostgreSQL and MongoDB."""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from logsvc_connect import app
from tests.conftest import BrokerProcess
from tests.connectors.e2e import MongoTarget, PostgresTarget

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "connectors" / "examples"


@pytest.mark.parametrize(("kind", "group", "port", "variable"), [
    ("postgres", "market-orders-pg", 9101, "LOGSVC_CONNECT_POSTGRES_DSN"),
    ("mongo", "market-orders-mongo", 9102, "LOGSVC_CONNECT_MONGO_URI"),
])  # fmt: skip
def test_the_example_configs_take_docker_compose_environment(kind: str, group: str, port: int, variable: str) -> None:
    # Given the environment docker-compose.yml gives the connector
    env = {"LOGSVC_CONNECT_SERVER": "broker:50051", "LOGSVC_CONNECT_METRICS_HOST": "0.0.0.0", variable: "from-env"}
    if kind == "postgres":
        env[variable] = "host=postgres user=logsvc password=logsvc dbname=logsvc"

    # When the example config is loaded with it
    connector = app.load(kind, str(EXAMPLES / f"{kind}.toml"), env)

    # Then the environment wins over the file, and the rest is the example's
    assert (connector.runtime.name, connector.runtime.topics) == (group, ("market_orders",))
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
    assert pg_target.query("SELECT count(*) FROM market_orders") == [(2_000,)]
    collection = mongo_target.database["market_orders"]
    assert collection.count_documents({}) == 2_000
    # ... as typed columns keyed by order id in PostgreSQL, and documents by order id in MongoDB
    symbol, side, price, quantity, order_time = pg_target.query(
        "SELECT symbol, side, price, quantity, order_time FROM market_orders WHERE order_id LIKE '%-0'"
    )[0]
    document = collection.find_one({"_id": {"$regex": "-0$"}})
    assert document is not None
    assert (document["symbol"], document["side"], document["quantity"]) == (symbol, side, quantity)
    assert Decimal(str(document["price"])) == price
    assert document["timestamp"].startswith(order_time.strftime("%Y-%m-%dT%H:%M:%S"))
    # ... and it said where the connectors' logs are, and left them there
    [log_dir] = re.findall(r"their logs are in (\S+)", demo.stdout)
    assert {p.name for p in Path(log_dir).iterdir()} == {"postgres.log", "mongo.log"}
    shutil.rmtree(log_dir)


def test_make_demo_starts_its_own_broker_postgresql_and_mongodb_and_leaves_nothing_running_but_its_logs(
    tmp_path: Path,
) -> None:
    # Given the command line `make demo` runs (make -n prints it without running it)
    args = f"--orders 500 --timeout-s 90 --log-dir {tmp_path / 'logs'}"
    dry = subprocess.run(["make", "-s", "-n", "demo", f"ARGS={args}"], cwd=REPO, capture_output=True, text=True,
                         check=True, timeout=30)  # fmt: skip
    command = dry.stdout.strip().splitlines()[-1]
    assert "market_orders.py --own-servers" in command

    # When it runs (the venv's Python, from the clone's directory) with nothing else given
    demo = subprocess.run(shlex.split(command), cwd=REPO, capture_output=True, text=True, timeout=180, check=False)

    # Then it started a broker, PostgreSQL and nx-27017, and finished with every order in both
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "started a broker on 127.0.0.1:" in demo.stdout and "started PostgreSQL" in demo.stdout
    assert "done: 500 orders" in demo.stdout and "postgres 500 rows, mongo 500 docs" in demo.stdout
    # ... and kept the connectors' logs where it said
    assert f"the connectors' logs are in {tmp_path / 'logs'} (kept)" in demo.stdout
    assert "market-orders-pg" in (tmp_path / "logs" / "postgres.log").read_text()


def test_compose_stands_for_the_published_ports_and_credentials_the_readme_names() -> None:
    # Given the demo's --compose, and the README and compose file it stands for
    spec = importlib.util.spec_from_file_location("market_orders", EXAMPLES / "market_orders.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = module.parse_args(["--compose"])
    readme = " ".join((REPO / "README.md").read_text().split())
    compose = (REPO / "docker-compose.yml").read_text()

    # Then it points at compose's published broker, PostgreSQL and MongoDB, as the README says
    assert (args.server, args.mongo_uri, args.mongo_database) == (
        "127.0.0.1:50051",
        "mongodb://127.0.0.1:27017",
        "logsvc",
    )
    assert f'--pg-dsn "{args.pg_dsn}"' in readme
    assert '"50051:50051"' in compose and '"5432:5432"' in compose and '"27017:27017"' in compose
    assert "POSTGRES_PASSWORD: logsvc" in compose and "password=logsvc" in args.pg_dsn
    assert args.pg_connector == "market-orders-pg" and args.mongo_connector == "market-orders-mongo"
