"""The accumulator's draining rules, driven by an injected clock (no sender thread, no sleeps)."""

from __future__ import annotations

import math
from collections.abc import Container

import pytest

from logsvc_client.errors import TopicNotFound
from logsvc_client.producer.accumulator import Accumulator
from logsvc_client.producer.batches import ProducerBatch
from logsvc_client.producer.topic_batches import TopicBatches


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, **kwargs: object) -> Accumulator:
    counts = {"a": 2, "b": 2}
    return Accumulator(counts.__getitem__, linger_ms=10, clock=clock, **kwargs)  # type: ignore[arg-type]


def drain(
    acc: Accumulator, clock: Clock, slots: int = 5, held: Container[str] = ()
) -> tuple[list[tuple[TopicBatches, list[ProducerBatch]]], float]:
    """``acc.drain_locked`` now (the caller holds the lock), into requests of up to 1 MiB; ``held``:
    the topics with a partial batch in flight."""
    return acc.drain_locked(clock.now, slots=slots, max_request_bytes=1 << 20, partial_held=held)


def test_a_batch_is_ready_once_linger_ms_has_passed(clock: Clock) -> None:
    # Given one record appended now
    acc = make(clock)
    acc.append("a", b"v", partition=0)
    # Then nothing drains before 10 ms, and the sender is told when to look again
    with acc.lock:
        assert drain(acc, clock) == ([], pytest.approx(100.010))
    # When 10 ms pass, the batch drains
    clock.now += 0.010
    with acc.lock:
        requests, deadline = drain(acc, clock)
    assert [(t.name, [b.partition for b in batches]) for t, batches in requests] == [("a", [0])]
    assert deadline == math.inf


def test_flush_makes_lingering_batches_ready_at_once(clock: Clock) -> None:
    acc = make(clock)
    acc.append("a", b"v", partition=1)
    pending = acc.begin_flush()
    with acc.lock:
        requests, _ = drain(acc, clock)
    assert [b for _, batches in requests for b in batches] == pending


def test_a_lingered_batch_waits_while_its_topic_has_a_partial_batch_in_flight(clock: Clock) -> None:
    # Given lingered batches of topics a and b, while a partial batch of a is in flight
    acc = make(clock)
    acc.append("a", b"v", partition=0)
    acc.append("b", b"v", partition=0)
    clock.now += 1
    with acc.lock:
        requests, deadline = drain(acc, clock, held={"a"})
    # Then b's goes, marked partial, and a's stays with no deadline (the answer in flight wakes the sender)
    assert [(t.name, [b.partial for b in batches]) for t, batches in requests] == [("b", [True])]
    assert deadline == math.inf
    # When that answer came, a's goes too
    with acc.lock:
        requests, _ = drain(acc, clock)
    assert [(t.name, [b.partial for b in batches]) for t, batches in requests] == [("a", [True])]


def test_a_topic_with_a_partial_batch_in_flight_still_sends_full_and_flushed_batches(clock: Clock) -> None:
    # Given partition 0 with full batches and an open one behind them, its linger over
    acc = make(clock, max_batch_bytes=64)
    for _ in range(4):
        acc.append("a", b"v" * 20, partition=0)
    clock.now += 1
    with acc.lock:
        requests, _ = drain(acc, clock, held={"a"})
    # Then the full batches go, none of them partial, and the open one stays
    full = [b for _, batches in requests for b in batches]
    assert full and not any(b.partial for b in full)
    assert sum(b.count for b in full) < 4
    # When it is flushed, it goes all the same, marked partial
    with acc.lock:
        acc.release_locked(requests[0][0], full)
    pending = acc.begin_flush()
    with acc.lock:
        flushed, _ = drain(acc, clock, held={"a"})
    assert [b for _, batches in flushed for b in batches] == pending
    assert [b.partial for b in pending] == [True] and sum(b.count for b in full + pending) == 4


