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
   the group to the last record (this and the next: :mod:`group_timing`);
5. times ``--rebalances`` rebalances: two group consumers (default settings) share the topic, one
   closes (leaves), and the clock runs from the start of its close until the survivor's poll
   returns with every partition assigned to it. The slowest round is reported.

Last line: ``produce_rps=N fetch_rps=N single_p50_ms=X single_p99_ms=Y group_consume_rps=N rebalance_ms=N
produce_rps_idempotence_off=N produce_rps_plain=N idempotent=on durability=fsync|os compression=none|gzip|zstd
page_cache=as_found|full cpus=shared|split
server=logsvc:own|logsvc:given broker_cpu_s_per_m=X broker_cpu_s_per_m_plain=Y broker_user_s_per_m=X
broker_system_s_per_m=X raw_lmdb_cpu_s_per_m=X broker_cpu_over_raw_s_per_m=X raw_lmdb_rps=N
produce_share_of_raw=NN% raw_lmdb_grouped_rps=N produce_share_of_grouped=NN%``
(``produce_rps`` and every figure but the next two measured with the idempotent producer against a
broker checking every record; ``produce_rps_idempotence_off`` the same broker without
idempotence; ``produce_rps_plain`` neither: a second broker it starts with
``validate_records=false``, left out with ``--server``; produce figures are medians over the
rounds; ``durability`` is the broker's when the benchmark starts it, ``unknown`` with ``--server``;
``broker_cpu_s_per_m`` the validating broker's CPU seconds per million records produced by the
idempotent producer, ``broker_cpu_s_per_m_plain`` the other broker's, medians over the rounds,
both left out with ``--server``; ``broker_user_s_per_m`` and ``broker_system_s_per_m`` the first
split into user and kernel time; ``raw_lmdb_cpu_s_per_m`` the CPU of writing the same records
fsync'd straight into LMDB (:mod:`raw_lmdb`, at that round's batches per commit) just after each
idempotent round, the floor under the broker's CPU, whose kernel part moves with the machine's
memory state; ``broker_cpu_over_raw_s_per_m`` the broker's CPU above that floor, round by round
(medians; the four left out with ``--server``); ``raw_lmdb_rps`` the raw-LMDB limit over ``min(--records,
--window-records)`` records at one batch per commit and ``produce_share_of_raw`` ``produce_rps`` as
a share of it; ``raw_lmdb_grouped_rps`` and ``produce_share_of_grouped`` the same at the broker's
own batches per commit).

The long run (``--records`` above ``--window-records``): see :mod:`long_run`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import uuid

