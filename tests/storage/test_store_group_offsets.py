"""The storage contract (logsvc/storage/base.py), run against every Store implementation (the
``store`` fixture in conftest.py): consumer groups' committed offsets."""

from __future__ import annotations

import pytest

from logsvc.storage.base import CommittedOffset, Store
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import InvalidPartition, InvalidRequest, TopicNotFound


def test_group_offsets_are_committed_fetched_listed_and_deleted(store: Store) -> None:
    # Given two topics
    store.create_topic("orders", 2, TopicConfig())
    store.create_topic("audit", 1, TopicConfig())
    # When two groups commit, one of them twice
    store.commit_offsets("billing", [("orders", 1, 7, "m1"), ("audit", 0, 2, "")], 100)
    store.commit_offsets("billing", [("orders", 1, 9, "m2"), ("orders", 0, 4, "")], 200)
    store.commit_offsets("alerts", [("orders", 0, 1, "")], 300)
    # Then the latest commit wins, sorted by topic and partition
    assert store.committed_offsets("billing") == [
        CommittedOffset("audit", 0, 2, "", 100),
        CommittedOffset("orders", 0, 4, "", 200),
        CommittedOffset("orders", 1, 9, "m2", 200),
    ]
    assert store.list_groups() == ["alerts", "billing"]
    # And deleting a group removes only its offsets
    assert store.delete_group_offsets("billing") == 3
    assert store.committed_offsets("billing") == [] and store.list_groups() == ["alerts"]
    assert store.delete_group_offsets("nobody") == 0


def test_committing_offsets_checks_every_target_and_writes_nothing_when_one_is_wrong(store: Store) -> None:
    # Given a topic
    store.create_topic("orders", 1, TopicConfig())
    # When a commit names an unknown topic, partition, a negative offset or an empty group
    with pytest.raises(TopicNotFound):
        store.commit_offsets("g", [("orders", 0, 1, ""), ("nope", 0, 1, "")], 1)
    with pytest.raises(InvalidPartition):
        store.commit_offsets("g", [("orders", 3, 1, "")], 1)
    with pytest.raises(InvalidRequest, match="-1"):
        store.commit_offsets("g", [("orders", 0, -1, "")], 1)
    with pytest.raises(InvalidRequest, match="group"):
        store.commit_offsets("", [("orders", 0, 1, "")], 1)
    # Then nothing was committed
    assert store.committed_offsets("g") == [] and store.list_groups() == []


def test_group_names_that_prefix_each_other_stay_apart(store: Store) -> None:
    # Given groups "a", "ab" and a non-ASCII name
    store.create_topic("orders", 1, TopicConfig())
    for i, group in enumerate(["ab", "a", "grüppe"]):
        store.commit_offsets(group, [("orders", 0, i, "")], 1)
    # When one is deleted
    store.delete_group_offsets("a")
    # Then the others are intact
    assert store.list_groups() == ["ab", "grüppe"]
    assert [c.offset for c in store.committed_offsets("ab")] == [0]


def test_groups_whose_newest_commit_is_older_than_the_cutoff_expire_unless_kept(store: Store) -> None:
    # Given three groups: one last committed at 100, one at 100 and again at 500, one kept alive
    store.create_topic("orders", 2, TopicConfig())
    store.commit_offsets("old", [("orders", 0, 1, ""), ("orders", 1, 2, "")], 100)
    store.commit_offsets("recent", [("orders", 0, 1, "")], 100)
    store.commit_offsets("recent", [("orders", 1, 3, "")], 500)
    store.commit_offsets("alive", [("orders", 0, 1, "")], 100)
    # When offsets committed before 400 expire, except the live group's
    expired = store.expire_group_offsets(400, keep={"alive"})
    # Then only the group whose every commit is older is gone, with all its offsets
    assert expired == ["old"]
    assert store.list_groups() == ["alive", "recent"]
    assert store.committed_offsets("old") == []
    assert [c.offset for c in store.committed_offsets("recent")] == [1, 3]
    # And a cutoff at a commit's own time does not expire it (older than, not as old as)
    assert store.expire_group_offsets(500) == ["alive"]
    assert store.list_groups() == ["recent"]
