"""The storage limit a produce benchmark is held against: the same record batches written fsync'd
straight into LMDB with py-lmdb, no broker, no gRPC, no validation.

Each batch is one ``put`` keyed as the broker keys batches (``(topic_id, partition, base_offset)``
big-endian, :func:`logsvc.storage.keys.position_key`), in a fresh environment opened with the
broker's own flags (``sync=True``: every commit is an fsync), in a temporary directory beside the
broker's (the same filesystem). Transactions hold ``group_batches`` batches each. The honest
limit for a broker that group-commits is the raw rate at the broker's own mean group size,
measured in the same run: one commit per batch would be slower than the broker's grouping makes
the disk (a share of over 100 % would be possible), one commit for everything faster than any
acknowledged produce can be (no fsync before each ack).

Its CPU time (the writing thread's user and system time, the fsyncs included) is the floor of a
broker's CPU for the same records: the kernel's share of it — copying the pages into the page
cache, and on a virtual machine the host backing each new page — is paid by anything that stores
these bytes, and it moves with the machine's memory state (see the README's performance notes).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Sequence
from typing import NamedTuple

import lmdb

from logsvc.storage.environment import MAX_READERS
from logsvc.storage.keys import position_key

TOPIC_ID = 1
MAP_SIZE_BYTES = 1 << 40  # sparse, as the broker's


class RawRun(NamedTuple):
    """One raw-LMDB write: records/s, the writing thread's CPU seconds per million records, and
    the batches per commit it wrote."""

    rps: float
    cpu_s_per_m: float
    group_batches: int


def raw_lmdb_rps(
    batches: Sequence[tuple[int, bytes]],
    records_per_batch: int,
    total_records: int,
    group_batches: int = 1,
    partitions: int = 4,
    keep_in: str | None = None,
) -> RawRun:
    """Writing ``total_records`` records as ``batches`` (``(record_count, bytes)``, cycled),
    round-robin over ``partitions``, ``group_batches`` per fsync'd commit: its rate and CPU. The
    environment is removed after, unless ``keep_in`` names a directory to leave it in (so that its
    pages stay in use and are not handed to what runs next)."""
    n_batches = max(1, total_records // records_per_batch)
    group = max(1, group_batches)
    where = (
        contextlib.nullcontext(tempfile.mkdtemp(prefix="logsvc-bench-raw-", dir=keep_in))
        if keep_in
        else tempfile.TemporaryDirectory(prefix="logsvc-bench-raw-")
    )
    with where as tmp:
        env = lmdb.open(tmp, map_size=MAP_SIZE_BYTES, max_dbs=8, sync=True, max_readers=MAX_READERS)
        try:
            db = env.open_db(b"batches")
            next_offset = [0] * partitions
            written = 0
            started, cpu = time.perf_counter(), time.thread_time()
            i = 0
            while i < n_batches:
                with env.begin(write=True, db=db) as txn:
                    put = txn.put
                    for j in range(i, min(i + group, n_batches)):
                        count, data = batches[j % len(batches)]
                        p = j % partitions
                        put(position_key(TOPIC_ID, p, next_offset[p]), data)
                        next_offset[p] += count
                        written += count
                i += group
            seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
        finally:
            env.close()
    return RawRun(written / seconds, cpu * 1e6 / written, group)
