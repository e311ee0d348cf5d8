"""Group consumers against a real broker or a Kafka cluster, rebalances: commit on revoke, and no
record of a revoked partition handed out after the revoke."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from logsvc_client import Consumer, Record, TopicPartition
from logsvc_wire.partitioner import partition_for_key
from tests.client.cluster_records import numbered, produce
from tests.client.group_helpers import group_options, poll_all, wait_until
from tests.fixtures.clusters import Cluster


def per_partition(start: int, count: int, partitions: int) -> Counter[int]:
    """How many of the records :func:`numbered` makes land on each partition (by their keys)."""
    return Counter(partition_for_key(b"key-%d" % i, partitions) for i in range(start, start + count))


def test_revoked_partitions_are_committed_before_their_next_owner_starts_from_there(
    cluster: Cluster, consumers: Callable[..., Consumer]
) -> None:
    # Given a member that read all of 4 partitions (auto-commit far away) and a revoke callback
    topic, group = cluster.create_topic(4), cluster.name("g")
    produce(cluster, topic, numbered(400))
    ends = per_partition(0, 400, 4)
    options = group_options(cluster)
    revoked: list[tuple[list[TopicPartition], dict[TopicPartition, int | None]]] = []
    first: Consumer = consumers(
        cluster.address,
        group,
        auto_commit_interval_ms=600_000,
        on_revoke=lambda ps: revoked.append((list(ps), {tp: first.committed(tp) for tp in ps})),
        **options,
    )
    first.subscribe(topic)
    read: list[Record] = []
    wait_until(lambda: len(read) == 400, 10, "400 records", lambda: read.extend(first.poll(timeout_ms=100)))

    # When a second member joins
    second = consumers(cluster.address, group, **options)
    second.subscribe(topic)
    wait_until(lambda: len(second.assignment()) == 2, 20, "a split", poll_all(first, second))

    # Then the first was called back with what it gave up, before anything of it was committed,
    # and after the callback their positions were committed
    assert len(revoked) == 1
    given_up, committed_in_callback = revoked[0]
    assert given_up == second.assignment()
    assert all(offset is None for offset in committed_in_callback.values())
    assert {tp: second.committed(tp) for tp in given_up} == {tp: ends[tp.partition] for tp in given_up}
    # And the new owner reads only what comes next (nothing twice)
    produce(cluster, topic, numbered(40, start=400))
    added = per_partition(400, 40, 4)
    expected = sum(added[tp.partition] for tp in given_up)
    new: list[Record] = []
    wait_until(lambda: len(new) >= expected, 10, "the new records", lambda: new.extend(second.poll(timeout_ms=100)))
    assert len(new) == expected and all(r.offset >= ends[r.partition] for r in new)


def test_records_buffered_for_a_revoked_partition_are_never_returned(
    cluster: Cluster, consumers: Callable[..., Consumer]
) -> None:
    # Given a member with records of all 4 partitions fetched ahead, handing out 10 per poll
    topic, group = cluster.create_topic(4), cluster.name("g")
    produce(cluster, topic, numbered(4_000))
    options = group_options(cluster)
    revoked: list[TopicPartition] = []
    first = consumers(cluster.address, group, on_revoke=revoked.extend, **options)
    first.subscribe(topic)
    wait_until(lambda: first.poll(timeout_ms=100, max_records=10), 10, "a first poll")

    # When a second member joins and the first gives up 2 partitions
    second = consumers(cluster.address, group, **options)
    second.subscribe(topic)
    after_revoke: list[Record] = []
    while len(second.assignment()) < 2:
        got = first.poll(timeout_ms=20, max_records=10)
        if revoked:
            after_revoke += got
        second.poll(timeout_ms=20)
    for _ in range(5):  # then everything it still has
        after_revoke += first.poll(timeout_ms=50)

    # Then nothing of those 2 partitions comes out of the first member after the revoke
    assert len(revoked) == 2 and after_revoke
    assert not [r for r in after_revoke if TopicPartition(r.topic, r.partition) in revoked]
