"""Overlapped writes (``Sink.write_in_background``): the runtime polls and prepares the next batch
while the sink writes the current one on a thread of the runtime's own. A real broker, an
in-process SinkRuntime and a sink whose writes wait until the test lets them return."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Mapping, Sequence

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer, TopicPartition
from logsvc_connect.config import load_runtime
from logsvc_connect.runtime import SinkRuntime
from logsvc_connect.sink import DataError, Sink, SinkRecord, WriteResult

ORDERS = TopicPartition("orders", 0)


class GatedSink(Sink):
    """Records every write (its offsets, its thread, whether another write was running) and holds
    each one until ``gate`` is set; fails the record at offset ``bad_offset`` on its data."""

    kind = "gated"
    write_in_background = True

    def __init__(self, bad_offset: int | None = None) -> None:
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)  # released as each write starts
        self.writes: list[tuple[list[int], dict[TopicPartition, int]]] = []
        self.threads: set[str] = set()
        self.overlapping = False
        self.bad_offset = bad_offset
        self._running = threading.Lock()

    def open(self) -> None:
        pass

    def identity(self, record: SinkRecord) -> Hashable:
        return (record.topic, record.partition, record.offset)

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        if not self._running.acquire(blocking=False):
            self.overlapping = True
            self._running.acquire()
        try:
            self.threads.add(threading.current_thread().name)
            self.started.release()
            self.gate.wait(30)
            self.writes.append(([r.offset for r in records], dict(offsets)))
            bad = [i for i, r in enumerate(records) if r.offset == self.bad_offset]
            return WriteResult({i: DataError("bad amount", "BadAmount") for i in bad})
        finally:
            self._running.release()

    def close(self) -> None:
        pass


def committed(broker: Broker, group: str) -> int | None:
    with Admin(broker.address) as admin:
        offset = admin.committed_offsets(group).get(ORDERS)
    return None if offset is None else offset.offset


def wait_committed(broker: Broker, group: str, offset: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while committed(broker, group) != offset:
        assert time.monotonic() < deadline, f"offset {offset} not committed"
        time.sleep(0.05)


def runtime_for(broker: Broker, sink: GatedSink, records: int) -> SinkRuntime:
    with Admin(broker.address) as admin:
        admin.create_topic("orders", 1)
    with Producer(broker.address, linger_ms=5) as producer:
        for i in range(records):
            producer.send("orders", b'{"amount": %d}' % i, key=b"k%d" % i)
        producer.flush()
    values = {"name": "billing", "server": broker.address, "topics": ["orders"], "batch_max_records": 100}
    return SinkRuntime(load_runtime(values, "test"), sink, sleep=lambda seconds: None)


def test_a_batch_is_committed_only_after_its_overlapped_write_returned(broker: Broker) -> None:
    # Given 300 records, batches of 100, and a sink whose first write does not return yet
    sink = GatedSink()
    runtime = runtime_for(broker, sink, 300)
    thread = threading.Thread(target=runtime.run)
    thread.start()
    try:
        assert sink.started.acquire(timeout=20), "no write started"

        # When the runtime has polled the next batches meanwhile
        time.sleep(0.5)

        # Then nothing is committed, and no second write started while the first runs
        assert committed(broker, "billing") is None
        assert not sink.started.acquire(timeout=0)

        # When the writes may return
        sink.gate.set()
        for _ in range(2):
            assert sink.started.acquire(timeout=20), "the next batch was not written"
        wait_committed(broker, "billing", 300)
    finally:
        sink.gate.set()
        runtime.stop()
        thread.join(20)
    assert not thread.is_alive()

    # Then every batch was written once, in offset order, one write at a time, off the runtime's
    # thread, each with the offsets it completes, and the group's offset is past the last record
    assert [(offsets[0], offsets[-1], stored) for offsets, stored in sink.writes] == [
        (0, 99, {ORDERS: 100}), (100, 199, {ORDERS: 200}), (200, 299, {ORDERS: 300})
    ]  # fmt: skip
    assert not sink.overlapping
    assert sink.threads and all(name.startswith("logsvc-write-billing") for name in sink.threads)
    assert committed(broker, "billing") == 300


def test_a_record_failed_in_an_overlapped_write_is_dead_lettered_before_the_next_batch_is_written(
    broker: Broker,
) -> None:
    # Given 300 records in batches of 100, and a sink that fails record 50 on its data
    sink = GatedSink(bad_offset=50)
    sink.gate.set()
    dead_lettered_before: list[int] = []
    runtime = runtime_for(broker, sink, 300)
    sent = runtime.dead_letters.send

    def send(failed: list[tuple[SinkRecord, DataError]], attempts: int) -> None:
        dead_lettered_before.append(len(sink.writes))
        sent(failed, attempts)

    runtime.dead_letters.send = send  # type: ignore[method-assign]

    # When the connector has written everything
    thread = threading.Thread(target=runtime.run)
    thread.start()
    try:
        wait_committed(broker, "billing", 300)
    finally:
        runtime.stop()
        thread.join(20)

    # Then record 50 was dead-lettered once, after the first write and before the second
    assert dead_lettered_before == [1]
    assert [offsets[0] for offsets, _ in sink.writes] == [0, 100, 200]
    assert committed(broker, "billing") == 300
