"""What the produce/fetch benchmarks share (:mod:`produce_fetch`, :mod:`long_run`): the brokers they
run against, their records and keys, and the raw-LMDB limit measured in the same run."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator

from own_broker import BrokerOnDir
from raw_lmdb import RawRun, raw_lmdb_rps

from logsvc_wire.batch import encode_batch

RECORD_OVERHEAD_BYTES = 20  # msgpack framing + timestamp per record, for sizing batches
#: every key :func:`key_block` makes is this long: ``key-`` and ten digits
KEY_BYTES = 14
KEY_BLOCK_RECORDS = 1_000_000  # the long run makes its keys this many at a time
RAW_DISTINCT_BATCHES = 16  # the raw-LMDB writer cycles this many distinct batches


def batch_bytes(args: argparse.Namespace) -> int:
    """The producer's ``max_batch_bytes`` that holds ``--batch-records`` records of ``--value-bytes``."""
    return args.batch_records * (args.value_bytes + KEY_BYTES + RECORD_OVERHEAD_BYTES)


class Brokers:
    """The validating broker (``address``) and the one with ``validate_records=false`` (``plain``,
    None with ``--server``); the benchmark's own ones by address, to read their CPU and writer."""

    def __init__(self, address: str, plain: str | None, own: list[BrokerOnDir]) -> None:
        self.address = address
        self.plain = plain
        self._own = {b.address: b for b in own}

    def own(self, address: str) -> BrokerOnDir | None:
        return self._own.get(address)


@contextlib.contextmanager
def data_dir() -> Iterator[str]:
    """A temporary data directory, in the same place as the raw-LMDB environment (:mod:`raw_lmdb`)."""
    with tempfile.TemporaryDirectory(prefix="logsvc-bench-") as tmp:
        yield tmp


def key_block(start: int, n: int) -> list[bytes]:
    """The keys of records ``start`` to ``start + n``: unique over the whole run, and all
    :data:`KEY_BYTES` long, so that a record is the same size at the log's end as at its start.
    With ``key-<n>`` keys the first 5 M records' were 1.2 bytes shorter than the last 5 M's, and
    in an ad-hoc check (a 50 M log, the page cache full, eight alternating rounds of new Consumers)
    the log's last 5 M read 4.6 % more slowly than its first, at 18 % more broker CPU per record;
    with keys of one length the two were within 1.2 %, at the same broker CPU. Rereads of the long
    run's ends: -7.3 % to -1.4 % in ten runs with the old keys, +0.4 % to +2.1 % in seven since.
    (A later ad-hoc check with the old keys showed no gap, so the cause is not settled.)"""
    return [b"key-%010d" % i for i in range(start, start + n)]


def bench_values(args: argparse.Namespace) -> list[bytes]:
    """Distinct random values within a batch (a compressor sees no repeated value), reused batch after batch."""
    return [os.urandom(args.value_bytes // 2 + 1).hex().encode()[: args.value_bytes] for _ in range(args.batch_records)]


def raw_batches(args: argparse.Namespace, keys: list[bytes], values: list[bytes]) -> list[tuple[int, bytes]]:
    """The raw-LMDB writer's batches (``(record_count, bytes)``): the run's first keys with its
    values, encoded as the producer encodes them, :data:`RAW_DISTINCT_BATCHES` distinct ones."""
    step = args.batch_records
    now = time.time_ns() // 1_000_000
    batches = []
    for i in range(0, min(len(keys), RAW_DISTINCT_BATCHES * step), step):
        rows = [[now, k, v, None] for k, v in zip(keys[i : i + step], values, strict=False)]
        batches.append((len(rows), encode_batch(rows, now, args.compression)))
    return batches


def raw_limit(args: argparse.Namespace, keys: list[bytes], values: list[bytes], group: float) -> tuple[RawRun, RawRun]:
    """The raw-LMDB limits of this run (see :mod:`raw_lmdb`): one batch per fsync'd commit, and
    the broker's mean batches per commit."""
    step = args.batch_records
    batches = raw_batches(args, keys, values)
    records = min(args.records, args.window_records)
    grouped = raw_lmdb_rps(batches, step, records, round(group), args.partitions)
    single = raw_lmdb_rps(batches, step, records, 1, args.partitions)
    print(
        f"raw LMDB, fsync'd, {records:,} records in batches of {step:,}: {grouped.rps:.0f} records/s at "
        f"{round(group)} batch(es) per commit (the broker's mean, {group:.2f}), {single.rps:.0f} at one per commit",
        file=sys.stderr,
    )
    return single, grouped


def floor_beside(
    args: argparse.Namespace, batches: list[tuple[int, bytes]], records: int, writer: tuple[int, int], kept: str
) -> RawRun:
    """The floor under a broker's CPU just after it stored some records: ``records`` of
    ``batches`` (:func:`raw_batches`) written fsync'd into raw LMDB at the broker's mean batches per
    commit meanwhile (``writer``: its writer's ``(commits, batches)``), left on disk in ``kept``
    until the run ends, so its pages are not handed to the broker's next writes."""
    commits, written = writer
    group = round(written / commits) if commits else 1
    return raw_lmdb_rps(batches, args.batch_records, records, group, args.partitions, keep_in=kept)


def raw_fields(produce_rps: float, raw: tuple[RawRun, RawRun]) -> str:
    single, grouped = raw
    return (
        f"raw_lmdb_rps={single.rps:.0f} produce_share_of_raw={produce_rps / single.rps * 100:.0f}% "
        f"raw_lmdb_grouped_rps={grouped.rps:.0f} produce_share_of_grouped={produce_rps / grouped.rps * 100:.0f}%"
    )


def cpu_fields(cpu_per_m: dict[str, float]) -> str:
    fields = ""
    if "on" in cpu_per_m:
        fields += f"broker_cpu_s_per_m={cpu_per_m['on']:.3f} "
    if "plain" in cpu_per_m:
        fields += f"broker_cpu_s_per_m_plain={cpu_per_m['plain']:.3f} "
    return fields
