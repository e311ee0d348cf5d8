"""The storage contract (logsvc/storage/base.py), run against every Store implementation (the
``store`` fixture in conftest.py): creating, listing and deleting topics, and their partitions' states."""

from __future__ import annotations

import dataclasses

import pytest

from logsvc.storage.base import Store
from logsvc.topic_config import TopicConfig
from logsvc_client.errors import InvalidConfig, InvalidPartition, InvalidTopicName, TopicAlreadyExists, TopicNotFound
from tests.storage.batches import FakeClock, make_batch

DAY_MS = 86_400_000


def test_topics_are_created_listed_and_refused_twice(store: Store) -> None:
    # Given two topics
    a = store.create_topic("b-topic", 2, TopicConfig(retention_ms=DAY_MS))
    store.create_topic("a-topic", 1, TopicConfig())
    # When one is created again, or with a bad name or count
    with pytest.raises(TopicAlreadyExists, match="'b-topic'"):
        store.create_topic("b-topic", 2, TopicConfig())
    with pytest.raises(InvalidTopicName):
        store.create_topic("bad/name", 1, TopicConfig())
    with pytest.raises(InvalidPartition):
        store.create_topic("zero", 0, TopicConfig())
    # Then the listing is sorted and the metadata kept
    assert [t.name for t in store.list_topics()] == ["a-topic", "b-topic"]
    assert store.topic("b-topic") == a and a.config.retention_ms == DAY_MS and a.partitions == 2


def test_deleting_a_topic_removes_its_data_and_committed_offsets(store: Store) -> None:
    # Given a topic with data and committed offsets next to another topic's
    store.create_topic("orders", 1, TopicConfig())
    store.create_topic("other", 1, TopicConfig())
    store.append("orders", [(0, make_batch(5))])
    store.commit_offsets("g", [("orders", 0, 3, ""), ("other", 0, 0, "")], 1)
    # When it is deleted, and one of the same name created
    store.delete_topic("orders")
    with pytest.raises(TopicNotFound):
        store.delete_topic("orders")
    with pytest.raises(TopicNotFound):
        store.read("orders", 0, 0, 100)
    store.create_topic("orders", 1, TopicConfig())
    # Then the new topic starts empty and only the other topic's offset remains
    assert store.partition_states("orders")[0].next_offset == 0
    assert [c.topic for c in store.committed_offsets("g")] == ["other"]


def test_partition_states_report_offsets_bytes_and_timestamps(store: Store) -> None:
    # Given two batches in partition 0 and none in partition 1
    store.create_topic("orders", 2, TopicConfig())
    a, b = make_batch(2, ts=100, step=5), make_batch(3, ts=200, step=10)
    store.append("orders", [(0, a), (0, b)])
    # When the states are asked for
    p0, p1 = store.partition_states("orders")
    # Then they describe what is stored
    assert (p0.log_start_offset, p0.next_offset, p0.bytes) == (0, 5, len(a) + len(b))
    assert (p0.first_timestamp_ms, p0.last_timestamp_ms, p0.record_count) == (100, 220, 5)
    assert (p1.next_offset, p1.bytes, p1.first_timestamp_ms, p1.last_timestamp_ms) == (0, 0, -1, -1)


def test_a_topic_grows_by_new_empty_partitions_keeping_its_data(store: Store) -> None:
    # Given a 2-partition topic with data in partition 1
    before = store.create_topic("orders", 2, TopicConfig())
    store.append("orders", [(1, make_batch(3))])
    # When it grows to 4 partitions
    after = store.alter_topic("orders", partitions=4)
    # Then it has 4, the new ones empty and writable, the old data where it was
    assert after == before._replace(partitions=4) == store.topic("orders")
    assert [p.next_offset for p in store.partition_states("orders")] == [0, 3, 0, 0]
    assert store.append("orders", [(3, make_batch(2))])[0].base_offset == 0
    assert [b for b, _ in store.read("orders", 1, 0, 1 << 20).batches] == [0]


def test_a_topics_config_is_replaced_and_retention_follows_it(store: Store, clock: FakeClock) -> None:
    # Given a topic that keeps everything, holding a batch a day old
    store.create_topic("orders", 1, TopicConfig())
    store.append("orders", [(0, make_batch(2, ts=clock.now_ms - DAY_MS))])
    assert store.apply_retention(clock.now_ms) == 0
    # When its retention becomes one hour
    after = store.alter_topic("orders", config=TopicConfig(retention_ms=3_600_000))
    # Then the config is kept and the next retention pass deletes the old batch
    assert store.topic("orders").config == after.config == TopicConfig(retention_ms=3_600_000)
    assert store.apply_retention(clock.now_ms) == 1
    assert store.partition_states("orders")[0].log_start_offset == 2


def test_altering_refuses_fewer_partitions_too_many_another_partitioner_or_an_unknown_topic(store: Store) -> None:
    store.create_topic("orders", 3, TopicConfig(retention_ms=DAY_MS))
    with pytest.raises(InvalidPartition, match="orders has 3 partitions; partitions can be added, never removed"):
        store.alter_topic("orders", partitions=2)
    with pytest.raises(InvalidPartition, match="partition count 100001 is out of range"):
        store.alter_topic("orders", partitions=100_001)
    with pytest.raises(InvalidConfig, match="uses partitioner 'murmur2'; it cannot change"):
        store.alter_topic("orders", config=dataclasses.replace(TopicConfig(), partitioner="other"))
    with pytest.raises(TopicNotFound):
        store.alter_topic("missing", partitions=4)
    # And nothing changed
    meta = store.topic("orders")
    assert (meta.partitions, meta.config) == (3, TopicConfig(retention_ms=DAY_MS))
