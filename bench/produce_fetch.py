"""Produce/fetch benchmark: the client library used as an application would, against a real broker.

Starts its own brokers (``logsvc serve`` on temporary data directories, fsync durability, /metrics
on a free port to read their storage writer's counters) unless given ``--server HOST:PORT``; then,
from this one process:

1. produces ``--records`` keyed records with ``--value-bytes``-byte values, handed to the Producer
   in batches of ``--batch-records`` (``send_many``, as an application holding its records in
   batches would), and waits for every acknowledgement — with the idempotent producer (the
   default) and, in the same run, with ``enable_idempotence=False`` to another topic, and without
   idempotence to a second broker that skips the per-record check, ``--rounds`` times each,
   rotating which goes first (medians reported); the broker's CPU time (/proc/PID/stat utime +
   stime, all its threads) is read before and after each; then the raw-LMDB limit
   (:mod:`raw_lmdb`: the same ``--batch-records``-record batches, encoded with
   ``logsvc_wire.batch.encode_batch``, put fsync'd straight into LMDB beside the broker's data
   directory, one batch per commit — the limit issue 11 names — and as many batches per commit as
   the validating broker's writer committed on average while the idempotent producer ran, its own
   group commit, one with ``--server``); then the same produce again to another topic with one ``send``
   per record (stderr only);
2. consumes them all with a Consumer (records delivered to the application as Record tuples);
3. sends ``--single`` records one at a time (send, wait for the acknowledgement, repeat);
4. consumes them all again with one group consumer (``subscribe``, auto-commit on), from joining
   the group to the last record;
5. times ``--rebalances`` rebalances: two group consumers (default settings) share the topic, one
   closes (leaves), and the clock runs from the start of its close until the survivor's poll
   returns with every partition assigned to it. The slowest round is reported.

Last line: ``produce_rps=N fetch_rps=N single_p50_ms=X single_p99_ms=Y group_consume_rps=N rebalance_ms=N
produce_rps_idempotence_off=N produce_rps_plain=N idempotent=on durability=fsync|os compression=none|gzip|zstd
server=logsvc:own|logsvc:given broker_cpu_s_per_m=X broker_cpu_s_per_m_plain=Y raw_lmdb_rps=N
produce_share_of_raw=NN% raw_lmdb_grouped_rps=N produce_share_of_grouped=NN%``
(``produce_rps`` and every figure but the next two measured with the idempotent producer against a
broker checking every record; ``produce_rps_idempotence_off`` the same broker without
idempotence; ``produce_rps_plain`` neither: a second broker it starts with
``validate_records=false``, left out with ``--server``; produce figures are medians over the
rounds; ``durability`` is the broker's when the benchmark starts it, ``unknown`` with ``--server``;
``broker_cpu_s_per_m`` the validating broker's CPU seconds per million records produced by the
idempotent producer, ``broker_cpu_s_per_m_plain`` the other broker's, medians over the rounds,
both left out with ``--server``; ``raw_lmdb_rps`` the raw-LMDB limit over ``min(--records,
--window-records)`` records at one batch per commit and ``produce_share_of_raw`` ``produce_rps`` as
a share of it; ``raw_lmdb_grouped_rps`` and ``produce_share_of_grouped`` the same at the broker's
own batches per commit).

The long run (``--records`` above ``--window-records``, 5 M by default; ``make bench-long`` runs
50 M): one idempotent produce and one consume, each timed per window (with the broker's CPU per
million records of that window, on stderr), keys made a million at a time (never all held at
once), then the broker stopped (SIGTERM) and started again on the same data directory, timed from
its start to its first answered ListTopics. Last line:
``produce_rps=N fetch_rps=N produce_rps_first_window=N produce_rps_last_window=N
produce_end_vs_start=+X% fetch_rps_first_window=N fetch_rps_last_window=N fetch_end_vs_start=+X%
produce_trend=+X% fetch_trend=+X% window_records=N records=N restart_s=X idempotent=on
durability=fsync|os compression=none server=logsvc:own|logsvc:given broker_cpu_s_per_m=X
raw_lmdb_rps=N produce_share_of_raw=NN% raw_lmdb_grouped_rps=N produce_share_of_grouped=NN%``
(``restart_s`` and ``broker_cpu_s_per_m`` left out with ``--server``). ``*_end_vs_start``
compare the last window with the first, one window each (a few seconds, so a single slow window
moves them); ``*_trend`` compare the same two ends of the least-squares line through every
window's rate, so they say whether the rate drifts as the log grows, not how noisy two windows
were. Then ``--pairs`` rounds (3 by default, not with ``--server``) put the end against the start
in the same minutes, so that the machine's drift over the run cannot pass for an effect of the
log's size: one more window produced into the full log and read back from its end, and one window
produced into an empty topic of a new broker (warmed up first with a window into another topic)
and read back, in alternating order; their medians are
``produce_rps_full_log``, ``produce_rps_empty_log``, ``produce_full_vs_empty``,
``fetch_rps_full_log``, ``fetch_rps_empty_log``, ``fetch_full_vs_empty`` and ``pairs`` (placed after
``fetch_trend``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import NamedTuple

from own_broker import BrokerOnDir, cpu_seconds
from raw_lmdb import raw_lmdb_rps

from logsvc_client import Admin, Consumer, Producer, TopicPartition
from logsvc_wire.batch import encode_batch

RECORD_OVERHEAD_BYTES = 20  # msgpack framing + timestamp per record, for sizing batches
KEY_BLOCK_RECORDS = 1_000_000  # the long run makes its keys this many at a time
RAW_DISTINCT_BATCHES = 16  # the raw-LMDB writer cycles this many distinct batches


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(brokers: Brokers, args: argparse.Namespace) -> str:
    address, plain = brokers.address, brokers.plain
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    with Admin(address) as admin:
        admin.create_topic(topic, args.partitions)
    keys = key_block(0, args.records)
    step = args.batch_records
    values = bench_values(args)
    batch_bytes = args.batch_records * (args.value_bytes + 12 + RECORD_OVERHEAD_BYTES)

    # 1. produce: the application's batches of records in each mode, then one send() per record
    def produce(at: str, to: str, idempotent: bool, label: str) -> tuple[float, float | None, tuple[int, int]]:
        """(seconds, broker CPU seconds or None, broker writer (commits, batches) done meanwhile)"""
        if to != topic:  # the first one was created above
            with Admin(at) as admin:
                admin.create_topic(to, args.partitions)
        own = brokers.own(at)
        counts = own.writer_counts() if own else (0, 0)
        broker_cpu = cpu_seconds(own.pid) if own else 0.0
        with Producer(
            at,
            linger_ms=args.linger_ms,
            max_batch_bytes=batch_bytes,
            compression=args.compression,
            enable_idempotence=idempotent,
        ) as producer:
            send_many = producer.send_many
            started, cpu = time.perf_counter(), time.process_time()
            for i in range(0, args.records, step):
                chunk = keys[i : i + step]  # the application's batch: a slice of keys, distinct values
                send_many(to, values if len(chunk) == step else values[: len(chunk)], chunk)
            producer.flush()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        broker_s = cpu_seconds(own.pid) - broker_cpu if own else None
        after = own.writer_counts() if own else (0, 0)
        done = (after[0] - counts[0], after[1] - counts[1])
        print(
            f"produced {args.records:,} records in {seconds:.2f} s, client CPU {cpu:.2f} s"
            + (f", broker CPU {broker_s:.2f} s in {done[0]:,} commits of {done[1]:,} batches" if own else "")
            + f" (send_many of {step:,}, {label})",
            file=sys.stderr,
        )
        return seconds, broker_s, done

    # (name, broker address, idempotent, label); "plain" is another broker with validate_records=false
    modes = [("on", address, True, "idempotence on"), ("off", address, False, "idempotence off")]
    if plain is not None:
        modes.append(("plain", plain, False, "idempotence off, validate_records=false"))
    times: dict[str, list[float]] = {name: [] for name, *_ in modes}
    broker_cpu: dict[str, list[float]] = {name: [] for name, *_ in modes}
    commits = batches = 0  # of the validating broker's writer, while the idempotent producer ran
    for r in range(args.rounds):  # rotate the order, so no mode always runs first
        k = (r + (1 if args.off_first else 0)) % len(modes)
        for name, at, idempotent, label in modes[k:] + modes[:k]:
            to = topic if (name, r) == ("on", 0) else f"{topic}-{name}-{r}"
            seconds, cpu_s, (c, b) = produce(at, to, idempotent, label)
            times[name].append(seconds)
            if cpu_s is not None:
                broker_cpu[name].append(cpu_s)
            if name == "on":
                commits, batches = commits + c, batches + b
    median = {name: statistics.median(t) for name, t in times.items()}
    produce_s, off_median_s = median["on"], median["off"]
    print(
        f"produce over {args.rounds} rounds (median): idempotent {args.records / produce_s:.0f} records/s, "
        f"without idempotence {args.records / off_median_s:.0f} records/s "
        f"(idempotent {(off_median_s / produce_s - 1) * 100:+.1f} %)",
        file=sys.stderr,
    )
    if "plain" in median:
        print(
            f"without validation and idempotence {args.records / median['plain']:.0f} records/s "
            f"(validated and idempotent {(median['plain'] / produce_s - 1) * 100:+.1f} %)",
            file=sys.stderr,
        )
    cpu_per_m = {name: statistics.median(c) * 1e6 / args.records for name, c in broker_cpu.items() if c}
    if cpu_per_m:
        print(
            "broker CPU s per million produced records (median over rounds; range): "
            + ", ".join(
                f"{name} {cpu_per_m[name]:.3f} ({min(c) * 1e6 / args.records:.3f}-{max(c) * 1e6 / args.records:.3f})"
                for name, c in broker_cpu.items()
                if c
            ),
            file=sys.stderr,
        )
    raw = raw_limit(args, keys, values, batches / commits if commits else 1.0)
    send_rps = produce_per_record(address, f"{topic}-send", args.partitions, values, keys, args.linger_ms, batch_bytes)
    print(f"per-record send(): {send_rps:.0f} records/s", file=sys.stderr)

    # 2. consume everything
    with Consumer(address) as consumer:
        consumer.assign_topic(topic)
        consumer.seek_to_beginning()
        seen = 0
        started = time.perf_counter()
        while seen < args.records:
            seen += len(consumer.poll(timeout_ms=5000))
        fetch_s = time.perf_counter() - started
    print(f"consumed {seen:,} records in {fetch_s:.2f} s", file=sys.stderr)

    # 3. one record at a time
    latencies = single_latencies_ms(address, topic, values, keys, args.single)

    # 4. one group consumer, auto-commit on
    group_seen, group_s = group_consume(address, topic, args.records)
    print(f"group consumer read {group_seen:,} records in {group_s:.2f} s", file=sys.stderr)

    # 5. rebalance after a member leaves
    rounds = [rebalance_ms(address, topic, args.partitions) for _ in range(args.rebalances)]
    print(f"rebalance after a leave: {', '.join(f'{ms:.0f}' for ms in rounds)} ms", file=sys.stderr)
    produce_rps = args.records / produce_s
    return (
        f"produce_rps={produce_rps:.0f} fetch_rps={seen / fetch_s:.0f} "
        f"single_p50_ms={percentile(latencies, 0.50):.3f} single_p99_ms={percentile(latencies, 0.99):.3f} "
        f"group_consume_rps={group_seen / group_s:.0f} rebalance_ms={max(rounds):.0f} "
        f"produce_rps_idempotence_off={args.records / off_median_s:.0f} "
        + (f"produce_rps_plain={args.records / median['plain']:.0f} " if "plain" in median else "")
        + f"idempotent=on durability={args.durability_label} compression={args.compression} "
        + f"server={'logsvc:given' if args.server else 'logsvc:own'} "
        + cpu_fields(cpu_per_m)
        + raw_fields(produce_rps, raw)
    )


def run_long(brokers: Brokers, args: argparse.Namespace) -> str:
    """The long run: one idempotent produce and one consume of ``--records``, timed per window of
    ``--window-records``, keys made one window slice at a time; then the broker's restart time."""
    address = brokers.address
    own = brokers.own(address)
    topic = f"bench-long-{uuid.uuid4().hex[:8]}"
    with Admin(address) as admin:
        admin.create_topic(topic, args.partitions)
    step, window = args.batch_records, args.window_records
    values = bench_values(args)
    batch_bytes = args.batch_records * (args.value_bytes + 12 + RECORD_OVERHEAD_BYTES)
    produce_rates: list[float] = []
    counts = own.writer_counts() if own else (0, 0)
    broker_cpu = cpu_seconds(own.pid) if own else 0.0
    total_s = 0.0
    with Producer(address, linger_ms=args.linger_ms, max_batch_bytes=batch_bytes) as producer:
        for w in range(0, args.records, window):
            n = min(window, args.records - w)
            window_cpu = cpu_seconds(own.pid) if own else 0.0
            seconds = produce_window(producer, topic, w, n, step, values)
            total_s += seconds
            produce_rates.append(n / seconds)
            print(
                f"produce records {w:,}-{w + n:,}: {n / seconds:.0f} records/s"
                + (f", broker CPU {(cpu_seconds(own.pid) - window_cpu) * 1e6 / n:.3f} s per million" if own else ""),
                file=sys.stderr,
            )
    broker_s = cpu_seconds(own.pid) - broker_cpu if own else None
    after = own.writer_counts() if own else (0, 0)
    commits, batches = after[0] - counts[0], after[1] - counts[1]
    fetch_rates: list[float] = []
    with Consumer(address) as consumer:
        consumer.assign_topic(topic)
        consumer.seek_to_beginning()
        seen = 0
        mark, started = 0, time.perf_counter()
        fetch_started = started
        window_cpu = cpu_seconds(own.pid) if own else 0.0
        while seen < args.records:
            seen += len(consumer.poll(timeout_ms=5000))
            if seen - mark >= window or seen >= args.records:
                now = time.perf_counter()
                fetch_rates.append((seen - mark) / (now - started))
                cpu_now = cpu_seconds(own.pid) if own else 0.0
                print(
                    f"fetch records {mark:,}-{seen:,}: {fetch_rates[-1]:.0f} records/s"
                    + (f", broker CPU {(cpu_now - window_cpu) * 1e6 / (seen - mark):.3f} s per million" if own else ""),
                    file=sys.stderr,
                )
                mark, started, window_cpu = seen, now, cpu_now
        fetch_s = time.perf_counter() - fetch_started
    paired = paired_fields(pair_full_with_empty(own, topic, args, values)) if own and args.pairs else ""
    restart = f"restart_s={own.restart_seconds():.3f} " if own else ""
    raw = raw_limit(args, key_block(0, min(args.records, window)), values, batches / commits if commits else 1.0)
    produce_rps = args.records / total_s
    cpu = {"on": broker_s * 1e6 / args.records} if broker_s is not None else {}
    return (
        f"produce_rps={produce_rps:.0f} fetch_rps={seen / fetch_s:.0f} "
        f"produce_rps_first_window={produce_rates[0]:.0f} produce_rps_last_window={produce_rates[-1]:.0f} "
        f"produce_end_vs_start={(produce_rates[-1] / produce_rates[0] - 1) * 100:+.1f}% "
        f"fetch_rps_first_window={fetch_rates[0]:.0f} fetch_rps_last_window={fetch_rates[-1]:.0f} "
        f"fetch_end_vs_start={(fetch_rates[-1] / fetch_rates[0] - 1) * 100:+.1f}% "
        f"produce_trend={trend(produce_rates):+.1f}% fetch_trend={trend(fetch_rates):+.1f}% {paired}"
        f"window_records={window} records={args.records} {restart}"
        f"idempotent=on durability={args.durability_label} compression=none "
        f"server={'logsvc:given' if args.server else 'logsvc:own'} " + cpu_fields(cpu) + raw_fields(produce_rps, raw)
    )


