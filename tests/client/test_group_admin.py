"""The admin's group calls for a group without live members, on a logsvc broker and on a Kafka
cluster (``cluster``): committing, reading back, describing, resetting and deleting. The rules with
live members (GroupNotEmpty, fenced commits) are the broker's tests (tests/server/test_groups_api.py)."""

from __future__ import annotations

import pytest

from logsvc_client import Admin, ProducerRecord, TopicPartition
from logsvc_client.errors import GroupNotFound, InvalidPartition, TopicNotFound
from logsvc_client.group.descriptions import PartitionReset
from tests.fixtures.clusters import Cluster


def test_offsets_committed_without_members_are_read_back_described_and_deleted_with_the_group(
    cluster: Cluster,
) -> None:
    # Given a 2-partition topic holding 5 records on each partition
    topic = cluster.create_topic(2)
    group = cluster.name("g")
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with Admin(cluster.address) as admin:
        admin.produce_records(topic, [ProducerRecord(b"v", partition=p) for p in (0, 1) for _ in range(5)])
        # When a group without members commits offsets through the admin
        admin.commit_offsets(group, {tp0: 3, tp1: 5})
        # Then they are read back, the group is listed, and its description shows them
        assert {tp: c.offset for tp, c in admin.committed_offsets(group).items()} == {tp0: 3, tp1: 5}
        assert {tp: c.offset for tp, c in admin.committed_offsets(group, [tp1]).items()} == {tp1: 5}
        assert group in [g.group for g in admin.list_groups()]
        described = admin.describe_group(group)
        assert (described.state, described.members) == ("Empty", ())
        assert [(p.partition, p.committed_offset, p.owner) for p in described.partitions] == [
            (0, 3, None),
            (1, 5, None),
        ]
        # When the group is deleted, it is gone
        admin.delete_group(group)
        assert admin.committed_offsets(group) == {}
        with pytest.raises(GroupNotFound, match=group):
            admin.describe_group(group)
        with pytest.raises(GroupNotFound, match=group):
            admin.delete_group(group)


def test_reset_offsets_is_a_dry_run_unless_executed_and_clamps_to_the_log(cluster: Cluster) -> None:
    cluster.skip_if("latest_offsets", "targets are clamped to each partition's next offset")
    topic = cluster.create_topic(2)
    group = cluster.name("g")
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    with Admin(cluster.address) as admin:
        admin.produce_records(topic, [ProducerRecord(b"v", partition=p) for p in (0, 1) for _ in range(5)])
        admin.commit_offsets(group, {tp0: 1})
        # When a shift is planned, then executed
        plan = admin.reset_offsets(group, topic, spec="shift_by", value=10)
        assert (plan.executed, plan.resets) == (
            False,
            (PartitionReset(topic, 0, 1, 5), PartitionReset(topic, 1, None, 5)),
        )
        assert {tp: c.offset for tp, c in admin.committed_offsets(group).items()} == {tp0: 1}
        done = admin.reset_offsets(group, topic, [1], spec="earliest", execute=True)
        # Then only the executed reset changed the committed offsets
        assert done.executed and done.resets == (PartitionReset(topic, 1, None, 0),)
        assert {tp: c.offset for tp, c in admin.committed_offsets(group).items()} == {tp0: 1, tp1: 0}
        assert admin.describe_group(group).partitions[0].lag == 4


def test_a_reset_names_a_missing_topic_or_partition(cluster: Cluster) -> None:
    topic = cluster.create_topic(1)
    with Admin(cluster.address) as admin:
        with pytest.raises(TopicNotFound, match="nope"):
            admin.reset_offsets(cluster.name("g"), cluster.name("nope"))
        with pytest.raises(InvalidPartition, match="partition 3"):
            admin.reset_offsets(cluster.name("g"), topic, [3])
