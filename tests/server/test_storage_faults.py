"""Storage faults injected into the real broker process with strace: a failed fdatasync, a failed
write of LMDB's meta page. Nothing is acknowledged after the fault, health stops saying SERVING,
the broker exits 74 for its supervisor, and after a restart every acknowledged record is there."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from logsvc.cli.main import EXIT_STORAGE_FAILED
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import BrokerProcess, cli_env

STRACE = shutil.which("strace")


@pytest.fixture(scope="module")
def strace() -> str:
    """The strace binary, when this machine lets it trace a child (CI installs it: .ci/run)."""
    if STRACE is None:
        pytest.skip("strace is not installed (.ci/run installs it): cannot inject storage faults")
    probe = subprocess.run([STRACE, "-f", "-qq", "-e", "trace=none", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode(errors='replace').strip()}")
    return STRACE


class StracedBroker(BrokerProcess):
    """`logsvc serve` run under ``strace -f`` with ``strace_args`` (a fault to inject, a trace file).
    strace counts a syscall's calls per thread, so ``when=N`` is the Nth call of the writer thread."""

    def __init__(self, data_dir: Path, strace: str, *strace_args: str) -> None:
        super().__init__(data_dir, base_env=cli_env())
        self.strace_argv = [strace, "-f", "-qq", *strace_args, "--"]

    def spawn(self, cmd: Sequence[str], env: Mapping[str, str]) -> None:
        super().spawn([*self.strace_argv, *cmd], env)

    def terminate(self, timeout_s: float = 20) -> int:
        """SIGTERM to the broker (strace itself would only detach), then its exit code."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        os.kill(int(children[0]), signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self.kill()
        return code


def batch_of(value: bytes) -> bytes:
    return codec.encode_batch([[int(time.time() * 1000), None, value, None]])


def produce(stub: pb_grpc.BrokerStub, value: bytes, partition: int = 0) -> int:
    resp = stub.Produce(
        pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=partition, batch=batch_of(value))]),
        timeout=30,
    )
    return int(resp.appends[0].base_offset)


def prepared(data_dir: Path, partitions: int = 1) -> dict[tuple[int, int], bytes]:
    """A data directory with topic "t" and one acknowledged record per partition (written by a
    broker without strace, so start-up writes nothing under the traced one); what was acked."""
    broker = BrokerProcess(data_dir, base_env=cli_env()).start()
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=partitions))
            acked = {(p, produce(stub, b"before-%d" % p, p)): b"before-%d" % p for p in range(partitions)}
        assert broker.terminate() == 0
    finally:
        broker.kill()
    return acked


def stored_records(data_dir: Path, partitions: int) -> dict[tuple[int, int], bytes]:
    """Every record of topic "t", read through a restarted broker without strace; offsets dense."""
    broker = BrokerProcess(data_dir, base_env=cli_env()).start()
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            out: dict[tuple[int, int], bytes] = {}
            for p in range(partitions):
                resp = stub.Fetch(
                    pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=p, offset=0)], max_bytes=1 << 26)
                )
                offsets = []
                for b in resp.partitions[0].batches:
                    for r in codec.decode_records("t", p, b.base_offset, b.batch):
                        out[(p, r.offset)] = r.value or b""
                        offsets.append(r.offset)
                assert offsets == list(range(len(offsets))), f"offsets of partition {p} are not dense"
            # And it serves: a produce after the restart is acknowledged
            produce(stub, b"after-restart")
        return out
    finally:
        broker.kill()


def health_status(address: str) -> str:
    """The broker's health ("SERVING", "NOT_SERVING"), or the gRPC code when it does not answer."""
    with grpc.insecure_channel(address) as channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        except grpc.RpcError as e:
            return e.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def assert_stopped_for_its_supervisor(broker: StracedBroker) -> None:
    """Exit 74, the cause logged once at CRITICAL, one error line last, no traceback."""
    assert broker.proc is not None
    code = broker.proc.wait(60)
    broker.kill()  # collects stderr
    stderr = broker.stderr_text()
    assert code == EXIT_STORAGE_FAILED, stderr
    assert "Traceback" not in stderr
    assert len(re.findall(r"CRITICAL .*can no longer write", stderr)) == 1, stderr
    assert stderr.strip().splitlines()[-1].startswith("error: storage at "), stderr


