"""The handler contract, with :class:`HandlerConnector` in this process against a real broker: a
handler class keeps its state from setup to close, a transient error retries the batch, an
unexpected exception dead-letters only the record that raises it, and a handler returning
something else than record errors stops the connector."""

from __future__ import annotations

import json
from typing import Any

import pytest

from logsvc.server.app import Broker
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.handler import HandlerConnector, HandlerContractError
from logsvc_connect.sink import SinkRecord
from tests.connectors.e2e import caught_up, read_topic, wait_until
from tests.connectors.handler.conftest import committed, header, produce


def runtime_config(address: str, topic: str, name: str, **overrides: Any) -> RuntimeConfig:
    values: dict[str, Any] = {"linger_ms": 20, "retry_initial_ms": 10, "retry_max_ms": 100, **overrides}
    return RuntimeConfig(name=name, server=address, topics=(topic,), **values)


class Tally:
    """A stateful handler class: counts across batches, remembers its lifecycle calls."""

    instances: list[Tally] = []

    def __init__(self, label: str, every: int = 1) -> None:
        self.label = label
        self.every = every
        self.calls: list[str] = []
        self.seen: list[int] = []
        Tally.instances.append(self)

    def setup(self) -> None:
        self.calls.append("setup")

    def handle(self, records: list[SinkRecord]) -> None:
        self.calls.append("handle")
        self.seen.extend(r.decoded["n"] for r in records)  # type: ignore[index]

    def close(self) -> None:
        self.calls.append("close")


def test_a_handler_class_is_created_with_its_options_and_keeps_state_from_setup_to_close(
    broker: Broker, topic: str
) -> None:
    # Given 300 records and a handler class run in this process, in batches of at most 50
    produce(broker.address, topic, range(300))
    Tally.instances.clear()
    config = runtime_config(broker.address, topic, "tally", batch_max_records=50)

    # When a HandlerConnector runs it until the group has caught up
    with HandlerConnector(Tally, config, options={"label": "eu", "every": 3}) as connector:
        wait_until("the group to catch up", lambda: caught_up(broker.address, "tally", topic), bool)

    # Then one instance got the options, setup and close ran once each around several batches,
    # and it saw every record once
    assert len(Tally.instances) == 1 and connector.handler is Tally.instances[0]
    tally = Tally.instances[0]
    assert (tally.label, tally.every) == ("eu", 3)
    assert tally.calls[0] == "setup" and tally.calls[-1] == "close"
    assert tally.calls.count("setup") == tally.calls.count("close") == 1
    assert tally.calls.count("handle") >= 6
    assert sorted(tally.seen) == list(range(300))


def test_a_transient_error_retries_the_batch_and_dead_letters_nothing(broker: Broker, topic: str) -> None:
    # Given a handler whose store is unreachable for its first two calls
    produce(broker.address, topic, range(100))
    calls: list[int] = []
    handled: list[int] = []

    def handle(records: list[SinkRecord]) -> None:
        calls.append(len(records))
        if len(calls) <= 2:
            raise ConnectionError("store unreachable")
        handled.extend(r.decoded["n"] for r in records)  # type: ignore[index]

    # When it runs until the group has caught up
    connector = HandlerConnector(handle, runtime_config(broker.address, topic, "flaky"))
    with connector:
        wait_until("the group to catch up", lambda: caught_up(broker.address, "flaky", topic), bool)

    # Then the batch was retried twice and every record handled exactly once, none dead-lettered
    assert connector.runtime.metrics.retries._value.get() == 2
    assert sorted(handled) == list(range(100))
    assert read_topic(broker.address, "flaky.dlq") == []


def test_an_unexpected_exception_dead_letters_only_the_record_that_raises_it(broker: Broker, topic: str) -> None:
    # Given a handler that raises ValueError whenever its batch holds record 42
    produce(broker.address, topic, range(200))
    handled: set[int] = set()

    def handle(records: list[SinkRecord]) -> None:
        numbers = [r.decoded["n"] for r in records]  # type: ignore[index]
        if 42 in numbers:
            raise ValueError("cannot price order 42")
        handled.update(numbers)

    # When it runs in batches of up to 100 until the group has caught up
    config = runtime_config(broker.address, topic, "bisect", batch_max_records=100)
    with HandlerConnector(handle, config):
        wait_until("the group to catch up", lambda: caught_up(broker.address, "bisect", topic), bool)

    # Then the batch was split until record 42 failed alone: only it is dead-lettered, with the
    # exception's class and message, and every other record was handled
    assert handled == set(range(200)) - {42}
    dead = read_topic(broker.address, "bisect.dlq")
    assert [json.loads(r.value or b"")["n"] for r in dead] == [42]
    assert header(dead[0], "dlq.error.class") == "ValueError"
    assert header(dead[0], "dlq.error.message") == "ValueError: cannot price order 42"


def test_a_handler_returning_something_else_than_record_errors_stops_the_connector_with_a_clear_error(
    broker: Broker, topic: str
) -> None:
    # Given a handler that returns True instead of None or a list of RecordError
    produce(broker.address, topic, range(10))
    connector = HandlerConnector(lambda records: True, runtime_config(broker.address, topic, "truthy"))

    # When it runs
    connector.start()
    wait_until("the connector to stop", lambda: not connector.running, bool)

    # Then it stopped with an error naming what came back, and committed nothing
    with pytest.raises(HandlerContractError, match="returned a bool"):
        connector.stop()
    assert committed(broker.address, "truthy") == {}
