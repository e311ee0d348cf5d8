"""Many waiting clients do not freeze the broker: long-polling fetches wait on the event loop, not
on a worker thread each, so health, admin and produce calls answer while hundreds of consumers
wait; and the number of calls held at once is bounded (max_concurrent_rpcs)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from logsvc.server.app import Broker, create_server
from logsvc.server.long_polls import LongPolls
from logsvc.storage.memory import MemoryStore
from logsvc.topic_config import TopicConfig
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import broker_settings

WAITERS = 200  # well past the worker pool below: each used to hold a thread
WORKERS = 8


@pytest.fixture
def small_pool_broker(data_dir: Path) -> Iterator[Broker]:
    b = create_server(broker_settings(data_dir, workers=WORKERS))
    try:
        yield b
    finally:
        b.stop(grace_s=1)


def long_poll(stub: pb_grpc.BrokerStub, partition: int, wait_ms: int = 20_000) -> grpc.Future:
    request = pb.FetchRequest(
        partitions=[pb.FetchPartition(topic="orders", partition=partition, offset=0)], max_wait_ms=wait_ms
    )
    return stub.Fetch.future(request, timeout=60)


def wait_for_waiting(broker: Broker, calls: int) -> None:
    """Until the broker holds ``calls`` long polls waiting for data."""
    polls = broker.service.long_polls
    assert polls is not None
    deadline = time.monotonic() + 10
    while polls.waiting_calls < calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert polls.waiting_calls == calls


def test_two_hundred_long_polls_leave_health_admin_and_produce_answering(small_pool_broker: Broker) -> None:
    # Given a broker with 8 worker threads and a topic of 4 empty partitions
    channels = [grpc.insecure_channel(small_pool_broker.address) for _ in range(4)]
    stubs = [pb_grpc.BrokerStub(c) for c in channels]
    watches = []
    try:
        stubs[0].CreateTopic(pb.CreateTopicRequest(name="orders", partitions=4), timeout=10)

        # When 200 consumers long-poll it (50 per partition, spread over 4 connections), and 20
        # load balancers watch its health (each a stream that stays open)
        polls = [long_poll(stubs[i % 4], i % 4) for i in range(WAITERS)]
        for i in range(20):
            watch = health_pb2_grpc.HealthStub(channels[i % 4]).Watch(health_pb2.HealthCheckRequest(), timeout=60)
            watches.append(watch)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        wait_for_waiting(small_pool_broker, WAITERS)
        assert not any(p.done() for p in polls)

        # Then health checks, admin calls and produce still answer at once
        health = health_pb2_grpc.HealthStub(channels[1])
        for _ in range(20):
            start = time.perf_counter()
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=3).status
            assert status == health_pb2.HealthCheckResponse.SERVING
            assert time.perf_counter() - start < 1.0
        assert [t.name for t in stubs[2].ListTopics(pb.ListTopicsRequest(), timeout=3).topics] == ["orders"]
        batch = codec.encode_batch([[int(time.time() * 1000), b"k", b"v", None]])
        appended = stubs[3].Produce(
            pb.ProduceRequest(topic="orders", batches=[pb.PartitionBatch(partition=2, batch=batch)]), timeout=3
        )
        assert appended.appends[0].base_offset == 0

        # And the record wakes exactly the 50 consumers of partition 2, with the record
        woken = [p for i, p in enumerate(polls) if i % 4 == 2]
        for p in woken:
            got = p.result(timeout=10)
            assert [b.base_offset for b in got.partitions[0].batches] == [0]
        assert not any(p.done() for i, p in enumerate(polls) if i % 4 != 2)
    finally:
        for w in watches:
            w.cancel()
        for c in channels:
            c.close()


def test_a_call_past_max_concurrent_rpcs_is_refused_at_once(data_dir: Path) -> None:
    # Given a broker that holds at most 20 calls at once, and 20 long polls waiting on it
    broker = create_server(broker_settings(data_dir, max_concurrent_rpcs=20))
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stub.CreateTopic(pb.CreateTopicRequest(name="orders", partitions=1), timeout=10)
            polls = [long_poll(stub, 0, wait_ms=5_000) for _ in range(20)]
            wait_for_waiting(broker, 20)

            # When one more call comes
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListTopics(pb.ListTopicsRequest(), timeout=3)

            # Then it is refused with RESOURCE_EXHAUSTED without waiting, and the polls still end well
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert all(p.result(timeout=10).partitions[0].next_offset == 0 for p in polls)
            stub.ListTopics(pb.ListTopicsRequest(), timeout=3)
    finally:
        broker.stop(grace_s=1)


def test_stopping_the_broker_answers_every_waiting_poll(small_pool_broker: Broker) -> None:
    # Given 50 consumers long-polling for 20 s
    with grpc.insecure_channel(small_pool_broker.address) as channel:
        stub = pb_grpc.BrokerStub(channel)
        stub.CreateTopic(pb.CreateTopicRequest(name="orders", partitions=1), timeout=10)
        polls = [long_poll(stub, 0) for _ in range(50)]
        wait_for_waiting(small_pool_broker, 50)

        # When the broker stops
        start = time.monotonic()
        small_pool_broker.stop(grace_s=5)

        # Then each poll is answered (empty) well before its 20 s
        for p in polls:
            assert p.result(timeout=10).partitions[0].batches == []
        assert time.monotonic() - start < 5


# -- the waiting room on its own ---------------------------------------------------------------


def test_a_commit_wakes_only_the_waiters_whose_position_has_data() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        # Given a store with two partitions and a waiter on each
        store = MemoryStore()
        store.create_topic("orders", 2, TopicConfig())
        polls = LongPolls(store, asyncio.get_running_loop())
        on_0 = asyncio.ensure_future(polls.wait([("orders", 0, 0)], 5))
        on_1 = asyncio.ensure_future(polls.wait([("orders", 1, 0)], 0.3))
        await asyncio.sleep(0.05)

        # When a batch is appended to partition 0 (from another thread, as the writer does)
        batch = codec.encode_batch([[1, None, b"v", None]])
        await asyncio.to_thread(store.append, "orders", [(0, batch)])

        # Then the waiter on 0 wakes with data, the one on 1 times out, and nothing stays registered
        return await on_0, await on_1, len(polls)

    assert asyncio.run(scenario()) == (True, False, 0)


def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    async def scenario() -> int:
        store = MemoryStore()
        store.create_topic("orders", 1, TopicConfig())
        polls = LongPolls(store, asyncio.get_running_loop())
        waiter = asyncio.ensure_future(polls.wait([("orders", 0, 0)], 5))
        await asyncio.sleep(0.02)
        waiter.cancel()  # the client went away
        await asyncio.gather(waiter, return_exceptions=True)
        return len(polls)

    assert asyncio.run(scenario()) == 0


def test_a_commit_between_a_waiters_first_look_and_its_registration_still_wakes_it() -> None:
    # A commit with no Fetch waiting schedules nothing on the loop; a Fetch that looked just before
    # that commit and registers just after it must not sleep through it.
    async def scenario() -> tuple[bool, float]:
        store = MemoryStore()
        store.create_topic("orders", 1, TopicConfig())
        polls = LongPolls(store, asyncio.get_running_loop())
        real_has_data = store.has_data
        looks = 0

        def has_data(topic: str, partition: int, offset: int) -> bool:
            nonlocal looks
            looks += 1
            seen = real_has_data(topic, partition, offset)
            if looks == 1:  # the commit lands right after the first look, before the waiter counts itself
                store.append("orders", [(0, codec.encode_batch([[1, None, b"v", None]]))])
            return seen

        store.has_data = has_data  # type: ignore[method-assign]
        started = time.monotonic()
        woke = await polls.wait([("orders", 0, 0)], 5)
        return woke, time.monotonic() - started

    woke, took = asyncio.run(scenario())
    assert woke and took < 1
