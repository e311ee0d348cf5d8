"""Producer.send's C lane (``FastAppend`` in logsvc_wire/_codec.c) against Accumulator.append:
the same records in the same batches at the same indexes, the same buffer accounting, for every
kind of call — the ones the lane queues itself and the ones it hands to ``append``."""

from __future__ import annotations

import random
import time
from typing import Any

import msgpack
import pytest

from logsvc_client.errors import BufferFull, InvalidPartition, TopicNotFound
from logsvc_client.producer.accumulator import Accumulator
from logsvc_client.producer.futures import RecordFuture
from logsvc_wire import record_codec
from tests.client.accumulator_views import partition_batches, place, records

T0 = 1_700_000_000_000


def partition_count(topic: str) -> int:
    if topic not in ("orders", "one"):
        raise TopicNotFound(f"topic {topic!r} does not exist")
    return 4 if topic == "orders" else 1


def accumulator(**kwargs: Any) -> Accumulator:
    acc = Accumulator(
        partition_count,
        linger_ms=600_000,
        clock=lambda: 100.0,
        rng=random.Random(7),
        **kwargs,
    )
    return acc


def state(acc: Accumulator) -> list[tuple[Any, ...]]:
    """Every batch: (topic, partition, place among the partition's batches, records, size bound)."""
    return [
        (t.name, p, i, [(k, v, h) for _, k, v, h in records(b)], b.nbytes)  # not the clock
        for t in acc.states
        for p, bs in enumerate(partition_batches(acc, t.name))
        for i, b in enumerate(bs)
    ]


def calls(rng: random.Random, n: int) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """send() calls: mostly the fast lane's (bytes or None, no options), some of every other kind."""
    out: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for i in range(n):
        topic = "one" if i % 50 == 0 else "orders"
        value = rng.choice([b"v" * rng.randrange(0, 300), None, b""])
        key = rng.choice([b"key-%d" % rng.randrange(100), None, b"key-%d" % rng.randrange(100)])
        kind = rng.random()
        if kind < 0.85:
            out.append(((topic, value, key) if rng.random() < 0.8 else (topic, value), {}))
        elif kind < 0.9:
            out.append(((topic, "välue", "kéy"), {}))  # str: converted by append
        elif kind < 0.95:
            out.append(((topic, value, key), {"partition": 0}))
        else:
            out.append(((topic, value), {"headers": {"h": b"1"}, "timestamp_ms": T0}))
    return out


@pytest.mark.skipif(
    not record_codec.NATIVE, reason="the C extension is not in use (not built, or LOGSVC_PURE_PYTHON=1)"
)
def test_the_c_lane_fills_the_same_batches_as_append_record_for_record() -> None:
    # Given two accumulators with small batches (so batches roll and the sticky partition moves),
    # one sent to through append, the other through the C lane
    slow, fast = accumulator(max_batch_bytes=4096), accumulator(max_batch_bytes=4096)
    send = fast.send_function()
    assert send is not fast.append
    # When the same 5,000 calls of every kind are made to each
    expected, got = [], []
    for args, kwargs in calls(random.Random(11), 5_000):
        expected.append(slow.append(*args, **kwargs))
        got.append(send(*args, **kwargs))
    # Then every future points at the same place, the batches hold the same records, and the
    # buffer counts the same bytes
    assert [place(fast, f) for f in got] == [place(slow, f) for f in expected]
    assert state(fast) == state(slow)
    assert fast.buffered == slow.buffered
    assert all(type(f) is RecordFuture for f in got)


@pytest.mark.skipif(
    not record_codec.NATIVE, reason="the C extension is not in use (not built, or LOGSVC_PURE_PYTHON=1)"
)
def test_the_c_lane_hands_a_full_buffer_and_bad_calls_to_append_and_its_errors() -> None:
    acc = accumulator(max_batch_bytes=2048, max_buffer_bytes=4096, block_when_full=False)
    send = acc.send_function()
    # Given a buffer the next record does not fit
    with pytest.raises(BufferFull):
        for _ in range(100):
            send("orders", b"x" * 200, b"k")
    # Then the lane raised append's error; and unknown topics, bad partitions and types too
    with pytest.raises(TopicNotFound):
        send("missing", b"v")
    with pytest.raises(InvalidPartition):
        send("orders", b"v", partition=9)
    with pytest.raises(Exception, match="value"):
        send("orders", 12.5)
    # And a record that fits is queued with its timestamp now, in msgpack's shortest form
    acc2 = accumulator()
    before = time.time_ns() // 1_000_000
    acc2.send_function()("orders", b"v", None)
    after = time.time_ns() // 1_000_000
    (t,) = acc2.states
    b = next(b for b in t.open if b is not None)
    assert b.buffer is not None
    (row,) = msgpack.unpackb(record_codec.payload(b.buffer, 1)[0], use_list=False)
    assert row[1:] == (None, b"v", None) and before <= row[0] <= after
