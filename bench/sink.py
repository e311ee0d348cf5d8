"""Sink benchmark: ~150-byte JSON orders from a real broker into PostgreSQL and MongoDB through
real connector processes, against a raw ``insert_many`` of the same documents.

Starts what it is not given: a broker (``logsvc serve`` on a temporary directory, fsync
durability; else ``--server``), a PostgreSQL cluster (``tests.fixtures.postgres.PostgresCluster``,
fsync on; else ``--pg-dsn``) and nx-27017 (``tests.fixtures.mongo.MongoServer``; else
``--mongo-uri``). Produces ``--records`` orders once, to a topic of ``--partitions`` partitions,
keyed by order id with ``--upsert-keys`` distinct ids (each id comes back every ``--upsert-keys``
orders, so consecutive batches hold no repeats and an upsert run updates real rows). Then each run
is one connector — ``logsvc connect postgres|mongo`` as a subprocess, exactly what a user runs,
default batching (``batch_max_records = 10000``), a consumer group of its own starting at the
earliest offset — preceded, for PostgreSQL, by the raw COPY limit:

0. ``pg_raw_copy``: the rows the ``pg_append`` run stores (every record of the topic, jsonb, as
   the connector encodes them), built before the clock starts, COPYed (binary, ``write_row``) in
   batches of 10,000 rows, one transaction each, into a fresh table created by the connector's own
   DDL (same columns, same primary key), on the same server;
1. ``pg_append``: jsonb, ``key_mode = "offset"``, ``insert_mode = "insert"``, ``exactly_once``
   (the offsets in the same transaction as the rows);
2. ``pg_upsert``: jsonb, ``key_mode = "key"``, ``insert_mode = "upsert"``: the first
   ``--upsert-keys`` orders insert, every later one updates its order's row;
3. ``mongo``: the defaults (``id_mode = "offset"``, ``write_model = "replace"``), ``j: true``;
4. ``mongo_raw_insert_many``: the documents that run stored (same ``_id`` and ``_logsvc``
   fields), built before the clock starts, sent with ``insert_many(ordered=False)`` in batches of
   10,000 into a fresh database of the same server with the same write concern.

The clock of a connector run starts when the broker shows the group's member holding its
partitions (polled every 10 ms) — interpreter start-up and joining the group are a constant cost,
printed apart as "start-up" — and stops when the group's committed offsets reach the end of the
topic, which the runtime commits only after the database write is durable. Each run ends by
checking the table/collection holds what it should (and SIGTERM). The CPU the connector process
spent while the clock ran (user + system, from ``/proc``) is printed per record for each run.
``--only pg|pg_append|mongo`` runs only those parts (``pg_append``: the raw COPY and the append
run). Last line (also on stderr; a run not made reads 0)::

    pg_raw_copy_rps=N pg_append_rps=N pg_upsert_rps=N mongo_rps=N mongo_raw_insert_many_rps=N
    pg_append_share_of_copy=NN% pg_append_cpu_us_per_record=N.N mongo_server=nx-27017|mongodb|skipped
    pg_server=own-pg15-fsync|given broker=logsvc:own|logsvc:given durability=fsync

(``mongo_server`` says which MongoDB the mongo figures come from: nx-27017, started here, is a far
slower server than MongoDB, so its figures are only comparable with each other.)

Targets on the 2-core reference machine: pg append >= 150,000 rows/s and >= 85% of the raw COPY
measured in the same run, upsert >= 60,000 rows/s, mongo >= 80% of the raw insert_many rate
measured in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures: the servers to start

import psycopg
import pymongo
from bson import DatetimeMS
from own_broker import broker
from psycopg import sql
from psycopg.types.string import BytesBinaryDumper
from pymongo.write_concern import WriteConcern

from logsvc_client import Admin, Consumer, Producer, Record
from logsvc_client.errors import GroupNotFound
from logsvc_connect.postgres.config import PostgresConfig
from logsvc_connect.postgres.rows import JSONB_V1, PG_EPOCH_MS
from logsvc_connect.postgres.schema import TableLayout
from logsvc_connect.values import decode_value

TOPIC = "orders"
RAW_BATCH_RECORDS = 10_000
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "INTC", "ORCL", "IBM", "NFLX")


def order(seq: int, keys: int) -> tuple[bytes, bytes]:
    """(key, value) of order ``seq``: ~150 bytes of JSON, keyed by its order id (``seq % keys``)."""
    order_id = seq % keys
    value = {
        "order_id": order_id,
        "seq": seq,
        "symbol": SYMBOLS[order_id % len(SYMBOLS)],
        "side": "buy" if seq % 2 else "sell",
        "price": round(100 + (seq % 9973) / 100, 2),
        "quantity": 1 + seq % 500,
        "account": f"acc-{seq % 5000:06d}",
        "venue": "XNAS",
        "ts": "2024-05-01T12:00:00.000Z",
    }
    return b"order-%d" % order_id, json.dumps(value, separators=(",", ":")).encode()


# -- the servers ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres(dsn: str | None) -> Iterator[str]:
    if dsn:
        yield dsn
        return
    from tests.fixtures.postgres import PostgresCluster

    cluster = PostgresCluster().init()
    try:
        cluster.start()
        yield cluster.fresh_database("bench")
    finally:
        cluster.destroy()


@contextlib.contextmanager
def mongo(uri: str | None) -> Iterator[str]:
    if uri:
        yield uri
        return
    from tests.fixtures.mongo import MongoServer

    server = MongoServer()
    try:
        server.start()
        yield server.uri
    finally:
        server.close()


# -- one connector run ---------------------------------------------------------------------------------


def toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml, value)) + "]"
    return json.dumps(value)


class Run(NamedTuple):
    """One connector run over the whole topic."""

    records_per_s: float  # while it held the partitions
    startup_s: float  # from spawning the process to holding the partitions
    cpu_us_per_record: float  # the connector process's user + system CPU while the clock ran


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def run_connector(
    kind: str,
    name: str,
    server: str,
    adapter: Mapping[str, Any],
    total: int,
    directory: Path,
    runtime_extra: Mapping[str, Any] | None = None,
    from_first_commit: bool = False,
) -> Run:
    """Run one connector over the whole topic (``runtime_extra``: more runtime settings). The
    clock starts when a member holds the partitions, or with ``from_first_commit`` at the group's
    first commit (the records before it not counted): the one start both clusters can show, as
    some do not list a group's members (Tansu)."""
    config = directory / f"{name}.toml"
    runtime = {"name": name, "server": server, "topics": [TOPIC], "value_format": "json", **(runtime_extra or {})}
    lines = [f"{k} = {toml(v)}" for k, v in runtime.items()] + [f"[{kind}]"]
    config.write_text("\n".join(lines + [f"{k} = {toml(v)}" for k, v in adapter.items()]) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSVC_CONNECT_")}
    cmd = [sys.executable, "-m", "logsvc.cli", "connect", kind, "--config", str(config), "--log-level", "WARNING"]
    spawned = time.perf_counter()
    with (directory / f"{name}.log").open("wb") as log, Admin(server) as admin:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        try:
            joined = wait(
                (lambda: _committed(admin, name) > 0)
                if from_first_commit
                else (lambda: _holds_partitions(admin, name)),
                process,
                directory / f"{name}.log",
                60,
            )
            cpu_at_join, before = cpu_s(process.pid), _committed(admin, name)
            wait(lambda: _committed(admin, name) >= total, process, directory / f"{name}.log", 3600)
            finished = time.perf_counter()
            cpu = cpu_s(process.pid) - cpu_at_join
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    return Run((total - before) / (finished - joined), joined - spawned, cpu * 1e6 / (total - before))


def wait(done: Any, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> float:
    """Poll ``done()`` every 10 ms; the time it first held. Exits when the connector dies."""
    deadline = time.perf_counter() + timeout_s
    while not done():
        if process.poll() is not None:
            raise SystemExit(f"the connector exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out after {timeout_s} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.01)
    return time.perf_counter()


def _holds_partitions(admin: Admin, group: str) -> bool:
    try:
        description = admin.describe_group(group)
    except GroupNotFound:
        return False
    return any(member.assignment for member in description.members)


def _committed(admin: Admin, group: str) -> int:
    return sum(c.offset for c in admin.committed_offsets(group).values())


# -- the runs ------------------------------------------------------------------------------------------


def produce(server: str, total: int, partitions: int, keys: int) -> float:
    with Admin(server) as admin:
        admin.create_topic(TOPIC, partitions)
    size = 0
    with Producer(server, linger_ms=5, max_batch_bytes=1 << 20) as producer:
        for seq in range(total):
            key, value = order(seq, keys)
            size += len(value)
            producer.send(TOPIC, value, key)
        producer.flush()
    return size / total


APPEND = {"key_mode": "offset", "insert_mode": "insert", "exactly_once": True}


def postgres_runs(server: str, dsn: str, total: int, keys: int, directory: Path, only_append: bool) -> dict[str, float]:
    results = {"pg_raw_copy": raw_copy(server, dsn, total)}
    print(f"pg_raw_copy: {total:,} rows: {results['pg_raw_copy']:,.0f} rows/s")
    runs = {"pg_append": (APPEND, total)}
    if not only_append:
        runs["pg_upsert"] = ({"key_mode": "key", "insert_mode": "upsert"}, min(keys, total))
    for name, (options, rows) in runs.items():
        table = f"bench_{name}"
        adapter = {"dsn": dsn, "table": table, **options}
        run = run_connector("postgres", name, server, adapter, total, directory)
        with psycopg.connect(dsn, autocommit=True) as conn:
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            conn.execute(f"DROP TABLE {table}")
        assert count is not None and count[0] == rows, f"{name}: {count} rows, expected {rows}"
        results[name] = run.records_per_s
        results[f"{name}_cpu_us"] = run.cpu_us_per_record
        share = f", {run.records_per_s / results['pg_raw_copy']:.0%} of the raw COPY" if name == "pg_append" else ""
        cpu = f"connector CPU {run.cpu_us_per_record:.1f} µs/record"
        print(f"{name}: {total:,} records -> {rows:,} rows: {run.records_per_s:,.0f} records/s"
              f" (start-up {run.startup_s:.2f} s, {cpu}){share}")  # fmt: skip
    return results


def raw_copy(server: str, dsn: str, total: int) -> float:
    """Rows/s of a binary COPY of the rows the ``pg_append`` run stores, built before the clock,
    in batches of RAW_BATCH_RECORDS, one transaction each, into a fresh table of the same shape."""
    layout = TableLayout(PostgresConfig.from_mapping({"dsn": dsn, "connector": "bench_raw", **APPEND}))
    table = "bench_pg_raw_copy"
    rows = [(r.topic, r.partition, r.offset, r.key, JSONB_V1 + r.value, None,
             (r.timestamp_ms - PG_EPOCH_MS) * 1000, None) for r in topic_records(server, total) if r.value]  # fmt: skip
    statement = layout.copy(table)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.adapters.register_dumper(None, BytesBinaryDumper)  # as the connector does
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(layout.target(table)))
        conn.execute(layout.create_table(table))
        started = time.perf_counter()
        for start in range(0, len(rows), RAW_BATCH_RECORDS):
            with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
                copy.set_types(layout.copy_types)
                for row in rows[start : start + RAW_BATCH_RECORDS]:
                    copy.write_row(row)
        rps = len(rows) / (time.perf_counter() - started)
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(layout.target(table))).fetchone()
        conn.execute(sql.SQL("DROP TABLE {}").format(layout.target(table)))
    assert count is not None and count[0] == total, f"pg_raw_copy: {count} rows, expected {total}"
    return rps


def mongo_runs(server: str, uri: str, total: int, directory: Path) -> dict[str, float]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(uri)
    stamp = f"{os.getpid()}_{int(time.time())}"
    try:
        # the raw baseline first: the documents the connector will store, built before the clock
        documents = stored_documents(server, total)
        raw = client.get_database(f"bench_raw_{stamp}", write_concern=WriteConcern(w=1, j=True))["orders"]
        started = time.perf_counter()
        for start in range(0, total, RAW_BATCH_RECORDS):
            raw.insert_many(documents[start : start + RAW_BATCH_RECORDS], ordered=False)
        raw_rps = total / (time.perf_counter() - started)
        client.drop_database(raw.database.name)
        del documents
        print(f"mongo_raw_insert_many: {total:,} documents: {raw_rps:,.0f} docs/s")

        database = f"bench_sink_{stamp}"
        run = run_connector("mongo", "mongo", server, {"uri": uri, "database": database}, total, directory)
        count = client[database]["orders"].count_documents({})
        client.drop_database(database)
        assert count == total, f"mongo: {count} documents, expected {total}"
        print(f"mongo: {total:,} records -> {count:,} documents: {run.records_per_s:,.0f} records/s"
              f" (start-up {run.startup_s:.2f} s, connector CPU {run.cpu_us_per_record:.1f} µs/record)"
              f", {run.records_per_s / raw_rps:.0%} of insert_many")  # fmt: skip
        return {"mongo": run.records_per_s, "mongo_raw_insert_many": raw_rps}
    finally:
        client.close()


def topic_records(server: str, total: int) -> list[Record]:
    """The ``total`` records of the topic."""
    records: list[Record] = []
    with Consumer(server) as consumer:
        consumer.assign_topic(TOPIC)
        while len(records) < total:
            records.extend(consumer.poll(timeout_ms=1000))
    return records


def stored_documents(server: str, total: int) -> list[dict[str, Any]]:
    """Every record of the topic as the Mongo sink stores it in its default mode."""
    documents = []
    for r in topic_records(server, total):
        doc = decode_value(r.value, "json")
        assert isinstance(doc, dict) and r.key is not None
        meta = {"topic": r.topic, "partition": r.partition, "offset": r.offset,
                "timestamp": DatetimeMS(r.timestamp_ms), "key": r.key.decode()}  # fmt: skip
        documents.append({**doc, "_id": f"{r.topic}-{r.partition}-{r.offset}", "_logsvc": meta})
    return documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--upsert-keys", type=int, default=50_000, help="distinct order ids (upsert run)")
    parser.add_argument("--server", help="a running broker (HOST:PORT) instead of starting one")
    parser.add_argument("--pg-dsn", help="a PostgreSQL to use instead of starting a cluster")
    parser.add_argument("--mongo-uri", help="a MongoDB to use instead of starting nx-27017")
    parser.add_argument("--skip", action="append", default=[], choices=["postgres", "mongo"])
    parser.add_argument("--only", choices=["pg", "pg_append", "mongo"],
                        help="run only these parts (pg_append: the raw COPY and the append run)")  # fmt: skip
    args = parser.parse_args()
    skip = set(args.skip)
    if args.only:
        skip |= {"mongo"} if args.only.startswith("pg") else {"postgres"}
    results = {"pg_raw_copy": 0.0, "pg_append": 0.0, "pg_append_cpu_us": 0.0, "pg_upsert": 0.0, "mongo": 0.0,
               "mongo_raw_insert_many": 0.0}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="logsvc-bench-sink-") as tmp, broker(args.server) as server:
        size = produce(server, args.records, args.partitions, args.upsert_keys)
        print(f"produced {args.records:,} orders of ~{size:.0f} bytes to {args.partitions} partitions")
        if "postgres" not in skip:
            with postgres(args.pg_dsn) as dsn:
                only_append = args.only == "pg_append"
                results.update(postgres_runs(server, dsn, args.records, args.upsert_keys, Path(tmp), only_append))
        if "mongo" not in skip:
            with mongo(args.mongo_uri) as uri:
                results.update(mongo_runs(server, uri, args.records, Path(tmp)))
    share = results["pg_append"] / results["pg_raw_copy"] if results["pg_raw_copy"] else 0.0
    mongo_server = "skipped" if "mongo" in skip else "mongodb" if args.mongo_uri else "nx-27017"
    last = (
        " ".join(
            f"{name}_rps={results[name]:.0f}"
            for name in ("pg_raw_copy", "pg_append", "pg_upsert", "mongo", "mongo_raw_insert_many")
        )
        + f" pg_append_share_of_copy={share:.0%} pg_append_cpu_us_per_record={results['pg_append_cpu_us']:.1f}"
        + f" mongo_server={mongo_server} pg_server={'given' if args.pg_dsn else 'own-pg15-fsync'}"
        + f" broker={'logsvc:given' if args.server else 'logsvc:own'} durability=fsync"
    )
    print(last, flush=True)
    print(last, file=sys.stderr)


if __name__ == "__main__":
    main()
