"""With ``linger_ms=0``, a thread that waits for a record still waiting to be sent sends it itself
(``Sender.send_now``): the same drain, sequencing and answer handling as the sender thread's, but
the answer reaches the waiting thread with no hand-off from another thread.

The unit tests drive an accumulator and a sender whose thread is never started, so which thread
sends is certain; the last test races the real sender thread on a real broker."""

from __future__ import annotations

import threading

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer
from logsvc_client.errors import Timeout, Unavailable
from logsvc_client.producer.accumulator import Accumulator
from logsvc_client.producer.batches import ProducerBatch
from logsvc_client.producer.futures import RecordFuture
from logsvc_client.producer.idempotence import Sequences
from logsvc_client.producer.sender import Sender
from logsvc_client.records import RecordPosition
from logsvc_client.transport.retry import Backoff
from tests.client.fakes import FakeTransport
from tests.client.stored import stored_records


def batch_of(future: RecordFuture) -> ProducerBatch:
    return future._batch


class Parked:
    """An accumulator and a sender over a fake transport, the sender's thread not started."""

    def __init__(self, transport: FakeTransport, *, idempotent: bool = False, max_in_flight: int = 5) -> None:
        self.acc = Accumulator(transport.partition_count, linger_ms=0)
        self.sender = Sender(
            self.acc,
            transport,
            max_in_flight=max_in_flight,
            max_request_bytes=1 << 20,
            retries=3,
            backoff=Backoff(base_ms=1, max_ms=1),
            sequences=Sequences() if idempotent else None,
            request_timeout_s=30,
        )
        self.acc.steal = self.sender.send_now
        self.send = self.acc.send_function()


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport(topics={"orders": 4})


def test_a_thread_waiting_for_a_record_sends_its_batch_itself_and_gets_the_offset(transport: FakeTransport) -> None:
    parked = Parked(transport, idempotent=True)
    # Given two records queued at linger 0, and no sender thread running
    first = parked.send("orders", b"a", key=None, partition=1)
    second = parked.send("orders", b"b", key=None, partition=2)

    # When this thread waits for the first
    assert first.result(timeout=30) == RecordPosition(1, 0)  # (30 s: the request timeout)

    # Then it sent every ready batch in one request, as a waiting call, with sequence numbers
    assert len(transport.calls) == 1
    call = transport.calls[0]
    assert call.wait and sorted(p for p, _ in call.batches) == [1, 2]
    assert call.producer_id != 0 and call.sequences == [0, 0]
    # And the other record is answered too, and the sender's count of requests in flight is back
    assert second.done() and second.result(timeout=0) == RecordPosition(2, 0)
    assert parked.sender.in_flight == 0


def test_a_wait_shorter_than_the_request_timeout_leaves_the_sending_to_the_sender(transport: FakeTransport) -> None:
    parked = Parked(transport)
    future = parked.send("orders", b"a", key=None, partition=0)
    # A blocking call could outlast a wait of 50 ms, so nothing is sent from here
    with pytest.raises(Timeout):
        future.result(timeout=0.05)
    assert transport.calls == []
    # With a wait as long as the request timeout (or none), it is
    assert future.result(timeout=30) == RecordPosition(0, 0)
    assert [c.wait for c in transport.calls] == [True]


def test_no_waiting_send_beyond_the_in_flight_limit(transport: FakeTransport) -> None:
    # Given the one request allowed in flight taken by a waiting send not answered yet
    transport.hold = True
    parked = Parked(transport, max_in_flight=1)
    first = parked.send("orders", b"a", key=None, partition=0)
    parked.sender.send_now(batch_of(first), None)
    assert len(transport.calls) == 1 and parked.sender.in_flight == 1
    # When a thread waits for a record of another partition
    waiting = parked.send("orders", b"b", key=None, partition=3)
    parked.sender.send_now(batch_of(waiting), None)
    # Then it sends nothing: the limit holds for it as for the sender thread
    assert len(transport.calls) == 1 and not waiting.done()
    # And once the first is answered, the next wait sends it
    transport.hold = False
    transport.release()
    assert first.result(timeout=30) == RecordPosition(0, 0)
    assert waiting.result(timeout=30) == RecordPosition(3, 0) and len(transport.calls) == 2


