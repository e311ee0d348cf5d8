"""Market-orders demo: produce orders keyed by symbol and watch them arrive in PostgreSQL and MongoDB.

Produces ``--orders`` (100,000) market orders — ``{"order_id", "symbol", "side", "price",
"quantity", "timestamp"}``, keyed by symbol so each symbol's orders stay in order on one
partition — to topic ``market_orders`` (created with 6 partitions when missing), with the client
library's Producer. Once a second it prints the orders produced per second, the rows in PostgreSQL
and documents in MongoDB with their rates, and each connector group's lag (``Admin.describe_group``),
until every order is written: the groups' lag is 0 after the last order was produced. Its names —
topic, table and collection ``market_orders``, connectors ``market-orders-pg`` and
``market-orders-mongo`` — are its own, so it never meets the README's ``orders``.

On this machine, with nothing running (``make demo``): ``--own-servers`` starts what no flag names —
a broker (``logsvc serve`` on a temporary directory and a free port) without ``--server``, a
throwaway PostgreSQL cluster (``tests/fixtures/postgres.py``: initdb from
/usr/lib/postgresql/15/bin) without ``--pg-dsn``, nx-27017 (a MongoDB wire-protocol server, a dev
dependency) without ``--mongo-uri`` — and runs the two connectors; all of it is stopped and removed
at the end, except the connectors' logs::

    make demo                                  # = .venv/bin/python connectors/examples/market_orders.py --own-servers
    make demo ARGS="--orders 20000"

With docker compose, whose connectors already run (configured by ``postgres.toml`` and
``mongo.toml`` next to this file), ``--compose`` points the demo at compose's published ports::

    docker compose up -d --build --wait
    .venv/bin/python connectors/examples/market_orders.py --compose

Against a broker and databases of your own, ``--start-connectors`` runs the connectors itself:
``logsvc connect postgres|mongo`` subprocesses with the example configs, pointed at ``--server``,
``--topic`` and the databases by ``LOGSVC_CONNECT_*`` variables, stopped with SIGTERM at the end.
Their logs go to ``--log-dir`` (a new directory under the system's temporary directory unless
given), which is printed at the start and at the end and left in place. Without
``--pg-dsn``/``--mongo-uri`` the demo only produces and follows the lag of the two groups.

The lag a connector's group shows falls in steps of a batch (up to ``batch_max_records``, 10,000):
a connector commits after each write, so while it writes a batch the rows grow and the lag does not.

Exit status: 0 when every order is written, 1 on ``--timeout-s``, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    from logsvc_client import Admin, Producer
    from logsvc_client.errors import GroupNotFound, LogsvcError, TopicAlreadyExists
except ImportError as e:  # the system's Python, not the one logsvc is installed in
    sys.exit(f"error: {e.name or e}: run the demo with the Python logsvc is installed in: `make demo`, or "
             f".venv/bin/python {' '.join(sys.argv)} (make creates .venv)")  # fmt: skip

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parents[1]
#: what ``--compose`` stands for: docker-compose.yml's published ports and PostgreSQL credentials
COMPOSE = {
    "server": "127.0.0.1:50051",
    "pg_dsn": "host=127.0.0.1 port=5432 user=logsvc password=logsvc dbname=logsvc",
    "mongo_uri": "mongodb://127.0.0.1:27017",
    "mongo_database": "logsvc",
}
#: symbol -> starting price; each order moves its symbol's price by a random walk
SYMBOLS = {
    "AAPL": 189.5, "MSFT": 415.2, "NVDA": 880.1, "AMZN": 178.3, "GOOG": 152.7, "META": 493.0,
    "TSLA": 171.1, "AMD": 160.4, "INTC": 30.9, "ORCL": 121.6, "IBM": 166.2, "NFLX": 610.8,
}  # fmt: skip


def orders(count: int, run_id: str, seed: int = 7) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of ``count`` orders: the key is the symbol, the value ~140 bytes of JSON."""
    rng = random.Random(seed)
    prices = dict(SYMBOLS)
    symbols = list(SYMBOLS)
    for n in range(count):
        symbol = rng.choice(symbols)
        prices[symbol] = price = max(0.01, round(prices[symbol] * (1 + rng.gauss(0, 0.0005)), 2))
        order = {
            "order_id": f"{run_id}-{n}",
            "symbol": symbol,
            "side": rng.choice(("buy", "sell")),
            "price": price,
            "quantity": rng.randrange(1, 100) * 10,
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        yield symbol.encode(), json.dumps(order, separators=(",", ":")).encode()


# -- the sinks ---------------------------------------------------------------------------------------


class SinkWatch(threading.Thread):
    """One database and the connector (consumer group) writing into it, sampled on threads of their
    own: the group's lag on this one, the database's count on another (a busy database answers
    slowly — nx-27017 takes seconds to count while a batch is written — and neither the lag nor the
    once-a-second report may wait for it)."""

    def __init__(self, label: str, group: str, counter: Callable[[], int] | None = None, unit: str = "rows") -> None:
        super().__init__(name=f"sample-{label}", daemon=True)
        self.label, self.group, self.counter, self.unit = label, group, counter, unit
        self.rows = 0  # the latest count (0 without a counter: the database is not reachable from here)
        self.lag: int | None = None  # None: the group has not committed on every partition yet
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.watching: tuple[str, str, int] | None = None  # (server, topic, partitions)
        self.stopped = threading.Event()

    def count(self) -> int:
        if self.counter is None:
            return 0
        try:
            return self.counter()
        except Exception:  # the table not there yet, the database restarting: keep the last figure
            return self.rows

    def run(self) -> None:
        assert self.watching is not None
        server, topic, partitions = self.watching
        counting = threading.Thread(target=self._count_until_stopped, name=f"count-{self.label}", daemon=True)
        counting.start()
        with Admin(server) as admin:
            while not self.stopped.wait(0.25):
                try:
                    self.lag = group_lag(admin, self.group, topic, partitions)
                except LogsvcError:
                    self.lag = None
        counting.join(5)

    def _count_until_stopped(self) -> None:
        while self.counter is not None and not self.stopped.wait(0.25):
            self.rows = self.count()


def postgres_counter(dsn: str, table: str) -> Callable[[], int]:
    import psycopg
    from psycopg import sql

    conn = psycopg.connect(dsn, autocommit=True)
    statement = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))

    def count() -> int:
        try:
            row = conn.execute(statement).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return int(row[0]) if row else 0

    return count


