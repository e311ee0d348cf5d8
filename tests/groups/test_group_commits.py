"""One consumer group as a pure state machine: commit fencing by generation, membership and ownership.

The clock is a plain int (milliseconds); nothing sleeps.
"""

from __future__ import annotations

import pytest

from logsvc.groups import DEFAULT_SESSION_TIMEOUT_MS, Group
from logsvc_client.errors import FailedPrecondition, GroupNotEmpty, StaleGeneration, UnknownMember
from tests.groups.members import beat, ids, join, tps


def test_a_commit_from_a_stale_generation_is_refused_naming_both_generations_and_changes_nothing() -> None:
    # Given a acknowledged generation 2
    group = Group("g")
    factory = ids("a", "b")
    join(group, 0, id_factory=factory)
    join(group, 0, id_factory=factory)
    beat(group, "a", 10)
    snapshot = repr(group)
    # When a zombie thread of a commits with generation 1
    with pytest.raises(StaleGeneration) as err:
        group.check_commit("a", 1, tps(0), 20)
    # Then it is FAILED_PRECONDITION, names both generations, and the group is unchanged
    assert err.value.code == "stale_generation" and err.value.status.name == "FAILED_PRECONDITION"
    assert "generation 1" in str(err.value) and "generation 2" in str(err.value)
    assert repr(group) == snapshot


def test_a_commit_from_a_generation_newer_than_the_groups_is_refused() -> None:
    group = Group("g")
    join(group, 0, id_factory=ids("a"))
    with pytest.raises(StaleGeneration):
        group.check_commit("a", 2, tps(0), 10)


def test_a_commit_from_an_unknown_member_is_refused() -> None:
    # Given
    group = Group("g")
    join(group, 0, id_factory=ids("a"))
    # When / Then
    with pytest.raises(UnknownMember) as err:
        group.check_commit("ghost", 1, tps(0), 10)
    assert err.value.code == "unknown_member" and err.value.status.name == "FAILED_PRECONDITION"


def test_a_commit_from_a_member_whose_session_expired_is_refused() -> None:
    group = Group("g")
    join(group, 0, id_factory=ids("a"))
    with pytest.raises(UnknownMember):
        group.check_commit("a", 1, tps(0), DEFAULT_SESSION_TIMEOUT_MS + 1)


def test_a_commit_for_a_partition_the_member_does_not_own_is_refused() -> None:
    # Given a owns 0-1, b owns 2-3
    group = Group("g")
    factory = ids("a", "b")
    join(group, 0, id_factory=factory)
    join(group, 0, id_factory=factory)
    beat(group, "a", 0)
    # When / Then
    with pytest.raises(FailedPrecondition, match="member b of group g does not own orders-0, orders-1"):
        group.check_commit("b", 2, tps(0, 1, 2), 10)
    group.check_commit("b", 2, tps(2, 3), 10)


def test_a_member_may_commit_a_partition_it_is_still_releasing_with_its_previous_generation() -> None:
    # Given a holds everything at generation 1 and b has just joined (generation 2)
    group = Group("g")
    factory = ids("a", "b")
    join(group, 0, id_factory=factory)
    join(group, 10, id_factory=factory)
    # When a commits its final offsets for the partitions it is about to release
    group.check_commit("a", 1, tps(0, 1, 2, 3), 20)
    # Then it was allowed; and once a released them, committing them is refused
    group.heartbeat("a", 2, tps(0, 1), 30)
    with pytest.raises(FailedPrecondition):
        group.check_commit("a", 2, tps(2), 40)


def test_commits_without_membership_are_allowed_only_while_the_group_has_no_live_members() -> None:
    # Given an empty group
    group = Group("g")
    group.require_empty(0, "commit without a member id")
    # When a member joins
    join(group, 0, id_factory=ids("a"))
    # Then
    with pytest.raises(GroupNotEmpty, match="group g has 1 live member"):
        group.require_empty(10, "commit without a member id")
    # And once its session expired, the group is empty again
    group.require_empty(DEFAULT_SESSION_TIMEOUT_MS + 1, "commit without a member id")
