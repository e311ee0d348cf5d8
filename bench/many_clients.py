"""Many clients at once: do health, admin and produce calls stay fast while 100, 500 and 1,000
consumers long-poll the broker?

For each level N of ``--clients``: N consumers, each on its own connection, long-poll one
partition of a 64-partition topic (``max_wait_ms`` 30 s, asking again as soon as an answer comes),
spread over ``--processes`` client processes (grpc.aio). While they wait, this process, for
``--seconds``:

* produces one record per call (raw Produce, acks fsync'd) to another topic, ``--produce-rate``
  calls a second, timing each call: ``produce_p99_ms``;
* produces one record a second to the polled topic (waking the consumers of that partition);
* calls health Check every 10 ms (``health_p99_ms``) and ListTopics / DescribeTopic every 50 ms
  (``admin_p99_ms``), each with a 3 s deadline (a timeout counts as 3,000 ms).

Then it reads the broker's RSS and thread count from /proc. Runs its own ``logsvc serve``
(default settings) unless ``--server`` is given (then RSS and threads are not read: 0).

One line per level, then the last line (the largest level):
``clients=N health_p99_ms=X produce_p99_ms=Y broker_rss_mb=Z threads=T``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from own_broker import own_broker_process

from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc

POLLED = "bench-polled"
PRODUCED = "bench-produced"
PARTITIONS = 64
TIMEOUT_S = 3.0
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def p99(samples: list[float]) -> float:
    if not samples:
        return 0.0
    return statistics.quantiles(samples, n=100, method="inclusive")[98] if len(samples) > 1 else samples[0]


# -- consumers (in client processes) --------------------------------------------------------------


async def _consume(address: str, partition: int, ready: list[int], stop: asyncio.Event) -> None:
    async with grpc.aio.insecure_channel(address, options=OWN_CONNECTION) as channel:
        stub = pb_grpc.BrokerStub(channel)
        offset = (
            (await stub.ListOffsets(pb.ListOffsetsRequest(topic=POLLED, partitions=[partition]), timeout=30))
            .offsets[0]
            .offset
        )
        ready[0] += 1
        while not stop.is_set():
            request = pb.FetchRequest(
                partitions=[pb.FetchPartition(topic=POLLED, partition=partition, offset=offset)], max_wait_ms=30_000
            )
            try:
                got = await stub.Fetch(request, timeout=60)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.5)
                continue
            offset = got.partitions[0].next_offset


async def _consumers(address: str, first: int, count: int, up: Any, done: Any) -> None:
    """``count`` consumers from partition ``first`` on; ``up`` counts those that have started."""
    stop = asyncio.Event()
    ready = [0]
    tasks = [asyncio.ensure_future(_consume(address, (first + i) % PARTITIONS, ready, stop)) for i in range(count)]
    while not done.is_set():
        up.value = ready[0]
        await asyncio.sleep(0.1)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def consumer_process(address: str, first: int, count: int, up: Any, done: Any) -> None:
    asyncio.run(_consumers(address, first, count, up, done))


# -- the measuring side ---------------------------------------------------------------------------


def timed_loop(call: Callable[[], object], every_s: float, until: float, samples: list[float]) -> None:
    while time.monotonic() < until:
        start = time.perf_counter()
        try:
            call()
            samples.append((time.perf_counter() - start) * 1000)
        except grpc.RpcError:
            samples.append(TIMEOUT_S * 1000)
        time.sleep(max(0.0, every_s - (time.perf_counter() - start)))


def broker_facts(pid: int | None) -> tuple[float, int]:
    if pid is None:
        return 0.0, 0
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["Threads"])


def run_level(address: str, pid: int | None, clients: int, args: argparse.Namespace) -> str:
    done = multiprocessing.Event()
    per = -(-clients // args.processes)
    procs = []
    counters = []
    for i in range(args.processes):
        count = min(per, clients - i * per)
        if count <= 0:
            break
        up = multiprocessing.Value("i", 0)
        counters.append(up)
        proc = multiprocessing.Process(target=consumer_process, args=(address, i * per, count, up, done))
        proc.start()
        procs.append(proc)
    try:
        deadline = time.monotonic() + 120
        while sum(c.value for c in counters) < clients and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # every consumer has sent its first long poll
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            until = time.monotonic() + args.seconds
            health_ms: list[float] = []
            admin_ms: list[float] = []
            produce_ms: list[float] = []
            seq = [0]

            def admin() -> None:
                if seq[0] % 2:
                    stub.ListTopics(pb.ListTopicsRequest(), timeout=TIMEOUT_S)
                else:
                    stub.DescribeTopic(pb.DescribeTopicRequest(name=POLLED), timeout=TIMEOUT_S)
                seq[0] += 1

            def produce(topic: str, partition: int) -> None:
                batch = codec.encode_batch([[int(time.time() * 1000), b"key", b"x" * 100, None]])
                stub.Produce(
                    pb.ProduceRequest(topic=topic, batches=[pb.PartitionBatch(partition=partition, batch=batch)]),
                    timeout=TIMEOUT_S,
                )

            wake = [0]

            def wake_one() -> None:
                produce(POLLED, wake[0] % PARTITIONS)
                wake[0] += 1

            def check_health() -> None:
                health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)

            loops = [
                threading.Thread(target=timed_loop, args=(check_health, 0.01, until, health_ms)),
                threading.Thread(target=timed_loop, args=(admin, 0.05, until, admin_ms)),
                threading.Thread(
                    target=timed_loop, args=(lambda: produce(PRODUCED, 0), 1 / args.produce_rate, until, produce_ms)
                ),
                threading.Thread(target=timed_loop, args=(wake_one, 1.0, until, [])),
            ]
            for t in loops:
                t.start()
            for t in loops:
                t.join()
        rss_mb, threads = broker_facts(pid)
        return (
            f"clients={clients} health_p99_ms={p99(health_ms):.1f} admin_p99_ms={p99(admin_ms):.1f} "
            f"produce_p99_ms={p99(produce_ms):.1f} produce_p50_ms={statistics.median(produce_ms):.1f} "
            f"calls={len(health_ms) + len(admin_ms) + len(produce_ms)} broker_rss_mb={rss_mb:.0f} threads={threads}"
        )
    finally:
        done.set()
        for proc in procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="an existing broker (HOST:PORT); default: start one")
    parser.add_argument("--clients", default="100,500,1000", help="consumer counts, comma-separated")
    parser.add_argument("--processes", type=int, default=4, help="client processes holding the consumers")
    parser.add_argument("--seconds", type=float, default=15.0, help="measuring time per level")
    parser.add_argument("--produce-rate", type=float, default=100.0, help="timed produce calls per second")
    args = parser.parse_args()
    levels = [int(n) for n in args.clients.split(",")]
    multiprocessing.set_start_method("spawn")

    def bench(address: str, pid: int | None) -> None:
        with grpc.insecure_channel(address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stub.CreateTopic(pb.CreateTopicRequest(name=POLLED, partitions=PARTITIONS), timeout=30)
            stub.CreateTopic(pb.CreateTopicRequest(name=PRODUCED, partitions=1), timeout=30)
        line = ""
        for clients in levels:
            line = run_level(address, pid, clients, args)
            print(line, flush=True)
        last = dict(field.split("=") for field in line.split())
        print(
            f"clients={last['clients']} health_p99_ms={last['health_p99_ms']} "
            f"produce_p99_ms={last['produce_p99_ms']} broker_rss_mb={last['broker_rss_mb']} threads={last['threads']}"
        )

    if args.server:
        bench(args.server, None)
        return
    with own_broker_process() as (address, pid):
        print(f"broker pid {pid} at {address}; {os.cpu_count()} cores", flush=True)
        bench(address, pid)


if __name__ == "__main__":
    main()
