"""Timed windows of the long run (:mod:`long_run`) and its paired rounds (:mod:`pairs`): one
window produced with ``send_many`` until every record is acknowledged, one read back by a new
Consumer, and the untimed warm-up before them."""

from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import NamedTuple

from workload import KEY_BLOCK_RECORDS, key_block

from logsvc_client import Consumer, Producer


class Timed(NamedTuple):
    """A produce window's wall-clock seconds and the benchmark process's CPU seconds meanwhile
    (the Producer's threads included; the keys are made outside both)."""

    seconds: float
    client_cpu_s: float


def produce_warm_up(
    producer: Producer, topic: str, first: int, args: argparse.Namespace, values: list[bytes], seconds: float
) -> int:
    """Produce windows into ``topic`` (keys from ``first``), untimed, until ``seconds`` have
    passed, one window at least; the records produced, also said on stderr."""
    started, n = time.perf_counter(), 0
    while n == 0 or time.perf_counter() - started < seconds:
        produce_window(producer, topic, first + n, args.window_records, args.batch_records, values)
        n += args.window_records
    print(f"warm-up: {n:,} records into {topic} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return n


def produce_window(producer: Producer, topic: str, first: int, n: int, step: int, values: list[bytes]) -> Timed:
    """Time producing records ``first`` to ``first + n`` (keys :func:`key_block`, made a million at
    a time outside the clock) with ``send_many`` of ``step`` until every one is acknowledged."""
    block = max(step, KEY_BLOCK_RECORDS // step * step)
    seconds = cpu = 0.0
    for b in range(first, first + n, block):
        keys = key_block(b, min(block, first + n - b))  # made outside the clock, dropped after
        started, cpu_started = time.perf_counter(), sum(client_times())
        for i in range(0, len(keys), step):
            chunk = keys[i : i + step]
            producer.send_many(topic, values if len(chunk) == step else values[: len(chunk)], chunk)
        if b + block >= first + n:
            producer.flush()  # the window ends when its last record is acknowledged
        seconds += time.perf_counter() - started
        cpu += sum(client_times()) - cpu_started
    return Timed(seconds, cpu)


def client_times() -> tuple[float, float]:
    """The benchmark process's user and system CPU seconds so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def fetch_window(address: str, topic: str, n: int, at_start: bool = False) -> float:
    """Records/s of a new Consumer reading about ``n`` records of ``topic``, each partition its share
    of ``n``: the last ones (from its end offset less its share), or with ``at_start`` the first
    ones (from offset 0); from the first poll until that many records have come."""
    with Consumer(address) as consumer:
        tps = consumer.assign_topic(topic)
        consumer.seek_to_end()
        ends = {tp: consumer.position(tp) for tp in tps}
        total = sum(ends.values())
        shares = {tp: round(n * end / total) if total else 0 for tp, end in ends.items()}
        for tp, end in ends.items():
            consumer.seek(tp, 0 if at_start else end - shares[tp])
        want = sum(shares.values())
        seen, started = 0, time.perf_counter()
        while seen < want:
            got = consumer.poll(timeout_ms=5000)
            if not got:
                raise SystemExit(f"fetch stalled after {seen:,} of {want:,} records")
            seen += len(got)
        return seen / (time.perf_counter() - started)
