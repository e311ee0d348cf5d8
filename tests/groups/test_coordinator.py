"""The coordinator: every group by id, topics looked up through an injected function, a plain-int clock."""

from __future__ import annotations

import itertools
import threading

import grpc
import pytest

from logsvc.groups import (
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    EMPTY,
    RECONCILING,
    STABLE,
    Coordinator,
    GroupSummary,
)
from logsvc_client.errors import (
    FailedPrecondition,
    GroupNotEmpty,
    GroupNotFound,
    InvalidRequest,
    NotFound,
    StaleGeneration,
    UnknownMember,
    for_code,
)
from logsvc_client.records import TopicPartition as TP


def tps(topic: str, *partitions: int) -> frozenset[TP]:
    return frozenset(TP(topic, p) for p in partitions)


@pytest.fixture
def topics() -> dict[str, int]:
    """The broker's topics (name -> partition count); tests create and delete them."""
    return {"orders": 4, "refunds": 2}


@pytest.fixture
def coordinator(topics: dict[str, int]) -> Coordinator:
    counter = itertools.count(1)
    return Coordinator(topics.get, id_factory=lambda: f"m{next(counter)}")


def test_joining_creates_the_group_and_describe_shows_state_members_and_assignments(coordinator: Coordinator) -> None:
    # Given / When two members join, and the first heartbeats once
    a = coordinator.join("g", topics={"orders"}, now_ms=0, client_id="connector-a", instance_id="conn-0")
    b = coordinator.join("g", topics={"orders", "refunds"}, now_ms=0)
    coordinator.heartbeat("g", a.member_id, b.generation, a.assignment, 10)
    # Then
    assert (a.member_id, a.generation, a.heartbeat_interval_ms) == ("m1", 1, DEFAULT_HEARTBEAT_INTERVAL_MS)
    description = coordinator.describe("g", 20)
    assert (description.group_id, description.state, description.generation, description.assignor) == (
        "g",
        RECONCILING,
        2,
        "sticky",
    )
    m1, m2 = description.members
    assert (m1.member_id, m1.instance_id, m1.client_id, m1.topics) == ("m1", "conn-0", "connector-a", ("orders",))
    # m2 alone takes refunds, so sticky balances the totals: three partitions each
    assert m1.assignment == (TP("orders", 0), TP("orders", 1), TP("orders", 2))
    assert m2.assignment == (TP("orders", 3), TP("refunds", 0), TP("refunds", 1))
    # and m1 still holds orders-3 (it has not released it yet), so m2 does not have it yet
    assert m1.owned == (*m1.assignment, TP("orders", 3))
    assert m2.owned == (TP("refunds", 0), TP("refunds", 1))
    assert m2.acked_generation == 2 and m2.session_timeout_ms == DEFAULT_SESSION_TIMEOUT_MS


def test_heartbeat_leave_and_commit_on_an_unknown_group_are_unknown_member(coordinator: Coordinator) -> None:
    # Given no group "nope"
    # When / Then
    with pytest.raises(UnknownMember, match="member m1 is not in group nope"):
        coordinator.heartbeat("nope", "m1", 1, (), 0)
    with pytest.raises(UnknownMember):
        coordinator.leave("nope", "m1", 0)
    with pytest.raises(UnknownMember):
        coordinator.check_commit("nope", "m1", 1, tps("orders", 0), 0)


def test_describing_an_unknown_group_is_group_not_found(coordinator: Coordinator) -> None:
    with pytest.raises(GroupNotFound, match="group nope not found"):
        coordinator.describe("nope", 0)


def test_an_empty_group_id_is_an_invalid_request(coordinator: Coordinator) -> None:
    with pytest.raises(InvalidRequest, match="group id"):
        coordinator.join("", topics={"orders"}, now_ms=0)


def test_a_failed_first_join_does_not_create_the_group(coordinator: Coordinator) -> None:
    with pytest.raises(InvalidRequest):
        coordinator.join("g", topics={"orders"}, now_ms=0, session_timeout_ms=10)
    assert coordinator.list_groups(0) == []


def test_list_groups_shows_each_groups_state_generation_and_member_count(coordinator: Coordinator) -> None:
    # Given one active group and one whose only member left
    coordinator.join("active", topics={"orders"}, now_ms=0)
    gone = coordinator.join("idle", topics={"orders"}, now_ms=0)
    coordinator.leave("idle", gone.member_id, 5)
    # When / Then
    assert coordinator.list_groups(10) == [
        GroupSummary("active", STABLE, 1, 1),
        GroupSummary("idle", EMPTY, 2, 0),
    ]


def test_a_stale_commit_is_refused_and_a_current_one_allowed(coordinator: Coordinator) -> None:
    # Given a member that acknowledged generation 2
    a = coordinator.join("g", topics={"orders"}, now_ms=0)
    coordinator.join("g", topics={"orders"}, now_ms=0)
    beat = coordinator.heartbeat("g", a.member_id, 2, a.assignment, 10)
    # When / Then
    with pytest.raises(StaleGeneration):
        coordinator.check_commit("g", a.member_id, 1, beat.assignment, 20)
    coordinator.check_commit("g", a.member_id, 2, beat.assignment, 20)


