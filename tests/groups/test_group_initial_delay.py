"""An empty group waits ``initial_delay_ms`` for more members before its first assignment (Kafka's
group.initial.rebalance.delay.ms), so members started together share the backlog."""

from __future__ import annotations

from logsvc.groups import Group
from tests.groups.members import T, beat, ids, join, tps

DELAY = 3_000


def test_members_started_together_get_nothing_until_the_delay_ends_then_share_the_partitions() -> None:
    group = Group("g", initial_delay_ms=DELAY)
    # Given a first member of an empty group: nothing yet, and told to heartbeat soon
    a = join(group, 0, id_factory=ids("a"))
    assert a.assignment == frozenset()
    assert beat(group, "a", 500, owned=()).rebalance_in_progress
    # When a second one joins within the delay (extending it to 1,000 + 3,000)
    b = join(group, 1_000, id_factory=ids("b"))
    assert b.assignment == frozenset()
    assert beat(group, "a", 3_500, owned=()).assignment == frozenset()
    # Then once it ends, each gets half of the four partitions, none twice
    got_a = beat(group, "a", 4_000, owned=()).assignment
    got_b = beat(group, "b", 4_000, owned=()).assignment
    assert (len(got_a), len(got_b)) == (2, 2)
    assert got_a | got_b == tps(0, 1, 2, 3)


def test_joins_extend_the_wait_no_longer_than_the_longest_rebalance_timeout() -> None:
    group = Group("g", initial_delay_ms=DELAY)
    join(group, 0, id_factory=ids("m0"), rebalance_timeout_ms=5_000)
    for n, at in enumerate((2_000, 4_000), start=1):  # each would push the end to at + 3,000
        join(group, at, id_factory=ids(f"m{n}"), rebalance_timeout_ms=5_000)
    # the end is capped at the start + 5,000
    assert beat(group, "m0", 4_999, owned=()).assignment == frozenset()
    assert beat(group, "m0", 5_000, owned=()).assignment != frozenset()


def test_a_group_that_became_empty_waits_again_but_a_forming_group_only_for_newcomers() -> None:
    group = Group("g", initial_delay_ms=DELAY)
    join(group, 0, id_factory=ids("a"))
    assert beat(group, "a", DELAY, owned=()).assignment == tps(0, 1, 2, 3)
    # A member joining a formed group does not hold the group up again
    join(group, DELAY + 10, id_factory=ids("b"))
    assert group.forming is None
    group.leave("a", DELAY + 20)
    assert beat(group, "b", DELAY + 30, owned=()).assignment == tps(0, 1, 2, 3)
    # When every member left, the next first member waits again
    group.leave("b", DELAY + 40)
    c = join(group, 10_000, id_factory=ids("c"))
    assert c.assignment == frozenset()
    assert beat(group, "c", 10_000 + DELAY, owned=()).assignment == tps(0, 1, 2, 3)


def test_without_a_delay_the_first_member_gets_every_partition_at_once() -> None:
    group = Group("g")
    assert join(group, 0, id_factory=ids("a"), topics={T}).assignment == tps(0, 1, 2, 3)
