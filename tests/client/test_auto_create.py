"""A broker with ``auto_create_topics`` creates a topic on a producer's first send to it, as a raw
Produce would (Kafka's Metadata ``allow_auto_topic_creation``); describing never creates."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Consumer, Producer
from logsvc_client.errors import TopicNotFound


def test_a_producers_first_send_creates_the_topic_when_the_broker_auto_creates(
    start_broker: Callable[..., Broker],
) -> None:
    # Given a broker that creates topics on first produce, with 3 partitions each
    broker = start_broker(auto_create_topics=True, default_partitions=3)

    # When a producer sends to a topic nobody created
    with Producer(broker.address, linger_ms=0) as producer:
        position = producer.send("autotopic", b"v", b"k").result(10)

    # Then the topic exists with the default partition count, holding the record
    with Admin(broker.address) as admin:
        assert admin.describe_topic("autotopic").partition_count == 3
    with Consumer(broker.address) as consumer:
        consumer.assign_topic("autotopic")
        (record,) = consumer.poll(timeout_ms=2_000)
    assert (record.partition, record.offset, record.value) == (position.partition, position.offset, b"v")


def test_without_auto_create_the_first_send_to_a_missing_topic_is_topic_not_found(broker: Broker) -> None:
    with Producer(broker.address) as producer, pytest.raises(TopicNotFound, match="nope"):
        producer.send("nope", b"v")
    with Admin(broker.address) as admin:
        assert [t.name for t in admin.list_topics()] == []


def test_describing_or_consuming_a_missing_topic_never_creates_it(start_broker: Callable[..., Broker]) -> None:
    broker = start_broker(auto_create_topics=True)
    with Admin(broker.address) as admin:
        with pytest.raises(TopicNotFound):
            admin.describe_topic("ghost")
        with Consumer(broker.address) as consumer, pytest.raises(TopicNotFound):
            consumer.assign_topic("ghost")
        assert [t.name for t in admin.list_topics()] == []