def test_commits_without_a_member_id_are_allowed_only_for_groups_without_live_members(
    coordinator: Coordinator,
) -> None:
    # Given / When / Then: an unknown group, as a simple consumer (Kafka's assign() + generation -1)
    coordinator.check_commit("simple", None, -1, tps("orders", 0), 0)
    # And a group with a live member refuses it
    a = coordinator.join("g", topics={"orders"}, now_ms=0)
    with pytest.raises(GroupNotEmpty, match="cannot commit without a member id: group g has 1 live member"):
        coordinator.check_commit("g", "", -1, tps("orders", 0), 10)
    # And once the member left, it is allowed
    coordinator.leave("g", a.member_id, 20)
    coordinator.check_commit("g", "", -1, tps("orders", 0), 30)


def test_deleting_a_group_is_refused_while_it_has_live_members(coordinator: Coordinator) -> None:
    # Given
    a = coordinator.join("g", topics={"orders"}, now_ms=0)
    # When / Then
    with pytest.raises(GroupNotEmpty, match="cannot delete the group: group g has 1 live member"):
        coordinator.delete("g", 10)
    assert coordinator.describe("g", 10).members[0].member_id == a.member_id
    # When it left, deletion succeeds and the group is gone
    coordinator.leave("g", a.member_id, 20)
    assert coordinator.delete("g", 30) is True
    with pytest.raises(GroupNotFound):
        coordinator.describe("g", 40)
    # And deleting a group the coordinator never knew reports that (the store may still have offsets)
    assert coordinator.delete("g", 50) is False


def test_an_offset_reset_requires_a_group_without_live_members(coordinator: Coordinator) -> None:
    # Given
    coordinator.require_empty("unknown", 0)
    coordinator.join("g", topics={"orders"}, now_ms=0)
    # When / Then
    with pytest.raises(GroupNotEmpty, match="cannot reset offsets"):
        coordinator.require_empty("g", 10)
    # And after the member's session timeout it is allowed, without anyone calling expire
    coordinator.require_empty("g", DEFAULT_SESSION_TIMEOUT_MS + 1)


def test_expire_removes_dead_members_of_every_group_and_reports_them(coordinator: Coordinator) -> None:
    # Given
    a = coordinator.join("g1", topics={"orders"}, now_ms=0, session_timeout_ms=2_000)
    b = coordinator.join("g2", topics={"orders"}, now_ms=0)
    # When / Then
    assert coordinator.expire(2_000) == {}
    assert coordinator.expire(2_001) == {"g1": [a.member_id]}
    assert coordinator.expire(DEFAULT_SESSION_TIMEOUT_MS + 1) == {"g2": [b.member_id]}


def test_a_topic_created_after_the_join_is_assigned_once_topics_changed_is_called(
    coordinator: Coordinator, topics: dict[str, int]
) -> None:
    # Given a member subscribed to a topic that does not exist yet
    a = coordinator.join("g", topics={"later"}, now_ms=0)
    assert a.assignment == frozenset()
    # When the topic is created and the coordinator told
    topics["later"] = 3
    coordinator.topics_changed(10)
    # Then the member gets it in a new generation
    beat = coordinator.heartbeat("g", a.member_id, a.generation, (), 20)
    assert (beat.generation, beat.assignment) == (2, tps("later", 0, 1, 2))


def test_errors_map_to_failed_precondition_and_not_found_with_stable_codes() -> None:
    # Given / When / Then: the wire codes round-trip to the same classes
    for cls, status in [
        (UnknownMember, grpc.StatusCode.FAILED_PRECONDITION),
        (StaleGeneration, grpc.StatusCode.FAILED_PRECONDITION),
        (GroupNotEmpty, grpc.StatusCode.FAILED_PRECONDITION),
        (GroupNotFound, grpc.StatusCode.NOT_FOUND),
    ]:
        assert cls.status == status and for_code(cls.code) is cls
    assert issubclass(UnknownMember, FailedPrecondition) and issubclass(GroupNotFound, NotFound)


def test_concurrent_joins_from_many_threads_get_distinct_ids_and_disjoint_partitions(
    coordinator: Coordinator,
) -> None:
    # Given eight threads joining one group at once
    results = []
    barrier = threading.Barrier(8)

    def join() -> None:
        barrier.wait()
        results.append(coordinator.join("g", topics={"orders", "refunds"}, now_ms=0))

    threads = [threading.Thread(target=join) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # When / Then
    assert len({r.member_id for r in results}) == 8
    handed: list[TP] = [tp for r in results for tp in r.assignment]
    assert len(handed) == len(set(handed))
    assert coordinator.describe("g", 1).generation == 8
