"""The range and sticky assignors: pure functions, checked against Kafka's examples and properties."""

from __future__ import annotations

import random
from collections.abc import Mapping, Set

import pytest

from logsvc.groups.assignors import ASSIGNORS, range_assign, sticky_assign
from logsvc_client.records import TopicPartition as TP

Assignment = Mapping[str, frozenset[TP]]


def tps(topic: str, *partitions: int) -> frozenset[TP]:
    return frozenset(TP(topic, p) for p in partitions)


def assert_complete_and_exclusive(
    result: Assignment, members: Mapping[str, Set[str]], partitions: Mapping[str, int]
) -> None:
    """Every partition of a subscribed, existing topic has exactly one owner, who subscribes to it."""
    assert set(result) == set(members)
    owners: dict[TP, str] = {}
    for member, owned in result.items():
        for tp in owned:
            assert tp not in owners, f"{tp} assigned to {owners[tp]} and {member}"
            assert tp.topic in members[member]
            owners[tp] = member
    subscribed = {t for topics in members.values() for t in topics}
    expected = {TP(t, p) for t in subscribed for p in range(partitions.get(t, 0))}
    assert set(owners) == expected


def assert_balanced(result: Assignment, members: Mapping[str, Set[str]]) -> None:
    """Members with the same subscription hold counts that differ by at most one."""
    by_subscription: dict[frozenset[str], list[int]] = {}
    for member, topics in members.items():
        by_subscription.setdefault(frozenset(topics), []).append(len(result[member]))
    for counts in by_subscription.values():
        assert max(counts) - min(counts) <= 1, counts


def moved(before: Assignment, after: Assignment) -> int:
    """How many partitions changed owner (partitions new to the assignment do not count)."""
    old_owner = {tp: m for m, owned in before.items() for tp in owned}
    return sum(1 for m, owned in after.items() for tp in owned if tp in old_owner and old_owner[tp] != m)


# -- range --------------------------------------------------------------------------------------------


def test_range_assignment_matches_kafkas_example_of_two_members_and_two_topics_of_three_partitions() -> None:
    # Given two members subscribed to two topics of three partitions each (Kafka's RangeAssignor docs)
    members = {"C0": {"t0", "t1"}, "C1": {"t0", "t1"}}
    # When
    result = range_assign(members, {"t0": 3, "t1": 3})
    # Then the first member gets the extra partition of each topic
    assert result == {"C0": tps("t0", 0, 1) | tps("t1", 0, 1), "C1": tps("t0", 2) | tps("t1", 2)}


def test_range_gives_contiguous_ranges_in_member_id_order_with_the_extras_first() -> None:
    # Given three members (listed out of order) and seven partitions
    members = {"c": {"t"}, "a": {"t"}, "b": {"t"}}
    # When
    result = range_assign(members, {"t": 7})
    # Then
    assert result == {"a": tps("t", 0, 1, 2), "b": tps("t", 3, 4), "c": tps("t", 5, 6)}


def test_range_assigns_each_topic_only_among_its_subscribers() -> None:
    # Given a member on t0 only and one on both topics
    members = {"a": {"t0"}, "b": {"t0", "t1"}}
    # When
    result = range_assign(members, {"t0": 2, "t1": 2})
    # Then
    assert result == {"a": tps("t0", 0), "b": tps("t0", 1) | tps("t1", 0, 1)}


@pytest.mark.parametrize("name", sorted(ASSIGNORS))
def test_topics_that_do_not_exist_are_simply_unassigned(name: str) -> None:
    # Given one member subscribed to a topic that does not exist and one that does
    members = {"a": {"missing"}, "b": {"t"}}
    # When
    result = ASSIGNORS[name](members, {"t": 2}, {})
    # Then the member with no existing topic gets nothing, and nothing fails
    assert result == {"a": frozenset(), "b": tps("t", 0, 1)}


@pytest.mark.parametrize("name", sorted(ASSIGNORS))
def test_more_members_than_partitions_leaves_some_members_without_partitions(name: str) -> None:
    # Given
    members = {m: {"t"} for m in "abcd"}
    # When
    result = ASSIGNORS[name](members, {"t": 2}, {})
    # Then
    assert_complete_and_exclusive(result, members, {"t": 2})
    assert sorted(len(owned) for owned in result.values()) == [0, 0, 1, 1]


# -- sticky -------------------------------------------------------------------------------------------


def test_sticky_gives_three_members_on_twelve_partitions_four_each() -> None:
    # Given
    members = {m: {"t"} for m in ("a", "b", "c")}
    # When
    result = sticky_assign(members, {"t": 12}, {})
    # Then
    assert_complete_and_exclusive(result, members, {"t": 12})
    assert [len(result[m]) for m in ("a", "b", "c")] == [4, 4, 4]


def test_sticky_keeps_every_current_ownership_while_it_is_balanced() -> None:
    # Given a balanced but non-contiguous current assignment
    members = {"a": {"t"}, "b": {"t"}}
    current = {"a": tps("t", 0, 3, 5), "b": tps("t", 1, 2, 4)}
    # When
    result = sticky_assign(members, {"t": 6}, current)
    # Then nothing moves
    assert result == current


