"""Sink connectors over a partition that holds a bad batch written straight into LMDB (as data from
an older version would be): the batch is dead-lettered whole, every good record is written, the
partition moves on, and the decision survives a restart — `logsvc connect postgres|mongo`
processes against a broker process, the Python handler connector, and the exactly-once
PostgreSQL path that stores its offsets with its rows."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logsvc_client import Admin, Producer, Record
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.handler import HandlerConnector
from logsvc_connect.postgres import PostgresSink
from logsvc_connect.postgres.config import PostgresConfig
from logsvc_connect.runtime import SinkRuntime
from logsvc_connect.sink import SinkRecord
from tests.client.conftest import RestartableBroker
from tests.conftest import BrokerProcess
from tests.connectors.e2e import (
    Connectors,
    PostgresTarget,
    Target,
    caught_up,
    create_topic,
    dead_letters,
    order,
    read_topic,
    wait_until,
)
from tests.connectors.e2e import produce as produce_orders
from tests.fixtures.corrupt import BAD_BATCHES, plant

TOPIC = "orders"


@pytest.fixture
def restartable(data_dir: Path) -> Iterator[RestartableBroker]:
    b = RestartableBroker(data_dir)
    try:
        yield b
    finally:
        b.stop()


def produce(address: str, numbers: range) -> None:
    with Producer(address, linger_ms=0) as producer:
        for n in numbers:
            producer.send(TOPIC, json.dumps({"n": n}).encode(), b"order-%d" % n, partition=0).result(10)


def with_bad_batch(broker: RestartableBroker, bad: bytes) -> tuple[int, int]:
    """Orders 0-4, the bad batch planted into the stopped broker's LMDB, orders 5-9 after the
    restart; the bad batch's first and last offsets."""
    with Admin(broker.address) as admin:
        admin.create_topic(TOPIC, 1)
    produce(broker.address, range(5))
    broker.stop()
    (base,) = plant(broker.data_dir, TOPIC, 0, [bad])
    broker.start()
    produce(broker.address, range(5, 10))
    with Admin(broker.address) as admin:
        end = admin.list_offsets(TOPIC, "latest")[0]
    return base, end - 6


def runtime_config(address: str, name: str) -> RuntimeConfig:
    return RuntimeConfig(name=name, server=address, topics=(TOPIC,), linger_ms=20, retry_initial_ms=10)


def check_dead_letter(letters: list[Record], bad: bytes, base: int, last: int, connector: str) -> None:
    assert len(letters) == 1
    headers = {name: value.decode() for name, value in letters[0].headers or ()}
    assert letters[0].value == bad and letters[0].key is None
    assert headers["dlq.topic"] == TOPIC and headers["dlq.partition"] == "0"
    assert (headers["dlq.offset"], headers["dlq.last_offset"]) == (str(base), str(last))
    assert headers["dlq.error.class"] == "CorruptBatch"
    assert f"stored batch at offsets {base}-{last} of {TOPIC}/0 is corrupt" in headers["dlq.error.message"]
    assert headers["dlq.attempts"] == "1" and headers["dlq.connector"] == connector


@pytest.mark.parametrize("kind", ["not msgpack", "wrong count"])
def test_a_handler_connector_dead_letters_a_corrupt_batch_whole_and_handles_every_good_record_once(
    restartable: RestartableBroker, kind: str
) -> None:
    # Given a partition with orders 0-4, a bad batch planted in LMDB, and orders 5-9
    bad = BAD_BATCHES[kind]()
    base, last = with_bad_batch(restartable, bad)
    handled: list[int] = []

    def handle(records: list[SinkRecord]) -> None:
        handled.extend(r.decoded["n"] for r in records)  # type: ignore[index]

    # When a handler connector runs until its group has caught up
    with HandlerConnector(handle, runtime_config(restartable.address, "ledger")):
        wait_until("the group to catch up", lambda: caught_up(restartable.address, "ledger", TOPIC), bool)

    # Then every good order was handled once, and the bad batch went whole to the dead-letter topic
    assert handled == list(range(10))
    check_dead_letter(read_topic(restartable.address, "ledger.dlq"), bad, base, last, "ledger")

    # When the connector runs again, Then it neither handles nor dead-letters anything again
    produce(restartable.address, range(10, 11))
    with HandlerConnector(handle, runtime_config(restartable.address, "ledger")):
        wait_until("the group to catch up", lambda: caught_up(restartable.address, "ledger", TOPIC), bool)
    assert handled == list(range(11))
    assert len(read_topic(restartable.address, "ledger.dlq")) == 1


class RunningRuntime:
    """A SinkRuntime run in a thread of this process."""

    def __init__(self, runtime: SinkRuntime) -> None:
        self.runtime = runtime
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.runtime.run()
        except BaseException as e:
            self.error = e

    def stop(self) -> None:
        self.runtime.stop()
        self._thread.join(60)
        assert not self._thread.is_alive()
        if self.error is not None:
            raise self.error


