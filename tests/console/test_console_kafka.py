"""``logsvc console --server kafka://...``: the same pages over a Kafka-protocol cluster (Tansu here),
read through the client's Kafka transport, over plain HTTP. What Kafka does not say (a partition's
size) is shown as "-", never as a number."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator

import pytest

from logsvc_client import Admin, Consumer, Producer
from tests.console.conftest import ConsoleProcess, http, wait_for
from tests.fixtures.kafka import KafkaCluster


@pytest.fixture(scope="module")
def kafka_console(kafka_cluster: KafkaCluster) -> Iterator[ConsoleProcess]:
    proc = ConsoleProcess().start(kafka_cluster.address)
    try:
        yield proc
    finally:
        proc.terminate()


def text(page: str) -> str:
    """The page's text, one space between words."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def test_topics_groups_and_records_of_a_kafka_cluster_are_shown(
    kafka_cluster: KafkaCluster, kafka_console: ConsoleProcess
) -> None:
    # Given a Kafka topic of 3 partitions with 30 records, and a group that read and committed them
    topic, group = kafka_cluster.name("console-orders"), kafka_cluster.name("console-audit")
    with Admin(kafka_cluster.address) as admin:
        admin.create_topic(topic, 3)
    with Producer(kafka_cluster.address, linger_ms=5) as producer:
        for i in range(30):
            producer.send(topic, b'{"n": %d}' % i, key=b"k%d" % i, partition=i % 3)
        producer.flush()
    with Consumer(
        kafka_cluster.address, group_id=group, auto_offset_reset="earliest", max_poll_interval_ms=3_000
    ) as consumer:
        consumer.subscribe([topic])
        seen, deadline = 0, time.monotonic() + 60
        while seen < 30 and time.monotonic() < deadline:
            seen += len(consumer.poll(timeout_ms=500))
        assert seen == 30
        consumer.commit()

    # When the console's pages are read
    def overview() -> str | None:
        status, body, _ = http(kafka_console.url + "/")
        return body if status == 200 and topic in body and group in body else None

    page = text(wait_for(overview, 30, "the topic and group on the overview"))
    status, topic_page, _ = http(f"{kafka_console.url}/topics/{topic}")
    status_group, group_page, _ = http(f"{kafka_console.url}/groups/{group}")
    status_messages, messages_page, _ = http(f"{kafka_console.url}/topics/{topic}/messages?partition=1")

    # Then they show the cluster's topic with its partitions and the group with its commits
    assert kafka_cluster.address in page
    assert status == 200 and [f"{p}" for p in range(3)] == re.findall(r'messages\?partition=(\d)">', topic_page)
    assert status_group == 200 and text(group_page).count(topic) >= 3
    for p in range(3):
        assert re.search(rf"{re.escape(topic)} {p} 10 ", text(group_page)), text(group_page)
    # And the records of a partition, with their keys and values
    # (Tansu's ListOffsets "latest" answers 1, so there the page ends after the first record)
    shown = html.unescape(text(messages_page))
    assert status_messages == 200 and "key k1 " in shown and '"n": 1' in shown
    if "latest_offsets" not in kafka_cluster.quirks:
        assert '"n": 28' in shown and "key k28 " in shown
    # And a size Kafka does not tell is "-", never "-1B"
    for body in (page, text(topic_page)):
        assert "-1B" not in body and "-3B" not in body
