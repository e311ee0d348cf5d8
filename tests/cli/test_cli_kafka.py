"""The CLI with ``--server kafka://...``: the same commands on the session's Kafka cluster (Tansu,
or LOGSVC_TEST_KAFKA_BOOTSTRAP), the log tools reading Kafka's records as logsvc batches."""

from __future__ import annotations

import json
from pathlib import Path

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
