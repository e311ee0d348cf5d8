"""A broker killed with SIGKILL during a concurrent produce loses no acknowledged record."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import grpc
import pytest

from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import BrokerProcess

PARTITIONS = 4


def fetch_everything(stub: pb_grpc.BrokerStub, partition: int) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    offset = 0
    while True:
        resp = stub.Fetch(
            pb.FetchRequest(partitions=[pb.FetchPartition(topic="t", partition=partition, offset=offset)])
        )
        pd = resp.partitions[0]
        if not pd.batches:
            assert offset == pd.next_offset
            return out
        for b in pd.batches:
            out.extend((r.offset, r.value) for r in codec.decode_records("t", partition, b.base_offset, b.batch))
        offset = out[-1][0] + 1


def test_every_acknowledged_record_survives_sigkill_at_its_acknowledged_offset(data_dir: Path) -> None:
    crash_and_check(data_dir, {}, run_s=1.5)


@pytest.mark.slow
def test_acknowledged_records_survive_ten_sigkills_in_a_row(data_dir: Path) -> None:
    # The same, ten times over one data directory: every round's acknowledged records survive all
    # the later crashes too (run with `make stress`)
    acked: dict[tuple[int, int], bytes] = {}
    for round_ in range(10):
        crash_and_check(data_dir, acked, run_s=1.0 + round_ % 3, seed=round_)


def crash_and_check(data_dir: Path, acked: dict[tuple[int, int], bytes], run_s: float, seed: int = 0) -> None:
    """Produce from 4 threads for ``run_s``, SIGKILL the broker, restart it and check that every
    record in ``acked`` (filled with this round's acknowledgements) is at its offset, densely."""
    # Given a broker and 4 producer threads appending batches concurrently
    proc = BrokerProcess(data_dir).start()
    with grpc.insecure_channel(proc.address) as channel:
        stub = pb_grpc.BrokerStub(channel)
        if not stub.ListTopics(pb.ListTopicsRequest()).topics:
            stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=PARTITIONS))
    before = len(acked)
    lock = threading.Lock()
    stop = threading.Event()

    def produce(worker: int) -> None:
        rng = random.Random(seed * 100 + worker)
        seq = 0
        with grpc.insecure_channel(proc.address) as ch:
            stub = pb_grpc.BrokerStub(ch)
            while not stop.is_set():
                p = rng.randrange(PARTITIONS)
                values = [b"r%d-w%d-%d" % (seed, worker, seq + i) for i in range(rng.randint(1, 50))]
                seq += len(values)
                data = codec.encode_batch([[int(time.time() * 1000), None, v, None] for v in values])
                try:
                    resp = stub.Produce(
                        pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=p, batch=data)])
                    )
                except grpc.RpcError:
                    return  # the broker died: this batch was never acknowledged
                base = resp.appends[0].base_offset
                with lock:
                    for i, v in enumerate(values):
                        acked[(p, base + i)] = v

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    # When the broker is killed with SIGKILL in the middle of it
    time.sleep(run_s)
    proc.kill()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) - before > 500, "the producers should have been acknowledged many records before the kill"

    # Then after a restart on the same data directory every acknowledged record is at its offset
    restarted = BrokerProcess(data_dir).start()
    try:
        with grpc.insecure_channel(restarted.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stored: dict[tuple[int, int], bytes] = {}
            for p in range(PARTITIONS):
                records = fetch_everything(stub, p)
                # And offsets are dense: 0, 1, 2, ... with no gap
                assert [o for o, _ in records] == list(range(len(records)))
                stored.update({(p, o): v for o, v in records})
        missing = [k for k, v in acked.items() if stored.get(k) != v]
        assert not missing, f"{len(missing)} acknowledged records lost or moved, e.g. {missing[:5]}"
    finally:
        restarted.kill()
