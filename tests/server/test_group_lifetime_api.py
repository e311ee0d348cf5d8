"""Groups have a lifetime and bounds, over real gRPC and LMDB: idle groups expire with their offsets
(clocks injected into the broker, the expiry pass called directly: no sleep), across a restart too;
a full group refuses new members; oversized ids are refused."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from logsvc.server.app import Broker, create_server
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import broker_settings
from tests.server.test_broker_api import error_code, rpc_error
from tests.server.test_groups_api import setup_topic
from tests.storage.batches import FakeClock

RETENTION_MINUTES = 60
RETENTION_MS = RETENTION_MINUTES * 60_000
START_MS = 1_700_000_000_000


class Clocks:
    """The broker's wall and monotonic clocks, moved together by the test."""

    def __init__(self) -> None:
        self.wall, self.mono = FakeClock(START_MS), FakeClock(1_000)

    def install(self, broker: Broker) -> None:
        broker.service.clock_ms, broker.service.mono_ms = self.wall, self.mono

    def advance(self, ms: int) -> None:
        self.wall.advance(ms)
        self.mono.advance(ms)


def start(data_dir: Path, clocks: Clocks, **settings: object) -> Broker:
    broker = create_server(broker_settings(data_dir, offsets_retention_minutes=RETENTION_MINUTES, **settings))
    clocks.install(broker)
    return broker


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def broker(data_dir: Path, clocks: Clocks) -> Iterator[Broker]:
    b = start(data_dir, clocks)
    try:
        yield b
    finally:
        b.stop(grace_s=1)


def commit(stub: pb_grpc.BrokerStub, group: str, offset: int, member: pb.JoinGroupResponse | None = None) -> None:
    stub.CommitOffsets(
        pb.CommitOffsetsRequest(
            group=group,
            member_id=member.member_id if member else "",
            generation=member.generation if member else -1,
            offsets=[pb.OffsetCommit(topic="t", partition=0, offset=offset)],
        )
    )


def listed(stub: pb_grpc.BrokerStub) -> dict[str, tuple[str, int]]:
    return {g.group: (g.state, g.members) for g in stub.ListGroups(pb.ListGroupsRequest()).groups}


def offsets(stub: pb_grpc.BrokerStub, group: str) -> list[int]:
    return [o.offset for o in stub.FetchOffsets(pb.FetchOffsetsRequest(group=group)).offsets]


def heartbeat(stub: pb_grpc.BrokerStub, group: str, member: pb.JoinGroupResponse) -> None:
    stub.Heartbeat(
        pb.HeartbeatRequest(
            group=group, member_id=member.member_id, generation=member.generation, owned=member.assignment
        )
    )


