"""`logsvc records status`, as a subprocess against a real broker."""

from __future__ import annotations

import json
import time
from typing import Any

from logsvc_client import Admin, TopicPartition
from tests.cli.conftest import Cli
from tests.cli.test_cli_dlq import dead_letter, new_connector, produce_source
from tests.cli.test_cli_groups import new_group

HOUR_MS = 3_600_000


def status(cli: Cli, topic: str, partition: int, offset: int) -> dict[str, Any]:
    args = ("records", "status", topic, "--partition", str(partition), "--offset", str(offset), "-o", "json")
    result: dict[str, Any] = json.loads(cli.ok(*args).stdout)
    return result


def of_group(result: dict[str, Any], group: str) -> dict[str, Any]:
    (found,) = [g for g in result["groups"] if g["group"] == group]
    return found


def commit(cli: Cli, group: str, topic: str, offsets: dict[int, int]) -> None:
    with Admin(cli.address) as admin:
        admin.commit_offsets(group, {TopicPartition(topic, p): o for p, o in offsets.items()})


def test_a_record_is_pending_before_its_group_commits_past_it_and_processed_after(cli: Cli) -> None:
    # Given 10 records written an hour ago, and a group that consumed and committed the first 3
    now_ms = time.time_ns() // 1_000_000
    records = produce_source(cli, 10, partitions=1, start_ms=now_ms - HOUR_MS)
    topic, group = records[0].topic, new_group()
    cli.ok("consume", topic, "--group", group, "--max-records", "3", "-o", "json")

    # When the status of offset 5 is asked for
    result = status(cli, topic, 0, 5)

    # Then it is pending behind 2 records, the first of which has waited about an hour
    assert result["record"] == {"topic": topic, "partition": 0, "offset": 5, "timestamp": now_ms - HOUR_MS + 5}
    pending = of_group(result, group)
    assert (pending["status"], pending["committed_offset"], pending["records_before"]) == ("pending", 3, 2)
    assert HOUR_MS / 1000 - 60 < pending["waiting_s"] < HOUR_MS / 1000 + 60
    assert pending["dead_lettered"] is None
    assert of_group(status(cli, topic, 0, 2), group)["status"] == "processed"

    # And once the group commits past it, it is processed
    commit(cli, group, topic, {0: 6})
    processed = of_group(status(cli, topic, 0, 5), group)
    assert processed == {
        "group": group,
        "status": "processed",
        "committed_offset": 6,
        "records_before": None,
        "waiting_s": None,
        "dead_lettered": None,
    }
    assert of_group(status(cli, topic, 0, 6), group)["records_before"] == 0


def test_a_group_with_nothing_committed_on_the_partition_counts_from_the_log_start(cli: Cli) -> None:
    # Given a group that committed on partition 0 only, and partition 1 trimmed below offset 1
    records = produce_source(cli, 12)
    topic, group = records[0].topic, new_group()
    commit(cli, group, topic, {0: 1})
    cli.ok("partitions", "trim", topic, "--partition", "1", "--before", "1")
    last = max(r.offset for r in records if r.partition == 1)

    # When the status of partition 1's last record is asked for
    pending = of_group(status(cli, topic, 1, last), group)

    # Then the group has it pending behind every record from the log start on
    assert (pending["status"], pending["committed_offset"], pending["records_before"]) == ("pending", None, last - 1)


def test_a_dead_lettered_record_counts_as_processed_by_its_connector(cli: Cli) -> None:
    # Given a connector that dead-lettered offset 2 and committed past it, and another group behind
    records = produce_source(cli, 5, partitions=1)
    topic, connector, audit = records[0].topic, new_connector(), new_group()
    dead_letter(cli, connector, [records[2]])
    commit(cli, connector, topic, {0: 4})
    commit(cli, audit, topic, {0: 1})

    # When the status of offset 2 is asked for, as JSON and as a table
    result = status(cli, topic, 0, 2)
    table = cli.ok("records", "status", topic, "-p", "0", "--offset", "2").stdout.decode()

    # Then the connector has processed it by dead-lettering it, and the other group has it pending
    assert result["dead_letters"] == [
        {
            "connector": connector,
            "dlq_topic": f"{connector}.dlq",
            "dlq_partition": 0,
            "dlq_offset": 0,
            "error": {"class": "ValueError", "message": "bad value at 2"},
            "attempts": 3,
            "time": result["dead_letters"][0]["time"],
        }
    ]
    assert result["dead_letters"][0]["time"].startswith(time.strftime("%Y-%m-%d", time.gmtime()))  # dead-lettered now
    by_connector = of_group(result, connector)
    assert (by_connector["status"], by_connector["dead_lettered"]["dlq_offset"]) == ("processed", 0)
    assert (of_group(result, audit)["status"], of_group(result, audit)["records_before"]) == ("pending", 1)
    assert f"dead-lettered: by {connector} to {connector}.dlq/0@0" in table
    row = next(line for line in table.splitlines() if line.startswith(connector))
    assert row.split()[1:3] == ["processed", "4"] and row.endswith(f"{connector}.dlq/0@0")

    # And a connector whose group has nothing committed still counts it as processed
    other = new_connector()
    dead_letter(cli, other, [records[3]])
    assert of_group(status(cli, topic, 0, 3), other)["status"] == "processed"


def test_records_status_refuses_an_offset_that_holds_no_record_naming_the_range(cli: Cli) -> None:
    # Given a partition with records at offsets 0 to 2, and an empty one
    topic = produce_source(cli, 3, partitions=1)[0].topic
    empty = cli.new_topic(1)

    # When the next offset, then any offset of the empty partition, is asked for
    past_end = cli.fails("records", "status", topic, "-p", "0", "--offset", "3")
    nothing = cli.fails("records", "status", empty, "-p", "0", "--offset", "0")

    # Then both are refused, naming the offsets that exist
    assert past_end == (
        f"error: offset 3 is out of range for {topic}/0: it holds offsets 0 to 2 (log start offset 0, next offset 3)"
    )
    assert nothing == (
        f"error: offset 0 is out of range for {empty}/0: it holds no records (log start offset 0, next offset 0)"
    )
    assert "partition 1 does not exist" in cli.fails("records", "status", topic, "-p", "1", "--offset", "0")
