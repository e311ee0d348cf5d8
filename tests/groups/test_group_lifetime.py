"""Groups have a lifetime and bounds: idle groups are forgotten after the offsets retention, a group
holds at most ``max_members_per_group`` members, ids have a length limit, and each group has its own
lock. Pure coordinator tests with a plain-int clock (no sleep)."""

from __future__ import annotations

import itertools
import threading

import grpc
import pytest

from logsvc.groups import DEFAULT_SESSION_TIMEOUT_MS, Coordinator
from logsvc.groups.member import MAX_ID_BYTES
from logsvc_client.errors import GroupMaxSizeReached, GroupNotFound, InvalidRequest, ResourceExhausted, for_code

RETENTION_MS = 7 * 24 * 3_600_000


@pytest.fixture
def coordinator() -> Coordinator:
    counter = itertools.count(1)
    return Coordinator({"orders": 4}.get, id_factory=lambda: f"m{next(counter)}", max_members_per_group=3)


def listed(coordinator: Coordinator, now_ms: int) -> list[str]:
    return [g.group_id for g in coordinator.list_groups(now_ms)]


def test_an_empty_group_is_forgotten_once_idle_for_longer_than_the_retention(coordinator: Coordinator) -> None:
    # Given a group whose only member left at t=1000
    a = coordinator.join("g", topics={"orders"}, now_ms=0)
    coordinator.leave("g", a.member_id, 1_000)
    # When the retention has not fully passed since, Then the group stays
    assert coordinator.expire_groups(1_000 + RETENTION_MS, RETENTION_MS) == []
    assert listed(coordinator, 1_000 + RETENTION_MS) == ["g"]
    # When it has, Then the group is forgotten: not listed, not described
    assert coordinator.expire_groups(1_001 + RETENTION_MS, RETENTION_MS) == ["g"]
    assert listed(coordinator, 1_001 + RETENTION_MS) == []
    with pytest.raises(GroupNotFound):
        coordinator.describe("g", 1_001 + RETENTION_MS)
    # And a later join starts it afresh
    assert coordinator.join("g", topics={"orders"}, now_ms=2 * RETENTION_MS).generation == 1


def test_a_group_whose_last_member_died_is_idle_from_that_members_last_heartbeat(coordinator: Coordinator) -> None:
    # Given a member that heartbeated last at t=5000 and then vanished; nobody touched the group since
    a = coordinator.join("g", topics={"orders"}, now_ms=0)
    coordinator.heartbeat("g", a.member_id, a.generation, a.assignment, 5_000)
    # When one pass runs past its session timeout and the retention, counted from that heartbeat
    # Then the group goes in that same pass
    assert coordinator.expire_groups(5_000 + RETENTION_MS, RETENTION_MS) == []
    assert coordinator.expire_groups(5_001 + RETENTION_MS, RETENTION_MS) == ["g"]


def test_a_group_with_live_members_never_expires(coordinator: Coordinator) -> None:
    # Given a member that keeps heartbeating for twice the retention
    a = coordinator.join("g", topics={"orders"}, now_ms=0)
    generation, assignment = a.generation, a.assignment
    for now in range(0, 2 * RETENTION_MS, DEFAULT_SESSION_TIMEOUT_MS):
        beat = coordinator.heartbeat("g", a.member_id, generation, assignment, now)
        generation, assignment = beat.generation, beat.assignment
        # When the expiry runs, Then the group stays
        if now % 3_600_000 == 0:
            assert coordinator.expire_groups(now, RETENTION_MS) == []
    assert listed(coordinator, 2 * RETENTION_MS - 1) == ["g"]


def test_a_join_beyond_max_members_is_refused_and_changes_nothing(coordinator: Coordinator) -> None:
    # Given a group at its maximum of 3 members, one of them static
    members = [coordinator.join("g", topics={"orders"}, now_ms=0, instance_id=i) for i in ("s", None, None)]
    before = coordinator.describe("g", 0)
    # When a fourth member joins, Then it is refused naming the group and the limit, and nothing changed
    with pytest.raises(GroupMaxSizeReached, match=r"group g already has 3 members.*max_members_per_group=3"):
        coordinator.join("g", topics={"orders"}, now_ms=1)
    assert coordinator.describe("g", 1) == before
    # And a member re-joining, or a restarted static member replacing itself, is not a new member
    coordinator.join("g", topics={"orders"}, now_ms=2, member_id=members[1].member_id)
    coordinator.join("g", topics={"orders"}, now_ms=3, instance_id="s")
    # And once a member leaves, a new one fits
    coordinator.leave("g", members[2].member_id, 4)
    coordinator.join("g", topics={"orders"}, now_ms=5)
    assert len(coordinator.describe("g", 5).members) == 3