import cpus
import long_run
import page_cache
from group_timing import group_consume, rebalance_ms
from own_broker import BrokerOnDir, cpu_times
from workload import (
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


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(brokers: Brokers, args: argparse.Namespace) -> str:
    """The benchmark against ``brokers``; its last line. The raw-LMDB floors measured after the
    idempotent rounds are kept on disk until it ends, so the pages they hold are not handed to the
    broker's next round (which would make its writes cheaper than a broker's in steady use)."""
    with data_dir() as kept:
        return _run(brokers, args, kept)


def _run(brokers: Brokers, args: argparse.Namespace, kept: str) -> str:
    address, plain = brokers.address, brokers.plain
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    with Admin(address) as admin:
        admin.create_topic(topic, args.partitions)
    keys = key_block(0, args.records)
    step = args.batch_records
    values = bench_values(args)
    max_batch_bytes = batch_bytes(args)

    # 1. produce: the application's batches of records in each mode, then one send() per record
    def produce(
        at: str, to: str, idempotent: bool, label: str
    ) -> tuple[float, tuple[float, float] | None, tuple[int, int]]:
        """(seconds, broker (user, system) CPU seconds or None, broker writer (commits, batches) done
        meanwhile)"""
        if to != topic:  # the first one was created above
            with Admin(at) as admin:
                admin.create_topic(to, args.partitions)
        own = brokers.own(at)
        counts = own.writer_counts() if own else (0, 0)
        broker_cpu = cpu_times(own.pid) if own else (0.0, 0.0)
        with Producer(
            at,
            linger_ms=args.linger_ms,
            max_batch_bytes=max_batch_bytes,
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
        broker_s = None
        if own:
            user, system = cpu_times(own.pid)
            broker_s = (user - broker_cpu[0], system - broker_cpu[1])
        after = own.writer_counts() if own else (0, 0)
        done = (after[0] - counts[0], after[1] - counts[1])
        print(
            f"produced {args.records:,} records in {seconds:.2f} s, client CPU {cpu:.2f} s"
            + (
                f", broker CPU {sum(broker_s):.2f} s (user {broker_s[0]:.2f}, system {broker_s[1]:.2f})"
                f" in {done[0]:,} commits of {done[1]:,} batches"
                if broker_s
                else ""
            )
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
    # The floor under the broker's CPU, measured beside each idempotent round: the same bytes written
    # fsync'd into raw LMDB at that round's batches per commit (its CPU moves with the machine's
    # memory), kept on disk until the run ends
    floor_batches = raw_batches(args, keys, values)
    user_per_m: list[float] = []
    system_per_m: list[float] = []
    raw_cpu_per_m: list[float] = []
    over_raw_per_m: list[float] = []
    for r in range(args.rounds):  # rotate the order, so no mode always runs first
        k = (r + (1 if args.off_first else 0)) % len(modes)
        for name, at, idempotent, label in modes[k:] + modes[:k]:
            to = topic if (name, r) == ("on", 0) else f"{topic}-{name}-{r}"
            seconds, cpu_s, (c, b) = produce(at, to, idempotent, label)
            times[name].append(seconds)
            if cpu_s is not None:
                broker_cpu[name].append(sum(cpu_s))
            if name == "on":
                commits, batches = commits + c, batches + b
                if cpu_s is not None:
                    floor = floor_beside(args, floor_batches, args.records, (c, b), kept)
                    broker_per_m = sum(cpu_s) * 1e6 / args.records
                    above = broker_per_m - floor.cpu_s_per_m
                    user_per_m.append(cpu_s[0] * 1e6 / args.records)
                    system_per_m.append(cpu_s[1] * 1e6 / args.records)
                    raw_cpu_per_m.append(floor.cpu_s_per_m)
                    over_raw_per_m.append(above)
                    print(
                        f"raw LMDB writing the same records at {floor.group_batches} batch(es) per commit, "
                        f"just after: CPU {floor.cpu_s_per_m:.3f} s per million; the broker's "
                        f"{broker_per_m:.3f} is {above:+.3f} above it",
                        file=sys.stderr,
                    )
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
    send_rps = produce_per_record(
        address, f"{topic}-send", args.partitions, values, keys, args.linger_ms, max_batch_bytes
    )
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
        f"page_cache={args.page_cache_label} cpus={args.cpus} "
        + f"server={'logsvc:given' if args.server else 'logsvc:own'} "
        + cpu_fields(cpu_per_m)
        + (
            f"broker_user_s_per_m={statistics.median(user_per_m):.3f} "
            f"broker_system_s_per_m={statistics.median(system_per_m):.3f} "
            f"raw_lmdb_cpu_s_per_m={statistics.median(raw_cpu_per_m):.3f} "
            f"broker_cpu_over_raw_s_per_m={statistics.median(over_raw_per_m):.3f} "
            if raw_cpu_per_m
            else ""
        )
        + raw_fields(produce_rps, raw)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=f"{__doc__}\n{long_run.__doc__}", formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
        "--page-cache",
        choices=page_cache.STATES,
        help="full: fill the page cache before the run, so its writes reuse reclaimed pages (see bench/page_cache.py);"
        " default: full for the long run, as-found otherwise",
    )
    parser.add_argument(
        "--cpus",
        choices=cpus.STATES,
        help="split: this process on the first half of the CPUs, the brokers it starts on the rest (bench/cpus.py);"
        " default: split for the long run, shared otherwise",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=7,
        help="long run: rounds of a window into the full log against one into an empty log (0: none)",
    )
    parser.add_argument(
        "--warm-up-seconds",
        type=float,
        default=5.0,
        help="long run: produce windows into another topic, untimed, for this long first (one window at least)",
    )
    parser.add_argument(
        "--rereads",
        type=int,
        default=5,
        help="long run: rounds reading the log's first and last window again, alternating (0: none)",
    )
    args = parser.parse_args()
    args.durability_label = "unknown" if args.server else args.durability
    is_long = args.records > args.window_records
    # the long run compares the log's end with its start: by default in the steady state that
    # isolates the log (see bench/page_cache.py and bench/cpus.py), as found on request
    args.page_cache = args.page_cache or ("full" if is_long else "as-found")
    args.cpus = args.cpus or ("split" if is_long else "shared")
    if is_long:
        args.compression = "none"
    client_cpus, broker_cpus = cpus.split() if args.cpus == "split" else (None, None)
    if client_cpus is not None:
        cpus.pin(0, client_cpus)
    with contextlib.ExitStack() as stack:
        args.page_cache_label = stack.enter_context(page_cache.page_cache(args.page_cache))
        own: list[BrokerOnDir] = []
        if args.server:
            address, plain = args.server, None
        else:
            checking = BrokerOnDir(stack.enter_context(data_dir()), "--durability", args.durability, cpus=broker_cpus)
            stack.callback(checking.close)
            own.append(checking)
            address, plain = checking.address, None
            if not is_long:  # a second broker, without the per-record check, for produce_rps_plain
                os.environ["LOGSVC_VALIDATE_RECORDS"] = "false"
                try:
                    unchecked = BrokerOnDir(
                        stack.enter_context(data_dir()), "--durability", args.durability, cpus=broker_cpus
                    )
                finally:
                    del os.environ["LOGSVC_VALIDATE_RECORDS"]
                stack.callback(unchecked.close)
                own.append(unchecked)
                plain = unchecked.address
        brokers = Brokers(address, plain, own)
        print(long_run.run_long(brokers, args) if is_long else run(brokers, args))


if __name__ == "__main__":
    main()
