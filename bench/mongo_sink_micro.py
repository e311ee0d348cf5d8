"""The MongoDB sink against a raw ``insert_many`` of the same documents into the same server.

``--records`` JSON orders of ~150 bytes, decoded as the runtime would hand them over, are written
in batches of ``--batch-records``:

1. ``sink``: :meth:`MongoSink.write` (default ``write_model`` replace, ``id_mode`` offset), timed
   per batch including building the write models.
2. ``raw``: ``insert_many(ordered=False)`` of the documents the sink stores (the same ``_id`` and
   ``_logsvc`` fields, built before the clock starts) with the same write concern.

Each run writes into an emptied collection of ``--database``; with ``--rounds`` above 1 the two
alternate which goes first and the medians are compared. The client's CPU time is printed too
(the rest of the wall time is the server's). Last line: ``sink_rps=N raw_rps=N ratio=R``.

    python bench/mongo_sink_micro.py --uri mongodb://127.0.0.1:27017/
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import pymongo
from bson import DatetimeMS
from pymongo.write_concern import WriteConcern

from logsvc_connect.mongo import MongoConfig, MongoSink
from logsvc_connect.sink import SinkRecord
from logsvc_connect.values import decode_value

TOPIC = "orders"


def make_records(count: int) -> list[SinkRecord]:
    records = []
    for i in range(count):
        order = {
            "order_id": 10_000_000 + i,
            "customer": f"cust-{i % 5000:05d}",
            "sku": f"SKU-{i % 997:04d}",
            "qty": i % 7 + 1,
            "price": round(5 + (i % 1000) * 0.37, 2),
            "currency": "EUR",
            "status": "placed",
            "ts": 1_700_000_000_000 + i,
        }
        value = json.dumps(order, separators=(",", ":")).encode()
        key = b"cust-%05d" % (i % 5000)
        doc = decode_value(value, "json")
        records.append(SinkRecord(TOPIC, i % 4, i, 1_700_000_000_000 + i, key, value, None, doc))
    return records


def stored_document(r: SinkRecord) -> dict[str, Any]:
    """What the sink stores for ``r`` in offset id mode."""
    assert isinstance(r.doc, dict) and r.key is not None
    meta = {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": DatetimeMS(r.timestamp_ms),
        "key": r.key.decode(),
    }
    return {**r.doc, "_id": f"{r.topic}-{r.partition}-{r.offset}", "_logsvc": meta}


def bench_sink(args: argparse.Namespace, records: list[SinkRecord]) -> tuple[float, float]:
    config = MongoConfig.from_mapping(
        {"uri": args.uri, "database": args.database, "collection": "bench_sink", "write_model": args.write_model}
    )
    sink = MongoSink(config)
    sink.open()
    pymongo.MongoClient(args.uri)[args.database].drop_collection("bench_sink")
    size = args.batch_records
    wall = cpu = 0.0
    for start in range(0, len(records), size):
        batch = records[start : start + size]
        t0, c0 = time.perf_counter(), time.process_time()
        result = sink.write(batch, {})
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        assert not result.failed, result.failed
    sink.close()
    return len(records) / wall, cpu


def bench_raw(args: argparse.Namespace, records: list[SinkRecord]) -> tuple[float, float]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(args.uri)
    db = client.get_database(args.database, write_concern=WriteConcern(w=1, j=True))
    db.drop_collection("bench_raw")
    collection = db["bench_raw"]
    size = args.batch_records
    batches = [[stored_document(r) for r in records[s : s + size]] for s in range(0, len(records), size)]
    wall = cpu = 0.0
    for docs in batches:
        t0, c0 = time.perf_counter(), time.process_time()
        collection.insert_many(docs, ordered=False)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    client.close()
    return len(records) / wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", required=True, help="MongoDB connection string")
    parser.add_argument("--database", default="logsvc_bench")
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch-records", type=int, default=5_000)
    parser.add_argument("--write-model", default="replace", choices=("replace", "insert", "update"))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    records = make_records(args.records)
    mean_bytes = sum(len(r.value or b"") for r in records) / len(records)
    print(f"{args.records} records of {mean_bytes:.0f} bytes, batches of {args.batch_records}")
    sink_runs, raw_runs = [], []
    for n in range(args.rounds):
        for which in ("raw", "sink") if n % 2 == 0 else ("sink", "raw"):
            if which == "raw":
                rps, cpu = bench_raw(args, records)
                raw_runs.append(rps)
                print(f"raw insert_many: {rps:,.0f} rows/s (client CPU {cpu:.2f} s)")
            else:
                rps, cpu = bench_sink(args, records)
                sink_runs.append(rps)
                print(f"MongoSink ({args.write_model}): {rps:,.0f} rows/s (client CPU {cpu:.2f} s)")
    sink_rps, raw_rps = statistics.median(sink_runs), statistics.median(raw_runs)
    print(f"sink_rps={sink_rps:.0f} raw_rps={raw_rps:.0f} ratio={sink_rps / raw_rps:.2f}")


if __name__ == "__main__":
    main()
