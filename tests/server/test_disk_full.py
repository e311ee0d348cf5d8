"""A full disk, for real: the broker's data directory on an 8 MiB tmpfs that fills up. Produce is
refused with RESOURCE_EXHAUSTED (whatever errno LMDB reports), offset commits, trims, topic deletes
and reads keep working, produce works again once space is freed, and a restart loses nothing."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import BrokerProcess, cli_env

FS_BYTES = 8 * 1024 * 1024
FILLER_BYTES = 4 * 1024 * 1024
VALUE = os.urandom(32 * 1024)  # incompressible, so the batches really take the space


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for this test (unmounted after it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root: cannot fill a real filesystem here")
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FS_BYTES}", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def produce(stub: pb_grpc.BrokerStub, topic: str, value: bytes) -> int:
    data = codec.encode_batch([[int(time.time() * 1000), None, value, None]])
    resp = stub.Produce(
        pb.ProduceRequest(topic=topic, batches=[pb.PartitionBatch(partition=0, batch=data)]), timeout=30
    )
    return int(resp.appends[0].base_offset)


def commit(stub: pb_grpc.BrokerStub, offset: int) -> None:
    stub.CommitOffsets(
        pb.CommitOffsetsRequest(
            group="g", generation=-1, offsets=[pb.OffsetCommit(topic="t", partition=0, offset=offset)]
        ),
        timeout=30,
    )


def committed(stub: pb_grpc.BrokerStub) -> int:
    resp = stub.FetchOffsets(pb.FetchOffsetsRequest(group="g"), timeout=30)
    return int(resp.offsets[0].offset)


def concurrently(calls: list[Callable[[], object]], rounds: int) -> list[set[str]]:
    """Each call ``rounds`` times in its own thread, all at once; the status codes each got."""
    outcomes: list[set[str]] = [set() for _ in calls]

    def run(i: int) -> None:
        for _ in range(rounds):
            try:
                calls[i]()
            except grpc.RpcError as e:
                outcomes[i].add(e.code().name)
            else:
                outcomes[i].add("OK")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes


def read_all(stub: pb_grpc.BrokerStub, start: int = 0) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    offset = start
    while True:
        resp = stub.Fetch(
            pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=0, offset=offset)], max_bytes=1 << 20)
        )
        batches = resp.partitions[0].batches
        if not batches:
            return out
        for b in batches:
            for r in codec.decode_records("t", 0, b.base_offset, b.batch):
                out[r.offset] = r.value or b""
        offset = max(out) + 1


def test_a_full_disk_refuses_produce_but_not_commits_trims_deletes_or_reads_and_nothing_is_lost(
    small_fs: Path,
) -> None:
    # Given a broker whose data directory is on an 8 MiB filesystem, half of it taken by a filler
    data_dir = small_fs / "data"
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * FILLER_BYTES)
    broker = BrokerProcess(data_dir, base_env=cli_env()).start()
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))
            stub.CreateTopic(pb.CreateTopicRequest(name="scratch", partitions=1))
            produce(stub, "scratch", b"x")

            # When records are produced until the disk is full
            acked: dict[int, bytes] = {}
            with pytest.raises(grpc.RpcError) as full:
                for i in range(FS_BYTES // len(VALUE) + 10):
                    value = b"%d:" % i + VALUE
                    acked[produce(stub, "t", value)] = value

            # Then produce is refused with RESOURCE_EXHAUSTED saying the disk is full (not INTERNAL)
            assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, full.value.details()
            assert "disk is full" in (full.value.details() or "")
            assert len(acked) > 10
            # And offset commits keep working while it is full, even group-committed with refused
            # appends (2 threads producing, 2 committing at once)
            outcomes = concurrently([lambda: produce(stub, "t", VALUE)] * 2 + [lambda: commit(stub, 5)] * 2, rounds=25)
            assert outcomes[:2] == [{"RESOURCE_EXHAUSTED"}] * 2 and outcomes[2:] == [{"OK"}] * 2, outcomes
            assert committed(stub) == 5
            # And reads keep working, and produce stays refused
            assert read_all(stub) == acked
            with pytest.raises(grpc.RpcError) as still_full:
                produce(stub, "t", VALUE)
            assert still_full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # And so do trims and topic deletes (the pages they free inside the file are reused)
            assert stub.Trim(pb.TrimRequest(topic="t", partition=0, before_offset=2)).log_start_offset == 2
            stub.DeleteTopic(pb.DeleteTopicRequest(name="scratch"))

            # When space is freed on the filesystem
            filler.unlink()

            # Then produce works again, at the next offsets, for more than the trim freed
            for i in range(40):
                value = b"after-%d:" % i + VALUE
                offset = produce(stub, "t", value)
                assert offset == max(acked) + 1
                acked[offset] = value

        # And after a restart every acknowledged record (from the log start on) is still there
        assert broker.terminate() == 0
        restarted = BrokerProcess(data_dir, base_env=cli_env()).start()
        try:
            with grpc.insecure_channel(restarted.address) as channel:
                stub = pb_grpc.BrokerStub(channel)
                assert read_all(stub, 2) == {o: v for o, v in acked.items() if o >= 2}
                assert committed(stub) == 5
        finally:
            restarted.kill()
        stderr = broker.stderr_text()
        assert "Traceback" not in stderr
        assert stderr.count("storage disk is full") == 1, stderr  # logged once, not per refusal
    finally:
        broker.kill()
