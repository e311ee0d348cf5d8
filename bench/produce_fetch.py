"""Produce/fetch benchmark: the client library used as an application would, against a real broker.

Starts its own broker (``logsvc serve`` on a temporary data directory, fsync durability) unless
given ``--server HOST:PORT``; then, from this one process:

1. produces ``--records`` keyed records with ``--value-bytes``-byte values, handed to the Producer
   in batches of ``--batch-records`` (``send_many``, as an application holding its records in
   batches would), and waits for every acknowledgement — with the idempotent producer (the
   default) and, in the same run, with ``enable_idempotence=False`` to another topic, and without
   idempotence to a second broker that skips the per-record check, ``--rounds`` times each,
   rotating which goes first (medians reported); then the same again to another topic with one
   ``send`` per record (printed on stderr only);
2. consumes them all with a Consumer (records delivered to the application as Record tuples);
3. sends ``--single`` records one at a time (send, wait for the acknowledgement, repeat);
4. consumes them all again with one group consumer (``subscribe``, auto-commit on), from joining
   the group to the last record;
5. times ``--rebalances`` rebalances: two group consumers (default settings) share the topic, one
   closes (leaves), and the clock runs from the start of its close until the survivor's poll
   returns with every partition assigned to it. The slowest round is reported.

Last line: ``produce_rps=N fetch_rps=N single_p50_ms=X single_p99_ms=Y group_consume_rps=N rebalance_ms=N
produce_rps_idempotence_off=N produce_rps_plain=N idempotent=on durability=fsync|os compression=none|gzip|zstd
server=logsvc:own|logsvc:given``
(``produce_rps`` and every figure but the next two measured with the idempotent producer against a
broker checking every record; ``produce_rps_idempotence_off`` the same broker without
idempotence; ``produce_rps_plain`` neither: a second broker it starts with
``validate_records=false``, left out with ``--server``; produce figures are medians over the
rounds; ``durability`` is the broker's when the benchmark starts it, ``unknown`` with ``--server``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
import uuid

from own_broker import broker, own_broker

from logsvc_client import Admin, Consumer, Producer, TopicPartition

RECORD_OVERHEAD_BYTES = 20  # msgpack framing + timestamp per record, for sizing batches


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(address: str, plain: str | None, args: argparse.Namespace) -> str:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    with Admin(address) as admin:
        admin.create_topic(topic, args.partitions)
    keys = [b"key-%d" % i for i in range(args.records)]
    step = args.batch_records
    # distinct random values within a batch (a compressor sees no repeated value), reused batch after batch
    values = [os.urandom(args.value_bytes // 2 + 1).hex().encode()[: args.value_bytes] for _ in range(step)]
    batch_bytes = args.batch_records * (args.value_bytes + 12 + RECORD_OVERHEAD_BYTES)

    # 1. produce: the application's batches of records in each mode, then one send() per record
    def produce(at: str, to: str, idempotent: bool, label: str) -> float:
        if to != topic:  # the first one was created above
            with Admin(at) as admin:
                admin.create_topic(to, args.partitions)
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
        print(
            f"produced {args.records:,} records in {seconds:.2f} s, client CPU {cpu:.2f} s "
            f"(send_many of {step:,}, {label})",
            file=sys.stderr,
        )
        return seconds

    # (name, broker address, idempotent, label); "plain" is another broker with validate_records=false
    modes = [("on", address, True, "idempotence on"), ("off", address, False, "idempotence off")]
    if plain is not None:
        modes.append(("plain", plain, False, "idempotence off, validate_records=false"))
    times: dict[str, list[float]] = {name: [] for name, *_ in modes}
    for r in range(args.rounds):  # rotate the order, so no mode always runs first
        k = (r + (1 if args.off_first else 0)) % len(modes)
        for name, at, idempotent, label in modes[k:] + modes[:k]:
            to = topic if (name, r) == ("on", 0) else f"{topic}-{name}-{r}"
            times[name].append(produce(at, to, idempotent, label))
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
    latencies: list[float] = []
    with Producer(address, linger_ms=0) as producer:
        for i in range(args.single):
            t0 = time.perf_counter()
            producer.send(topic, values[i % len(values)], keys[i]).result(timeout=10)
            latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()

    # 4. one group consumer, auto-commit on
    group_seen, group_s = group_consume(address, topic, args.records)
    print(f"group consumer read {group_seen:,} records in {group_s:.2f} s", file=sys.stderr)

    # 5. rebalance after a member leaves
    rounds = [rebalance_ms(address, topic, args.partitions) for _ in range(args.rebalances)]
    print(f"rebalance after a leave: {', '.join(f'{ms:.0f}' for ms in rounds)} ms", file=sys.stderr)
    return (
        f"produce_rps={args.records / produce_s:.0f} fetch_rps={seen / fetch_s:.0f} "
        f"single_p50_ms={percentile(latencies, 0.50):.3f} single_p99_ms={percentile(latencies, 0.99):.3f} "
        f"group_consume_rps={group_seen / group_s:.0f} rebalance_ms={max(rounds):.0f} "
        f"produce_rps_idempotence_off={args.records / off_median_s:.0f} "
        + (f"produce_rps_plain={args.records / median['plain']:.0f} " if "plain" in median else "")
        + f"idempotent=on durability={args.durability_label} compression={args.compression} "
        + f"server={'logsvc:given' if args.server else 'logsvc:own'}"
    )


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="benchmark an already running broker at HOST:PORT")
    parser.add_argument("--records", type=int, default=1_000_000)
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
    args = parser.parse_args()
    args.durability_label = "unknown" if args.server else args.durability
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(broker(args.server, "--durability", args.durability))
        plain = None
        if not args.server:  # a second broker, without the per-record check, for produce_rps_plain
            os.environ["LOGSVC_VALIDATE_RECORDS"] = "false"
            try:
                plain = stack.enter_context(own_broker("--durability", args.durability))
            finally:
                del os.environ["LOGSVC_VALIDATE_RECORDS"]
        print(run(address, plain, args))


if __name__ == "__main__":
    main()