def test_group_max_size_reached_is_resource_exhausted_with_a_stable_code() -> None:
    assert issubclass(GroupMaxSizeReached, ResourceExhausted)
    assert GroupMaxSizeReached.status == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert for_code("group_max_size_reached") is GroupMaxSizeReached
    assert not GroupMaxSizeReached.retriable


@pytest.mark.parametrize("field", ["client_id", "instance_id"])
def test_a_client_or_instance_id_over_the_limit_is_refused_naming_the_field(
    coordinator: Coordinator, field: str
) -> None:
    # Given an id one byte over the limit (in UTF-8 bytes, not characters), and one at it
    too_long = "é" * (MAX_ID_BYTES // 2) + "xx"
    at_limit = "x" * MAX_ID_BYTES
    # When / Then: refused, naming the field and its size, not echoing it whole
    with pytest.raises(InvalidRequest, match=rf"^{field} is {MAX_ID_BYTES + 1} bytes .*the limit is {MAX_ID_BYTES}$"):
        coordinator.join("g", topics={"orders"}, now_ms=0, **{field: too_long})
    assert listed(coordinator, 0) == []
    coordinator.join("g", topics={"orders"}, now_ms=0, **{field: at_limit})


def test_a_join_in_one_group_does_not_wait_for_another_groups_lock() -> None:
    # Given a join in group "slow" that is stuck inside its group's lock (looking up a topic)
    inside, release = threading.Event(), threading.Event()

    def partitions_of(topic: str) -> int:
        if topic == "slow":
            inside.set()
            release.wait(30)
        return 2

    coordinator = Coordinator(partitions_of)
    stuck = threading.Thread(target=coordinator.join, args=("slow",), kwargs={"topics": {"slow"}, "now_ms": 0})
    stuck.start()
    try:
        assert inside.wait(30)
        # When another group is joined, heartbeated, listed and described meanwhile
        b = coordinator.join("fast", topics={"orders"}, now_ms=0)
        coordinator.heartbeat("fast", b.member_id, b.generation, b.assignment, 1)
        assert coordinator.describe("fast", 1).members[0].member_id == b.member_id
        # Then all of it completed while the first join still holds its group's lock
        assert stuck.is_alive() and not release.is_set()
    finally:
        release.set()
        stuck.join(30)
    assert len(coordinator.describe("slow", 2).members) == 1


def test_a_join_waiting_on_a_group_that_is_removed_meanwhile_joins_a_fresh_live_group() -> None:
    # Given a first join of "g" that holds g's lock (stuck looking up a topic) and will fail
    inside, release = threading.Event(), threading.Event()

    def partitions_of(topic: str) -> int:
        if topic == "slow":
            inside.set()
            release.wait(30)
        return 1

    coordinator = Coordinator(partitions_of)
    errors: list[Exception] = []

    def failing_join() -> None:
        try:
            coordinator.join("g", topics={"slow"}, now_ms=0, assignor="no-such-assignor")
        except InvalidRequest as e:
            errors.append(e)

    failing = threading.Thread(target=failing_join)
    failing.start()
    assert inside.wait(30)
    # When a second join of "g" starts (it finds the group the first created and waits for its
    # lock, unless it comes late), and then the first join fails, removing the group it created
    joined = []
    second = threading.Thread(target=lambda: joined.append(coordinator.join("g", topics={"orders"}, now_ms=1)))
    second.start()
    release.set()
    failing.join(30)
    second.join(30)
    # Then the first join failed, and the second one is in the coordinator's live group
    assert len(errors) == 1 and len(joined) == 1
    assert [m.member_id for m in coordinator.describe("g", 2).members] == [joined[0].member_id]
