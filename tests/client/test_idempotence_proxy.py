"""The idempotent producer through a network that loses answers: a loopback TCP proxy
(tests/fixtures/proxy.py) resets connections after the request reached the broker and before its
answer reached the client, so the producer retries batches the broker already stored.

Real parts throughout: a broker (in this process, or a `logsvc serve` subprocess killed with
SIGKILL in the middle), LMDB in a temp dir, the client over TCP; records are read back with a
Consumer connected to the broker directly.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Consumer, Producer, Record
from logsvc_client.producer.futures import RecordFuture
from tests.conftest import BrokerProcess
from tests.fixtures.ports import free_port
from tests.fixtures.proxy import FlakyProxy, flaky_proxy

RECORDS = 100_000
CHUNK = 250  # records per send_many call
WINDOW = 2  # chunks the application keeps unacknowledged, so requests keep coming all along
PARTITIONS = 4
LOSS = 0.2  # share of requests whose answer the proxy throws away


class Run:
    """What :func:`produce_through` did: every future, and the proxy's reset count after each chunk."""

    def __init__(self) -> None:
        self.futures: list[Sequence[RecordFuture]] = []
        self.resets_after_chunk: list[int] = []

    def resets_in_each_quarter(self) -> list[int]:
        counts = [0, *self.resets_after_chunk]
        q = len(self.resets_after_chunk) // 4
        return [counts[min(len(counts) - 1, (i + 1) * q)] - counts[i * q] for i in range(4)]


def produce_through(
    proxy: FlakyProxy,
    topic: str,
    total: int,
    *,
    idempotent: bool = True,
    halfway: Callable[[], None] = lambda: None,
) -> Run:
    """Send ``total`` records with values b"0", b"1", ... through ``proxy``, at most ``WINDOW``
    chunks of ``CHUNK`` unacknowledged at a time; ``halfway`` is called after half of them."""
    run = Run()
    futures = run.futures
    with Producer(
        proxy.address,
        enable_idempotence=idempotent,
        linger_ms=2,
        retries=1_000,
        retry_backoff_ms=20,
        request_timeout_ms=10_000,
        max_batch_bytes=64 * 1024,
    ) as producer:
        for start in range(0, total, CHUNK):
            if len(futures) >= WINDOW:
                futures[-WINDOW][-1].exception(timeout=300)  # wait, whatever the outcome
            if start == total // 2:
                halfway()
            values = [b"%d" % i for i in range(start, min(total, start + CHUNK))]
            futures.append(producer.send_many(topic, values, values))
            run.resets_after_chunk.append(proxy.resets)
        producer.flush(timeout=300)
    return run


def read_back(address: str, topic: str, at_least: int) -> list[Record]:
    """Every record of ``topic`` (at least ``at_least``), straight from the broker."""
    records: list[Record] = []
    with Consumer(address) as consumer:
        consumer.assign_topic(topic)
        consumer.seek_to_beginning()
        while True:
            got = consumer.poll(timeout_ms=2_000 if len(records) >= at_least else 10_000)
            if not got:
                break
            records += got
    return records


def check_exactly_once(futures: list[Sequence[RecordFuture]], records: list[Record], total: int) -> None:
    """Every future resolved to where its record is; every value stored exactly once."""
    by_value = {r.value: r for r in records}
    counts = Counter(r.value for r in records)
    duplicated = [v for v, n in counts.items() if n > 1]
    assert not duplicated, f"{len(duplicated)} records stored twice, e.g. {duplicated[:3]}"
    assert len(records) == total, f"{total - len(records)} records lost"
    i = 0
    for chunk in futures:
        for future in chunk:
            position = future.result(timeout=0)  # resolved, and stored
            stored = by_value[b"%d" % i]
            assert (stored.partition, stored.offset) == (position.partition, position.offset)
            i += 1
    assert i == total


@pytest.fixture
def topic(broker: Broker) -> Iterator[str]:
    with Admin(broker.address) as admin:
        admin.create_topic("payments", PARTITIONS)
    yield "payments"


def test_idempotent_producer_stores_each_record_once_when_answers_are_lost(broker: Broker, topic: str) -> None:
    # Given a proxy in front of the broker that resets the connection after one in five requests
    # reached the broker, throwing its answer away
    with flaky_proxy(broker.address, reset_probability=LOSS) as proxy:
        # When 100,000 records are produced through it by an idempotent producer
        run = produce_through(proxy, topic, RECORDS)
    # Then answers were lost all along the way (each lost answer was a retry of a stored batch)
    assert all(run.resets_in_each_quarter()), f"resets per quarter of the run: {run.resets_in_each_quarter()}"
    # And every future resolved to the offset its record holds, none lost, none twice
    check_exactly_once(run.futures, read_back(broker.address, topic, RECORDS), RECORDS)


def test_without_idempotence_the_same_lost_answers_store_records_twice(broker: Broker, topic: str) -> None:
    # Given the same flaky proxy
    with flaky_proxy(broker.address, reset_probability=LOSS) as proxy:
        # When a producer without idempotence sends records through it
        run = produce_through(proxy, topic, 20_000, idempotent=False)
        resets = run.resets_after_chunk[-1]
    # Then a batch whose answer was lost was stored again by its retry: the reason for idempotence
    records = read_back(broker.address, topic, 20_000)
    duplicates = sum(n - 1 for n in Counter(r.value for r in records).values())
    assert resets > 0 and duplicates > 0, f"{resets} resets, {duplicates} duplicates"
    assert {r.value for r in records} == {b"%d" % i for i in range(20_000)}


def test_idempotent_producer_stores_each_record_once_across_a_broker_kill_9(data_dir: Path) -> None:
    # Given a `logsvc serve` broker behind the flaky proxy
    broker = BrokerProcess(data_dir).start(listen=f"127.0.0.1:{free_port()}")  # restarted on it below
    try:
        with Admin(broker.address) as admin:
            admin.create_topic("payments", PARTITIONS)
        with flaky_proxy(broker.address, reset_probability=LOSS) as proxy:
            # When the broker is killed with SIGKILL in the middle of the produce, and started
            # again on the same data directory and port
            restarted = threading.Event()

            def kill_and_restart() -> None:
                port = broker.port
                broker.kill()
                broker.start(listen=f"127.0.0.1:{port}")
                restarted.set()

            killer = threading.Thread(target=kill_and_restart, daemon=True)
            run = produce_through(proxy, "payments", RECORDS, halfway=killer.start)
            killer.join(60)
        # Then the broker came back, and answers were lost before and after the kill
        assert restarted.is_set()
        assert all(run.resets_in_each_quarter()), f"resets per quarter of the run: {run.resets_in_each_quarter()}"
        # And every future resolved to its record's offset, none lost, none twice
        check_exactly_once(run.futures, read_back(broker.address, "payments", RECORDS), RECORDS)
    finally:
        broker.kill()
