"""The Kafka consumer's lane buffers on their own (``logsvc_client.kafka.lanes``, pure): which
partitions librdkafka is told to pause, and that a lane filled before all its partitions had a
Fetch answer does not stall the consumer."""

from __future__ import annotations

from logsvc_client import Record, TopicPartition
from logsvc_client.consumer.lanes import LanePolicy
from logsvc_client.kafka.lanes import KafkaLanes

CRITICAL, BULK = "orders.critical", "orders.bulk"
ASSIGNED = [TopicPartition(t, p) for t in (CRITICAL, BULK) for p in (0, 1)]


def records(topic: str, partition: int, n: int) -> list[Record]:
    return [Record(topic, partition, i, 0, None, b"v", None) for i in range(n)]


def test_a_full_lane_whose_other_partition_had_no_fetch_answer_yet_keeps_that_partition_fetching() -> None:
    lanes = KafkaLanes(LanePolicy([CRITICAL, BULK], "strict", max_lane_wait_ms=60_000), cap=1_000)
    answered = {
        TopicPartition(CRITICAL, 0): (0, 1_500),
        TopicPartition(BULK, 0): (0, 10),
        TopicPartition(BULK, 1): (0, 10),
    }
    # Given the critical lane full from its partition 0 while its partition 1 had no Fetch answer
    lanes.add(records(CRITICAL, 0, 1_500))
    assert lanes.take(200, 0, ASSIGNED, answered.get, {}) == []  # a backlog not known yet: nothing

    # When the consumer asks what to pause
    pause, resume = lanes.pauses(ASSIGNED, answered.get)

    # Then partition 0 is paused, but not partition 1: its first answer is what take waits for
    assert pause == [TopicPartition(CRITICAL, 0)] and resume == []
    # And once it has come, partition 1 is paused too and the critical lane is served
    answered[TopicPartition(CRITICAL, 1)] = (0, 1_500)
    lanes.add(records(CRITICAL, 1, 100))
    assert lanes.pauses(ASSIGNED, answered.get) == ([TopicPartition(CRITICAL, 1)], [])
    taken = lanes.take(200, 0, ASSIGNED, answered.get, {})
    assert taken is not None and len(taken) == 200 and {r.topic for r in taken} == {CRITICAL}


def test_a_lane_below_its_cap_again_is_resumed() -> None:
    lanes = KafkaLanes(LanePolicy([CRITICAL, BULK], "strict"), cap=100)
    answered = dict.fromkeys(ASSIGNED, (0, 1_000))
    lanes.add(records(BULK, 0, 150))
    assert lanes.pauses(ASSIGNED, answered.get) == ([TopicPartition(BULK, 0), TopicPartition(BULK, 1)], [])
    lanes.buffers[BULK].clear()
    assert lanes.pauses(ASSIGNED, answered.get) == ([], [TopicPartition(BULK, 0), TopicPartition(BULK, 1)])
