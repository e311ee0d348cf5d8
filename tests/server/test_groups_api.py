"""Consumer-group RPCs over real gRPC: membership, fenced commits, lag, resets, durability."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from logsvc.server.app import Broker
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import BrokerProcess
from tests.server.test_broker_api import error_code, make_batch, rpc_error


def setup_topic(stub: pb_grpc.BrokerStub, partitions: int = 4, records_per_partition: int = 10) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=partitions))
    for p in range(partitions):
        data = make_batch(records_per_partition, ts=int(time.time() * 1000) - 60_000)
        stub.Produce(pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=p, batch=data)]))


def owned(assignment: list[pb.TopicPartitions]) -> set[tuple[str, int]]:
    return {(tp.topic, p) for tp in assignment for p in tp.partitions}


def test_two_members_split_the_partitions_and_a_leave_hands_them_over(stub: pb_grpc.BrokerStub) -> None:
    # Given a topic with 4 partitions and a first member owning all of them
    setup_topic(stub)
    a = stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["t"]))
    assert len(owned(a.assignment)) == 4
    # When a second member joins
    b = stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["t"]))
    # Then it gets nothing until the first one releases what moves to it
    hb_a = stub.Heartbeat(
        pb.HeartbeatRequest(group="g", member_id=a.member_id, generation=a.generation, owned=a.assignment)
    )
    assert hb_a.rebalance_in_progress and len(owned(hb_a.assignment)) == 2
    assert not owned(b.assignment) & owned(hb_a.assignment)
    stub.Heartbeat(
        pb.HeartbeatRequest(group="g", member_id=a.member_id, generation=hb_a.generation, owned=hb_a.assignment)
    )
    hb_b = stub.Heartbeat(pb.HeartbeatRequest(group="g", member_id=b.member_id, generation=b.generation))
    assert owned(hb_b.assignment) == {("t", p) for p in range(4)} - owned(hb_a.assignment)
    # When the first member leaves, the second one owns everything at its next heartbeat
    stub.LeaveGroup(pb.LeaveGroupRequest(group="g", member_id=a.member_id))
    hb_b = stub.Heartbeat(
        pb.HeartbeatRequest(group="g", member_id=b.member_id, generation=hb_b.generation, owned=hb_b.assignment)
    )
    assert len(owned(hb_b.assignment)) == 4


def test_a_commit_from_a_stale_generation_or_unknown_member_is_refused_and_changes_nothing(
    stub: pb_grpc.BrokerStub,
) -> None:
    setup_topic(stub, partitions=1)
    a = stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["t"]))
    commit = pb.OffsetCommit(topic="t", partition=0, offset=3)
    stub.CommitOffsets(
        pb.CommitOffsetsRequest(group="g", member_id=a.member_id, generation=a.generation, offsets=[commit])
    )
    # Given the group moved on to a newer generation that member a acknowledged
    b = stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["t"]))
    hb = stub.Heartbeat(
        pb.HeartbeatRequest(group="g", member_id=a.member_id, generation=b.generation, owned=a.assignment)
    )
    # When a commits with its old generation, or an unknown member commits
    stale = pb.OffsetCommit(topic="t", partition=0, offset=7)
    err = rpc_error(
        stub.CommitOffsets,
        pb.CommitOffsetsRequest(group="g", member_id=a.member_id, generation=a.generation, offsets=[stale]),
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert str(a.generation) in err.details()
    err = rpc_error(
        stub.CommitOffsets,
        pb.CommitOffsetsRequest(group="g", member_id="ghost", generation=hb.generation, offsets=[stale]),
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(err) == "unknown_member"
    # Then the committed offset is still 3
    fetched = stub.FetchOffsets(pb.FetchOffsetsRequest(group="g"))
    assert [(o.topic, o.partition, o.offset) for o in fetched.offsets] == [("t", 0, 3)]


def test_a_commit_past_the_next_offset_is_refused(stub: pb_grpc.BrokerStub) -> None:
    setup_topic(stub, partitions=1, records_per_partition=5)
    err = rpc_error(
        stub.CommitOffsets,
        pb.CommitOffsetsRequest(group="g", generation=-1, offsets=[pb.OffsetCommit(topic="t", partition=0, offset=6)]),
    )
    assert err.code() == grpc.StatusCode.OUT_OF_RANGE
    assert "6" in err.details() and "5" in err.details()


def test_describe_shows_committed_offsets_lag_in_records_and_seconds_and_owners(
    broker: Broker, stub: pb_grpc.BrokerStub
) -> None:
    # Given 2 partitions of 10 records a minute old and a member that committed 4 on partition 0
    setup_topic(stub, partitions=2)
    a = stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["t"]))
    stub.CommitOffsets(
        pb.CommitOffsetsRequest(
            group="g",
            member_id=a.member_id,
            generation=a.generation,
            offsets=[pb.OffsetCommit(topic="t", partition=0, offset=4)],
        )
    )
    # When the group is described
    desc = stub.DescribeGroup(pb.DescribeGroupRequest(group="g"))
    # Then each partition shows committed offset, lag and an owner
    assert desc.state == "Stable" and len(desc.members) == 1
    rows = {p.partition: p for p in desc.partitions}
    assert (rows[0].committed_offset, rows[0].next_offset, rows[0].lag) == (4, 10, 6)
    assert (rows[1].committed_offset, rows[1].lag) == (-1, 10)
    assert 55_000 <= rows[0].lag_ms <= 120_000
    assert rows[0].owner == a.member_id
    # And /metrics carries the same lag
    body = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics.port}/metrics", timeout=5).read().decode()
    assert 'logsvc_group_lag_records{group="g",partition="0",topic="t"} 6.0' in body


def test_reset_offsets_is_a_dry_run_unless_executed_and_is_refused_while_members_live(
    stub: pb_grpc.BrokerStub,
) -> None:
    setup_topic(stub, partitions=2)
    stub.CommitOffsets(
        pb.CommitOffsetsRequest(
            group="g",
            generation=-1,
            offsets=[
                pb.OffsetCommit(topic="t", partition=0, offset=8),
                pb.OffsetCommit(topic="t", partition=1, offset=9),
            ],
        )
    )
    # A dry run reports before/after and changes nothing
    dry = stub.ResetOffsets(
        pb.ResetOffsetsRequest(group="g", topic="t", spec=pb.ResetOffsetsRequest.SHIFT_BY, value=-100)
    )
    assert [(r.partition, r.before, r.after) for r in dry.resets] == [(0, 8, 0), (1, 9, 0)]  # clamped
    assert not dry.executed
    assert [o.offset for o in stub.FetchOffsets(pb.FetchOffsetsRequest(group="g")).offsets] == [8, 9]
    # Executed, it commits the new offsets
    stub.ResetOffsets(pb.ResetOffsetsRequest(group="g", topic="t", spec=pb.ResetOffsetsRequest.EARLIEST, execute=True))
    assert [o.offset for o in stub.FetchOffsets(pb.FetchOffsetsRequest(group="g")).offsets] == [0, 0]
    # While a member is live it is refused
    stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["t"]))
    err = rpc_error(
        stub.ResetOffsets,
        pb.ResetOffsetsRequest(group="g", topic="t", spec=pb.ResetOffsetsRequest.LATEST, execute=True),
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_groups_are_listed_and_deleted_only_when_empty(stub: pb_grpc.BrokerStub) -> None:
    setup_topic(stub, partitions=1)
    a = stub.JoinGroup(pb.JoinGroupRequest(group="live", topics=["t"]))
    stub.CommitOffsets(
        pb.CommitOffsetsRequest(
            group="idle", generation=-1, offsets=[pb.OffsetCommit(topic="t", partition=0, offset=1)]
        )
    )
    listed = {g.group: (g.state, g.members) for g in stub.ListGroups(pb.ListGroupsRequest()).groups}
    assert listed == {"live": ("Stable", 1), "idle": ("Empty", 0)}
    assert (
        rpc_error(stub.DeleteGroup, pb.DeleteGroupRequest(group="live")).code() == grpc.StatusCode.FAILED_PRECONDITION
    )
    stub.DeleteGroup(pb.DeleteGroupRequest(group="idle"))
    assert rpc_error(stub.DeleteGroup, pb.DeleteGroupRequest(group="idle")).code() == grpc.StatusCode.NOT_FOUND
    stub.LeaveGroup(pb.LeaveGroupRequest(group="live", member_id=a.member_id))
    stub.DeleteGroup(pb.DeleteGroupRequest(group="live"))


@pytest.mark.parametrize(
    "request_",
    [
        pb.JoinGroupRequest(group="g", topics=["missing"]),
        pb.JoinGroupRequest(group="bad group", topics=["t"]),
        pb.JoinGroupRequest(group="g", topics=[]),
        pb.JoinGroupRequest(group="g", topics=["t"], session_timeout_ms=10),
        pb.JoinGroupRequest(group="g", topics=["t"], assignor="roundrobin"),
    ],
)
def test_a_bad_join_is_a_clear_error(stub: pb_grpc.BrokerStub, request_: pb.JoinGroupRequest) -> None:
    setup_topic(stub, partitions=1)
    err = rpc_error(stub.JoinGroup, request_)
    assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
    assert err.details()


def test_committed_offsets_survive_a_broker_sigkill(data_dir: Path) -> None:
    # Given a broker process and an acknowledged commit
    proc = BrokerProcess(data_dir).start()
    try:
        with grpc.insecure_channel(proc.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            setup_topic(stub, partitions=2)
            stub.CommitOffsets(
                pb.CommitOffsetsRequest(
                    group="g", generation=-1, offsets=[pb.OffsetCommit(topic="t", partition=1, offset=7, metadata="m")]
                )
            )
    finally:
        # When it is killed with SIGKILL right after
        proc.kill()
    # Then a restarted broker returns the commit
    restarted = BrokerProcess(data_dir).start()
    try:
        with grpc.insecure_channel(restarted.address) as channel:
            offsets = pb_grpc.BrokerStub(channel).FetchOffsets(pb.FetchOffsetsRequest(group="g")).offsets
        assert [(o.topic, o.partition, o.offset, o.metadata) for o in offsets] == [("t", 1, 7, "m")]
    finally:
        restarted.kill()
