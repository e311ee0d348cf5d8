"""A consumer over a partition that holds a bad batch written straight into LMDB (as data from an
older version would be): it reports the batch, or skips it when asked, and never wedges."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from logsvc_client import Admin, Consumer, Producer, Record, TopicPartition
from logsvc_client.errors import CorruptBatch, InvalidConfig
from tests.client.conftest import RestartableBroker
from tests.fixtures.corrupt import BAD_BATCHES, BAD_TYPES, plant

TP = TopicPartition("orders", 0)
BEFORE = [b"before-%d" % i for i in range(5)]
AFTER = [b"after-%d" % i for i in range(5)]


def produce(address: str, values: list[bytes], topic: str = "orders") -> None:
    with Producer(address, linger_ms=0) as producer:
        for value in values:
            producer.send(topic, value, b"k", partition=0).result(10)


def with_bad_batch(broker: RestartableBroker, bad: bytes, topic: str = "orders") -> tuple[int, int]:
    """Five good records, the bad batch planted into the stopped broker's LMDB, five good records
    produced after the restart; the bad batch's first and last offsets."""
    with Admin(broker.address) as admin:
        admin.create_topic(topic, 1)
    produce(broker.address, BEFORE, topic)
    broker.stop()
    (base,) = plant(broker.data_dir, topic, 0, [bad])
    broker.start()
    produce(broker.address, AFTER, topic)
    with Admin(broker.address) as admin:
        end = admin.list_offsets(topic, "latest")[0]
    return base, end - len(AFTER) - 1


def poll_until(consumer: Consumer, count: int) -> list[Record]:
    records: list[Record] = []
    while len(records) < count:
        got = consumer.poll(timeout_ms=5_000)
        assert got, f"no records after {len(records)} of {count}"
        records += got
    return records


@pytest.mark.parametrize("kind", sorted(BAD_BATCHES))
def test_a_consumer_reports_a_corrupt_batch_after_the_records_before_it_and_reads_on_once_it_seeks_past(
    restartable_broker: RestartableBroker, consumers: Callable[..., Consumer], kind: str
) -> None:
    # Given a partition holding good records, a bad batch planted in LMDB, and good records after
    base, last = with_bad_batch(restartable_broker, BAD_BATCHES[kind]())
    consumer = consumers(restartable_broker.address)
    consumer.assign([TP])

    # When it polls, Then it gets every record before the bad batch, once, in order
    before = poll_until(consumer, len(BEFORE))
    assert [r.value for r in before] == BEFORE
    # Then the next polls raise CorruptBatch naming the range, the position staying at its start
    for _ in range(2):
        with pytest.raises(CorruptBatch) as raised:
            consumer.poll(timeout_ms=5_000)
        details = raised.value.details
        assert (details["topic"], details["partition"]) == ("orders", 0)
        assert (details["base_offset"], details["last_offset"]) == (base, last)
        assert f"offsets {base}-{last} of orders/0" in str(raised.value)
        assert details["batch"] == BAD_BATCHES[kind]()
        assert consumer.position(TP) == base

    # When the application seeks past it, Then it reads every record after it, once
    consumer.seek(TP, details["last_offset"] + 1)
    after = poll_until(consumer, len(AFTER))
    assert [r.value for r in after] == AFTER
    assert consumer.poll(timeout_ms=200) == []


