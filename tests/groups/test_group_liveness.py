"""One consumer group as a pure state machine: session expiry, rebalance timeouts and leaving.

The clock is a plain int (milliseconds); nothing sleeps.
"""

from __future__ import annotations

import pytest

from logsvc.groups import DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_SESSION_TIMEOUT_MS, EMPTY, STABLE, Group
from logsvc_client.errors import UnknownMember
from tests.groups.members import T, beat, ids, join, tps


def test_a_member_that_misses_its_session_timeout_is_removed_and_its_partitions_go_to_the_survivor() -> None:
    # Given a and b sharing four partitions; b's last heartbeat is at t=0
    group = Group("g")
    factory = ids("a", "b")
    join(group, 0, id_factory=factory)
    join(group, 0, id_factory=factory)
    beat(group, "a", 0)
    assert group.assignment_of("a") == tps(0, 1) and group.assignment_of("b") == tps(2, 3)
    # When a keeps heartbeating every interval and b stays silent
    now = 0
    while len(beat(group, "a", now).assignment) < 4:
        assert "b" in group.members
        now += DEFAULT_HEARTBEAT_INTERVAL_MS
    # Then b is gone, and a owned b's partitions within session timeout + one heartbeat interval
    assert list(group.members) == ["a"]
    assert DEFAULT_SESSION_TIMEOUT_MS < now <= DEFAULT_SESSION_TIMEOUT_MS + DEFAULT_HEARTBEAT_INTERVAL_MS
    # And once a acknowledged the new generation, the group is stable
    assert not beat(group, "a", now + DEFAULT_HEARTBEAT_INTERVAL_MS).rebalance_in_progress


def test_expire_removes_members_only_after_their_session_timeout_and_starts_a_new_generation() -> None:
    # Given
    group = Group("g")
    join(group, 0, id_factory=ids("a"), session_timeout_ms=5_000)
    # When / Then
    assert group.expire(5_000) == [] and group.generation == 1
    assert group.expire(5_001) == ["a"]
    assert group.generation == 2 and group.state == EMPTY


def test_a_member_that_keeps_a_revoked_partition_past_its_rebalance_timeout_is_removed() -> None:
    # Given a holds everything, b joins, a is told to release 2-3 at t=0 but never does
    group = Group("g", assignor="range")
    factory = ids("a", "b")
    join(group, 0, assignor="range", rebalance_timeout_ms=5_000, id_factory=factory)
    join(group, 0, assignor="range", id_factory=factory)
    for now in range(0, 5_001, 250):
        group.heartbeat("a", group.generation, tps(0, 1, 2, 3), now)
        beat(group, "b", now)
    assert "a" in group.members and group.assignment_of("b") == frozenset()
    # When its rebalance timeout has passed
    result = beat(group, "b", 5_250)
    # Then a is removed and b gets everything
    assert "a" not in group.members and result.assignment == tps(0, 1, 2, 3)


def test_leaving_starts_a_new_generation_and_releases_the_partitions_at_once() -> None:
    # Given
    group = Group("g")
    factory = ids("a", "b")
    join(group, 0, id_factory=factory)
    join(group, 0, id_factory=factory)
    beat(group, "a", 0)
    # When b leaves
    group.leave("b", 10)
    # Then
    assert group.generation == 3
    assert beat(group, "a", 20).assignment == tps(0, 1, 2, 3)
    with pytest.raises(UnknownMember):
        group.leave("b", 30)


@pytest.mark.parametrize("assignor", ["range", "sticky"])
def test_a_rebalance_after_a_member_leaves_completes_in_under_a_second_with_the_default_settings(
    assignor: str,
) -> None:
    # Given three well-behaved members heartbeating every default interval on 12 partitions
    group = Group("g", assignor=assignor)
    for name in ("a", "b", "c"):
        join(group, 0, assignor=assignor, partitions_by_topic={T: 12}, id_factory=ids(name))
    now = 0
    while group.state != STABLE:
        now += DEFAULT_HEARTBEAT_INTERVAL_MS
        for member in list(group.members):
            beat(group, member, now)
    # When a leaves
    left_at = now
    group.leave("a", now)
    # Then b and c own all 12 partitions again in under a second
    while group.state != STABLE:
        now += DEFAULT_HEARTBEAT_INTERVAL_MS
        for member in group.members:
            beat(group, member, now)
    assert now - left_at < 1_000
    assert group.members["b"].owned | group.members["c"].owned == tps(*range(12))
