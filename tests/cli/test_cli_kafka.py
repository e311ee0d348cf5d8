"""The CLI with ``--server kafka://...``: the same commands on the session's Kafka cluster (Tansu,
or LOGSVC_TEST_KAFKA_BOOTSTRAP), the log tools reading Kafka's records as logsvc batches."""

from __future__ import annotations

import json
import time
from pathlib import Path

from logsvc_client import Producer
from tests.cli.conftest import Cli
from tests.fixtures.kafka import KafkaCluster


def test_topics_produce_and_the_log_tools_work_on_a_kafka_cluster(kafka_cluster: KafkaCluster, tmp_path: Path) -> None:
    cli = Cli(kafka_cluster.address, tmp_path)
    # Given a topic created and written through the CLI
    topic = kafka_cluster.name()
    cli.ok("topics", "create", topic, "--partitions", "2", "--config", "retention_ms=60000")
    produced = cli.ok("produce", topic, "-k", ":", "-p", "1", "-H", "h=1", "-o", "json", input=b"a:one\nb:two\n")
    assert [json.loads(line) for line in produced.stdout.splitlines()] == [
        {"partition": 1, "offset": 0},
        {"partition": 1, "offset": 1},
    ]
    # When it is described: what Kafka does not say (sizes) is shown as unknown
    described = cli.ok("topics", "describe", topic).stdout.decode()
    assert "bytes:      -" in described
    # And the partition is dumped: Kafka's records as logsvc batches, checksums good
    dump = cli.ok("partitions", "dump", topic, "--partition", "1", "-o", "json").stdout.splitlines()
    batches = [json.loads(line) for line in dump]
    assert [(b["base_offset"], b["record_count"], b["crc_ok"]) for b in batches] == [(0, 2, True)]
    assert [(r["key"], r["value"], r["headers"]) for r in batches[0]["records"]] == [
        ("a", "one", [["h", "1"]]),
        ("b", "two", [["h", "1"]]),
    ]
    # And a logsvc-only command is one clear error line naming Kafka's tool
    assert "kafka-acls" in cli.fails("acls", "list")


def test_consume_as_a_group_and_the_group_commands_work_on_a_kafka_cluster(
    kafka_cluster: KafkaCluster, tmp_path: Path
) -> None:
    cli = Cli(kafka_cluster.address, tmp_path)
    topic, group = kafka_cluster.name(), kafka_cluster.name("audit")
    cli.ok("topics", "create", topic, "--partitions", "1")
    # Given four records from a minute ago, each acknowledged before the next is sent (one per
    # batch: Tansu's ListOffsets "latest" is right only after a one-record batch)
    a_minute_ago_ms = int(time.time() * 1000) - 60_000
    with Producer(kafka_cluster.address, linger_ms=0) as producer:
        for i in range(4):
            producer.send(topic, b"v%d" % i, b"k%d" % i, timestamp_ms=a_minute_ago_ms + i).result(30)

    # When two of them are consumed as a member of a group (Tansu joins fast only with short
    # group timeouts: kcat's -X sets them)
    short = ["-X", "max.poll.interval.ms=3000", "-X", "session.timeout.ms=3000"]
    out = cli.ok("consume", topic, "--group", group, "-c", "2", "--timeout-ms", "20000", *short)
    assert out.stdout == b"v0\nv1\n"

    # Then the group is listed, and described with its lag in records and in time
    listed = json.loads(cli.ok("groups", "list", "-o", "json").stdout)
    assert group in [g["group"] for g in listed]
    described = json.loads(cli.ok("groups", "describe", group, "-o", "json").stdout)
    (partition,) = described["partitions"]
    assert (partition["committed_offset"], partition["next_offset"], partition["lag"]) == (2, 4, 2)
    assert 55_000 <= partition["lag_ms"] <= 600_000  # the first unconsumed record is a minute old

    # When its offsets are reset to the earliest: a dry run changes nothing, --execute does
    plan = json.loads(cli.ok("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "-o", "json").stdout)
    assert (plan["executed"], [(r["before"], r["after"]) for r in plan["resets"]]) == (False, [(2, 0)])
    assert json.loads(cli.ok("groups", "describe", group, "-o", "json").stdout)["partitions"][0]["lag"] == 2
    cli.ok("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
    assert json.loads(cli.ok("groups", "describe", group, "-o", "json").stdout)["partitions"][0]["lag"] == 4