@pytest.mark.parametrize("kind", sorted(BAD_BATCHES))
def test_a_consumer_that_skips_corrupt_batches_reads_every_good_record_once_and_warns_once(
    restartable_broker: RestartableBroker,
    consumers: Callable[..., Consumer],
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a partition with a bad batch between good records
    base, last = with_bad_batch(restartable_broker, BAD_BATCHES[kind]())
    consumer = consumers(restartable_broker.address, corrupt_batches="skip", max_poll_records=3)
    consumer.assign([TP])

    # When it reads the partition with corrupt_batches="skip"
    with caplog.at_level(logging.WARNING, logger="logsvc_client.consumer"):
        records = poll_until(consumer, len(BEFORE) + len(AFTER))
        assert consumer.poll(timeout_ms=200) == []

    # Then it got every good record exactly once, in order, and moved past the bad batch
    assert [r.value for r in records] == BEFORE + AFTER
    assert [r.offset for r in records] == [*range(base), *range(last + 1, last + 1 + len(AFTER))]
    assert consumer.position(TP) == last + 1 + len(AFTER)
    # And it logged one warning naming the batch's range
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"offsets {base}-{last} of orders/0 is corrupt" in warnings[0]


def test_a_group_consumer_that_skips_a_corrupt_batch_commits_past_it(restartable_broker: RestartableBroker) -> None:
    # Given a partition with a bad batch between good records
    _, last = with_bad_batch(restartable_broker, BAD_BATCHES["not msgpack"]())
    address = restartable_broker.address

    # When a group member that skips corrupt batches reads it all and closes (auto-commit)
    with Consumer(address, "audit", corrupt_batches="skip", session_timeout_ms=2_000) as consumer:
        consumer.subscribe(["orders"])
        records = poll_until(consumer, len(BEFORE) + len(AFTER))
        assert len(records) == len(BEFORE) + len(AFTER)

    # Then the group's committed offset is past the bad batch (and its last record)
    with Admin(address) as admin:
        committed = admin.committed_offsets("audit")
    assert committed[TP].offset == last + 1 + len(AFTER)


def test_a_group_consumer_that_raises_keeps_its_position_at_the_corrupt_batch(
    restartable_broker: RestartableBroker,
) -> None:
    # Given a partition with a bad batch between good records
    base, last = with_bad_batch(restartable_broker, BAD_BATCHES["wrong count"]())
    address = restartable_broker.address

    # When a group member reads up to the bad batch, Then poll raises and a commit stops before it
    with Consumer(address, "audit", session_timeout_ms=2_000) as consumer:
        consumer.subscribe(["orders"])
        assert len(poll_until(consumer, len(BEFORE))) == len(BEFORE)
        with pytest.raises(CorruptBatch):
            consumer.poll(timeout_ms=5_000)
        consumer.commit()
        with Admin(address) as admin:
            assert admin.committed_offsets("audit")[TP].offset == base
        # When it seeks past it, Then it reads on
        consumer.seek(TP, last + 1)
        assert [r.value for r in poll_until(consumer, len(AFTER))] == AFTER


def test_a_consumer_with_priority_lanes_hands_out_the_other_lanes_records_before_reporting_a_corrupt_batch(
    restartable_broker: RestartableBroker, consumers: Callable[..., Consumer]
) -> None:
    # Given a high lane with a bad batch between good records, and a low lane of good records
    base, last = with_bad_batch(restartable_broker, BAD_BATCHES["bad crc"](), topic="high")
    with Admin(restartable_broker.address) as admin:
        admin.create_topic("low", 1)
    produce(restartable_broker.address, AFTER, "low")
    consumer = consumers(restartable_broker.address, priority="weighted", lane_weights=[1, 1])
    consumer.assign([TopicPartition("high", 0), TopicPartition("low", 0)])

    # When it polls until the bad batch is reported
    got: list[Record] = []
    with pytest.raises(CorruptBatch) as raised:
        for _ in range(20):
            got += consumer.poll(timeout_ms=2_000)
    # Then no record it had taken was lost on the way: every one before the bad batch was handed out
    assert raised.value.details["base_offset"] == base
    assert [r.value for r in got if r.topic == "high"] == BEFORE
    # When it seeks past, Then every record after it comes, and every low-lane record came once
    consumer.seek(TopicPartition("high", 0), last + 1)
    while len(got) < len(BEFORE) + 2 * len(AFTER):
        more = consumer.poll(timeout_ms=5_000)
        assert more
        got += more
    assert [r.value for r in got if r.topic == "high"] == BEFORE + AFTER
    assert [r.value for r in got if r.topic == "low"] == AFTER


def test_a_consumer_refuses_an_unknown_corrupt_batches_choice(restartable_broker: RestartableBroker) -> None:
    # When a consumer is created with corrupt_batches="ignore", Then InvalidConfig names the choices
    with pytest.raises(InvalidConfig, match="corrupt_batches='ignore' must be one of raise, skip"):
        Consumer(restartable_broker.address, corrupt_batches="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["not msgpack", "float timestamp"])
def test_describe_group_with_a_committed_offset_on_a_corrupt_batch_still_answers_with_its_lag(
    restartable_broker: RestartableBroker, kind: str
) -> None:
    # Given a group whose committed offset is the first offset of a bad batch
    bad = {**BAD_BATCHES, **BAD_TYPES}[kind]()
    base, last = with_bad_batch(restartable_broker, bad)
    with Admin(restartable_broker.address) as admin:
        admin.commit_offsets("audit", {TP: base})

        # When the group is described (its lag in time reads the record at the committed offset)
        described = admin.describe_group("audit")

    # Then the broker answers, with the lag in records and a lag in time from the batch header
    (row,) = described.partitions
    assert (row.committed_offset, row.lag) == (base, last + 1 + len(AFTER) - base)
    assert row.lag_ms > 0