def mongo_counter(uri: str, database: str, collection: str) -> Callable[[], int]:
    import pymongo

    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri, serverSelectionTimeoutMS=3000)
    return client[database][collection].estimated_document_count


def group_lag(admin: Admin, group: str, topic: str, partitions: int) -> int | None:
    """Records of ``topic`` the group has not committed past; None until it has every partition."""
    try:
        description = admin.describe_group(group)
    except GroupNotFound:
        return None
    lags = [p.lag for p in description.partitions if p.topic == topic]
    return sum(lags) if len(lags) == partitions else None


# -- connectors started by the demo ----------------------------------------------------------------


def start_connector(kind: str, group: str, args: argparse.Namespace, directory: Path) -> subprocess.Popen[bytes]:
    """``logsvc connect KIND`` with the example config next to this file, pointed at the demo's
    broker, topic and database through ``LOGSVC_CONNECT_*`` variables (as docker compose does);
    its output goes to ``KIND.log`` in ``directory``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSVC_CONNECT_")}
    env.update(
        LOGSVC_CONNECT_NAME=group,
        LOGSVC_CONNECT_SERVER=args.server,
        LOGSVC_CONNECT_TOPICS=args.topic,
        LOGSVC_CONNECT_METRICS_PORT="-1",  # compose's connectors may hold 9101/9102
    )
    if kind == "postgres":
        env["LOGSVC_CONNECT_POSTGRES_DSN"] = args.pg_dsn
    else:
        env.update(LOGSVC_CONNECT_MONGO_URI=args.mongo_uri, LOGSVC_CONNECT_MONGO_DATABASE=args.mongo_database)
    cmd = [sys.executable, "-m", "logsvc.cli", "connect", kind, "--config", str(EXAMPLES / f"{kind}.toml")]
    with (directory / f"{kind}.log").open("ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)


def stop_connector(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


# -- the run -----------------------------------------------------------------------------------------


class Production(threading.Thread):
    """Sends the orders on a thread of its own (at ``rate`` orders/s when > 0) and counts them."""

    def __init__(self, server: str, topic: str, count: int, rate: float) -> None:
        super().__init__(name="produce", daemon=True)
        self.server, self.topic, self.total, self.rate = server, topic, count, rate
        self.run_id = uuid.uuid4().hex[:8]
        self.sent = 0
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with Producer(self.server, linger_ms=5) as producer:
                started = time.monotonic()
                futures = []
                for key, value in orders(self.total, self.run_id):
                    futures.append(producer.send(self.topic, value, key))
                    self.sent += 1
                    if self.rate > 0 and self.sent % 100 == 0:
                        ahead_s = self.sent / self.rate - (time.monotonic() - started)
                        if ahead_s > 0:
                            time.sleep(ahead_s)
                producer.flush()
            for future in futures:
                future.result()  # raises when an order was not stored
        except BaseException as e:  # reported by the main thread
            self.error = e
        finally:
            self.done.set()


def ensure_topic(admin: Admin, topic: str, partitions: int) -> int:
    with contextlib.suppress(TopicAlreadyExists):
        admin.create_topic(topic, partitions)
        print(f"created topic {topic} with {partitions} partitions", flush=True)
    return len(admin.list_offsets(topic, "latest"))


def report(elapsed_s: float, interval_s: float, production: Production, before: dict[str, int],
           sinks: list[SinkWatch]) -> None:  # fmt: skip
    """One line: orders produced, and per sink its rows, rows/s over the last interval, and lag."""
    produced = production.sent
    parts = [f"{elapsed_s:6.1f}s", f"produced {produced:,} ({(produced - before['produced']) / interval_s:,.0f}/s)"]
    before["produced"] = produced
    for sink in sinks:
        text = sink.label
        if sink.counter is not None:
            rows = sink.rows
            text += f" {rows:,} {sink.unit} ({(rows - before[sink.label]) / interval_s:,.0f}/s)"
            before[sink.label] = rows
        text += f" lag {sink.lag:,}" if sink.lag is not None else f" lag - (group {sink.group}: not on every partition)"
        parts.append(text)
    print("  ".join(parts), flush=True)


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as servers:
        if args.own_servers:
            start_own_servers(args, servers)
        return run_on(args)


def run_on(args: argparse.Namespace) -> int:
    sinks: list[SinkWatch] = []
    if args.pg_dsn:
        table = args.pg_table or args.topic.replace(".", "_").replace("-", "_")
        sinks.append(SinkWatch("postgres", args.pg_connector, postgres_counter(args.pg_dsn, table)))
    if args.mongo_uri:
        counter = mongo_counter(args.mongo_uri, args.mongo_database, args.topic)
        sinks.append(SinkWatch("mongo", args.mongo_connector, counter, unit="docs"))
    with Admin(args.server) as admin:
        partitions = ensure_topic(admin, args.topic, args.partitions)
        if not sinks:  # follow the groups of compose's connectors, when they exist
            for label, group in (("postgres", args.pg_connector), ("mongo", args.mongo_connector)):
                with contextlib.suppress(GroupNotFound):
                    admin.describe_group(group)
                    sinks.append(SinkWatch(label, group))

    if args.start_connectors:
        log_dir = Path(args.log_dir) if args.log_dir else Path(tempfile.mkdtemp(prefix="market-orders-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        for sink in sinks:
            sink.process = start_connector(sink.label, sink.group, args, log_dir)
            sink.log_path = log_dir / f"{sink.label}.log"
        print(f"started {len(sinks)} connector(s); their logs are in {log_dir}", flush=True)
    try:
        return watch(args, partitions, sinks)
    finally:
        for sink in sinks:
            if sink.process is not None:
                stop_connector(sink.process)
        if args.start_connectors:
            print(f"the connectors' logs are in {log_dir} (kept)", flush=True)


# -- servers started by the demo (--own-servers) -----------------------------------------------------


def start_own_servers(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    """Start what no flag names (a broker, PostgreSQL, nx-27017), stopped when ``stack`` closes;
    fill in ``args`` with their addresses and run the connectors."""
    args.start_connectors = True
    if args.server is None:
        args.server = stack.enter_context(own_broker())
        print(f"started a broker on {args.server}", flush=True)
    if args.pg_dsn is None:
        args.pg_dsn = stack.enter_context(own_postgres())
        print(f"started PostgreSQL: {args.pg_dsn}", flush=True)
    if args.mongo_uri is None:
        args.mongo_uri = stack.enter_context(own_mongo())
        print(f"started nx-27017 (MongoDB's wire protocol, not MongoDB) on {args.mongo_uri}", flush=True)


@contextlib.contextmanager
def own_broker() -> Iterator[str]:
    """``logsvc serve`` on a temporary directory and a free port (metrics off); its address."""
    with tempfile.TemporaryDirectory(prefix="market-orders-broker-") as data_dir:
        cmd = [sys.executable, "-m", "logsvc.cli", "serve", "--data-dir", data_dir, "--listen", "127.0.0.1:0",
               "--metrics-port", "-1"]  # fmt: skip
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        address = None
        for line in proc.stderr:
            m = re.search(rb"listening on (\S+:\d+)", line)
            if m:
                address = m.group(1).decode()
                break
        if address is None:
            proc.wait()
            raise SystemExit("error: the demo's broker did not start")
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep its pipe drained
        try:
            yield address
        finally:
            stop_connector(proc)


def repo_fixtures() -> None:
    """The test fixtures that start PostgreSQL and nx-27017 live in the clone's tests/ package."""
    if not (REPO / "tests" / "fixtures").is_dir():
        raise SystemExit("error: --own-servers starts PostgreSQL and nx-27017 with tests/fixtures of a clone: "
                         "run it from a clone, or give --pg-dsn and --mongo-uri")  # fmt: skip
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