def test_sticky_moves_only_what_balance_requires_when_a_member_joins() -> None:
    # Given two members holding six partitions each
    current = {"a": tps("t", *range(6)), "b": tps("t", *range(6, 12))}
    members = {"a": {"t"}, "b": {"t"}, "c": {"t"}}
    # When a third member arrives
    result = sticky_assign(members, {"t": 12}, current)
    # Then exactly four partitions move (two from each), all to the newcomer
    assert_complete_and_exclusive(result, members, {"t": 12})
    assert [len(result[m]) for m in ("a", "b", "c")] == [4, 4, 4]
    assert result["a"] <= current["a"] and result["b"] <= current["b"]
    assert moved(current, result) == 4


def test_sticky_keeps_the_survivors_partitions_when_a_member_leaves() -> None:
    # Given three members with four partitions each
    current = {"a": tps("t", *range(4)), "b": tps("t", *range(4, 8)), "c": tps("t", *range(8, 12))}
    # When c leaves
    result = sticky_assign({"a": {"t"}, "b": {"t"}}, {"t": 12}, current)
    # Then a and b keep theirs and share c's
    assert result["a"] >= current["a"] and result["b"] >= current["b"]
    assert [len(result[m]) for m in ("a", "b")] == [6, 6]


def test_sticky_drops_ownership_of_a_topic_the_member_no_longer_subscribes_to() -> None:
    # Given a holds both topics, then unsubscribes from t1
    current = {"a": tps("t0", 0) | tps("t1", 0), "b": frozenset()}
    members = {"a": {"t0"}, "b": {"t0", "t1"}}
    # When
    result = sticky_assign(members, {"t0": 1, "t1": 1}, current)
    # Then
    assert result == {"a": tps("t0", 0), "b": tps("t1", 0)}


def test_sticky_drops_partitions_of_a_topic_that_shrank_or_vanished() -> None:
    # Given a holds t0-0..3 and gone-0, then t0 has only 2 partitions and "gone" was deleted
    current = {"a": tps("t0", 0, 1, 2, 3) | tps("gone", 0)}
    # When
    result = sticky_assign({"a": {"t0", "gone"}}, {"t0": 2}, current)
    # Then
    assert result == {"a": tps("t0", 0, 1)}


def test_sticky_is_deterministic_whatever_the_order_of_its_inputs() -> None:
    # Given the same subscriptions listed in two orders
    forward = {m: {"t0", "t1"} for m in ("a", "b", "c")}
    backward = {m: {"t1", "t0"} for m in ("c", "b", "a")}
    # When / Then
    assert sticky_assign(forward, {"t0": 5, "t1": 4}, {}) == sticky_assign(backward, {"t1": 4, "t0": 5}, {})


@pytest.mark.parametrize("seed", range(40))
def test_sticky_is_complete_exclusive_balanced_and_stable_over_random_inputs(seed: int) -> None:
    # Given random topics, subscriptions and a random (possibly stale) current assignment
    rng = random.Random(seed)
    partitions = {f"t{i}": rng.randint(0, 9) for i in range(rng.randint(1, 4))}
    topics = [*partitions, "missing"]
    members = {f"m{i}": set(rng.sample(topics, rng.randint(1, len(topics)))) for i in range(rng.randint(1, 6))}
    every = [TP(t, p) for t in topics for p in range(partitions.get(t, 0) + 2)]  # some no longer exist
    rng.shuffle(every)
    current = {}
    for m in members:
        taken = rng.randint(0, len(every) // 2)
        current[m], every = frozenset(every[:taken]), every[taken:]
    # When
    result = sticky_assign(members, partitions, current)
    # Then
    assert_complete_and_exclusive(result, members, partitions)
    assert_balanced(result, members)
    # And assigning again from the result changes nothing (stable) when subscriptions are uniform
    if len({frozenset(t) for t in members.values()}) == 1:
        assert sticky_assign(members, partitions, result) == result
        # And it moved no more partitions than balance requires: the members keeping the most get
        # the larger quotas, and each loses only what exceeds its quota
        valid = {
            m: {tp for tp in owned if tp.topic in members[m] and tp.partition < partitions.get(tp.topic, 0)}
            for m, owned in current.items()
        }
        base, extra = divmod(sum(len(o) for o in result.values()), len(members))
        by_kept = sorted(members, key=lambda m: -len(valid[m]))
        quota = {m: base + (1 if i < extra else 0) for i, m in enumerate(by_kept)}
        required = sum(max(0, len(valid[m]) - quota[m]) for m in members)
        assert sum(len(valid[m] - result[m]) for m in members) == required


@pytest.mark.parametrize("seed", range(20))
def test_range_is_complete_and_exclusive_over_random_inputs(seed: int) -> None:
    # Given
    rng = random.Random(seed)
    partitions = {f"t{i}": rng.randint(0, 9) for i in range(rng.randint(1, 4))}
    members = {f"m{i}": set(rng.sample(sorted(partitions), rng.randint(1, len(partitions)))) for i in range(5)}
    # When
    result = range_assign(members, partitions)
    # Then
    assert_complete_and_exclusive(result, members, partitions)
