"""Priority lanes in a real consumer against a real broker and a Kafka cluster: three topics with a
backlog each, read by a group consumer with strict or weighted lanes; the bad settings refused at
start-up."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from logsvc_client import Admin, Consumer, Record, TopicPartition
from logsvc_client.errors import GroupNotFound, InvalidConfig, TopicNotFound
from tests.client.cluster_records import produce
from tests.client.group_helpers import group_options
from tests.fixtures.clusters import Cluster

LANES = ["orders.critical", "orders.normal", "orders.bulk"]
BACKLOG = 3_000  # records per lane
UNUSED_ADDRESS = "127.0.0.1:9"  # options are checked before anything is sent


@pytest.fixture
def backlog(address: str, admin: Admin) -> list[str]:
    """Three topics of two partitions on a logsvc broker, each holding BACKLOG records."""
    return lane_topics(Cluster("logsvc", address))


@pytest.fixture
def lanes(cluster: Cluster) -> list[str]:
    """Three topics of two partitions (named after LANES), each holding BACKLOG records in
    batches of ~100 on logsvc."""
    return lane_topics(cluster)


def lane_topics(cluster: Cluster) -> list[str]:
    topics = [cluster.create_topic(2, prefix=lane) for lane in LANES]
    for topic in topics:
        rows = [(b"%s-%d" % (topic.encode(), i), b"k%d" % i, None, None, None) for i in range(BACKLOG)]
        produce(cluster, topic, rows, linger_ms=5, max_batch_bytes=4_096)
    return topics


def read(consumer: Consumer, count: int, timeout_s: float = 20, pause_s: float = 0.0) -> list[list[Record]]:
    """Poll until ``count`` records came; the non-empty polls, in order (``pause_s`` after each:
    a consumer that takes its time with every batch)."""
    polls: list[list[Record]] = []
    deadline = time.monotonic() + timeout_s
    while sum(len(p) for p in polls) < count:
        assert time.monotonic() < deadline, f"only {sum(len(p) for p in polls)} of {count} records came"
        records = consumer.poll(timeout_ms=500)
        if records:
            polls.append(records)
            time.sleep(pause_s)
    return polls


def runs(records: list[Record]) -> list[tuple[str, int]]:
    """The topics in the order records came, as (topic, how many in a row)."""
    out: list[tuple[str, int]] = []
    for r in records:
        if out and out[-1][0] == r.topic:
            out[-1] = (r.topic, out[-1][1] + 1)
        else:
            out.append((r.topic, 1))
    return out


def assert_in_offset_order(records: list[Record]) -> None:
    last: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        assert r.offset == last.get(tp, -1) + 1, f"{tp} jumped from {last.get(tp)} to {r.offset}"
        last[tp] = r.offset


def test_strict_lanes_drain_the_critical_topic_first_then_normal_then_bulk(
    cluster: Cluster, lanes: list[str], consumers: Callable[..., Consumer]
) -> None:
    # Given a backlog in three topics and a group consumer with strict lanes, small polls and
    # a wait bound far longer than the test
    consumer = consumers(
        cluster.address,
        cluster.name("sink"),
        priority="strict",
        max_poll_records=100,
        max_lane_wait_ms=60_000,
        **group_options(cluster),
    )
    consumer.subscribe(lanes)

    # When it reads everything
    records = [r for poll in read(consumer, 3 * BACKLOG) for r in poll]

    # Then the critical lane came fully first, then the normal one, then the bulk one
    assert runs(records) == [(topic, BACKLOG) for topic in lanes]
    # And every partition in offset order, nothing twice
    assert len(records) == 3 * BACKLOG
    assert_in_offset_order(records)


def test_strict_lanes_serve_the_lowest_lane_within_max_lane_wait_ms_while_a_higher_one_has_a_backlog(
    cluster: Cluster, lanes: list[str], consumers: Callable[..., Consumer]
) -> None:
    # Given strict lanes with a 200 ms bound, read by a consumer that takes 10 ms per poll of 50
    # records, so the critical backlog alone takes 600 ms or more
    wait_ms = 200
    critical, _, bulk = lanes
    consumer = consumers(
        cluster.address,
        cluster.name("sink"),
        priority="strict",
        max_poll_records=50,
        max_lane_wait_ms=wait_ms,
        **group_options(cluster),
    )
    consumer.subscribe(lanes)
    first = consumer.poll(timeout_ms=5_000)
    started = time.monotonic()  # the first poll that returned records planned no later than this
    assert {r.topic for r in first} == {critical}

    # When it reads until the critical lane is drained, noting when each poll returned
    polls: list[tuple[float, list[Record]]] = [(0.0, first)]
    read_critical = len(first)
    while read_critical < BACKLOG:
        time.sleep(0.01)
        records = consumer.poll(timeout_ms=1_000)
        assert records, "a poll came back empty while every lane had a backlog"
        polls.append(((time.monotonic() - started) * 1000, records))
        read_critical += sum(r.topic == critical for r in records)

    # Then the bulk lane got records every max_lane_wait_ms or so meanwhile, not before it waited
    bulk_at = [at for at, records in polls if any(r.topic == bulk for r in records)]
    assert bulk_at, "the bulk lane got nothing while the critical lane was drained"
    assert bulk_at[0] >= wait_ms - 15, f"the bulk lane was served after {bulk_at[0]:.0f} ms"
    slack_ms = 250  # one poll, and a busy machine
    gaps = [b - a for a, b in zip([0.0, *bulk_at], bulk_at, strict=False)]
    assert max(gaps) <= wait_ms + slack_ms, f"the bulk lane waited {max(gaps):.0f} ms (bound {wait_ms} ms)"
    # And the critical lane still had most of every poll
    counts = Counter(r.topic for _, records in polls for r in records)
    assert counts[critical] >= 0.8 * sum(counts.values()), counts
    assert_in_offset_order([r for _, records in polls for r in records])


def test_weighted_lanes_share_each_poll_by_their_weights(
    cluster: Cluster, lanes: list[str], consumers: Callable[..., Consumer]
) -> None:
    # Given a backlog in three topics and a group consumer with weighted lanes 3:2:1
    consumer = consumers(
        cluster.address,
        cluster.name("sink"),
        priority="weighted",
        lane_weights=[3, 2, 1],
        max_poll_records=60,
        **group_options(cluster),
    )
    consumer.subscribe(lanes)

    # When it reads the first 2,400 records (before any lane runs out)
    polls = read(consumer, 2_400)

    # Then they came about 3:2:1 from the critical, normal and bulk lanes
    counts = Counter(r.topic for poll in polls for r in poll)
    total = sum(counts.values())
    for topic, weight in zip(lanes, (3, 2, 1), strict=True):
        assert abs(counts[topic] / total - weight / 6) < 0.05, counts
    # And most polls were 30:20:10 exactly (a poll may come up short while a lane's next fetch is
    # still on its way, more often on a busy machine)
    exact = sum(Counter(r.topic for r in poll) == dict(zip(lanes, (30, 20, 10), strict=True)) for poll in polls)
    assert exact >= 0.75 * len(polls), "\n".join(str(dict(Counter(r.topic for r in poll))) for poll in polls)
    assert_in_offset_order([r for poll in polls for r in poll])


def test_assigned_partitions_are_lanes_in_the_order_they_are_listed(
    cluster: Cluster, lanes: list[str], consumers: Callable[..., Consumer]
) -> None:
    # Given a consumer without a group, assigned the bulk topic's partitions first
    critical, _, bulk = lanes
    consumer = consumers(cluster.address, priority="strict", max_poll_records=200, max_lane_wait_ms=60_000)
    consumer.assign([TopicPartition(t, p) for t in (bulk, critical) for p in (0, 1)])

    # When it reads both topics
    records = [r for poll in read(consumer, 2 * BACKLOG) for r in poll]

    # Then the bulk topic, listed first, is the higher lane
    assert runs(records) == [(bulk, BACKLOG), (critical, BACKLOG)]


def test_a_lane_keeps_copies_of_its_batches_not_the_whole_fetch_answers_they_came_in(
    address: str, backlog: list[str]
) -> None:
    """Over gRPC a fetched batch is a view into its Fetch answer (megabytes); a lane not taken
    from could otherwise keep one small batch, and so the whole answer, of each of many Fetches."""
    # Given a consumer with strict lanes over three topics with a backlog, that has polled once
    with Consumer(address, priority="strict", max_poll_records=100, max_lane_wait_ms=60_000) as consumer:
        consumer.assign([TopicPartition(t, p) for t in backlog for p in (0, 1)])
        assert read(consumer, 100)

        # Then every batch its lanes hold is bytes of its own
        buffers = consumer._fetcher._lanes.buffers  # type: ignore[attr-defined]
        held = [item[2] for buffer in buffers.values() for item in buffer._pending]
        assert held, "the lanes buffered nothing"
        assert {type(data) for data in held} == {bytes}


def test_subscribing_lanes_with_an_unknown_topic_fails_naming_it(
    cluster: Cluster, lanes: list[str], consumers: Callable[..., Consumer]
) -> None:
    urgent = cluster.name("orders.urgent")
    consumer = consumers(cluster.address, cluster.name("sink"), priority="strict", **group_options(cluster))
    with pytest.raises(TopicNotFound, match=urgent):
        consumer.subscribe([urgent, *lanes])


@pytest.mark.parametrize("weights", [[3, 0, 1], [3, -2, 1], [3, "2", 1]])
def test_a_consumer_with_weights_that_are_not_positive_is_refused(weights: list[Any]) -> None:
    with pytest.raises(InvalidConfig, match="positive") as raised:
        Consumer(UNUSED_ADDRESS, "sink", priority="weighted", lane_weights=weights)
    assert raised.value.details["key"] == "lane_weights"


def test_weights_that_do_not_match_the_topics_are_refused_before_joining_the_group(
    address: str, admin: Admin, backlog: list[str], consumers: Callable[..., Consumer]
) -> None:
    # Given a consumer with two weights
    consumer = consumers(address, "sink", priority="weighted", lane_weights=[2, 1])
    # When it subscribes to three topics
    with pytest.raises(InvalidConfig, match="2 weight") as raised:
        consumer.subscribe(backlog)
    # Then it is refused, naming the key, and never joined the group
    assert raised.value.details["key"] == "lane_weights"
    with pytest.raises(GroupNotFound):
        admin.describe_group("sink")


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"priority": "strict", "lane_weights": [1, 2, 3]}, "lane_weights"),
        ({"priority": "weighted"}, "lane_weights"),
        ({"priority": "strict", "max_lane_wait_ms": 0}, "max_lane_wait_ms"),
    ],
)
def test_other_bad_lane_options_are_refused_by_the_constructor(options: dict[str, Any], key: str) -> None:
    with pytest.raises(InvalidConfig) as raised:
        Consumer(UNUSED_ADDRESS, "sink", **options)
    assert raised.value.details["key"] == key
