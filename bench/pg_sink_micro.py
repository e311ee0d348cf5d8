"""The PostgreSQL sink in isolation, no broker: ``PostgresSink.write`` against a running server.

Starts nothing: point ``--dsn`` at a PostgreSQL (e.g. ``python -m tests.fixtures.postgres``
prints the DSN of a throwaway cluster). Builds ``--records`` synthetic ~150-byte JSON orders
(decoded to ``doc`` up front, as the runtime does before a write) and writes them in batches of
``--batch-records``, timing only the writes, in two modes:

1. ``append``: key_mode offset, insert_mode insert, exactly_once (offsets in the same transaction);
2. ``upsert``: key_mode key, insert_mode upsert, keys drawn from ``--keys`` distinct order ids, so
   after the first ``--keys`` records every row is an update.

Each run writes to tables of its own (``bench_<mode>_<pid>_<time>``), dropped afterwards unless
``--keep``. Last line: ``append_rps=N upsert_rps=N``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence

import psycopg
from psycopg import sql

from logsvc_client.records import TopicPartition
from logsvc_connect.postgres import PostgresSink
from logsvc_connect.postgres.config import PostgresConfig
from logsvc_connect.sink import SinkRecord
from logsvc_connect.values import decode_value

PARTITIONS = 4


def make_records(topic: str, count: int, keys: int) -> list[SinkRecord]:
    records = []
    started_ms = 1_700_000_000_000
    next_offsets = [0] * PARTITIONS
    for i in range(count):
        order_id = i % keys
        value = json.dumps(
            {"order_id": order_id, "symbol": "ACME", "side": "buy" if i % 2 else "sell", "price": 100 + i % 997 / 100,
             "qty": i % 1000, "account": f"acc-{i % 5000:06d}", "venue": "XNAS", "tif": "day",
             "ts": "2024-05-01T12:00:00.000Z"},
            separators=(",", ":"),
        ).encode()  # fmt: skip
        partition = order_id % PARTITIONS
        offset = next_offsets[partition]
        next_offsets[partition] += 1
        key = b"order-%d" % order_id
        records.append(
            SinkRecord(topic, partition, offset, started_ms + i, key, value, None, decode_value(value, "auto"))
        )
    return records


def run(dsn: str, mode: str, records: Sequence[SinkRecord], batch: int, keep: bool) -> float:
    options: dict[str, object] = {"dsn": dsn}
    if mode == "append":
        options.update(key_mode="offset", insert_mode="insert", exactly_once=True, connector="bench")
    else:
        options.update(key_mode="key", insert_mode="upsert")
    sink = PostgresSink(PostgresConfig.from_mapping(options))
    sink.open()
    elapsed = 0.0
    try:
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            offsets: dict[TopicPartition, int] = {}
            for r in chunk:
                offsets[TopicPartition(r.topic, r.partition)] = r.offset + 1
            began = time.perf_counter()
            result = sink.write(chunk, offsets)
            elapsed += time.perf_counter() - began
            assert not result.failed, result.failed
    finally:
        sink.close()
        if not keep:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(records[0].topic)))
    return len(records) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch-records", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=50_000, help="distinct keys in the upsert run")
    parser.add_argument("--mode", choices=["append", "upsert", "both"], default="both")
    parser.add_argument("--keep", action="store_true", help="keep the tables written")
    args = parser.parse_args()
    tag = f"{os.getpid()}_{int(time.time())}"
    results = {}
    for mode in ("append", "upsert") if args.mode == "both" else (args.mode,):
        records = make_records(f"bench_{mode}_{tag}", args.records, args.keys if mode == "upsert" else args.records)
        size = sum(len(r.value or b"") for r in records) / len(records)
        rps = run(args.dsn, mode, records, args.batch_records, args.keep)
        results[mode] = rps
        print(f"{mode}: {args.records} records of ~{size:.0f} B in batches of {args.batch_records}: {rps:,.0f} rows/s")
    print(" ".join(f"{mode}_rps={rps:.0f}" for mode, rps in results.items()))


if __name__ == "__main__":
    main()
