"""Would LMDB's ``writemap`` make produce cheaper? The same record batches written fsync'd straight
into LMDB three ways, in alternating rounds:

1. ``copy``: the broker's way (py-lmdb's default): LMDB builds each dirty page in memory and
   ``pwrite``s it into the file, then ``fdatasync`` (the kernel copies it into the page cache);
2. ``writemap``: ``writemap=True`` on the broker's sparse 1 TiB map: pages are changed in the
   mapping itself and a commit ``msync``s the map;
3. ``prealloc``: ``writemap=True`` on a 1 GiB map whose file is preallocated (``posix_fallocate``)
   first, so no write lands in a hole (a hole on a full disk would be a SIGBUS).

Each round writes ``--records`` records as 1,000-record batches (about 100-byte values), two
batches per commit over 4 partitions, and reports this process's user and system CPU per million
records and the rate. The last line gives the medians over the rounds:
``copy_sys_s_per_m=X writemap_sys_s_per_m=X prealloc_sys_s_per_m=X copy_rps=N writemap_rps=N
prealloc_rps=N``.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time

import lmdb

from logsvc.storage.keys import position_key
from logsvc_wire.batch import encode_batch

RECORDS_PER_BATCH = 1_000
PARTITIONS = 4
SPARSE_MAP = 1 << 40  # the broker's
PREALLOCATED_MAP = 1 << 30


def make_batches(n: int = 8) -> list[bytes]:
    now = 1_700_000_000_000

    def records() -> list[list[object]]:
        return [[now + i, b"key-%d" % i, os.urandom(50).hex().encode(), None] for i in range(RECORDS_PER_BATCH)]

    return [encode_batch(records(), now) for _ in range(n)]


def open_env(path: str, way: str) -> lmdb.Environment:
    if way == "prealloc":
        lmdb.open(path, map_size=PREALLOCATED_MAP, max_dbs=4).close()  # LMDB makes the file first
        fd = os.open(os.path.join(path, "data.mdb"), os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, PREALLOCATED_MAP)
        finally:
            os.close(fd)
        return lmdb.open(path, map_size=PREALLOCATED_MAP, max_dbs=4, sync=True, writemap=True)
    return lmdb.open(path, map_size=SPARSE_MAP, max_dbs=4, sync=True, writemap=way == "writemap")


def one_round(way: str, batches: list[bytes], records: int, group: int) -> tuple[float, float, float]:
    """(user CPU s per million, system CPU s per million, records/s) of writing ``records``."""
    n_batches = max(1, records // RECORDS_PER_BATCH)
    with tempfile.TemporaryDirectory(prefix="logsvc-bench-writemap-") as tmp:
        env = open_env(tmp, way)
        try:
            db = env.open_db(b"batches")
            next_offset = [0] * PARTITIONS
            before = resource.getrusage(resource.RUSAGE_SELF)
            started = time.perf_counter()
            for first in range(0, n_batches, group):
                with env.begin(write=True, db=db) as txn:
                    for j in range(first, min(first + group, n_batches)):
                        p = j % PARTITIONS
                        txn.put(position_key(1, p, next_offset[p]), batches[j % len(batches)])
                        next_offset[p] += RECORDS_PER_BATCH
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_SELF)
        finally:
            env.close()
    millions = n_batches * RECORDS_PER_BATCH / 1e6
    return (
        (after.ru_utime - before.ru_utime) / millions,
        (after.ru_stime - before.ru_stime) / millions,
        millions * 1e6 / seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2_000_000, help="records per way per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--group", type=int, default=2, help="batches per fsync'd commit")
    args = parser.parse_args()
    batches = make_batches()
    ways = ("copy", "writemap", "prealloc")
    results: dict[str, list[tuple[float, float, float]]] = {way: [] for way in ways}
    for r in range(args.rounds):
        for way in ways:
            user, system, rps = one_round(way, batches, args.records, args.group)
            results[way].append((user, system, rps))
            print(f"round {r + 1} {way:9s} user {user:.3f} sys {system:.3f} s/M  {rps / 1e6:.2f} M records/s")
    sys_fields = " ".join(f"{way}_sys_s_per_m={statistics.median(s for _, s, _ in results[way]):.3f}" for way in ways)
    rps_fields = " ".join(f"{way}_rps={statistics.median(r for _, _, r in results[way]):.0f}" for way in ways)
    print(f"{sys_fields} {rps_fields}")


if __name__ == "__main__":
    main()
