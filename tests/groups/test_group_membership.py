"""One consumer group as a pure state machine: joining, hand-over, static membership and heartbeats.

The clock is a plain int (milliseconds); nothing sleeps.
"""

from __future__ import annotations

import pytest

from logsvc.groups import (
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    EMPTY,
    RECONCILING,
    STABLE,
    Group,
    HeartbeatResult,
    JoinResult,
)
from logsvc.groups.group import MAX_FENCED_MEMBERS
from logsvc_client.errors import FailedPrecondition, FencedInstance, InvalidRequest, StaleGeneration, UnknownMember
from tests.groups.members import T, beat, ids, join, tps

# -- joining ------------------------------------------------------------------------------------------


def test_the_first_member_gets_every_partition_in_generation_one() -> None:
    # Given an empty group
    group = Group("g")
    assert group.state == EMPTY
    # When a member joins
    result = join(group, 0, id_factory=ids("a"))
    # Then
    assert result == JoinResult("a", 1, tps(0, 1, 2, 3), DEFAULT_HEARTBEAT_INTERVAL_MS)
    assert group.state == STABLE


def test_a_new_member_id_is_a_uuid4_hex_by_default() -> None:
    # Given / When
    result = join(Group("g"), 0)
    # Then
    assert len(result.member_id) == 32 and int(result.member_id, 16) >= 0


def test_a_partition_moves_only_after_its_previous_owner_released_it() -> None:
    # Given a holds all four partitions (range: a gets 0-1 and b 2-3 once b joins)
    group = Group("g", assignor="range")
    join(group, 0, assignor="range", id_factory=ids("a"))
    # When b joins
    b = join(group, 10, assignor="range", id_factory=ids("b"))
    # Then b gets nothing yet: a still holds 2 and 3
    assert b.generation == 2 and b.assignment == frozenset()
    # When a heartbeats still holding everything (it is finishing a batch)
    a = group.heartbeat("a", 1, tps(0, 1, 2, 3), 20)
    # Then a is told to keep 0-1 only, and a rebalance is under way
    assert a == HeartbeatResult(2, tps(0, 1), True, DEFAULT_HEARTBEAT_INTERVAL_MS)
    assert beat(group, "b", 30).assignment == frozenset()
    assert group.state == RECONCILING
    # When a releases 2-3
    assert group.heartbeat("a", 2, tps(0, 1), 40).assignment == tps(0, 1)
    # Then b gets them on its next heartbeat, and the group is stable
    b_beat = beat(group, "b", 50)
    assert b_beat.assignment == tps(2, 3) and not b_beat.rebalance_in_progress
    assert group.state == STABLE


def test_rejoining_with_the_same_subscription_keeps_the_generation_and_assignment() -> None:
    # Given
    group = Group("g")
    join(group, 0, id_factory=ids("a"))
    # When a re-joins with its member id
    result = join(group, 100, "a")
    # Then
    assert result.member_id == "a" and result.generation == 1 and result.assignment == tps(0, 1, 2, 3)


def test_rejoining_with_a_new_subscription_starts_a_new_generation() -> None:
    # Given a member on "orders"
    group = Group("g")
    join(group, 0, id_factory=ids("a"), partitions_by_topic={T: 4, "refunds": 2})
    # When it re-joins subscribed to "refunds" as well
    result = join(group, 100, "a", topics={T, "refunds"}, partitions_by_topic={T: 4, "refunds": 2})
    # Then
    assert result.generation == 2
    assert result.assignment == tps(0, 1, 2, 3) | tps(0, 1, topic="refunds")


def test_joining_with_an_unknown_member_id_is_refused() -> None:
    # Given / When / Then
    with pytest.raises(UnknownMember, match="member ghost is not in group g"):
        join(Group("g"), 0, "ghost")


@pytest.mark.parametrize("timeout_ms", [999, 300_001])
def test_a_session_timeout_outside_the_allowed_range_is_an_invalid_request_naming_it(timeout_ms: int) -> None:
    # Given / When / Then
    with pytest.raises(InvalidRequest, match=f"session_timeout_ms={timeout_ms} is outside"):
        join(Group("g"), 0, session_timeout_ms=timeout_ms)


def test_an_unknown_assignor_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="unknown assignor 'roundrobin'"):
        join(Group("g"), 0, assignor="roundrobin")


def test_joining_with_no_topic_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest, match="subscribes to no topic"):
        join(Group("g"), 0, topics=set())


def test_a_member_asking_for_another_assignor_than_the_groups_is_refused_while_the_group_has_members() -> None:
    # Given a group using range
    group = Group("g")
    join(group, 0, assignor="range", id_factory=ids("a"))
    # When / Then
    with pytest.raises(FailedPrecondition, match="uses assignor 'range'; a member asked for 'sticky'"):
        join(group, 1, assignor="sticky")
    assert list(group.members) == ["a"] and group.generation == 1


# -- static membership --------------------------------------------------------------------------------