def produce_window(producer: Producer, topic: str, first: int, n: int, step: int, values: list[bytes]) -> float:
    """Seconds to produce records ``first`` to ``first + n`` (keys :func:`key_block`, made a million
    at a time outside the clock) with ``send_many`` of ``step`` and have every one acknowledged."""
    block = max(step, KEY_BLOCK_RECORDS // step * step)
    seconds = 0.0
    for b in range(first, first + n, block):
        keys = key_block(b, min(block, first + n - b))  # made outside the clock, dropped after
        started = time.perf_counter()
        for i in range(0, len(keys), step):
            chunk = keys[i : i + step]
            producer.send_many(topic, values if len(chunk) == step else values[: len(chunk)], chunk)
        if b + block >= first + n:
            producer.flush()  # the window ends when its last record is acknowledged
        seconds += time.perf_counter() - started
    return seconds


def fetch_window(address: str, topic: str, n: int) -> float:
    """Records/s of a new Consumer reading about the last ``n`` records of ``topic`` (each partition
    from its end offset less its share of ``n``), from its first poll to the last record."""
    with Consumer(address) as consumer:
        tps = consumer.assign_topic(topic)
        consumer.seek_to_end()
        ends = {tp: consumer.position(tp) for tp in tps}
        total = sum(ends.values())
        for tp, end in ends.items():
            consumer.seek(tp, end - round(n * end / total) if total else 0)
        want = sum(end - consumer.position(tp) for tp, end in ends.items())
        seen, started = 0, time.perf_counter()
        while seen < want:
            got = consumer.poll(timeout_ms=5000)
            if not got:
                raise SystemExit(f"fetch stalled after {seen:,} of {want:,} records")
            seen += len(got)
        return seen / (time.perf_counter() - started)


class Pair(NamedTuple):
    """Rates of one round of :func:`pair_full_with_empty`, records/s."""

    produce_full: float
    produce_empty: float
    fetch_full: float
    fetch_empty: float


def pair_full_with_empty(own: BrokerOnDir, topic: str, args: argparse.Namespace, values: list[bytes]) -> list[Pair]:
    """The end against the start, interleaved so that the machine's drift over the run falls on both
    alike: ``--pairs`` rounds, each producing one window more into the long run's log (the end: a
    log of ``--records`` and more) and one window into an empty topic of a new broker (the start),
    the two in alternating order, each followed by reading that window back (the newest records of
    each log). The new broker has the long run's flags; it is warmed up first with one window into
    another topic, untimed, so that what a new process pays once (its heap growing, first
    transactions) is not taken for the cost of a short log, as it would not be on a broker that has
    been serving for a while when a topic is created; it is removed after its round."""
    window, step = args.window_records, args.batch_records
    batch_bytes = step * (args.value_bytes + 12 + RECORD_OVERHEAD_BYTES)
    next_key = args.records
    pairs = []

    def full() -> tuple[float, float]:
        nonlocal next_key
        with Producer(own.address, linger_ms=args.linger_ms, max_batch_bytes=batch_bytes) as producer:
            produced = window / produce_window(producer, topic, next_key, window, step, values)
        next_key += window
        return produced, fetch_window(own.address, topic, window)

    def empty() -> tuple[float, float]:
        with data_dir() as tmp:
            fresh = BrokerOnDir(tmp, *own.extra)
            try:
                with Admin(fresh.address) as admin:
                    admin.create_topic(f"{topic}-warm-up", args.partitions)
                    admin.create_topic(topic, args.partitions)
                with Producer(fresh.address, linger_ms=args.linger_ms, max_batch_bytes=batch_bytes) as producer:
                    produce_window(producer, f"{topic}-warm-up", 0, window, step, values)  # not timed
                    produced = window / produce_window(producer, topic, 0, window, step, values)
                return produced, fetch_window(fresh.address, topic, window)
            finally:
                fresh.close()

    for r in range(args.pairs):
        if r % 2 == 0:
            at_end, at_start = full(), empty()
        else:
            at_start, at_end = empty(), full()
        pairs.append(Pair(at_end[0], at_start[0], at_end[1], at_start[1]))
        print(
            f"pair {r + 1}: produce {at_end[0]:.0f} records/s into the full log, {at_start[0]:.0f} into an empty one; "
            f"fetch {at_end[1]:.0f} from the full log's end, {at_start[1]:.0f} from the other",
            file=sys.stderr,
        )
    return pairs


def paired_fields(pairs: list[Pair]) -> str:
    """The medians of :func:`pair_full_with_empty`'s rounds, and the full log's against the empty's."""
    produce_full = statistics.median(p.produce_full for p in pairs)
    produce_empty = statistics.median(p.produce_empty for p in pairs)
    fetch_full = statistics.median(p.fetch_full for p in pairs)
    fetch_empty = statistics.median(p.fetch_empty for p in pairs)
    return (
        f"produce_rps_full_log={produce_full:.0f} produce_rps_empty_log={produce_empty:.0f} "
        f"produce_full_vs_empty={(produce_full / produce_empty - 1) * 100:+.1f}% "
        f"fetch_rps_full_log={fetch_full:.0f} fetch_rps_empty_log={fetch_empty:.0f} "
        f"fetch_full_vs_empty={(fetch_full / fetch_empty - 1) * 100:+.1f}% pairs={len(pairs)} "
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


def cpu_fields(cpu_per_m: dict[str, float]) -> str:
    fields = ""
    if "on" in cpu_per_m:
        fields += f"broker_cpu_s_per_m={cpu_per_m['on']:.3f} "
    if "plain" in cpu_per_m:
        fields += f"broker_cpu_s_per_m_plain={cpu_per_m['plain']:.3f} "
    return fields


def key_block(start: int, n: int) -> list[bytes]:
    """The keys of records ``start`` to ``start + n``: unique over the whole run."""
    return [b"key-%d" % i for i in range(start, start + n)]


def bench_values(args: argparse.Namespace) -> list[bytes]:
    """Distinct random values within a batch (a compressor sees no repeated value), reused batch after batch."""
    return [os.urandom(args.value_bytes // 2 + 1).hex().encode()[: args.value_bytes] for _ in range(args.batch_records)]


def raw_limit(args: argparse.Namespace, keys: list[bytes], values: list[bytes], group: float) -> tuple[float, float]:
    """The raw-LMDB limits of this run (see :mod:`raw_lmdb`): one batch per fsync'd commit, and
    the broker's mean batches per commit."""
    step = args.batch_records
    now = time.time_ns() // 1_000_000
    batches = []
    for i in range(0, min(len(keys), RAW_DISTINCT_BATCHES * step), step):
        rows = [[now, k, v, None] for k, v in zip(keys[i : i + step], values, strict=False)]
        batches.append((len(rows), encode_batch(rows, now, args.compression)))
    records = min(args.records, args.window_records)
    grouped = raw_lmdb_rps(batches, step, records, round(group), args.partitions)
    single = raw_lmdb_rps(batches, step, records, 1, args.partitions)
    print(
        f"raw LMDB, fsync'd, {records:,} records in batches of {step:,}: {grouped:.0f} records/s at "
        f"{round(group)} batch(es) per commit (the broker's mean, {group:.2f}), {single:.0f} at one per commit",
        file=sys.stderr,
    )
    return single, grouped


def raw_fields(produce_rps: float, raw: tuple[float, float]) -> str:
    single, grouped = raw
    return (
        f"raw_lmdb_rps={single:.0f} produce_share_of_raw={produce_rps / single * 100:.0f}% "
        f"raw_lmdb_grouped_rps={grouped:.0f} produce_share_of_grouped={produce_rps / grouped * 100:.0f}%"
    )


def single_latencies_ms(address: str, topic: str, values: list[bytes], keys: list[bytes], n: int) -> list[float]:
    """Send one record, wait for its acknowledgement, repeat ``n`` times; sorted latencies in ms."""
    latencies: list[float] = []
    with Producer(address, linger_ms=0) as producer:
        for i in range(n):
            t0 = time.perf_counter()
            producer.send(topic, values[i % len(values)], keys[i % len(keys)]).result()
            latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    return latencies


def produce_per_record(
    address: str,
    topic: str,
    partitions: int,
    values: list[bytes],
    keys: list[bytes],
    linger_ms: float,
    batch_bytes: int,
) -> float:
    """Produce one record per ``send`` call to a new topic and wait for every ack; records/s."""
    with Admin(address) as admin:
        admin.create_topic(topic, partitions)
    with Producer(address, linger_ms=linger_ms, max_batch_bytes=batch_bytes) as producer:
        send = producer.send
        n = len(values)
        started = time.perf_counter()
        for i, key in enumerate(keys):
            send(topic, values[i % n], key)
        producer.flush()
        return len(keys) / (time.perf_counter() - started)


def group_consume(address: str, topic: str, records: int) -> tuple[int, float]:
    """Read at least ``records`` records as the only member of a new group; (count, seconds)."""
    with Consumer(address, f"bench-group-{uuid.uuid4().hex[:8]}", enable_auto_commit=True) as consumer:
        started = time.perf_counter()
        consumer.subscribe([topic])
        seen = 0
        while seen < records:
            got = consumer.poll(timeout_ms=5000)
            if not got:
                raise SystemExit(f"group consumer stalled after {seen:,} records")
            seen += len(got)
        return seen, time.perf_counter() - started


def rebalance_ms(address: str, topic: str, partitions: int, timeout_s: float = 30) -> float:
    """Two members share ``topic``; one leaves; ms until the other reads every partition."""
    group = f"bench-rebalance-{uuid.uuid4().hex[:8]}"
    everything = [TopicPartition(topic, p) for p in range(partitions)]
    with Consumer(address, group) as leaving, Consumer(address, group) as staying:
        leaving.subscribe([topic])
        staying.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while not (leaving.assignment() and staying.assignment()) or (
            sorted(leaving.assignment() + staying.assignment()) != everything
        ):
            if time.monotonic() > deadline:
                raise SystemExit("the two group consumers never shared the topic")
            leaving.poll(timeout_ms=10, max_records=1)
            staying.poll(timeout_ms=10, max_records=1)
        started = time.perf_counter()
        leaving.close()
        while staying.assignment() != everything:
            if time.monotonic() > deadline:
                raise SystemExit("the survivor never got every partition")
            staying.poll(timeout_ms=5, max_records=1)
        return (time.perf_counter() - started) * 1000


class Brokers:
    """The validating broker (``address``) and the one with ``validate_records=false`` (``plain``,
    None with ``--server``); the benchmark's own ones by address, to read their CPU and writer."""

    def __init__(self, address: str, plain: str | None, own: list[BrokerOnDir]) -> None:
        self.address = address
        self.plain = plain
        self._own = {b.address: b for b in own}

    def own(self, address: str) -> BrokerOnDir | None:
        return self._own.get(address)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="benchmark an already running broker at HOST:PORT")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--window-records",
        type=int,
        default=5_000_000,
        help="more --records than this: the long run, rates per window of this many records",
    )
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--batch-records", type=int, default=1_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--linger-ms", type=float, default=5)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument(
        "--compression", choices=["none", "gzip", "zstd"], default="none", help="of the batches produced by send_many"
    )
    parser.add_argument("--rebalances", type=int, default=5, help="rebalance rounds (the slowest is reported)")
    parser.add_argument("--durability", choices=["fsync", "os"], default="fsync", help="for the broker it starts")
    parser.add_argument(
        "--off-first", action="store_true", help="produce without idempotence first (default: idempotent first)"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="produce rounds of each mode, alternating (the median is reported)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="long run: rounds of a window into the full log against one into an empty log (0: none)",
    )
    args = parser.parse_args()
    args.durability_label = "unknown" if args.server else args.durability
    long_run = args.records > args.window_records
    if long_run:
        args.compression = "none"
    with contextlib.ExitStack() as stack:
        own: list[BrokerOnDir] = []
        if args.server:
            address, plain = args.server, None
        else:
            checking = BrokerOnDir(stack.enter_context(data_dir()), "--durability", args.durability)
            stack.callback(checking.close)
            own.append(checking)
            address, plain = checking.address, None
            if not long_run:  # a second broker, without the per-record check, for produce_rps_plain
                os.environ["LOGSVC_VALIDATE_RECORDS"] = "false"
                try:
                    unchecked = BrokerOnDir(stack.enter_context(data_dir()), "--durability", args.durability)
                finally:
                    del os.environ["LOGSVC_VALIDATE_RECORDS"]
                stack.callback(unchecked.close)
                own.append(unchecked)
                plain = unchecked.address
        brokers = Brokers(address, plain, own)
        print(run_long(brokers, args) if long_run else run(brokers, args))


@contextlib.contextmanager
def data_dir() -> Iterator[str]:
    """A temporary data directory, in the same place as the raw-LMDB environment (:mod:`raw_lmdb`)."""
    with tempfile.TemporaryDirectory(prefix="logsvc-bench-") as tmp:
        yield tmp


if __name__ == "__main__":
    main()
