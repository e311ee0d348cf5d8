"""LMDB-only behaviour: reopening, group commit under concurrency, map growth and exhaustion,
read-only opening next to a writer, stale reader slots, periodic retention."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import lmdb
import pytest

from logsvc.storage import ops
from logsvc.storage.base import Store
from logsvc.storage.lmdb_store import LmdbStore
from logsvc.storage.memory import MemoryStore
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import InternalError, InvalidRequest, NotFound, OffsetOutOfRange, StorageFull
from logsvc_wire.batch import decode_records
from tests.storage.batches import FakeClock, make_batch, make_batch_at

DAY_MS = 86_400_000
ROOT = Path(__file__).resolve().parents[2]
OPEN_ENV = "import os, sys, lmdb\nenv = lmdb.open(sys.argv[1], max_dbs=8, max_readers=1024)\n"


def run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
    )


def test_reopening_rebuilds_offsets_sizes_and_the_time_index(tmp_path: Path, clock: FakeClock) -> None:
    # Given a store with data, a trimmed partition, and a partition emptied by retention
    path = tmp_path / "data"
    with LmdbStore.open(path, clock=clock, retention_check_interval_ms=0) as store:
        store.create_topic("orders", 3, TopicConfig(retention_ms=DAY_MS))
        store.append("orders", [(0, make_batch_at([100, 200, 300])), (0, make_batch_at([400]))])
        store.append("orders", [(1, make_batch(5))])
        store.append("orders", [(2, make_batch(4, ts=clock()))])
        store.trim("orders", 0, 2)
        store.apply_retention(clock() + 2 * DAY_MS)  # empties partitions 0 and 1, keeps none of 2 either
        store.append("orders", [(0, make_batch_at([clock()]))])
        before = store.partition_states("orders")
    # When it is reopened
    with LmdbStore.open(path, clock=clock, retention_check_interval_ms=0) as store:
        after = store.partition_states("orders")
        # Then every partition's bounds, size and timestamps are as they were
        assert after == before
        assert [(st.log_start_offset, st.next_offset) for st in after] == [(4, 5), (5, 5), (4, 4)]
        # And new appends continue the offsets, including on the emptied partitions
        assert store.append("orders", [(1, make_batch()), (2, make_batch())])[0].base_offset == 5
        assert store.offset_for_time("orders", 0, 0).offset == 4


def test_concurrent_appends_get_dense_unique_offsets_in_fewer_commits(tmp_path: Path) -> None:
    # Given a store and 8 threads
    with LmdbStore.open(tmp_path / "data", retention_check_interval_ms=0) as store:
        store.create_topic("orders", 2, TopicConfig())
        results: list[tuple[int, int]] = []
        lock = threading.Lock()

        def produce(worker: int) -> None:
            for i in range(100):
                for a in store.append("orders", [(i % 2, make_batch(3, tag=f"{worker}-{i}"))]):
                    with lock:
                        results.append((a.partition, a.base_offset))

        threads = [threading.Thread(target=produce, args=(w,)) for w in range(8)]
        ops_before = store.stats.ops
        # When they all append 100 batches at once
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Then each partition holds dense, unique offsets
        for p in (0, 1):
            bases = sorted(b for part, b in results if part == p)
            assert bases == list(range(0, 400 * 3, 3))
            assert store.partition_states("orders")[p].next_offset == 1200
            assert len(set(decode_records("orders", p, 0, store.read("orders", p, 0, 1 << 20).batches[0][1]))) == 3
        # And the writer needed fewer transactions than requests (group commit)
        assert store.stats.ops - ops_before == 800
        assert store.stats.commits < 800


class Gate(ops.Op):
    """An op that holds the writer until released, so the next ops queue up as one group."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def write(self, ctx: ops.TxnContext, plan: object) -> None:
        self.entered.set()
        self.release.wait(10)


class Boom(ops.Op):
    """An op with a bug: it writes something, then raises."""

    def write(self, ctx: ops.TxnContext, plan: object) -> None:
        ctx.txn.put(b"boom", b"1", db=ctx.dbs.meta)
        raise RuntimeError("bug")


