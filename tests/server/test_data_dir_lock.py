"""One process owns a data directory: a second broker on it exits at once with a clear error, read-only
inspection keeps working beside the broker, and a killed broker's lock does not outlive it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from logsvc.errors import DataDirectoryLocked
from logsvc.storage.lmdb_store import LmdbStore
from logsvc.storage.lock import LOCK_FILE
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import BrokerProcess, cli_env


def logsvc(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "logsvc.cli", *args], capture_output=True, timeout=60, env=cli_env())


def produce(address: str, value: bytes) -> int:
    """Produce one record to topic "t", partition 0; its acknowledged offset."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.BrokerStub(channel)
        data = codec.encode_batch([[int(time.time() * 1000), None, value, None]])
        resp = stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=data)]))
        return int(resp.appends[0].base_offset)


def create_topic(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        pb_grpc.BrokerStub(channel).CreateTopic(pb.CreateTopicRequest(name="t", partitions=1))


def test_a_second_broker_on_a_locked_directory_exits_at_once_naming_it_and_the_holder(data_dir: Path) -> None:
    # Given a broker serving a data directory and acknowledging produces
    first = BrokerProcess(data_dir, base_env=cli_env()).start()
    try:
        create_topic(first.address)
        assert produce(first.address, b"before") == 0

        # When a second broker is started on the same directory
        started = time.monotonic()
        second = logsvc("serve", "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", "--metrics-port", "-1")
        took_s = time.monotonic() - started

        # Then it exits non-zero at once, with one line naming the directory and the holder's PID
        stderr = second.stderr.decode(errors="replace")
        assert second.returncode == 1, stderr
        assert stderr.count("\n") == 1 and stderr.startswith("error: "), stderr
        assert str(data_dir) in stderr and f"process {first.proc.pid}" in stderr, stderr
        assert "Traceback" not in stderr
        assert took_s < 30

        # And the first broker is unaffected: it still acknowledges produces, at the next offset
        assert produce(first.address, b"after") == 1
        assert first.proc.poll() is None
    finally:
        first.kill()


def test_read_only_inspection_works_beside_the_broker_and_a_writable_open_is_refused(data_dir: Path) -> None:
    # Given a broker serving a data directory with one record
    broker = BrokerProcess(data_dir, base_env=cli_env()).start()
    try:
        create_topic(broker.address)
        produce(broker.address, b"hello")

        # When the offline CLI reads the directory beside it
        described = logsvc("partitions", "describe", "t", "--data-dir", str(data_dir))
        dumped = logsvc("partitions", "dump", "t", "--partition", "0", "--data-dir", str(data_dir))

        # Then both work
        assert described.returncode == 0, described.stderr.decode()
        assert dumped.returncode == 0, dumped.stderr.decode()
        assert b"hello" in dumped.stdout

        # And a writable open of the directory (what an offline command that writes does) is refused
        with pytest.raises(DataDirectoryLocked) as refused:
            LmdbStore.open(data_dir, retention_check_interval_ms=0)
        assert refused.value.details == {"path": str(data_dir), "pid": broker.proc.pid}
        assert broker.proc.poll() is None
    finally:
        broker.kill()


def test_the_lock_of_a_broker_killed_with_sigkill_does_not_block_the_next_one(data_dir: Path) -> None:
    # Given a broker that was killed with SIGKILL, leaving its lock file with its dead PID behind
    first = BrokerProcess(data_dir, base_env=cli_env()).start()
    create_topic(first.address)
    produce(first.address, b"one")
    first.kill()
    assert (data_dir / LOCK_FILE).read_text().strip() == str(first.proc.pid)

    # When a new broker starts on the directory
    second = BrokerProcess(data_dir, base_env=cli_env()).start()
    try:
        # Then it starts, owns the directory (the file now names it) and acknowledges produces
        assert (data_dir / LOCK_FILE).read_text().strip() == str(second.proc.pid)
        assert produce(second.address, b"two") == 1
    finally:
        second.kill()


def test_a_closed_store_releases_the_directory_for_the_next_writer(tmp_path: Path) -> None:
    # Given a store opened for writing in this process
    path = tmp_path / "data"
    store = LmdbStore.open(path, retention_check_interval_ms=0)

    # When a second writable open is tried while it is open
    with pytest.raises(DataDirectoryLocked) as refused:
        LmdbStore.open(path, retention_check_interval_ms=0)

    # Then it is refused naming this process; and once the first is closed, it opens
    assert f"process {os.getpid()}" in str(refused.value)
    store.close()
    LmdbStore.open(path, retention_check_interval_ms=0).close()
