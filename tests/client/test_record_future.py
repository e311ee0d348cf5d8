"""RecordFuture: a cheap per-record view of its batch's completion."""

from __future__ import annotations

import threading

import pytest

from logsvc_client.errors import StorageFull, Timeout
from logsvc_client.producer.batches import ProducerBatch
from logsvc_client.producer.futures import RecordFuture
from logsvc_client.records import RecordPosition


def make_batch() -> ProducerBatch:
    return ProducerBatch("orders", 3, created=0.0, seq=1)


def test_a_record_future_is_two_slots_and_no_dict() -> None:
    future = RecordFuture(make_batch(), 0)
    assert not hasattr(future, "__dict__")
    assert RecordFuture.__slots__ == ("_batch", "_index")


def test_each_record_of_a_completed_batch_gets_base_offset_plus_its_index() -> None:
    # Given three futures into one batch
    batch = make_batch()
    futures = [RecordFuture(batch, i) for i in range(3)]
    assert not any(f.done() for f in futures)
    # When the batch is stored at offset 40
    batch.complete(40)
    # Then each record's position is 40 + its index
    assert [f.result() for f in futures] == [RecordPosition(3, 40), RecordPosition(3, 41), RecordPosition(3, 42)]
    assert all(f.done() and f.exception() is None for f in futures)


def test_a_failed_batch_raises_its_error_from_every_record_future() -> None:
    batch = make_batch()
    futures = [RecordFuture(batch, i) for i in range(2)]
    batch.fail(StorageFull("disk full"))
    for f in futures:
        with pytest.raises(StorageFull, match="disk full"):
            f.result()
        assert isinstance(f.exception(), StorageFull)


def test_result_raises_timeout_while_the_batch_is_pending() -> None:
    with pytest.raises(Timeout):
        RecordFuture(make_batch(), 0).result(timeout=0.01)


def test_result_waits_for_completion_on_another_thread() -> None:
    batch = make_batch()
    timer = threading.Timer(0.05, batch.complete, args=(7,))
    timer.start()
    assert RecordFuture(batch, 1).result(timeout=5) == RecordPosition(3, 8)
    timer.join()


def test_callbacks_run_on_completion_or_at_once_when_already_done() -> None:
    # Given a callback added before completion and one after
    batch = make_batch()
    seen: list[int] = []
    RecordFuture(batch, 0).add_done_callback(lambda f: seen.append(f.result().offset))
    assert seen == []
    batch.complete(10)
    RecordFuture(batch, 1).add_done_callback(lambda f: seen.append(f.result().offset))
    # Then both ran, in order, with their own positions
    assert seen == [10, 11]


def test_a_raising_callback_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    batch = make_batch()
    seen: list[str] = []

    def bad(f: RecordFuture) -> None:
        raise RuntimeError("boom")

    RecordFuture(batch, 0).add_done_callback(bad)
    RecordFuture(batch, 1).add_done_callback(lambda f: seen.append("ok"))
    batch.complete(0)
    assert seen == ["ok"]
    assert "callback raised" in caplog.text


def test_completing_twice_keeps_the_first_outcome() -> None:
    batch = make_batch()
    batch.fail(StorageFull("full"))
    batch.complete(5)
    assert isinstance(RecordFuture(batch, 0).exception(), StorageFull)