def test_a_failed_fdatasync_under_concurrent_produce_acknowledges_nothing_after_it_and_the_broker_exits(
    data_dir: Path, tmp_path: Path, strace: str
) -> None:
    # Given a broker whose 30th commit after start-up gets EIO from fdatasync, and 4 producers
    partitions = 4
    acked = prepared(data_dir, partitions)
    trace = ("-o", str(tmp_path / "trace"), "-e", "trace=fdatasync")
    broker = StracedBroker(data_dir, strace, *trace, "-e", "inject=fdatasync:error=EIO:when=30").start()
    lock = threading.Lock()
    refusals: list[str] = []

    def producer(worker: int) -> None:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            for seq in range(1000):
                p = (worker + seq) % partitions
                value = b"w%d-%d" % (worker, seq)
                try:
                    offset = produce(stub, value, p)
                except grpc.RpcError as e:
                    with lock:
                        refusals.append(e.code().name)
                    return
                with lock:
                    acked[(p, offset)] = value

    # When they produce until the broker stops acknowledging
    threads = [threading.Thread(target=producer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    # Then every producer was refused in the end, as unavailable (StorageFailed) — never INTERNAL
    assert len(refusals) == 4 and set(refusals) <= {"UNAVAILABLE", "CANCELLED"}, refusals
    # And the broker stopped for its supervisor: exit 74, the cause logged once
    assert_stopped_for_its_supervisor(broker)
    # And after a restart every acknowledged record is at its offset
    stored = stored_records(data_dir, partitions)
    lost = [k for k, v in acked.items() if stored.get(k) != v]
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {lost[:5]}"
    assert len(acked) >= 4 + 28


def meta_write_call(trace: str, commit: int) -> int:
    """In an strace log of pwrite64 and fdatasync calls, the per-thread number of the writer thread's
    pwrite64 of LMDB's meta page in its ``commit``-th commit (the first pwrite64 after that commit's
    fdatasync: data pages, sync, then the meta page)."""
    calls = [line.split(None, 2) for line in trace.splitlines() if "pwrite64(" in line or "fdatasync(" in line]
    writer = next(tid for tid, call, *_ in calls if call.startswith("fdatasync("))
    syncs = pwrites = 0
    for tid, call, *_ in calls:
        if tid != writer:
            continue
        if call.startswith("fdatasync("):
            syncs += 1
        elif syncs == commit:
            return pwrites + 1
        else:
            pwrites += 1
    raise AssertionError(f"no meta page write after commit {commit} in the trace:\n{trace}")


def test_a_failed_write_of_lmdbs_meta_page_stops_the_broker_and_loses_nothing_acknowledged(
    data_dir: Path, tmp_path: Path, strace: str
) -> None:
    # Given a data directory, and the number of the pwrite64 that writes LMDB's meta page in the
    # third produce's commit, found by tracing the same produces on a copy of it
    acked = prepared(data_dir)
    rehearsal = tmp_path / "rehearsal"
    shutil.copytree(data_dir, rehearsal)
    dry = StracedBroker(rehearsal, strace, "-e", "trace=pwrite64,fdatasync", "-o", str(tmp_path / "dry.trace"))
    dry.start()
    with grpc.insecure_channel(dry.address) as channel:
        for i in range(3):
            produce(pb_grpc.BrokerStub(channel), b"p%d" % i)
    assert dry.terminate() == 0
    nth = meta_write_call((tmp_path / "dry.trace").read_text(), commit=3)

    # When the broker runs with EIO injected into that write, and the same produces are sent
    trace = tmp_path / "fault.trace"
    broker = StracedBroker(
        data_dir,
        strace,
        "-e",
        "trace=pwrite64,fdatasync",
        "-o",
        str(trace),
        "-e",
        f"inject=pwrite64:error=EIO:when={nth}",
    ).start()
    with grpc.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerStub(channel)
        acked[(0, produce(stub, b"p0"))] = b"p0"
        acked[(0, produce(stub, b"p1"))] = b"p1"
        with pytest.raises(grpc.RpcError) as failed:
            produce(stub, b"p2")
        health = health_status(broker.address)

    # Then that produce is not acknowledged: UNAVAILABLE, saying the storage can no longer write
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "can no longer write" in (failed.value.details() or "")
    assert ("logsvc-error", "storage_failed") in tuple(failed.value.trailing_metadata() or ())
    # And health no longer says SERVING
    assert health in ("NOT_SERVING", "UNAVAILABLE", "CANCELLED"), health
    # And the broker exits 74
    assert_stopped_for_its_supervisor(broker)
    # And the fault did hit the meta page (LMDB writes its 120-odd changed bytes of it, not a page)
    injected = [line for line in trace.read_text().splitlines() if "(INJECTED)" in line]
    assert len(injected) == 1 and "pwrite64(" in injected[0] and ", 4096, " not in injected[0], injected
    # And after a restart every acknowledged record is at its offset
    stored = stored_records(data_dir, 1)
    assert {k: stored.get(k) for k in acked} == acked