def test_a_static_member_restarting_within_its_session_timeout_gets_its_partitions_back_without_a_rebalance() -> None:
    # Given static members "conn-0" (id "m1") and "conn-1" (id "m2") with range, stable
    group = Group("g", assignor="range")
    factory = ids("m1", "m2", "a0")  # the restart gets an id that sorts first
    join(group, 0, assignor="range", instance_id="conn-0", id_factory=factory)
    join(group, 0, assignor="range", instance_id="conn-1", id_factory=factory)
    beat(group, "m1", 10)
    beat(group, "m2", 10)
    assert group.state == STABLE
    before = (group.generation, group.assignment_of("m1"), group.assignment_of("m2"))
    # When conn-1 restarts (its old process died) and joins again 5 s later
    result = join(group, 5_000, assignor="range", instance_id="conn-1", id_factory=factory)
    # Then it replaces m2 with a new id, the same partitions and the same generation
    assert result.member_id == "a0"
    assert (result.generation, result.assignment) == (before[0], before[2])
    assert "m2" not in group.members
    # And the other member sees no change and no rebalance
    other = beat(group, "m1", 5_010)
    assert (other.generation, other.assignment, other.rebalance_in_progress) == (before[0], before[1], False)
    # And the fenced old member id can no longer commit
    with pytest.raises(FencedInstance, match=r"member m2 of group g was fenced: .* instance id 'conn-1'"):
        group.check_commit("m2", before[0], before[2], 5_020)


def test_a_replaced_static_member_is_fenced_and_cannot_take_its_slot_back() -> None:
    # Given static member conn-1 ("m1") replaced by a second process with the same instance id ("m2")
    group = Group("g")
    factory = ids("m1", "m2", "m3")
    join(group, 0, instance_id="conn-1", id_factory=factory)
    join(group, 10, instance_id="conn-1", id_factory=factory)
    generation, owned = group.generation, group.assignment_of("m2")
    # When the first process heartbeats, commits, leaves or joins again under its old member id
    attempts = [
        lambda: group.heartbeat("m1", generation, owned, 20),
        lambda: group.check_commit("m1", generation, owned, 20),
        lambda: group.leave("m1", 20),
        lambda: join(group, 20, member_id="m1", instance_id="conn-1", id_factory=factory),
    ]
    # Then each is refused as fenced (never as an unknown member, which would invite a new join)
    for attempt in attempts:
        with pytest.raises(FencedInstance) as raised:
            attempt()
        assert raised.value.details == {"instance_id": "conn-1"}
    # And the newer member keeps its id, its partitions and its generation
    assert list(group.members) == ["m2"]
    assert (group.generation, group.assignment_of("m2")) == (generation, owned) == (generation, tps(0, 1, 2, 3))
    # And a restart of the newer process (a join without a member id) still replaces it as usual
    assert join(group, 30, instance_id="conn-1", id_factory=factory).member_id == "m3"


def test_a_group_remembers_a_bounded_number_of_fenced_members() -> None:
    # Given a static member restarted many times more than the group remembers
    group = Group("g")
    for n in range(MAX_FENCED_MEMBERS + 5):
        join(group, n, instance_id="conn-1", id_factory=ids(f"m{n}"))
    # Then only the newest fenced ids are kept; the oldest are merely unknown now
    assert len(group.fenced) == MAX_FENCED_MEMBERS
    with pytest.raises(UnknownMember):
        beat(group, "m0", MAX_FENCED_MEMBERS + 10, owned=())
    with pytest.raises(FencedInstance):
        beat(group, f"m{MAX_FENCED_MEMBERS + 3}", MAX_FENCED_MEMBERS + 10, owned=())


def test_a_static_member_that_stays_away_past_its_session_timeout_is_expired_normally() -> None:
    # Given static member conn-1 last heard from at t=0
    group = Group("g")
    factory = ids("m1", "m2", "m3")
    join(group, 0, instance_id="conn-0", id_factory=factory)
    join(group, 0, instance_id="conn-1", id_factory=factory)
    # When conn-0 keeps heartbeating past conn-1's session timeout
    beat(group, "m1", DEFAULT_SESSION_TIMEOUT_MS // 2)
    result = beat(group, "m1", DEFAULT_SESSION_TIMEOUT_MS + 1)
    # Then conn-1 was expired and its partitions moved, in a new generation
    assert list(group.members) == ["m1"] and result.assignment == tps(0, 1, 2, 3) and group.generation == 3
    # And when it comes back it joins as a new member, starting another generation
    back = join(group, DEFAULT_SESSION_TIMEOUT_MS + 2, instance_id="conn-1", id_factory=factory)
    assert back.member_id == "m3" and back.generation == 4


# -- heartbeats ---------------------------------------------------------------------------------------


def test_a_heartbeat_from_an_unknown_member_is_refused_naming_member_and_group() -> None:
    with pytest.raises(UnknownMember, match="member ghost is not in group g"):
        Group("g").heartbeat("ghost", 0, (), 0)


def test_a_heartbeat_with_a_generation_the_group_never_had_is_refused_and_changes_nothing() -> None:
    # Given
    group = Group("g")
    join(group, 0, id_factory=ids("a"))
    # When / Then
    with pytest.raises(StaleGeneration, match="carries generation 7; the member is at generation 1 and the group at 1"):
        group.heartbeat("a", 7, (), 100)
    assert group.members["a"].last_heartbeat_ms == 0 and group.members["a"].owned == tps(0, 1, 2, 3)


def test_a_heartbeat_cannot_claim_partitions_the_member_was_not_given() -> None:
    # Given a and b with two partitions each
    group = Group("g")
    factory = ids("a", "b")
    join(group, 0, id_factory=factory)
    join(group, 0, id_factory=factory)
    beat(group, "a", 0)
    # When b claims to own everything
    group.heartbeat("b", group.generation, tps(0, 1, 2, 3), 10)
    # Then it owns only its own
    assert group.members["b"].owned == tps(2, 3)
