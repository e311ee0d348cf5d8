"""Each dead-lettered record gets a WARNING line naming it, its error and the DLQ, at most
LINES_PER_WINDOW lines per WINDOW_S seconds, the rest counted in one line; and a connector's
metrics count records (records_written) apart from the rows they became (rows_written)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Mapping, Sequence

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer, TopicPartition
from logsvc_connect.config import load_runtime
from logsvc_connect.dead_letters.log import LINES_PER_WINDOW, WINDOW_S, DeadLetterLog
from logsvc_connect.runtime import SinkRuntime
from logsvc_connect.sink import DataError, Sink, SinkRecord, WriteResult


def failed(n: int, start: int = 0) -> list[tuple[SinkRecord, DataError]]:
    return [
        (SinkRecord("orders", 1, start + i, 0, None, b"x", None, None), DataError(f"bad {start + i}", "BadAmount"))
        for i in range(n)
    ]


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_each_dead_letter_is_a_warning_naming_the_record_the_error_and_the_dlq(
    caplog: pytest.LogCaptureFixture,
) -> None:
    DeadLetterLog(clock=lambda: 0.0).report(failed(2), "billing.dlq")
    assert lines(caplog) == [
        "dead-lettered orders/1@0 to billing.dlq: BadAmount: bad 0",
        "dead-lettered orders/1@1 to billing.dlq: BadAmount: bad 1",
    ]


def test_a_flood_is_cut_to_a_few_lines_and_a_count_per_window(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = DeadLetterLog(clock=lambda: now[0])
    # When 25 records fail within one window
    log.report(failed(25), "billing.dlq")
    # Then the first LINES_PER_WINDOW are shown, nothing else yet
    assert len(lines(caplog)) == LINES_PER_WINDOW
    # When the window has passed and one more fails: first the count of the hidden, then its line
    now[0] = WINDOW_S
    log.report(failed(1, start=25), "billing.dlq")
    assert lines(caplog)[LINES_PER_WINDOW:] == [
        f"dead-lettered {25 - LINES_PER_WINDOW} more records to billing.dlq in 10 s without a line each "
        "(see logsvc dlq list)",
        "dead-lettered orders/1@25 to billing.dlq: BadAmount: bad 25",
    ]
    # And at the end of a run a count still pending is said
    log.report(failed(LINES_PER_WINDOW + 3, start=26), "billing.dlq")
    log.flush("billing.dlq")
    assert lines(caplog)[-1].startswith("dead-lettered 4 more records to billing.dlq")


class SameIdSink(Sink):
    """Every record has the same id, so compaction leaves one row per batch; records ending in
    ``bad`` fail on their data."""

    kind = "same-id"

    def __init__(self) -> None:
        self.rows = 0
        self.done = threading.Event()

    def open(self) -> None:
        pass

    def identity(self, record: SinkRecord) -> Hashable:
        return "one"

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        self.rows += len(records)
        self.done.set()
        return WriteResult({})

    def close(self) -> None:
        pass


def test_records_written_counts_records_and_rows_written_the_rows_they_became(broker: Broker) -> None:
    # Given 5 records with one id, produced before the runtime starts (so they come as one batch)
    with Admin(broker.address) as admin:
        admin.create_topic("orders", 1)
    with Producer(broker.address, linger_ms=50) as producer:
        for i in range(5):
            producer.send("orders", b'{"n": %d}' % i, key=b"k")
    config = load_runtime({"name": "c", "server": broker.address, "topics": ["orders"], "linger_ms": 50}, "test")
    sink = SameIdSink()
    runtime = SinkRuntime(config, sink)
    thread = threading.Thread(target=runtime.run)
    thread.start()
    try:
        assert sink.done.wait(20)
    finally:
        runtime.stop()
        thread.join(20)
    # Then five records were written as one row
    assert sink.rows == 1
    assert runtime.metrics.records_written._value.get() == 5
    assert runtime.metrics.rows_written._value.get() == 1
