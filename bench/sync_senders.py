"""Many synchronous senders: each thread sends one record and waits for its acknowledgement before
the next (``Producer.send(...).result()``, idempotent, acks fsync'd, ``linger_ms=0``), as a
thread-per-request application that ports Kafka's ``send().get()`` does. Throughput here is set by
what the broker spends per request, not per record, so it is the figure the batched benchmarks
(``make bench``) cannot show.

For each ``--shapes`` entry ``PxT`` (1x1, 1x8, 2x8 and 4x16 by default): P client processes, each
with one Producer shared by T threads (one Producer per process, as Kafka advises), all sending
records of ``--value-bytes`` to one 8-partition topic of the benchmark's own broker. Every thread
sends untimed until a common start time, then counts its acknowledged sends for ``--seconds``. One
line per shape on stderr; the client processes' CPU and the broker's (all its threads, /proc) over
the timed seconds are given per acknowledged send.

Last line: ``sync_PxT_sends_per_s=N sync_PxT_p50_ms=X sync_PxT_p99_ms=X sync_PxT_client_cpu_us=N
sync_PxT_broker_cpu_us=N``
for each shape, then ``durability=fsync idempotent=on server=logsvc:own|logsvc:given`` (the broker's
CPU left out with ``--server``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from multiprocessing.connection import Connection
from typing import NamedTuple

from own_broker import broker_process, cpu_seconds

from logsvc_client import Admin, Producer

PARTITIONS = 8
#: seconds from the shape's start for every process to import, connect and warm up
SETTLE_S = 3.0


def sender_process(
    address: str, topic: str, threads: int, value_bytes: int, start_at: float, end_at: float, out: Connection
) -> None:
    """One client process: ``threads`` threads on one Producer; sends the acknowledged count, the
    timed sends' latencies (ms) and the process's CPU seconds over the timed seconds through ``out``."""
    value = os.urandom(value_bytes // 2 + 1).hex().encode()[:value_bytes]
    counts = [0] * threads
    latencies: list[list[float]] = [[] for _ in range(threads)]
    with Producer(address, linger_ms=0) as producer:

        def loop(t: int) -> None:
            i = 0
            while True:
                started = time.perf_counter()
                now = time.time()
                if now >= end_at:
                    return
                producer.send(topic, value, b"k-%d-%d-%d" % (os.getpid(), t, i)).result()
                i += 1
                if now >= start_at and time.time() <= end_at:
                    counts[t] += 1
                    latencies[t].append((time.perf_counter() - started) * 1000)

        cpu = [0.0]

        def clock() -> None:
            time.sleep(max(0.0, start_at - time.time()))
            started = time.process_time()
            time.sleep(max(0.0, end_at - time.time()))
            cpu[0] = time.process_time() - started

        workers = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
        workers.append(threading.Thread(target=clock))
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    out.send((sum(counts), [x for per in latencies for x in per], cpu[0]))
    out.close()


class Shape(NamedTuple):
    """One shape's figures: acknowledged sends/s, latency p50 and p99 (ms), the client processes'
    CPU per send and the broker's (µs; None with ``--server``)."""

    sends_per_s: float
    p50_ms: float
    p99_ms: float
    client_cpu_us: float
    broker_cpu_us: float | None


def run_shape(
    address: str, pid: int | None, topic: str, processes: int, threads: int, args: argparse.Namespace
) -> Shape:
    """``processes`` processes of ``threads`` synchronous senders each, timed for ``--seconds``."""
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + SETTLE_S
    end_at = start_at + args.seconds
    pipes, procs = [], []
    for _ in range(processes):
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=sender_process, args=(address, topic, threads, args.value_bytes, start_at, end_at, send)
        )
        proc.start()
        send.close()
        pipes.append(receive)
        procs.append(proc)
    time.sleep(max(0.0, start_at - time.time()))
    cpu = cpu_seconds(pid) if pid else 0.0
    time.sleep(max(0.0, end_at - time.time()))
    cpu_used = cpu_seconds(pid) - cpu if pid else 0.0
    total, latencies, client_cpu = 0, [], 0.0
    for receive, proc in zip(pipes, procs, strict=True):
        count, lat, cpu_s = receive.recv()
        total += count
        latencies.extend(lat)
        client_cpu += cpu_s
        proc.join()
        if proc.exitcode:
            raise SystemExit(f"a sender process exited with {proc.exitcode}")
    if not total:
        raise SystemExit(f"no send was acknowledged in {args.seconds} s with {processes}x{threads} senders")
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return Shape(total / args.seconds, p50, p99, client_cpu * 1e6 / total, cpu_used * 1e6 / total if pid else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="an address of a running broker (default: start one)")
    parser.add_argument("--shapes", default="1x1,1x8,2x8,4x16", help="PROCESSESxTHREADS, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per shape")
    parser.add_argument("--value-bytes", type=int, default=100)
    args = parser.parse_args()
    shapes = []
    for shape in args.shapes.split(","):
        p, _, t = shape.strip().partition("x")
        if not (p.isdigit() and t.isdigit() and int(p) > 0 and int(t) > 0):
            parser.error(f"--shapes: {shape!r} is not PROCESSESxTHREADS, e.g. 2x8")
        shapes.append((int(p), int(t)))
    fields = []
    with broker_process(args.server) as (address, pid):
        topic = f"bench-sync-{uuid.uuid4().hex[:8]}"
        with Admin(address) as admin:
            admin.create_topic(topic, PARTITIONS)
        for p, t in shapes:
            shape = run_shape(address, pid, topic, p, t, args)
            broker_cpu = shape.broker_cpu_us
            print(
                f"{p} process(es) x {t} thread(s): {shape.sends_per_s:.0f} acknowledged sends/s, "
                f"p50 {shape.p50_ms:.3f} ms, p99 {shape.p99_ms:.3f} ms, CPU per send: the clients "
                f"{shape.client_cpu_us:.0f} µs"
                + (f", the broker {broker_cpu:.0f} µs" if broker_cpu is not None else ""),
                file=sys.stderr,
            )
            name = f"sync_{p}x{t}"
            fields.append(
                f"{name}_sends_per_s={shape.sends_per_s:.0f} {name}_p50_ms={shape.p50_ms:.3f} "
                f"{name}_p99_ms={shape.p99_ms:.3f} {name}_client_cpu_us={shape.client_cpu_us:.0f}"
            )
            if broker_cpu is not None:
                fields.append(f"{name}_broker_cpu_us={broker_cpu:.0f}")
    print(
        " ".join(fields) + f" durability=fsync idempotent=on server={'logsvc:given' if args.server else 'logsvc:own'}"
    )


if __name__ == "__main__":
    main()
