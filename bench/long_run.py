"""The long run (``--records`` above ``--window-records``, 5 M by default; ``make bench-long``
runs 50 M): one idempotent produce and one consume, each timed per window (with the benchmark
process's and the broker's CPU per million records of that window, on stderr: a window slower at
the same CPU per record waited, one slower with more CPU worked harder), keys made a million at a
time (never all held at once), then the broker stopped (SIGTERM) and started again on the same data
directory, timed from its start to its first answered ListTopics. Last line:
``produce_rps=N fetch_rps=N produce_rps_first_window=N produce_rps_last_window=N
produce_end_vs_start=+X% fetch_rps_first_window=N fetch_rps_last_window=N fetch_end_vs_start=+X%
produce_trend=+X% fetch_trend=+X% fetch_rps_log_start=N fetch_rps_log_end=N fetch_log_end_vs_start=+X%
rereads=N (the paired fields below)
raw_lmdb_cpu_s_per_m_first_window=X raw_lmdb_cpu_s_per_m_last_window=X
broker_cpu_over_raw_s_per_m_first_window=X broker_cpu_over_raw_s_per_m_last_window=X
window_records=N records=N restart_s=X idempotent=on durability=fsync|os compression=none page_cache=as_found|full
cpus=shared|split server=logsvc:own|logsvc:given broker_cpu_s_per_m=X raw_lmdb_rps=N produce_share_of_raw=NN%
raw_lmdb_grouped_rps=N produce_share_of_grouped=NN%`` (``restart_s``, ``broker_cpu_s_per_m`` and
the four ``*_first_window`` / ``*_last_window`` CPU fields left out with ``--server``).

By default it runs in the steady state: the page cache full, the benchmark and the brokers on a
core each (``--page-cache full --cpus split``). As found, this VM's memory moves one window against
another whatever writes the bytes (see :mod:`page_cache`).

Before the first window, the broker, the producer and the consumer are warmed up: windows are
produced into another topic until ``--warm-up-seconds`` (5 by default, one window at least) have
passed, and read back, untimed, so that what a new process or client pays once (its heap growing,
connections, first transactions) is not taken for the cost of a short log; the new brokers of the
paired rounds below are warmed up with one window (see :func:`pairs.pair_full_with_empty`). In a run
without it, on a machine in a steady
memory state (``--page-cache full``), the last window produced 12 % and read 11 % faster than the
first, while the least-squares trends were +1.9 % and -7.3 %. A single window was not enough either:
it takes a fraction of a second, and a new producing process's memory allocator takes seconds to
settle. Until glibc's thresholds have grown to the size of a Produce request, each request's
megabytes (the request gRPC copies, and its ``b"".join``) are mapped fresh and handed back, and
touching them again faults: in ad-hoc runs the producing client took 11,800 - 19,300 minor page
faults per million records for the first one to three windows after a one-window warm-up, and
1,500 - 2,700 after, and in three of seven runs that decided the first window. The consume's first
poll is not timed either (finding the offsets and the first round trip, which every later window
has behind it): the first window starts at the records it returned.

After each produce window, a million of the same records are written fsync'd straight into raw
LMDB at that window's batches per commit (:mod:`raw_lmdb`, kept on disk until the run ends): the
CPU that storing these bytes costs the machine at that point of the run, the floor under the
broker's. ``raw_lmdb_cpu_s_per_m_*`` is that floor at the first and last window and
``broker_cpu_over_raw_s_per_m_*`` the broker's CPU per million above it, so a window slower
because the machine's page cache costs more (see the README) is told apart from one slower
because the log is bigger.

``*_end_vs_start`` compare the last window with the first, one window each (a few seconds, so a
single slow window moves them); ``*_trend`` compare the same two ends of the least-squares line
through every window's rate, so they say whether the rate drifts as the log grows, not how noisy two
windows were. Reading is then measured once more at both ends (:func:`reread_ends`, ``--rereads``
rounds, 5 by default): the log's first and last window read again by new Consumers in alternating
order, within a minute, so that the machine's speed at the start and the end of a run of minutes
does not count (on the reference machine the client's CPU per record read moved by ±6 % from one
window to the next in a steady memory state, and the read rate with it). Then ``--pairs`` rounds (7
by default, not with ``--server``) put the end against the start in the same minutes, so that the
machine's drift over the run cannot pass for an effect of the log's size: one more window produced
into the full log and read back from its end, and one window produced into an empty topic of a new
broker (warmed up first with one window into another topic) and read back, in alternating order, each
timed window by a new Producer and read by a new Consumer. ``produce_rps_full_log``,
``produce_rps_empty_log``, ``fetch_rps_full_log`` and ``fetch_rps_empty_log`` are the medians of the
rates; ``produce_full_vs_empty`` and ``fetch_full_vs_empty`` the median of each round's
full-against-empty ratio (a round's two windows ran minutes apart at most, so the ratio of one round
is what the machine's slow and fast stretches disturb least: on the reference machine one 5 M window
against the next swings by up to ±25 %, so three rounds did not settle it); ``fetch_full_slower``
counts the rounds whose full log was read more slowly; then ``pairs`` (all placed after ``rereads``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from typing import NamedTuple

from own_broker import cpu_seconds, cpu_times
from pairs import pair_full_with_empty, paired_fields
from windows import client_times, fetch_window, produce_warm_up, produce_window
from workload import (
    KEY_BLOCK_RECORDS,
    RAW_DISTINCT_BATCHES,
    Brokers,
    batch_bytes,
    bench_values,
    cpu_fields,
    data_dir,
    floor_beside,
    key_block,
    raw_batches,
    raw_fields,
    raw_limit,
)

from logsvc_client import Admin, Consumer, Producer

#: the first key of the long run's warm-up windows (its keys are not the long run's)
WARM_UP_KEYS = 1_000_000_000


def run_long(brokers: Brokers, args: argparse.Namespace) -> str:
    """The long run: one idempotent produce and one consume of ``--records``, timed per window of
    ``--window-records``, keys made one window slice at a time; then the broker's restart time.
    The raw-LMDB floors measured after each produce window, and the paired rounds' empty logs, are
    kept on disk until the run ends, so the pages they hold are not handed to the next writes."""
    with data_dir() as kept:
        return _run_long(brokers, args, kept)


def _run_long(brokers: Brokers, args: argparse.Namespace, kept: str) -> str:
    address = brokers.address
    own = brokers.own(address)
    topic = f"bench-long-{uuid.uuid4().hex[:8]}"
    warm_up = f"{topic}-warm-up"
    with Admin(address) as admin:
        admin.create_topic(topic, args.partitions)
        admin.create_topic(warm_up, args.partitions)
    step, window = args.batch_records, args.window_records
    values = bench_values(args)
    max_batch_bytes = batch_bytes(args)
    produce_rates: list[float] = []
    floors: list[Floor] = []
    counts = own.writer_counts() if own else (0, 0)
    broker_cpu = cpu_seconds(own.pid) if own else 0.0
    total_s = 0.0
    floor_batches = raw_batches(args, key_block(0, RAW_DISTINCT_BATCHES * step), values)
    with Producer(address, linger_ms=args.linger_ms, max_batch_bytes=max_batch_bytes) as producer:
        warmed_up = produce_warm_up(producer, warm_up, args.records + WARM_UP_KEYS, args, values, args.warm_up_seconds)
        for w in range(0, args.records, window):
            n = min(window, args.records - w)
            window_times = cpu_times(own.pid) if own else (0.0, 0.0)
            window_counts = own.writer_counts() if own else (0, 0)
            seconds, client_s = produce_window(producer, topic, w, n, step, values)
            total_s += seconds
            produce_rates.append(n / seconds)
            line = f"produce records {w:,}-{w + n:,}: {n / seconds:.0f} records/s"
            line += f", client CPU {client_s * 1e6 / n:.3f} s per million"
            if own:
                user, system = (now - then for now, then in zip(cpu_times(own.pid), window_times, strict=True))
                broker_per_m = (user + system) * 1e6 / n
                done = own.writer_counts()
                writer = (done[0] - window_counts[0], done[1] - window_counts[1])
                floor = floor_beside(args, floor_batches, KEY_BLOCK_RECORDS, writer, kept)
                floors.append(Floor(broker_per_m, floor.cpu_s_per_m))
                above = broker_per_m - floor.cpu_s_per_m
                line += (
                    f", broker CPU {broker_per_m:.3f} s per million (user {user * 1e6 / n:.3f}, system "
                    f"{system * 1e6 / n:.3f}); raw LMDB writing a million more just after, "
                    f"{floor.group_batches} batch(es) per commit: {floor.cpu_s_per_m:.3f} (the broker {above:+.3f})"
                )
            print(line, file=sys.stderr)
    broker_s = cpu_seconds(own.pid) - broker_cpu if own else None
    after = own.writer_counts() if own else (0, 0)
    commits, batches = after[0] - counts[0], after[1] - counts[1]
    fetch_rates: list[float] = []
    with Consumer(address) as consumer:
        consumer.assign_topic(warm_up)  # not timed: read the warm-up windows back first
        consumer.seek_to_beginning()
        warmed = 0
        while warmed < warmed_up:
            warmed += len(consumer.poll(timeout_ms=5000))
        consumer.assign_topic(topic)
        consumer.seek_to_beginning()
        seen = len(consumer.poll(timeout_ms=5000))  # not timed: finding the offsets, the first round trip
        mark, started = seen, time.perf_counter()
        fetch_started, first_poll = started, seen
        window_cpu = cpu_seconds(own.pid) if own else 0.0
        client_cpu = client_times()
        while seen < args.records:
            seen += len(consumer.poll(timeout_ms=5000))
            if seen - mark >= window or seen >= args.records:
                now, n = time.perf_counter(), seen - mark
                fetch_rates.append(n / (now - started))
                cpu_now, client_now = cpu_seconds(own.pid) if own else 0.0, client_times()
                user, system = (b - a for a, b in zip(client_cpu, client_now, strict=True))
                print(
                    f"fetch records {mark:,}-{seen:,}: {fetch_rates[-1]:.0f} records/s, client CPU "
                    f"{(user + system) * 1e6 / n:.3f} s per million (user {user * 1e6 / n:.3f}, system "
                    f"{system * 1e6 / n:.3f})"
                    + (f", broker CPU {(cpu_now - window_cpu) * 1e6 / n:.3f}" if own else ""),
                    file=sys.stderr,
                )
                mark, started, window_cpu, client_cpu = seen, now, cpu_now, client_now
        fetch_s = time.perf_counter() - fetch_started
        fetched = seen - first_poll
    reread = reread_ends(address, topic, window, args.rereads) if args.rereads else ""
    paired = paired_fields(pair_full_with_empty(own, topic, args, values, kept)) if own and args.pairs else ""
    restart = f"restart_s={own.restart_seconds():.3f} " if own else ""
    raw = raw_limit(args, key_block(0, min(args.records, window)), values, batches / commits if commits else 1.0)
    produce_rps = args.records / total_s
    cpu = {"on": broker_s * 1e6 / args.records} if broker_s is not None else {}
    return (
        f"produce_rps={produce_rps:.0f} fetch_rps={fetched / fetch_s:.0f} "
        f"produce_rps_first_window={produce_rates[0]:.0f} produce_rps_last_window={produce_rates[-1]:.0f} "
        f"produce_end_vs_start={(produce_rates[-1] / produce_rates[0] - 1) * 100:+.1f}% "
        f"fetch_rps_first_window={fetch_rates[0]:.0f} fetch_rps_last_window={fetch_rates[-1]:.0f} "
        f"fetch_end_vs_start={(fetch_rates[-1] / fetch_rates[0] - 1) * 100:+.1f}% "
        f"produce_trend={trend(produce_rates):+.1f}% fetch_trend={trend(fetch_rates):+.1f}% {reread}{paired}"
        + floor_fields(floors)
        + f"window_records={window} records={args.records} {restart}"
        f"idempotent=on durability={args.durability_label} compression=none page_cache={args.page_cache_label} "
        f"cpus={args.cpus} "
        f"server={'logsvc:given' if args.server else 'logsvc:own'} " + cpu_fields(cpu) + raw_fields(produce_rps, raw)
    )


def reread_ends(address: str, topic: str, n: int, rounds: int) -> str:
    """The log's first and last ``n`` records read again by new Consumers, ``rounds`` times in
    alternating order, in the same minute: the read rate at the start of the log against its end
    without the machine's drift between the first and the last window of the long run. One line per
    round on stderr; the fields: medians of the rates and of each round's end-against-start ratio."""
    rates = []
    for r in range(rounds):
        if r % 2 == 0:
            start, end = fetch_window(address, topic, n, at_start=True), fetch_window(address, topic, n)
        else:
            end, start = fetch_window(address, topic, n), fetch_window(address, topic, n, at_start=True)
        rates.append((start, end))
        print(
            f"reread {r + 1}: fetch {start:.0f} records/s from the log's start, {end:.0f} from its end", file=sys.stderr
        )
    ratio = statistics.median(end / start for start, end in rates)
    return (
        f"fetch_rps_log_start={statistics.median(s for s, _ in rates):.0f} "
        f"fetch_rps_log_end={statistics.median(e for _, e in rates):.0f} "
        f"fetch_log_end_vs_start={(ratio - 1) * 100:+.1f}% rereads={rounds} "
    )


class Floor(NamedTuple):
    """One produce window's CPU, seconds per million records: the broker's, and raw LMDB's writing
    a million of the same records at the window's batches per commit just after it."""

    broker: float
    raw: float


def floor_fields(floors: list[Floor]) -> str:
    """The first and last window's raw-LMDB floor and the broker's CPU above it ("" without floors)."""
    if not floors:
        return ""
    first, last = floors[0], floors[-1]
    return (
        f"raw_lmdb_cpu_s_per_m_first_window={first.raw:.3f} raw_lmdb_cpu_s_per_m_last_window={last.raw:.3f} "
        f"broker_cpu_over_raw_s_per_m_first_window={first.broker - first.raw:.3f} "
        f"broker_cpu_over_raw_s_per_m_last_window={last.broker - last.raw:.3f} "
    )


def trend(rates: list[float]) -> float:
    """The least-squares line through ``rates`` (one per window, in order): its value at the last
    window against its value at the first, in percent (0 for fewer than two windows)."""
    n = len(rates)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(rates) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(rates)) / sum((x - mean_x) ** 2 for x in range(n))
    start = mean_y - slope * mean_x
    return (start + slope * (n - 1)) / start * 100 - 100
