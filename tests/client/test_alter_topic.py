"""Altering a topic against a real broker: partitions added, config keys set and reset, what is
refused, and how producers and group consumers take up new partitions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from logsvc_client import Admin, Consumer, Producer, ProducerRecord, TopicPartition
from logsvc_client.errors import InvalidConfig, InvalidPartition, TopicNotFound
from tests.client.group_helpers import poll_all, wait_until


def test_a_topic_grows_keeping_its_records_and_new_partitions_take_records(admin: Admin) -> None:
    # Given a 2-partition topic holding records
    admin.create_topic("orders", 2)
    admin.produce_records("orders", [ProducerRecord(b"a", partition=1), ProducerRecord(b"b", partition=1)])
    # When it grows to 5 partitions
    altered = admin.alter_topic("orders", partitions=5)
    # Then it has 5, the old records where they were, the new partitions empty and writable
    assert [(p.partition, p.next_offset) for p in altered.partitions] == [(0, 0), (1, 2), (2, 0), (3, 0), (4, 0)]
    assert admin.describe_topic("orders") == altered
    assert admin.produce_records("orders", [ProducerRecord(b"c", partition=4)])[0] == (4, 0)


def test_config_keys_are_set_and_reset_to_their_defaults(admin: Admin) -> None:
    admin.create_topic("orders", 1, {"retention_ms": "86400000", "max_batch_bytes": "65536"})
    altered = admin.alter_topic("orders", config={"retention_bytes": "1048576"}, reset_config=["max_batch_bytes"])
    assert altered.config["retention_ms"] == "86400000"  # untouched
    assert altered.config["retention_bytes"] == "1048576"  # set
    assert altered.config["max_batch_bytes"] == "8388608"  # back to the default
    assert admin.describe_topic("orders").config == altered.config


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"partitions": 2}, InvalidPartition, "orders has 3 partitions; partitions can be added, never removed"),
        ({"config": {"retention_days": "1"}}, InvalidConfig, "unknown topic config key 'retention_days'"),
        ({"config": {"retention_ms": "soon"}}, InvalidConfig, "retention_ms='soon' is not an integer"),
        (
            {"config": {"retention.ms": str(2**63)}},
            InvalidConfig,
            f"retention_ms={2**63} must be from 1 to {2**63 - 1}",
        ),
        ({"partitions": 2**31}, InvalidPartition, f"partition count {2**31} is out of range"),
        ({"reset_config": ["colour"]}, InvalidConfig, "unknown topic config key 'colour'"),
        ({"config": {"retention_ms": "5"}, "reset_config": ["retention_ms"]}, InvalidConfig, "both set and reset"),
        ({"config": {"partitioner": "random"}}, InvalidConfig, "partitioner='random' must be one of murmur2"),
    ],
)
def test_a_bad_alteration_is_refused_naming_the_value_and_changes_nothing(
    admin: Admin, change: dict[str, object], error: type[Exception], message: str
) -> None:
    before = admin.create_topic("orders", 3, {"retention_ms": "86400000"})
    with pytest.raises(error, match=message):
        admin.alter_topic("orders", **change)  # type: ignore[arg-type]
    assert admin.describe_topic("orders") == before


def test_altering_a_missing_topic_is_not_found(admin: Admin) -> None:
    with pytest.raises(TopicNotFound):
        admin.alter_topic("missing", partitions=3)


def test_a_group_consumer_is_given_the_new_partitions_at_once(
    admin: Admin, address: str, consumers: Callable[..., Consumer]
) -> None:
    # Given a group member reading a 2-partition topic
    admin.create_topic("orders", 2)
    member = consumers(address, "g")
    member.subscribe(["orders"])
    wait_until(lambda: len(member.assignment()) == 2, 10, "the first partitions", poll_all(member))
    # When the topic grows to 4 and a record lands in a new partition
    admin.alter_topic("orders", partitions=4)
    admin.produce_records("orders", [ProducerRecord(b"new", partition=3)])
    # Then the member owns all 4 and reads that record
    seen: list[tuple[int, bytes | None]] = []

    def read() -> None:
        seen.extend((r.partition, r.value) for r in member.poll(timeout_ms=50))

    wait_until(lambda: (3, b"new") in seen, 10, "the record in partition 3", read)
    assert sorted(member.assignment()) == [TopicPartition("orders", p) for p in range(4)]


def test_a_running_producer_uses_new_partitions_after_metadata_max_age_ms(admin: Admin, address: str) -> None:
    # Given a producer that looks partition counts up again every 200 ms, writing to a 1-partition topic
    admin.create_topic("orders", 1)
    with Producer(address, linger_ms=1, metadata_max_age_ms=200) as producer:
        assert {producer.send("orders", b"v", key=b"k%d" % i).result(10).partition for i in range(20)} == {0}
        # When the topic grows to 4
        admin.alter_topic("orders", partitions=4)

        # Then keyed records spread over all 4 partitions soon after
        def partitions_used() -> set[int]:
            futures = [producer.send("orders", b"v", key=b"k%d" % i) for i in range(40)]
            return {f.result(10).partition for f in futures}

        wait_until(lambda: partitions_used() == {0, 1, 2, 3}, 10, "records in all 4 partitions")
