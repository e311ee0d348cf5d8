"""One consumer group as a pure state machine: membership, hand-over, expiry and commit fencing.

The clock is a plain int (milliseconds); nothing sleeps.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

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
from logsvc_client.errors import (
    FailedPrecondition,
    GroupNotEmpty,
    InvalidRequest,
    StaleGeneration,
    UnknownMember,
)
from logsvc_client.records import TopicPartition as TP

T = "orders"


def tps(*partitions: int, topic: str = T) -> frozenset[TP]:
    return frozenset(TP(topic, p) for p in partitions)


def ids(*names: str) -> Callable[[], str]:
    """A member-id factory handing out ``names`` in order."""
    it = iter(names)
    return lambda: next(it)


def join(group: Group, now_ms: int, member_id: str | None = None, **kwargs: object) -> JoinResult:
    kwargs.setdefault("topics", {T})
    kwargs.setdefault("partitions_by_topic", {T: 4})
    return group.join(now_ms=now_ms, member_id=member_id, **kwargs)  # type: ignore[arg-type]


def beat(group: Group, member_id: str, now_ms: int, owned: Iterable[TP] | None = None) -> HeartbeatResult:
    """A well-behaved member's heartbeat: the group's generation, and it owns exactly what it was given
    (it releases revoked partitions at once)."""
    if owned is None:
        owned = group.assignment_of(member_id)
    return group.heartbeat(member_id, group.generation, owned, now_ms)


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


# -- liveness -----------------------------------------------------------------------------------------


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
    with pytest.raises(UnknownMember):
        group.check_commit("m2", before[0], before[2], 5_020)


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


# -- topics -------------------------------------------------------------------------------------------


def test_a_subscription_to_a_missing_topic_is_unassigned_until_the_topic_is_created() -> None:
    # Given a member subscribed to a topic that does not exist yet
    group = Group("g")
    result = join(group, 0, id_factory=ids("a"), topics={"later"}, partitions_by_topic={})
    assert result.assignment == frozenset() and group.state == STABLE
    # When it is created
    group.update_topics({"later": 2}, 100)
    # Then a new generation assigns it
    assert group.generation == 2
    assert beat(group, "a", 200).assignment == tps(0, 1, topic="later")


def test_a_topic_update_that_changes_nothing_keeps_the_generation() -> None:
    group = Group("g")
    join(group, 0, id_factory=ids("a"))
    group.update_topics({T: 4, "unrelated": 9}, 100)
    assert group.generation == 1


def test_partitions_of_a_deleted_topic_must_be_released() -> None:
    # Given a holds orders-0..3
    group = Group("g")
    join(group, 0, id_factory=ids("a"))
    # When the topic is deleted
    group.update_topics({}, 100)
    # Then a is asked to release everything, and the group is stable once it did
    assert group.heartbeat("a", 2, tps(0, 1, 2, 3), 200) == HeartbeatResult(2, frozenset(), True, 250)
    assert group.heartbeat("a", 2, frozenset(), 300).rebalance_in_progress is False


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


# -- commits ------------------------------------------------------------------------------------------


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


# -- no two owners, ever ------------------------------------------------------------------------------


@dataclass
class Client:
    """A consumer process as the group sees it from outside: what it actually consumes."""

    member_id: str
    instance_id: str | None
    generation: int
    assigned: frozenset[TP]
    last_ok_ms: int
    holding: set[TP] = field(default_factory=set)
    revoked_seen_ms: dict[TP, int] = field(default_factory=dict)

    def received(self, generation: int, assignment: frozenset[TP], now_ms: int) -> None:
        self.generation, self.assigned, self.last_ok_ms = generation, assignment, now_ms
        self.holding |= assignment
        self.revoked_seen_ms = {tp: self.revoked_seen_ms.get(tp, now_ms) for tp in self.holding - assignment}

    def release_revoked(self) -> None:
        self.holding &= self.assigned
        self.revoked_seen_ms.clear()


SESSION_MS = 3_000
REBALANCE_MS = 4_000


def simulate(seed: int, assignor: str, steps: int = 250) -> None:
    rng = random.Random(seed)
    counter = itertools.count()
    group = Group("g", assignor=assignor)
    partitions = {"t0": 6, "t1": 3}
    clients: dict[str, Client] = {}
    now = 0

    def new_id() -> str:
        return f"m{next(counter):03d}"

    def join_client(instance_id: str | None) -> None:
        topics = rng.choice([{"t0"}, {"t0", "t1"}, {"t1", "t2"}])
        r = group.join(
            topics=topics,
            partitions_by_topic=partitions,
            now_ms=now,
            instance_id=instance_id,
            session_timeout_ms=SESSION_MS,
            rebalance_timeout_ms=REBALANCE_MS,
            assignor=assignor,
            id_factory=new_id,
        )
        client = Client(r.member_id, instance_id, r.generation, frozenset(), now)
        client.received(r.generation, r.assignment, now)
        clients[r.member_id] = client

    def check() -> None:
        # No partition is consumed by two live processes, nor held by two members on the broker
        seen: dict[TP, str] = {}
        for client in clients.values():
            for tp in client.holding:
                assert tp not in seen, f"step at {now} ms: {tp} consumed by {seen[tp]} and {client.member_id}"
                seen[tp] = client.member_id
            # and what a process consumes is what the broker believes it may hold
            assert client.holding <= group.members[client.member_id].owned
        held: dict[TP, str] = {}
        for member in group.members.values():
            for tp in member.owned:
                assert tp not in held, f"{tp} owned by {held[tp]} and {member.member_id}"
                held[tp] = member.member_id

    def client_side_timeouts() -> None:
        # As in Kafka, a client gives up all its partitions (and will join again) when its session
        # may have expired or a revoked partition outlived its rebalance timeout.
        for member_id, client in list(clients.items()):
            if now - client.last_ok_ms >= SESSION_MS or any(
                now - seen_ms >= REBALANCE_MS for seen_ms in client.revoked_seen_ms.values()
            ):
                del clients[member_id]

    for _ in range(steps):
        action = rng.choices(
            ["join", "restart", "heartbeat", "slow", "leave", "crash", "tick", "topics"],
            weights=[3, 1, 12, 3, 1, 1, 4, 1],
        )[0]
        live = sorted(clients)
        if action == "join" or not live:
            static = rng.random() < 0.3 and f"conn-{rng.randrange(4)}"
            if static and any(c.instance_id == static for c in clients.values()):
                static = False
            join_client(static or None)
        elif action == "restart":
            statics = [m for m in live if clients[m].instance_id]
            if statics:
                old = clients.pop(rng.choice(statics))  # the process dies; it consumes nothing any more
                join_client(old.instance_id)
        elif action in ("heartbeat", "slow"):
            client = clients[rng.choice(live)]
            if action == "heartbeat":
                client.release_revoked()
            r = group.heartbeat(client.member_id, client.generation, client.holding, now)
            client.received(r.generation, r.assignment, now)
        elif action == "leave":
            client = clients.pop(rng.choice(live))
            group.leave(client.member_id, now)
        elif action == "crash":
            del clients[rng.choice(live)]  # stops consuming at once; the broker notices on expiry
        elif action == "tick":
            now += rng.randint(1, SESSION_MS)
            client_side_timeouts()
            if rng.random() < 0.5:
                group.expire(now)
        elif action == "topics":
            partitions = {t: n for t, n in {"t0": rng.randint(4, 8), "t1": 3, "t2": 2}.items() if rng.random() < 0.8}
            group.update_topics(partitions, now)
        check()

    # Finally, with every live client heartbeating well, the group settles with everything owned
    # (crashed members expire meanwhile)
    for _ in range(SESSION_MS // 100 + 5):
        now += 100
        client_side_timeouts()
        for client in clients.values():
            client.release_revoked()
            r = group.heartbeat(client.member_id, client.generation, client.holding, now)
            client.received(r.generation, r.assignment, now)
        check()
    if not clients:
        return
    assert group.state == STABLE
    subscribed = {t for m in group.members.values() for t in m.topics}
    expected = {TP(t, p) for t in subscribed for p in range(partitions.get(t, 0))}
    assert set().union(*(c.holding for c in clients.values())) == expected


@pytest.mark.parametrize("assignor", ["range", "sticky"])
@pytest.mark.parametrize("seed", range(25))
def test_no_partition_ever_has_two_owners_over_random_joins_leaves_expiries_and_heartbeats(
    seed: int, assignor: str
) -> None:
    # Given a group and a seeded random sequence of joins, static restarts, heartbeats (prompt and
    # slow to release), leaves, crashes, clock jumps, expiries and topic changes
    # When each step is applied
    # Then (checked after every step) no partition is consumed by two processes or owned by two
    # members, and at the end the group settles with every subscribed partition owned
    simulate(seed, assignor)