@contextlib.contextmanager
def own_postgres() -> Iterator[str]:
    repo_fixtures()
    from tests.fixtures.postgres import PostgresCluster, PostgresError

    try:
        cluster = PostgresCluster().init()
        cluster.start()
    except PostgresError as e:
        raise SystemExit(f"error: cannot start PostgreSQL for the demo (or give --pg-dsn): {e}") from None
    try:
        yield cluster.fresh_database("market_orders")
    finally:
        cluster.destroy()


@contextlib.contextmanager
def own_mongo() -> Iterator[str]:
    repo_fixtures()
    from tests.fixtures.mongo import MongoServer

    server = MongoServer()
    try:
        server.start()
        yield server.uri
    finally:
        server.close()


def watch(args: argparse.Namespace, partitions: int, sinks: list[SinkWatch]) -> int:
    for sink in sinks:
        sink.watching = (args.server, args.topic, partitions)
        sink.rows = sink.count()
        sink.start()
    before = {"produced": 0, **{sink.label: sink.rows for sink in sinks}}
    production = Production(args.server, args.topic, args.orders, args.rate)
    started = last = time.monotonic()
    production.start()
    try:
        while True:
            time.sleep(1.0 - (time.monotonic() - started) % 1.0)  # on the second
            now = time.monotonic()
            report(now - started, now - last, production, before, sinks)
            last = now
            for sink in sinks:
                if sink.process is not None and sink.process.poll() is not None:
                    log = sink.log_path.read_text(errors="replace")[-2000:] if sink.log_path else ""
                    print(f"the {sink.label} connector exited with {sink.process.returncode}:\n{log}", file=sys.stderr)
                    return 1
            if production.error is not None:
                print(f"producing failed: {production.error}", file=sys.stderr)
                return 1
            if production.done.is_set() and all(sink.lag == 0 for sink in sinks):
                for sink in sinks:  # samplers stopped: a last count of its own, showing every order
                    sink.stopped.set()
                    sink.join(5)
                elapsed = now - started
                summary = ", ".join(f"{sink.label} {sink.count():,} {sink.unit}" for sink in sinks if sink.counter)
                print(f"done: {args.orders:,} orders produced and written in {elapsed:.1f} s"
                      f" ({args.orders / elapsed:,.0f} orders/s end to end){'; ' + summary if summary else ''}",
                      flush=True)  # fmt: skip
                return 0
            if now - started > args.timeout_s:
                print(f"timed out after {args.timeout_s} s", file=sys.stderr)
                return 1
    finally:
        for sink in sinks:
            sink.stopped.set()
        for sink in sinks:
            sink.join(5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="make demo runs it with --own-servers; docker compose users run it with --compose.",
    )
    parser.add_argument("--server", help="broker address [default: $LOGSVC_SERVER or 127.0.0.1:50051; "
                        "with --own-servers: a broker of its own]")  # fmt: skip
    parser.add_argument("--orders", type=int, default=100_000, help="orders to produce [100,000]")
    parser.add_argument("--rate", type=float, default=0, help="orders per second; 0 = as fast as possible")
    parser.add_argument("--topic", default="market_orders", help="[market_orders]")
    parser.add_argument("--partitions", type=int, default=6, help="partitions when the topic is created [6]")
    parser.add_argument("--pg-dsn", help="PostgreSQL to count rows in (libpq DSN)")
    parser.add_argument("--pg-table", help="table of the topic [the topic's name, '.' and '-' as '_']")
    parser.add_argument("--pg-connector", default="market-orders-pg", help="the Postgres connector's name "
                        "[market-orders-pg, as in postgres.toml]")  # fmt: skip
    parser.add_argument("--mongo-uri", help="MongoDB to count documents in")
    parser.add_argument("--mongo-database", default="logsvc", help="[logsvc]")
    parser.add_argument("--mongo-connector", default="market-orders-mongo", help="the Mongo connector's name "
                        "[market-orders-mongo, as in mongo.toml]")  # fmt: skip
    parser.add_argument("--start-connectors", action="store_true",
                        help="run the connectors for --pg-dsn / --mongo-uri as subprocesses")  # fmt: skip
    parser.add_argument("--own-servers", action="store_true",
                        help="start a broker, PostgreSQL and nx-27017 for what --server, --pg-dsn and --mongo-uri "
                        "do not name (from this clone's tests/fixtures), removed at the end; implies "
                        "--start-connectors (make demo)")  # fmt: skip
    parser.add_argument("--compose", action="store_true",
                        help="docker compose's published ports and credentials: --server " + COMPOSE["server"]
                        + f" --pg-dsn \"{COMPOSE['pg_dsn']}\" --mongo-uri {COMPOSE['mongo_uri']} --mongo-database "
                        + COMPOSE["mongo_database"] + " (compose runs the connectors)")  # fmt: skip
    parser.add_argument("--log-dir", help="where the connectors it starts write their logs (kept) "
                        "[a new market-orders-* directory in the system's temporary directory]")  # fmt: skip
    parser.add_argument("--timeout-s", type=float, default=600, help="[600]")
    args = parser.parse_args(argv)
    if args.compose:
        if args.own_servers:
            parser.error("--compose and --own-servers exclude each other")
        for key, value in COMPOSE.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    if args.server is None and not args.own_servers:
        args.server = os.environ.get("LOGSVC_SERVER", "127.0.0.1:50051")
    if args.start_connectors and not (args.pg_dsn or args.mongo_uri or args.own_servers):
        parser.error("--start-connectors needs --pg-dsn and/or --mongo-uri")
    if args.orders < 1:
        parser.error("--orders must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except LogsvcError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
