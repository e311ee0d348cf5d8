"""The long run's paired rounds (:mod:`long_run`, ``--pairs``): the full log's end against an
empty log's start, in the same minutes."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from typing import NamedTuple

from own_broker import BrokerOnDir, cpu_seconds
from windows import fetch_window, produce_warm_up, produce_window
from workload import batch_bytes

from logsvc_client import Admin, Producer


class Pair(NamedTuple):
    """Rates of one round of :func:`pair_full_with_empty`, records/s."""

    produce_full: float
    produce_empty: float
    fetch_full: float
    fetch_empty: float


def pair_full_with_empty(
    own: BrokerOnDir, topic: str, args: argparse.Namespace, values: list[bytes], kept: str
) -> list[Pair]:
    """The end against the start, interleaved so that the machine's drift over the run falls on both
    alike: ``--pairs`` rounds, each producing one window more into the long run's log (the end: a
    log of ``--records`` and more) and one window into an empty topic of a new broker (the start),
    the two in alternating order, each followed by reading that window back (the newest records of
    each log). The new broker has the long run's flags; it is warmed up first with one window into
    another topic (:func:`windows.produce_warm_up`), untimed, so that what a new process pays once (its
    heap growing, first transactions) is not taken for the cost of a short log, as it would not be
    on a broker that has been serving for a while when a topic is created. One window, not the long
    run's ``--warm-up-seconds``: the benchmark process is warm by then, and warming each new broker
    for 5 s (15 runs from fresh clones, 2026-12-06) kept 20 - 25 M more records on disk per round
    until the run ended (41 GB of disk at the peak, against 23 GB with one window) without moving
    the pairs: producing into the full log came out -5.6 % to +5.0 % against an empty one, as it
    had with one window (-4.7 % to +6.0 % in four runs earlier that day). It is stopped after its
    round, and its data directory stays in ``kept`` until the run ends. Removing it would hand
    its page cache back just before the next round, and on a VM that returns free memory to its
    host, writing into pages freed a moment before costs a fraction of writing into pages the host
    must back again (see the README). A full-log round that came next used them for its timed
    window, an empty-log round for its untimed warm-up: the full log came out 12 - 31 % faster in
    the median of each of eight runs that removed them. Each side's timed window has a new Producer:
    when the empty side reused the one that had warmed it up, the full log came out 21 % slower in a
    run with ``--page-cache full``.
    Each pair's line on stderr gives both brokers' CPU per million records of the timed window."""
    window, step = args.window_records, args.batch_records
    max_batch_bytes = batch_bytes(args)
    next_key = args.records
    pairs = []

    def timed(broker: BrokerOnDir, first: int) -> tuple[float, float]:
        """A new Producer's rate producing one window into ``topic`` of ``broker``, and the
        broker's CPU seconds per million records meanwhile."""
        cpu = cpu_seconds(broker.pid)
        with Producer(broker.address, linger_ms=args.linger_ms, max_batch_bytes=max_batch_bytes) as producer:
            produced = window / produce_window(producer, topic, first, window, step, values).seconds
        return produced, (cpu_seconds(broker.pid) - cpu) * 1e6 / window

    def full() -> tuple[float, float, float]:
        nonlocal next_key
        produced, cpu = timed(own, next_key)
        next_key += window
        return produced, fetch_window(own.address, topic, window), cpu

    def empty() -> tuple[float, float, float]:
        fresh = BrokerOnDir(tempfile.mkdtemp(prefix="empty-log-", dir=kept), *own.extra, cpus=own.cpus)
        try:
            with Admin(fresh.address) as admin:
                admin.create_topic(f"{topic}-warm-up", args.partitions)
                admin.create_topic(topic, args.partitions)
            with Producer(fresh.address, linger_ms=args.linger_ms, max_batch_bytes=max_batch_bytes) as producer:
                produce_warm_up(producer, f"{topic}-warm-up", 0, args, values, seconds=0)  # one window
            produced, cpu = timed(fresh, 0)
            return produced, fetch_window(fresh.address, topic, window), cpu
        finally:
            fresh.close()

    for r in range(args.pairs):
        if r % 2 == 0:
            at_end, at_start = full(), empty()
        else:
            at_start, at_end = empty(), full()
        pairs.append(Pair(at_end[0], at_start[0], at_end[1], at_start[1]))
        print(
            f"pair {r + 1}: produce {at_end[0]:.0f} records/s into the full log (broker CPU {at_end[2]:.3f} s "
            f"per million), {at_start[0]:.0f} into an empty one ({at_start[2]:.3f}); "
            f"fetch {at_end[1]:.0f} from the full log's end, {at_start[1]:.0f} from the other",
            file=sys.stderr,
        )
    return pairs


def paired_fields(pairs: list[Pair]) -> str:
    """The medians of :func:`pair_full_with_empty`'s rounds: of the rates, and of each round's full
    log against its empty one."""
    produce_full = statistics.median(p.produce_full for p in pairs)
    produce_empty = statistics.median(p.produce_empty for p in pairs)
    fetch_full = statistics.median(p.fetch_full for p in pairs)
    fetch_empty = statistics.median(p.fetch_empty for p in pairs)
    produce_ratio = statistics.median(p.produce_full / p.produce_empty for p in pairs)
    fetch_ratio = statistics.median(p.fetch_full / p.fetch_empty for p in pairs)
    fetch_slower = sum(p.fetch_full < p.fetch_empty for p in pairs)
    return (
        f"produce_rps_full_log={produce_full:.0f} produce_rps_empty_log={produce_empty:.0f} "
        f"produce_full_vs_empty={(produce_ratio - 1) * 100:+.1f}% "
        f"fetch_rps_full_log={fetch_full:.0f} fetch_rps_empty_log={fetch_empty:.0f} "
        f"fetch_full_vs_empty={(fetch_ratio - 1) * 100:+.1f}% fetch_full_slower={fetch_slower}/{len(pairs)} "
        f"pairs={len(pairs)} "
    )
