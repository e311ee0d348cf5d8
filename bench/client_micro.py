"""Client-side costs in isolation, no broker: Producer.send and send_many, batch encoding, decoding.

1. ``send``: a Producer whose transport acknowledges every request at once, fed ``--records``
   keyed records of ``--value-bytes`` bytes; timed until ``flush()`` returns, so it includes the
   sender thread's encoding (the two share the GIL, as they do against a real broker). The time
   spent in the ``send`` loop alone is printed too.
2. ``send_many``: the same records handed over ``--batch-records`` at a time with
   ``Producer.send_many``; timed the same two ways.
3. ``encode``: :func:`logsvc_wire.batch.encode_batch` over batches of ``--batch-records``.
4. ``decode``: :func:`logsvc_wire.batch.decode_records` over the same batches (CRC checked).

Last line: ``send_rps=N send_loop_rps=N send_many_rps=N send_many_loop_rps=N encode_rps=N decode_rps=N``
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from logsvc_client import Producer
from logsvc_client.transport.base import ProduceCallback
from logsvc_wire import batch as codec


class InstantTransport:
    """Acknowledges every produce at once, with made-up dense offsets."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.next_offsets: dict[int, int] = {}

    def partition_count(self, topic: str) -> int:
        return self.partitions

    def produce(self, topic: str, batches: Sequence[tuple[int, bytes]], done: ProduceCallback) -> None:
        bases = []
        for partition, data in batches:
            base = self.next_offsets.get(partition, 0)
            bases.append(base)
            self.next_offsets[partition] = base + codec.read_header(data).record_count
        done(bases, None)

    def close(self) -> None:
        pass


def bench_send(args: argparse.Namespace, *, many: bool) -> tuple[float, float]:
    """(records/s until flushed, records/s of the loop alone) with send, or send_many."""
    value = os.urandom(args.value_bytes // 2).hex().encode()[: args.value_bytes]
    keys = [b"key-%d" % i for i in range(args.records)]
    step = args.batch_records
    values = [value] * step
    producer = Producer(
        "in-memory", linger_ms=args.linger_ms, transport=InstantTransport(args.partitions), enable_idempotence=False
    )
    topic = "bench"
    started = time.perf_counter()
    if many:
        send_many = producer.send_many
        for i in range(0, args.records, step):
            chunk = keys[i : i + step]
            send_many(topic, values if len(chunk) == step else values[: len(chunk)], chunk)
    else:
        send = producer.send
        for key in keys:
            send(topic, value, key)
    loop_s = time.perf_counter() - started
    producer.flush()
    total_s = time.perf_counter() - started
    producer.close()
    return args.records / total_s, args.records / loop_s


def bench_codec(args: argparse.Namespace) -> tuple[float, float]:
    value = os.urandom(args.value_bytes)
    now = time.time_ns() // 1_000_000
    records = [(now + i, b"key-%d" % i, value, None) for i in range(args.batch_records)]
    rounds = max(1, args.records // args.batch_records)
    started = time.perf_counter()
    for _ in range(rounds):
        data = codec.encode_batch(records, now + args.batch_records - 1)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(rounds):
        decoded = codec.decode_records("bench", 0, 1000, data, 1000)
    decode_s = time.perf_counter() - started
    assert len(decoded) == args.batch_records
    n = rounds * args.batch_records
    return n / encode_s, n / decode_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-records", type=int, default=1_000)
    parser.add_argument("--linger-ms", type=float, default=5)
    args = parser.parse_args()
    send_rps, loop_rps = bench_send(args, many=False)
    many_rps, many_loop_rps = bench_send(args, many=True)
    encode_rps, decode_rps = bench_codec(args)
    print(
        f"send_rps={send_rps:.0f} send_loop_rps={loop_rps:.0f} send_many_rps={many_rps:.0f} "
        f"send_many_loop_rps={many_loop_rps:.0f} encode_rps={encode_rps:.0f} decode_rps={decode_rps:.0f}"
    )


if __name__ == "__main__":
    main()