def postgres_runtime(address: str, dsn: str, **adapter: Any) -> RunningRuntime:
    sink = PostgresSink(PostgresConfig.from_mapping({"dsn": dsn, **adapter}))
    return RunningRuntime(SinkRuntime(runtime_config(address, "orders-pg").validate(), sink))


def test_an_exactly_once_postgres_connector_dead_letters_a_corrupt_batch_and_stores_offsets_past_it(
    restartable: RestartableBroker, pg_target: PostgresTarget
) -> None:
    # Given a partition with orders 0-4, a bad batch planted in LMDB, and orders 5-9
    bad = BAD_BATCHES["3-element record"]()
    base, last = with_bad_batch(restartable, bad)

    # When an exactly-once PostgreSQL connector runs until its group has caught up
    running = postgres_runtime(restartable.address, pg_target.dsn, exactly_once=True, connector="orders-pg")
    try:
        wait_until("the group to catch up", lambda: caught_up(restartable.address, "orders-pg", TOPIC), bool)
    finally:
        running.stop()

    # Then every good order is a row, the offsets stored with the rows are past the bad batch,
    # and the bad batch went whole to the dead-letter topic
    rows = pg_target.query(f'SELECT "offset" FROM {TOPIC} ORDER BY "offset"')
    assert [offset for (offset,) in rows] == [*range(base), *range(last + 1, last + 6)]
    assert pg_target.stored_offsets("orders-pg") == {0: last + 6}
    check_dead_letter(read_topic(restartable.address, "orders-pg.dlq"), bad, base, last, "orders-pg")

    # When the group's offsets are reset to the start and the connector runs again
    with Admin(restartable.address) as admin:
        admin.delete_group("orders-pg")
    produce(restartable.address, range(10, 11))
    running = postgres_runtime(restartable.address, pg_target.dsn, exactly_once=True, connector="orders-pg")
    try:
        wait_until("the new order", pg_target.count, lambda n: n == 11)
        wait_until("the stored offsets", lambda: pg_target.stored_offsets("orders-pg"), lambda o: o == {0: last + 7})
    finally:
        running.stop()

    # Then it started from the offsets stored with its rows (the group had none): nothing was
    # dead-lettered again
    assert len(read_topic(restartable.address, "orders-pg.dlq")) == 1


def test_a_connector_process_dead_letters_a_corrupt_batch_whole_writes_every_good_record_and_survives_a_restart(
    tmp_path: Path, target: Target
) -> None:
    # Given a broker process whose partition holds orders 0-4, a bad batch planted in LMDB while
    # it was stopped, and orders 5-9
    name, bad = f"orders-{target.kind}", BAD_BATCHES["wrong count"]()
    broker = BrokerProcess(tmp_path / "data").start()
    connectors = Connectors(tmp_path, broker.address)
    try:
        address = broker.address
        create_topic(address, TOPIC, 1)
        produce_orders(address, TOPIC, [order(n) for n in range(5)])
        assert broker.terminate() == 0
        (base,) = plant(broker.data_dir, TOPIC, 0, [bad])
        broker.start(listen=address)
        produce_orders(address, TOPIC, [order(n) for n in range(5, 10)])
        last = base + 2  # the header says 3 records

        # When a connector process runs (PostgreSQL: exactly-once, offsets stored with the rows)
        adapter = {"exactly_once": True, "connector": name} if target.kind == "postgres" else {}
        config = connectors.config(name, target, [TOPIC], adapter)
        process = connectors.start(target.kind, config)

        # Then every good order is written, and the bad batch went whole to the dead-letter topic
        wait_until("every good order", target.count, lambda n: n == 10)
        letters = wait_until("the dead letter", lambda: dead_letters(address, name), lambda d: len(d) == 1)
        check_dead_letter(letters, bad, base, last, name)
        wait_until("the group to commit past it", lambda: caught_up(address, name, TOPIC), bool)
        assert sorted(target.origins()) == [(0, o) for o in [*range(base), *range(last + 1, last + 6)]]
        assert process.terminate() == 0
        assert f"stored batch at offsets {base}-{last} of {TOPIC}/0 is corrupt" in process.log()

        # When it starts again and a new order arrives, Then that is written and nothing is
        # dead-lettered again
        process = connectors.start(target.kind, config)
        produce_orders(address, TOPIC, [order(10)])
        wait_until("the new order", target.count, lambda n: n == 11)
        wait_until("the group to catch up", lambda: caught_up(address, name, TOPIC), bool)
        assert len(dead_letters(address, name)) == 1
        assert process.terminate() == 0
        assert "is corrupt" not in process.log()
    finally:
        connectors.close()
        broker.kill()
