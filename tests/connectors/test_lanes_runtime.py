"""Priority lanes in the sink runtime: a real broker, an in-process SinkRuntime and a sink that
records the batches it is given; the lane keys of the connector config and their validation."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer, TopicPartition
from logsvc_client.errors import InvalidConfig
from logsvc_connect.config import RuntimeConfig, load_runtime
from logsvc_connect.runtime import SinkRuntime
from logsvc_connect.sink import Sink, SinkRecord, WriteResult

LANES = ("orders.critical", "orders.normal", "orders.bulk")
BACKLOG = 600  # records per lane


class RecordingSink(Sink):
    """A sink that keeps every batch it is given, in memory (writing twice keeps both)."""

    kind = "recording"
    decode_values = False
    compact_ids = False

    def __init__(self) -> None:
        self.batches: list[list[SinkRecord]] = []
        self.written = threading.Condition()

    def open(self) -> None:
        pass

    def identity(self, record: SinkRecord) -> Hashable:
        return (record.topic, record.partition, record.offset)

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        with self.written:
            self.batches.append(list(records))
            self.written.notify_all()
        return WriteResult()

    def wait_for(self, count: int, timeout_s: float = 20) -> None:
        with self.written:
            done = self.written.wait_for(lambda: sum(map(len, self.batches)) >= count, timeout_s)
        assert done, f"only {sum(map(len, self.batches))} of {count} records were written"

    def close(self) -> None:
        pass


@pytest.fixture
def lanes(broker: Broker) -> tuple[str, ...]:
    """Three topics of two partitions with BACKLOG records each."""
    with Admin(broker.address) as admin:
        for topic in LANES:
            admin.create_topic(topic, 2)
    with Producer(broker.address, linger_ms=5, max_batch_bytes=4_096) as producer:
        for topic in LANES:
            for i in range(BACKLOG):
                producer.send(topic, b'{"n": %d}' % i, key=b"k%d" % i)
        producer.flush()
    return LANES


class Running:
    """A SinkRuntime on a thread, stopped and joined at the end."""

    def __init__(self, runtime: SinkRuntime) -> None:
        self.runtime = runtime
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sink-runtime")
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runtime.run()
        except BaseException as e:  # reported by the test, not as a thread warning
            self.error = e

    def stop(self) -> None:
        self.runtime.stop()
        self.thread.join(20)
        assert not self.thread.is_alive(), "the runtime did not stop"


@pytest.fixture
def run() -> Iterator[Any]:
    started: list[Running] = []

    def start(runtime: SinkRuntime) -> Running:
        started.append(Running(runtime))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def config(broker: Broker, **overrides: Any) -> RuntimeConfig:
    values: dict[str, Any] = {
        "name": "orders-sink",
        "server": broker.address,
        "topics": LANES,
        "batch_max_records": 100,
        "linger_ms": 20,
        **overrides,
    }
    return load_runtime(values, "test")


def test_a_connector_with_strict_lanes_writes_the_critical_backlog_first_then_normal_then_bulk(
    broker: Broker, lanes: tuple[str, ...], run: Any
) -> None:
    # Given a backlog in three topics and a connector with strict lanes over them
    sink = RecordingSink()
    running = run(SinkRuntime(config(broker, priority="strict", max_lane_wait_ms=60_000), sink))

    # When it has written everything
    sink.wait_for(3 * BACKLOG)
    running.stop()
    assert running.error is None

    # Then the batches hold the critical records first, then the normal ones, then the bulk ones
    topics = [r.topic for batch in sink.batches for r in batch]
    assert topics == [t for t in lanes for _ in range(BACKLOG)]
    # And in batches of at most batch_max_records
    assert max(map(len, sink.batches)) <= 100


def test_a_connector_whose_lanes_name_a_missing_topic_waits_for_it_naming_it(
    broker: Broker, lanes: tuple[str, ...], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a lane topic nobody created yet: the connector waits for it (as for any topic), saying so
    runtime = SinkRuntime(config(broker, topics=(*lanes, "orders.unknown"), priority="strict"), RecordingSink())
    thread = threading.Thread(target=runtime.run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while "orders.unknown" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "topic 'orders.unknown' does not exist yet" in caplog.text
        assert thread.is_alive()
    finally:
        runtime.stop()
        thread.join(10)
    assert not thread.is_alive()


# -- the config keys ------------------------------------------------------------------------------


def test_lane_keys_default_to_no_lanes() -> None:
    cfg = load_runtime({"name": "c", "topics": ["a", "b"]}, "test")
    assert (cfg.priority, cfg.lane_weights, cfg.max_lane_wait_ms) == ("none", (), 1_000)


def test_lane_weights_come_from_toml_numbers_or_a_comma_separated_environment_value() -> None:
    base = {"name": "c", "topics": ["a", "b", "c"], "priority": "weighted"}
    assert load_runtime({**base, "lane_weights": [3, 2, 0.5]}, "file").lane_weights == (3, 2, 0.5)
    assert load_runtime({**base, "lane_weights": "3, 2, 1"}, "env").lane_weights == (3.0, 2.0, 1.0)


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({"priority": "fastest"}, "priority", "must be 'none', 'strict' or 'weighted'"),
        ({"priority": "weighted"}, "lane_weights", "needs lane_weights"),
        ({"priority": "weighted", "lane_weights": [3, 2]}, "lane_weights", "2 weight(s) for 3 lane(s)"),
        ({"priority": "weighted", "lane_weights": [3, 0, 1]}, "lane_weights", "positive"),
        ({"priority": "weighted", "lane_weights": [3, -1, 1]}, "lane_weights", "positive"),
        ({"priority": "weighted", "lane_weights": "3,x,1"}, "lane_weights", "not a valid"),
        ({"priority": "weighted", "lane_weights": ["3", "2", "1"]}, "lane_weights", "not a valid"),
        ({"priority": "strict", "lane_weights": [3, 2, 1]}, "lane_weights", "only for priority='weighted'"),
        ({"lane_weights": [3, 2, 1]}, "lane_weights", "only for priority='weighted'"),
        ({"priority": "strict", "max_lane_wait_ms": 0}, "max_lane_wait_ms", ">= 1"),
        ({"priority": "strict", "topics": ["a", "b", "a"]}, "topics", "twice"),
    ],
)
def test_a_bad_lane_key_is_refused_at_start_up_naming_it(values: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(InvalidConfig) as raised:
        load_runtime({"name": "c", "topics": ["a", "b", "c"], **values}, "test")
    assert raised.value.details["key"] == key
    assert words in str(raised.value)