def test_an_idle_empty_group_expires_with_its_offsets_while_live_and_recent_groups_stay(
    broker: Broker, stub: pb_grpc.BrokerStub, clocks: Clocks
) -> None:
    # Given a group whose member committed and left, one whose member left without committing,
    # a group whose member stays, and a simple consumer's group that commits again later
    setup_topic(stub, partitions=1)
    idle = stub.JoinGroup(pb.JoinGroupRequest(group="idle", topics=["t"]))
    commit(stub, "idle", 3, idle)
    stub.LeaveGroup(pb.LeaveGroupRequest(group="idle", member_id=idle.member_id))
    never = stub.JoinGroup(pb.JoinGroupRequest(group="never-committed", topics=["t"]))
    stub.LeaveGroup(pb.LeaveGroupRequest(group="never-committed", member_id=never.member_id))
    live = stub.JoinGroup(pb.JoinGroupRequest(group="live", topics=["t"], session_timeout_ms=300_000))
    commit(stub, "live", 4, live)
    commit(stub, "simple", 5)
    assert set(listed(stub)) == {"idle", "never-committed", "live", "simple"}
    # When the retention passes, with the live member heartbeating and the simple consumer
    # committing halfway, and the expiry pass runs
    for _ in range(RETENTION_MS // 240_000):
        clocks.advance(120_000)
        heartbeat(stub, "live", live)
        if clocks.wall() == START_MS + RETENTION_MS // 2:
            commit(stub, "simple", 6)
        clocks.advance(120_000)
        heartbeat(stub, "live", live)
    assert broker.service.expire_groups() == []
    clocks.advance(1)
    assert broker.service.expire_groups() == ["idle", "never-committed"]
    # Then the idle groups are not listed, not described, and their offsets are gone
    assert listed(stub) == {"live": ("Stable", 1), "simple": ("Empty", 0)}
    for group in ("idle", "never-committed"):
        err = rpc_error(stub.DescribeGroup, pb.DescribeGroupRequest(group=group))
        assert err.code() == grpc.StatusCode.NOT_FOUND and error_code(err) == "group_not_found"
        assert offsets(stub, group) == []
    # And the live and recently committed groups kept theirs
    assert offsets(stub, "live") == [4] and offsets(stub, "simple") == [6]


def test_a_group_idle_before_a_restart_expires_after_it_and_a_recent_one_stays(data_dir: Path, clocks: Clocks) -> None:
    # Given a broker where "old" committed, and "fresh" committed just under the retention later
    broker = start(data_dir, clocks)
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            setup_topic(stub, partitions=1)
            commit(stub, "old", 1)
            clocks.advance(RETENTION_MS - 1)
            commit(stub, "fresh", 2)
    finally:
        broker.stop(grace_s=1)
    # When the broker restarts (the coordinator knows neither group) and the retention has passed for "old"
    clocks.advance(2)
    broker = start(data_dir, clocks)
    try:
        # Then the expiry pass removes "old" and its offsets from LMDB, and keeps "fresh"
        assert broker.service.expire_groups() == ["old"]
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            assert listed(stub) == {"fresh": ("Empty", 0)}
            assert offsets(stub, "old") == [] and offsets(stub, "fresh") == [2]
    finally:
        broker.stop(grace_s=1)


def test_a_join_beyond_max_members_per_group_is_resource_exhausted(data_dir: Path, clocks: Clocks) -> None:
    # Given a broker allowing 2 members per group, and a group with 2
    broker = start(data_dir, clocks, max_members_per_group=2)
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            setup_topic(stub, partitions=1)
            for _ in range(2):
                stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["t"]))
            # When a third member joins
            err = rpc_error(stub.JoinGroup, pb.JoinGroupRequest(group="g", topics=["t"]))
            # Then it is refused with the group and the limit named, and another group is not affected
            assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert error_code(err) == "group_max_size_reached"
            assert "group g already has 2 members" in err.details() and "max_members_per_group=2" in err.details()
            assert listed(stub)["g"][1] == 2
            stub.JoinGroup(pb.JoinGroupRequest(group="other", topics=["t"]))
    finally:
        broker.stop(grace_s=1)


@pytest.mark.parametrize("field", ["client_id", "instance_id"])
def test_a_join_with_an_oversized_id_is_invalid_argument_naming_the_field_and_keeps_nothing(
    stub: pb_grpc.BrokerStub, field: str
) -> None:
    # Given a topic
    setup_topic(stub, partitions=1)
    # When a member joins with a 1 MB id
    err = rpc_error(stub.JoinGroup, pb.JoinGroupRequest(group="g", topics=["t"], **{field: "x" * 1_000_000}))
    # Then it is refused naming the field and its size, the message stays short, and no group was created
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(f"{field} is 1000000 bytes") and len(err.details()) < 200
    assert listed(stub) == {}


def test_the_broker_runs_the_expiry_itself_every_retention_check_interval(data_dir: Path, clocks: Clocks) -> None:
    # Given a broker checking every 20 ms and a group that committed, then idled past the retention
    broker = start(data_dir, clocks, retention_check_interval_ms=20)
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            setup_topic(stub, partitions=1)
            commit(stub, "idle", 1)
            clocks.advance(RETENTION_MS + 1)
            # When its periodic pass has run, Then the group is gone (polled: no duration asserted)
            deadline = time.monotonic() + 20
            while listed(stub) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert listed(stub) == {} and offsets(stub, "idle") == []
    finally:
        broker.stop(grace_s=1)
