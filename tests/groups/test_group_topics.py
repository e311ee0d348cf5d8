"""One consumer group as a pure state machine: assignments follow topics being created and deleted.

The clock is a plain int (milliseconds); nothing sleeps.
"""

from __future__ import annotations

from logsvc.groups import STABLE, Group, HeartbeatResult
from tests.groups.members import T, beat, ids, join, tps


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