def test_a_failing_op_fails_alone_and_the_rest_of_its_group_commits(tmp_path: Path) -> None:
    # Given a writer held busy while an append, a bad trim, a buggy op and a commit queue up
    with LmdbStore.open(tmp_path / "data", retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        writer = store._writer
        assert writer is not None
        gate = Gate()
        threading.Thread(target=writer.submit, args=(gate,)).start()
        assert gate.entered.wait(5)
        outcomes: dict[str, object] = {}

        def call(name: str, fn: Callable[[], object]) -> threading.Thread:
            def run() -> None:
                try:
                    outcomes[name] = fn()
                except Exception as e:
                    outcomes[name] = e

            thread = threading.Thread(target=run)
            thread.start()
            return thread

        threads = [
            call("append", lambda: store.append("orders", [(0, make_batch(2))])),
            call("trim", lambda: store.trim("orders", 0, 99)),
            call("boom", lambda: writer.submit(Boom())),
            call("commit", lambda: store.commit_offsets("g", [("orders", 0, 2, "")], 1)),
        ]
        deadline = time.monotonic() + 5
        while writer._queue.qsize() < 4 and time.monotonic() < deadline:
            time.sleep(0.001)
        commits = store.stats.commits
        # When the writer goes on
        gate.release.set()
        for thread in threads:
            thread.join(5)
        # Then the bad ops failed with their own errors and the others committed together
        assert isinstance(outcomes["trim"], OffsetOutOfRange)
        assert isinstance(outcomes["boom"], InternalError)
        appended = outcomes["append"]
        assert isinstance(appended, list) and appended[0].base_offset == 0
        assert store.committed_offsets("g")[0].offset == 2
        with store._snapshot() as txn:  # the buggy op's own write was rolled back
            assert txn.get(b"boom", db=store._dbs.meta) is None
        assert store.stats.commits - commits == 2  # the gate's group, then the four together


def test_the_map_grows_on_demand_and_all_data_stays_readable(tmp_path: Path) -> None:
    # Given a store whose map starts at 64 KiB
    with LmdbStore.open(tmp_path / "data", map_size_bytes=64 * 1024, retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        batch = make_batch(100, value_size=1000)
        # When about 4 MB are appended
        for _ in range(40):
            store.append("orders", [(0, batch)])
        # Then the map grew and every batch reads back intact
        assert store.stats.map_grows >= 5
        got = store.read("orders", 0, 0, 1 << 30)
        assert len(got.batches) == 40 and all(data == batch for _, data in got.batches)
        assert store.storage_bytes() > 4_000_000


def test_a_map_that_cannot_grow_refuses_appends_while_reads_and_commits_work(tmp_path: Path) -> None:
    # Given a store that may not grow past 1 MiB, with some data in it
    with LmdbStore.open(
        tmp_path / "data", map_size_bytes=256 * 1024, max_map_size_bytes=1 << 20, retention_check_interval_ms=0
    ) as store:
        store.create_topic("orders", 1, TopicConfig())
        batch = make_batch(50, value_size=1000)
        # When appending until it is full
        with pytest.raises(StorageFull, match="maximum size"):
            for _ in range(100):
                store.append("orders", [(0, batch)])
        # Then reads still work, offsets can still be committed, and appends keep being refused
        next_offset = store.partition_states("orders")[0].next_offset
        assert next_offset > 0
        assert len(store.read("orders", 0, 0, 1 << 30).batches) == next_offset // 50
        store.commit_offsets("g", [("orders", 0, next_offset, "")], 1)
        assert store.committed_offsets("g")[0].offset == next_offset
        with pytest.raises(StorageFull):
            store.append("orders", [(0, batch)])
        # And trimming frees room for new appends (LMDB reuses freed pages one commit later)
        store.trim("orders", 0, next_offset)
        store.commit_offsets("g", [("orders", 0, next_offset, "")], 2)
        assert store.append("orders", [(0, batch)])[0].base_offset == next_offset


def test_a_full_disk_refuses_appends_while_commits_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a store whose disk reports ENOSPC on every append
    with LmdbStore.open(tmp_path / "data", retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        store.append("orders", [(0, make_batch(2))])

        def disk_full(*_: object) -> None:
            raise lmdb.DiskError("mdb_put: ENOSPC: No space left on device")

        monkeypatch.setattr(ops.Append, "write", disk_full)
        # When appending
        with pytest.raises(StorageFull, match="disk is full"):
            store.append("orders", [(0, make_batch())])
        # Then reads and commits still work
        assert store.read("orders", 0, 0, 100).next_offset == 2
        store.commit_offsets("g", [("orders", 0, 2, "")], 1)
        assert store.committed_offsets("g")[0].offset == 2


def test_a_read_only_open_next_to_a_writer_sees_its_data(tmp_path: Path) -> None:
    # Given a writable store holding data, still open
    path = tmp_path / "data"
    with LmdbStore.open(path, retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        store.append("orders", [(0, make_batch(3, tag="seen"))])
        # When another process opens the directory read-only
        code = (
            "import json, sys\n"
            "from logsvc.storage.lmdb_store import LmdbStore\n"
            "from logsvc_client.errors import InvalidRequest\n"
            "s = LmdbStore.open(sys.argv[1], readonly=True)\n"
            "got = s.read('orders', 0, 0, 1 << 20)\n"
            "try:\n"
            "    s.create_topic('x', 1, s.topic('orders').config)\n"
            "    refused = False\n"
            "except InvalidRequest:\n"
            "    refused = True\n"
            "print(json.dumps([got.next_offset, len(got.batches), refused]))\n"
            "s.close()\n"
        )
        proc = run_python(code, str(path))
        # Then it reads the data and refuses to write
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == [3, 1, True]


def test_opening_a_missing_directory_read_only_is_not_found(tmp_path: Path) -> None:
    # Given no data directory
    # When it is opened read-only
    # Then NotFound names it
    with pytest.raises(NotFound, match="nowhere"):
        LmdbStore.open(tmp_path / "nowhere", readonly=True)


def test_a_read_only_store_refuses_writes(tmp_path: Path) -> None:
    # Given a data directory opened read-only (no writer open in this process)
    path = tmp_path / "data"
    LmdbStore.open(path, retention_check_interval_ms=0).close()
    with LmdbStore.open(path, readonly=True) as store:
        # When writing
        # Then InvalidRequest says it is read-only
        with pytest.raises(InvalidRequest, match="read-only"):
            store.create_topic("orders", 1, TopicConfig())
        assert store.list_topics() == []


def test_a_stale_reader_slot_left_by_a_killed_process_is_cleared_at_open(tmp_path: Path) -> None:
    # Given a data directory held open by a live process (so LMDB keeps its reader table), where
    # another process was killed in the middle of a read transaction
    path = tmp_path / "data"
    with LmdbStore.open(path, retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        store.append("orders", [(0, make_batch())])
    holder = subprocess.Popen(
        [sys.executable, "-c", f"{OPEN_ENV}print('ready', flush=True)\nsys.stdin.read()\n", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        killed = run_python(
            f"{OPEN_ENV}txn = env.begin()\nprint('reading', flush=True)\nos.kill(os.getpid(), 9)\n", str(path)
        )
        assert killed.stdout.strip() == "reading", killed.stderr
        # When the store is opened again
        with LmdbStore.open(path, retention_check_interval_ms=0) as store:
            # Then the stale slot was cleared and the store works
            assert store.stale_readers_cleared == 1
            assert store.append("orders", [(0, make_batch())])[0].base_offset == 1
    finally:
        holder.communicate("", timeout=10)


def test_the_writer_applies_retention_periodically(tmp_path: Path, clock: FakeClock) -> None:
    # Given a store checking retention every 20 ms, with an expired batch
    with LmdbStore.open(tmp_path / "data", clock=clock, retention_check_interval_ms=20) as store:
        store.create_topic("orders", 1, TopicConfig(retention_ms=DAY_MS))
        store.append("orders", [(0, make_batch(2, ts=clock() - 2 * DAY_MS)), (0, make_batch(1, ts=clock()))])
        # When the writer's timer fires
        deadline = time.monotonic() + 5
        while store.partition_states("orders")[0].log_start_offset == 0 and time.monotonic() < deadline:
            store.wait_for_data([("orders", 0, 3)], 0.02)
        # Then the expired batch is gone
        assert store.partition_states("orders")[0].log_start_offset == 2


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    # Given a durability mode that does not exist
    # When opening with it
    # Then the error names it
    with pytest.raises(InvalidRequest, match="'sometimes'"):
        LmdbStore.open(tmp_path / "data", durability="sometimes")


def test_os_durability_stores_data_like_fsync(tmp_path: Path) -> None:
    # Given a store that leaves flushing to the OS
    path = tmp_path / "data"
    with LmdbStore.open(path, durability="os", retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        store.append("orders", [(0, make_batch(2))])
    # When it is reopened after a clean close
    with LmdbStore.open(path, retention_check_interval_ms=0) as store:
        # Then the data is there
        assert store.partition_states("orders")[0].next_offset == 2


def test_the_lmdb_store_answers_like_the_memory_store_over_a_random_history(tmp_path: Path) -> None:
    # Given both stores fed the same random appends (timestamps out of order), trims and retention
    rng = random.Random(7)
    memory = MemoryStore()
    with LmdbStore.open(tmp_path / "data", retention_check_interval_ms=0) as lmdb_store:
        stores: list[Store] = [lmdb_store, memory]
        for s in stores:
            s.create_topic("t", 2, TopicConfig(retention_ms=5_000, retention_bytes=20_000))
        for step in range(300):
            p = rng.randrange(2)
            roll = rng.random()
            if roll < 0.8:
                batch = make_batch_at([rng.randrange(step * 10, step * 10 + 3_000) for _ in range(rng.randint(1, 6))])
                results = [s.append("t", [(p, batch)]) for s in stores]
            elif roll < 0.9:
                end = memory.partition_states("t")[p].next_offset
                before = rng.randint(0, end)
                results = [s.trim("t", p, before) for s in stores]
            else:
                results = [s.apply_retention(step * 10) for s in stores]
            # When both are asked the same questions after every step
            # Then they give the same answers
            assert results[0] == results[1], step
            assert lmdb_store.partition_states("t") == memory.partition_states("t"), step
            st = memory.partition_states("t")[p]
            ts = rng.randrange(0, step * 10 + 3_000)
            assert lmdb_store.offset_for_time("t", p, ts) == memory.offset_for_time("t", p, ts), (step, ts)
            offset = rng.randint(st.log_start_offset, st.next_offset)
            assert lmdb_store.read("t", p, offset, 2_000) == memory.read("t", p, offset, 2_000), step


def test_an_altered_topic_is_reopened_as_altered(tmp_path: Path, clock: FakeClock) -> None:
    # Given a topic grown from 1 to 3 partitions, with a new retention, and data in a new partition
    path = tmp_path / "data"
    with LmdbStore.open(path, clock=clock, retention_check_interval_ms=0) as store:
        store.create_topic("orders", 1, TopicConfig())
        store.alter_topic("orders", partitions=3, config=TopicConfig(retention_bytes=1 << 20))
        store.append("orders", [(2, make_batch(4))])
    # When the store is reopened
    with LmdbStore.open(path, clock=clock, retention_check_interval_ms=0) as store:
        # Then the topic has its new shape, and the new partition its data
        meta = store.topic("orders")
        assert (meta.partitions, meta.config.retention_bytes) == (3, 1 << 20)
        assert [p.next_offset for p in store.partition_states("orders")] == [0, 0, 4]
