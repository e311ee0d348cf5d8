"""Market-orders demo: produce orders keyed by symbol and watch them arrive in PostgreSQL and MongoDB.

Produces ``--orders`` (100,000) market orders — ``{"order_id", "symbol", "side", "price",
"quantity", "timestamp"}``, keyed by symbol so each symbol's orders stay in order on one
partition — to topic ``orders`` (created with 6 partitions when missing), with the client
library's Producer. Once a second it prints the orders produced per second, the rows in PostgreSQL
and documents in MongoDB with their rates, and each connector group's lag (``Admin.describe_group``),
until every order is written: the groups' lag is 0 after the last order was produced.

With docker compose (the connectors already run there, configured by ``postgres.toml`` and
``mongo.toml`` next to this file)::

    docker compose up -d --build
    python connectors/examples/market_orders.py --server 127.0.0.1:50051 \\
        --pg-dsn "host=127.0.0.1 user=logsvc password=logsvc dbname=logsvc" \\
        --mongo-uri mongodb://127.0.0.1:27017 --mongo-database logsvc

Without compose, against a broker and databases of your own, ``--start-connectors`` runs the
connectors itself: ``logsvc connect postgres|mongo`` subprocesses with the example configs,
pointed at ``--server``, ``--topic`` and the databases by ``LOGSVC_CONNECT_*`` variables (their
logs in a temporary directory), stopped with SIGTERM at the end. Without ``--pg-dsn``/``--mongo-uri`` the
demo only produces and follows the lag of the groups ``orders-pg`` and ``orders-mongo``.

Exit status: 0 when every order is written, 1 on ``--timeout-s``, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
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

from logsvc_client import Admin, Producer
from logsvc_client.errors import GroupNotFound, LogsvcError, TopicAlreadyExists

EXAMPLES = Path(__file__).resolve().parent
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
    """One database and the connector (consumer group) writing into it, sampled on a thread of its
    own (a busy database answers slowly; the once-a-second report must not wait for it)."""

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
        with Admin(server) as admin:
            while not self.stopped.wait(0.25):
                self.rows = self.count()
                try:
                    self.lag = group_lag(admin, self.group, topic, partitions)
                except LogsvcError:
                    self.lag = None


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

        with tempfile.TemporaryDirectory(prefix="market-orders-") as tmp:
            if args.start_connectors:
                for sink in sinks:
                    sink.process = start_connector(sink.label, sink.group, args, Path(tmp))
                    sink.log_path = Path(tmp) / f"{sink.label}.log"
                print(f"started {len(sinks)} connector(s); their logs are in {tmp}", flush=True)
            try:
                return watch(args, partitions, sinks)
            finally:
                for sink in sinks:
                    if sink.process is not None:
                        stop_connector(sink.process)


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("LOGSVC_SERVER", "127.0.0.1:50051"),
                        help="broker address [default: $LOGSVC_SERVER or 127.0.0.1:50051]")  # fmt: skip
    parser.add_argument("--orders", type=int, default=100_000, help="orders to produce [100,000]")
    parser.add_argument("--rate", type=float, default=0, help="orders per second; 0 = as fast as possible")
    parser.add_argument("--topic", default="orders")
    parser.add_argument("--partitions", type=int, default=6, help="partitions when the topic is created [6]")
    parser.add_argument("--pg-dsn", help="PostgreSQL to count rows in (libpq DSN)")
    parser.add_argument("--pg-table", help="table of the topic [the topic's name]")
    parser.add_argument("--pg-connector", default="orders-pg", help="the Postgres connector's name [orders-pg]")
    parser.add_argument("--mongo-uri", help="MongoDB to count documents in")
    parser.add_argument("--mongo-database", default="logsvc")
    parser.add_argument("--mongo-connector", default="orders-mongo", help="the Mongo connector's name [orders-mongo]")
    parser.add_argument("--start-connectors", action="store_true",
                        help="run the connectors for --pg-dsn / --mongo-uri as subprocesses")  # fmt: skip
    parser.add_argument("--timeout-s", type=float, default=600)
    args = parser.parse_args(argv)
    if args.start_connectors and not (args.pg_dsn or args.mongo_uri):
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
