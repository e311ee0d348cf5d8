"""Where the time of one acknowledged single-record produce goes: the floors under it, measured in
the same run, each as p50/p90/p99 over ``--samples`` calls in ``--rounds`` interleaved rounds.

1. ``lmdb_commit``: one small put and an fsync'd commit straight into LMDB (py-lmdb, the broker's
   flags, a temporary directory beside the broker's): the storage floor;
2. ``rpc``: WhoAmI, a call that does nothing, through a plain gRPC stub to the broker it starts
   (fsync durability): the gRPC floor of this client and server;
3. ``stub_produce``: Produce of a one-record batch through the same stub (not idempotent):
   gRPC + the broker's produce path + the commit, no client library;
4. ``send``: ``Producer(linger_ms=0).send(...).result()``, idempotent, as ``bench/produce_fetch.py``
   step 3 does; ``send_plain`` the same with ``enable_idempotence=False``.

``send - stub_produce`` is the client library's share, ``stub_produce - rpc - lmdb_commit`` the
broker's own produce path (validation, the hop to the storage writer and back, its Python work).
The broker's CPU per produce call (all its threads, /proc) is printed for ``stub_produce``.

Last line: ``lmdb_commit_p50_ms=X rpc_p50_ms=X stub_produce_p50_ms=X send_p50_ms=X send_p99_ms=X
send_plain_p50_ms=X broker_cpu_us_per_produce=N`` (with ``--server``, the broker's CPU is left out).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable

import grpc
import lmdb
from own_broker import BrokerOnDir, cpu_seconds

from logsvc_client import Admin, Producer
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.batch import encode_batch


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def timed_ms(call: Callable[[int], object], n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="measure an already running broker at HOST:PORT")
    parser.add_argument("--samples", type=int, default=3_000, help="calls of each kind, over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--value-bytes", type=int, default=100)
    args = parser.parse_args()
    value = os.urandom(args.value_bytes // 2 + 1).hex().encode()[: args.value_bytes]
    per_round = max(1, args.samples // args.rounds)
    samples: dict[str, list[float]] = {k: [] for k in ("lmdb_commit", "rpc", "stub_produce", "send", "send_plain")}
    produce_cpu_s = 0.0
    with contextlib.ExitStack() as stack:
        raw_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="logsvc-bench-raw-"))
        env = lmdb.open(raw_dir, map_size=1 << 30, max_dbs=4, sync=True)
        stack.callback(env.close)
        db = env.open_db(b"batches")
        own = None
        if args.server:
            address = args.server
        else:
            own = BrokerOnDir(stack.enter_context(tempfile.TemporaryDirectory(prefix="logsvc-bench-")))
            stack.callback(own.close)
            address = own.address
        topic = f"latency-{os.getpid()}"
        with Admin(address) as admin:
            admin.create_topic(topic, 4)
        channel = stack.enter_context(grpc.insecure_channel(address))
        stub = pb_grpc.BrokerStub(channel)
        producer = stack.enter_context(Producer(address, linger_ms=0))
        plain = stack.enter_context(Producer(address, linger_ms=0, enable_idempotence=False))
        offset = 0

        def commit(i: int) -> None:
            with env.begin(write=True, db=db) as txn:
                txn.put((offset + i).to_bytes(8, "big"), value)

        def stub_produce(i: int) -> None:
            now = time.time_ns() // 1_000_000
            batch = encode_batch([[now, b"key-%d" % i, value, None]], now)
            stub.Produce(pb.ProduceRequest(topic=topic, batches=[pb.PartitionBatch(partition=i % 4, batch=batch)]))

        calls: dict[str, Callable[[int], object]] = {
            "lmdb_commit": commit,
            "rpc": lambda i: stub.WhoAmI(pb.WhoAmIRequest()),
            "stub_produce": stub_produce,
            "send": lambda i: producer.send(topic, value, b"key-%d" % i).result(),
            "send_plain": lambda i: plain.send(topic, value, b"key-%d" % i).result(),
        }
        for call in calls.values():  # warm up: connections, first transactions
            timed_ms(call, 50)
        offset = 1_000
        for _ in range(args.rounds):
            for name, call in calls.items():
                before = cpu_seconds(own.pid) if own is not None and name == "stub_produce" else 0.0
                samples[name] += timed_ms(call, per_round)
                if own is not None and name == "stub_produce":
                    produce_cpu_s += cpu_seconds(own.pid) - before
                offset += per_round
    for name, values in samples.items():
        values.sort()
        print(
            f"{name:13s} p50 {percentile(values, 0.5):.3f} p90 {percentile(values, 0.9):.3f} "
            f"p99 {percentile(values, 0.99):.3f} ms ({len(values)} calls)",
            file=sys.stderr,
        )
    p50 = {name: percentile(values, 0.5) for name, values in samples.items()}
    cpu = f" broker_cpu_us_per_produce={produce_cpu_s / len(samples['stub_produce']) * 1e6:.0f}" if own else ""
    print(
        f"lmdb_commit_p50_ms={p50['lmdb_commit']:.3f} rpc_p50_ms={p50['rpc']:.3f} "
        f"stub_produce_p50_ms={p50['stub_produce']:.3f} send_p50_ms={p50['send']:.3f} "
        f"send_p99_ms={percentile(samples['send'], 0.99):.3f} send_plain_p50_ms={p50['send_plain']:.3f}{cpu}"
    )


if __name__ == "__main__":
    main()