def test_no_more_requests_than_free_slots_are_drained(clock: Clock) -> None:
    # Given ready batches for two topics and one free request slot
    acc = make(clock)
    acc.append("a", b"v", partition=0)
    acc.append("b", b"v", partition=0)
    clock.now += 1
    with acc.lock:
        first, _ = drain(acc, clock, slots=1)
        second, _ = drain(acc, clock, slots=1)
    # Then one topic goes now and the other on the next drain
    assert [t.name for t, _ in first] == ["a"]
    assert [t.name for t, _ in second] == ["b"]


def test_a_partition_in_flight_is_muted_until_released_then_sends_its_backlog_in_order(clock: Clock) -> None:
    # Given a partition whose first batch is in flight
    acc = make(clock, max_batch_bytes=1024)
    acc.append("a", b"x" * 500, partition=0)
    clock.now += 1
    with acc.lock:
        ((t, in_flight),) = drain(acc, clock)[0]
    # When six more batches (one record each) fill up for it
    for _ in range(6):
        acc.append("a", b"y" * 500, partition=0)
    clock.now += 1
    with acc.lock:
        assert drain(acc, clock)[0] == []
        # Then after the answer they all go together, oldest first
        acc.release_locked(t, in_flight)
        ((_, backlog),) = drain(acc, clock)[0]
    assert [b.seq for b in backlog] == sorted(b.seq for b in backlog)
    assert len(backlog) == 6
    assert acc.buffered == sum(b.nbytes for b in backlog)


def test_a_requeued_batch_waits_for_its_retry_time_ahead_of_newer_ones(clock: Clock) -> None:
    acc = make(clock)
    acc.append("a", b"old", partition=0)
    clock.now += 1
    with acc.lock:
        ((t, batches),) = drain(acc, clock)[0]
        acc.requeue_locked(t, batches, retry_at=clock.now + 0.5)
    acc.append("a", b"new", partition=0)
    clock.now += 0.1
    with acc.lock:
        requests, deadline = drain(acc, clock)
        assert (requests, deadline) == ([], pytest.approx(clock.now + 0.4))
        clock.now += 0.4
        ((_, retried),) = drain(acc, clock)[0]
    assert retried[0] is batches[0]
    assert len(retried) == 2  # the newer batch has lingered too, and follows in the same request


def test_the_buffer_counts_estimated_bytes_until_batches_are_released(clock: Clock) -> None:
    acc = make(clock)
    acc.append("a", b"v" * 100, b"key", partition=0)
    assert acc.buffered >= 103
    clock.now += 1
    with acc.lock:
        ((t, batches),) = drain(acc, clock)[0]
        acc.release_locked(t, batches)
    assert acc.buffered == 0
    assert not acc.incomplete


def test_refreshing_partition_counts_takes_up_grown_topics_and_skips_deleted_ones(clock: Clock) -> None:
    # Given records queued for topics "a" and "b" (2 partitions each)
    counts = {"a": 2, "b": 2}

    def load(topic: str) -> int:
        if topic not in counts:
            raise TopicNotFound(f"topic {topic!r} does not exist")
        return counts[topic]

    acc = Accumulator(load, linger_ms=10, clock=clock)
    queued = acc.append("a", b"v", partition=1)
    acc.append("b", b"v", partition=0)
    # When "a" grows to 4 and "b" is deleted, and the counts are looked up again
    counts["a"] = 4
    del counts["b"]
    # Then only "a" changed: new records may go to its new partitions, the queued one still goes out
    assert acc.refresh_topics() == ["a"]
    assert acc.partition_count("a") == 4
    acc.append("a", b"w", partition=3)
    clock.now += 0.010
    with acc.lock:
        requests, _ = drain(acc, clock)
    drained = [(t.name, b.partition) for t, batches in requests for b in batches]
    assert ("a", 1) in drained and ("a", 3) in drained
    assert not queued.done()