def test_records_lingered_while_a_partial_batch_is_in_flight_go_together_in_the_next_request(
    transport: FakeTransport,
) -> None:
    # Given a waiting send's one-record batch in flight, not answered yet, and four free slots
    transport.hold = True
    parked = Parked(transport, idempotent=True)
    first = parked.send("orders", b"a", key=None, partition=0)
    parked.sender.send_now(batch_of(first), None)
    assert len(transport.calls) == 1 and parked.sender.partial_in_flight == {"orders": 1}
    # When three more threads send a record each to other partitions and wait for it
    waiting = [parked.send("orders", b"%d" % p, key=None, partition=p) for p in (1, 2, 3)]
    for future in waiting:
        parked.sender.send_now(batch_of(future), None)
    # Then none of them goes in a request of its own while the first is in flight
    assert len(transport.calls) == 1 and not any(f.done() for f in waiting)
    # And once it is answered, the next wait sends all three in one request
    transport.hold = False
    transport.release()
    assert first.result(timeout=30) == RecordPosition(0, 0) and parked.sender.partial_in_flight == {}
    assert [f.result(timeout=30) for f in waiting] == [RecordPosition(p, 0) for p in (1, 2, 3)]
    assert len(transport.calls) == 2 and sorted(p for p, _ in transport.calls[1].batches) == [1, 2, 3]
    assert parked.sender.in_flight == 0 and parked.sender.partial_in_flight == {}


def test_a_failed_waiting_send_is_retried_by_the_sender_and_stored_once(transport: FakeTransport) -> None:
    # Given a broker whose first answer is lost after storing the batch
    transport.lose_answers = 1
    with Producer("fake", linger_ms=0, transport=transport, retry_backoff_ms=1) as producer:
        # When a record is sent and waited for
        position = producer.send("orders", b"a", key=None, partition=2).result()
    # Then it is retried under the same sequence and stored once, at the offset of its first write
    assert position == RecordPosition(2, 0)
    assert len(transport.calls) == 2 and transport.calls[0].sequences == transport.calls[1].sequences
    assert [r.value for r in transport.records("orders", 2)] == [b"a"]


def test_a_waiting_send_that_fails_for_good_raises_in_the_waiting_thread(transport: FakeTransport) -> None:
    transport.fail_next(Unavailable("down"), Unavailable("down"), Unavailable("down"), Unavailable("down"))
    parked = Parked(transport)
    future = parked.send("orders", b"a", key=None, partition=0)
    parked.sender.send_now(batch_of(future), None)
    # the first attempt failed here; it waits for a retry, which only the sender thread makes
    assert not future.done() and transport.calls[0].wait
    parked.sender.start()
    with pytest.raises(Unavailable):
        future.result(timeout=10)
    parked.sender.stop()


@pytest.fixture
def topic(broker: Broker) -> str:
    with Admin(broker.address) as admin:
        admin.create_topic("waits", 2)
    return "waits"


def test_threads_sending_and_waiting_one_record_at_a_time_store_each_record_once_in_order(
    broker: Broker, topic: str
) -> None:
    # Given four threads sharing one producer at linger 0, each sending a record and waiting for
    # it, 300 times, racing each other and the sender thread for the same partitions
    positions: dict[int, list[RecordPosition]] = {}
    with Producer(broker.address, linger_ms=0) as producer:

        def work(n: int) -> None:
            positions[n] = [producer.send(topic, b"%d-%d" % (n, i), key=b"k%d" % (i % 2)).result() for i in range(300)]

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    # Then every record is stored once, at the position its future gave, each thread's in order
    with Admin(broker.address) as admin:
        stored = {(r.partition, r.offset): r.value for p in (0, 1) for r in stored_records(admin, topic, p)}
    assert len(stored) == 1200
    for n in range(4):
        mine = positions[n]
        assert [stored[(p.partition, p.offset)] for p in mine] == [b"%d-%d" % (n, i) for i in range(300)]
        assert len(set(mine)) == 300
