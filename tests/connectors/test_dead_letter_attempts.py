"""``dlq.attempts`` says how many times the write that failed a record ran: a real broker, an
in-process SinkRuntime and a sink that fails on the database twice, then on one record's data."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Sequence

from logsvc.server.app import Broker
from logsvc_client import Admin, Consumer, Producer, TopicPartition
from logsvc_connect.config import load_runtime
from logsvc_connect.runtime import SinkRuntime
from logsvc_connect.sink import DataError, Sink, SinkRecord, TransientSinkError, WriteResult


class FlakySink(Sink):
    """Raises TransientSinkError ``outages`` times, then fails the record at index 0 on its data."""

    kind = "flaky"

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.calls = 0
        self.done = threading.Event()

    def open(self) -> None:
        pass

    def identity(self, record: SinkRecord) -> Hashable:
        return (record.topic, record.partition, record.offset)

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        self.calls += 1
        if self.calls <= self.outages:
            raise TransientSinkError("database down")
        self.done.set()
        return WriteResult({0: DataError("bad amount", "BadAmount")})

    def close(self) -> None:
        pass


def test_a_record_failed_after_two_database_retries_is_dead_lettered_with_three_attempts(broker: Broker) -> None:
    # Given a topic with one record, and a runtime whose sink is down for two writes
    with Admin(broker.address) as admin:
        admin.create_topic("orders", 1)
    with Producer(broker.address, linger_ms=0) as producer:
        producer.send("orders", b'{"amount": -1}', key=b"k").result()
    config = load_runtime({"name": "billing", "server": broker.address, "topics": ["orders"], "linger_ms": 0}, "test")
    sink = FlakySink(outages=2)
    runtime = SinkRuntime(config, sink, sleep=lambda seconds: None)
    thread = threading.Thread(target=runtime.run)
    thread.start()

    # When the third write fails the record on its data
    try:
        assert sink.done.wait(20), "the sink was not written a third time"
    finally:
        runtime.stop()
        thread.join(20)
    assert not thread.is_alive()

    # Then its dead letter says the write ran three times
    with Consumer(broker.address, enable_auto_commit=False) as consumer:
        consumer.assign([TopicPartition("billing.dlq", 0)])
        letters = consumer.poll(timeout_ms=5_000)
    assert len(letters) == 1
    headers = dict(letters[0].headers or ())
    assert (headers["dlq.error.class"], headers["dlq.attempts"]) == (b"BadAmount", b"3")
