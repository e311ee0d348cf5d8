"""Where the time of one acknowledged single-record produce goes: the floors under it, measured in
the same run, each as p50/p90/p99 over ``--samples`` calls in ``--rounds`` interleaved rounds.

1. ``lmdb_commit``: one small put and an fsync'd commit straight into LMDB (py-lmdb, the broker's
   flags, a temporary directory beside the broker's): the storage floor;
2. ``rpc``: WhoAmI, a call that does nothing, through a plain gRPC stub to the broker it starts
   (fsync durability): the gRPC floor of this client and server;
3. ``stub_produce``: Produce of a one-record batch through the same stub (not idempotent):
   gRPC + the broker's produce path + the commit, no client library;
4. ``send``: ``Producer(linger_ms=0).send(...).result()``, idempotent, as ``bench/produce_fetch.py``
   step 3 does; ``send_plain`` the same with ``enable_idempotence=False``;
5. ``rpc_asyncio`` and ``stub_produce_asyncio``: 2. and 3. against a second broker started with
   ``LOGSVC_EVENT_LOOP=asyncio`` (the standard library's loop instead of uvloop, the default), so
   what the loop is worth is measured in the same run.

``send - stub_produce`` is the client library's share, ``stub_produce - rpc - lmdb_commit`` the
broker's own produce path (validation, the hop to the storage writer and back, its Python work).
The broker's CPU per produce call (all its threads, /proc) is printed for ``stub_produce`` and
``stub_produce_asyncio``.

Last line: ``lmdb_commit_p50_ms=X rpc_p50_ms=X stub_produce_p50_ms=X send_p50_ms=X send_p99_ms=X
send_plain_p50_ms=X broker_cpu_us_per_produce=N rpc_asyncio_p50_ms=X stub_produce_asyncio_p50_ms=X
broker_cpu_us_per_produce_asyncio=N`` (with ``--server``, the broker's CPU and the asyncio broker
are left out).
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


def stub_calls(
    address: str, topic: str, value: bytes, stack: contextlib.ExitStack
) -> tuple[Callable[[int], object], Callable[[int], object]]:
    """WhoAmI and a one-record Produce (partition ``i % 4``) through a plain stub to ``address``."""
    stub = pb_grpc.BrokerStub(stack.enter_context(grpc.insecure_channel(address)))

    def produce(i: int) -> None:
        now = time.time_ns() // 1_000_000
        batch = encode_batch([[now, b"key-%d" % i, value, None]], now)
        stub.Produce(pb.ProduceRequest(topic=topic, batches=[pb.PartitionBatch(partition=i % 4, batch=batch)]))

    return (lambda i: stub.WhoAmI(pb.WhoAmIRequest())), produce


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="measure an already running broker at HOST:PORT")
    parser.add_argument("--samples", type=int, default=3_000, help="calls of each kind, over all rounds")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--value-bytes", type=int, default=100)
    args = parser.parse_args()
    value = os.urandom(args.value_bytes // 2 + 1).hex().encode()[: args.value_bytes]
    per_round = max(1, args.samples // args.rounds)
    topic = f"latency-{os.getpid()}"
    cpu_s: dict[str, float] = {}  # the broker's CPU over the calls of a kind, for the stub produces
    with contextlib.ExitStack() as stack:
        raw_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="logsvc-bench-raw-"))
        env = lmdb.open(raw_dir, map_size=1 << 30, max_dbs=4, sync=True)
        stack.callback(env.close)
        db = env.open_db(b"batches")
        brokers: dict[str, BrokerOnDir] = {}
        if args.server:
            address = args.server
        else:
            for loop in ("default", "asyncio"):
                own = BrokerOnDir(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="logsvc-bench-")),
                    env={} if loop == "default" else {"LOGSVC_EVENT_LOOP": loop},
                )
                stack.callback(own.close)
                brokers[loop] = own
            address = brokers["default"].address
        for broker_address in [b.address for b in brokers.values()] or [address]:
            with Admin(broker_address) as admin:
                admin.create_topic(topic, 4)
        producer = stack.enter_context(Producer(address, linger_ms=0))
        plain = stack.enter_context(Producer(address, linger_ms=0, enable_idempotence=False))
        offset = 0

        def commit(i: int) -> None:
            with env.begin(write=True, db=db) as txn:
                txn.put((offset + i).to_bytes(8, "big"), value)

        rpc, stub_produce = stub_calls(address, topic, value, stack)
        calls: dict[str, Callable[[int], object]] = {
            "lmdb_commit": commit,
            "rpc": rpc,
            "stub_produce": stub_produce,
            "send": lambda i: producer.send(topic, value, b"key-%d" % i).result(),
            "send_plain": lambda i: plain.send(topic, value, b"key-%d" % i).result(),
        }
        cpu_of = {"stub_produce": brokers["default"]} if brokers else {}
        if brokers:
            calls["rpc_asyncio"], calls["stub_produce_asyncio"] = stub_calls(
                brokers["asyncio"].address, topic, value, stack
            )
            cpu_of["stub_produce_asyncio"] = brokers["asyncio"]
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():  # warm up: connections, first transactions
            timed_ms(call, 50)
        offset = 1_000
        for _ in range(args.rounds):
            for name, call in calls.items():
                measured = cpu_of.get(name)
                before = cpu_seconds(measured.pid) if measured else 0.0
                samples[name] += timed_ms(call, per_round)
                if measured:
                    cpu_s[name] = cpu_s.get(name, 0.0) + cpu_seconds(measured.pid) - before
                offset += per_round
    for name, values in samples.items():
        values.sort()
        print(
            f"{name:20s} p50 {percentile(values, 0.5):.3f} p90 {percentile(values, 0.9):.3f} "
            f"p99 {percentile(values, 0.99):.3f} ms ({len(values)} calls)",
            file=sys.stderr,
        )
    p50 = {name: percentile(values, 0.5) for name, values in samples.items()}
    line = (
        f"lmdb_commit_p50_ms={p50['lmdb_commit']:.3f} rpc_p50_ms={p50['rpc']:.3f} "
        f"stub_produce_p50_ms={p50['stub_produce']:.3f} send_p50_ms={p50['send']:.3f} "
        f"send_p99_ms={percentile(samples['send'], 0.99):.3f} send_plain_p50_ms={p50['send_plain']:.3f}"
    )
    if brokers:
        line += (
            f" broker_cpu_us_per_produce={cpu_s['stub_produce'] / len(samples['stub_produce']) * 1e6:.0f}"
            f" rpc_asyncio_p50_ms={p50['rpc_asyncio']:.3f}"
            f" stub_produce_asyncio_p50_ms={p50['stub_produce_asyncio']:.3f}"
            " broker_cpu_us_per_produce_asyncio="
            f"{cpu_s['stub_produce_asyncio'] / len(samples['stub_produce_asyncio']) * 1e6:.0f}"
        )
    print(line)


if __name__ == "__main__":
    main()
