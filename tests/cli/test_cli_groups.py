"""`logsvc consume --group` and `logsvc groups ...`, as subprocesses against a real broker."""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import time
from typing import IO, Any

import pytest

from logsvc.cli.groups import parse_topic_partitions
from tests.cli.conftest import Cli
from tests.cli.test_cli_produce_consume import consume_json, produce_lines

_groups = itertools.count()


def new_group() -> str:
    return f"g{next(_groups)}-{os.getpid()}"


def read_lines(stream: IO[bytes], count: int, timeout_s: float = 10) -> list[bytes]:
    """``count`` lines from a child's pipe (read unbuffered), failing the test instead of hanging."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while data.count(b"\n") < count:
        readable, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        assert readable, f"no more output within {timeout_s} s after {data!r}"
        chunk = os.read(stream.fileno(), 65536)
        assert chunk, f"the output ended after {data!r}"
        data += chunk
    return data.splitlines(keepends=True)


def describe(cli: Cli, group: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(cli.ok("groups", "describe", group, "-o", "json").stdout)
    return result


def committed(cli: Cli, group: str) -> dict[int, int | None]:
    return {p["partition"]: p["committed_offset"] for p in describe(cli, group)["partitions"]}


def topic_with_records(cli: Cli, partitions: int = 2, records: int = 10) -> str:
    topic = cli.new_topic(partitions)
    produce_lines(cli, topic, [b"k%d:v%d" % (i, i) for i in range(records)], "--key-separator", ":")
    return topic


def test_consume_with_a_group_commits_what_it_printed_and_the_next_run_resumes_there(cli: Cli) -> None:
    # Given 10 records on 2 partitions
    topic, group = topic_with_records(cli), new_group()

    # When a group member prints 4 of them and stops (--max-records)
    first = consume_json(cli, topic, "--group", group, "--max-records", "4")

    # Then exactly those 4 are committed, and the member has left the group
    assert len(first) == 4
    printed = {p: max(r["offset"] for r in first if r["partition"] == p) + 1 for p in {r["partition"] for r in first}}
    assert {p: o for p, o in committed(cli, group).items() if o is not None} == printed
    assert describe(cli, group)["members"] == []

    # And the next member of the group prints the other 6, nothing twice
    second = consume_json(cli, topic, "--group", group, "--timeout-ms", "1500")
    seen = [(r["partition"], r["offset"]) for r in first + second]
    assert len(seen) == len(set(seen)) == 10
    assert sum(o or 0 for o in committed(cli, group).values()) == 10


def test_groups_list_and_describe_show_committed_offsets_lag_and_owners(cli: Cli) -> None:
    # Given a group that consumed 3 of 10 records of a 1-partition topic
    topic, group = topic_with_records(cli, partitions=1), new_group()
    consume_json(cli, topic, "--group", group, "-n", "3")

    # When the groups are listed and the group described, as JSON and as tables
    listed = json.loads(cli.ok("groups", "list", "-o", "json").stdout)
    described = describe(cli, group)
    table = cli.ok("groups", "list").stdout.decode().splitlines()
    text = cli.ok("groups", "describe", group).stdout.decode().splitlines()

    # Then the group is there, empty, with committed offset 3, next offset 10, lag 7
    assert {"group": group, "state": "Empty", "members": 0} in listed
    assert table[0].split() == ["GROUP", "STATE", "MEMBERS"] and [group, "Empty", "0"] in [r.split() for r in table]
    assert described["state"] == "Empty" and described["members"] == []
    [partition] = described["partitions"]
    assert partition["topic"] == topic and partition["partition"] == 0
    assert (partition["committed_offset"], partition["next_offset"], partition["lag"]) == (3, 10, 7)
    assert partition["lag_ms"] >= 0 and partition["owner"] is None
    assert ["group:", group] in [line.split() for line in text]
    header = next(line for line in text if line.startswith("TOPIC"))
    assert header.split() == ["TOPIC", "PARTITION", "COMMITTED", "NEXT", "OFFSET", "LAG", "LAG", "(S)", "OWNER"]
    assert [topic, "0", "3", "10", "7"] == next(line.split() for line in text if line.startswith(topic))[:5]


def test_reset_offsets_is_a_dry_run_unless_executed_and_then_a_fresh_consume_sees_everything_again(cli: Cli) -> None:
    # Given a group that consumed all 10 records of 2 partitions
    topic, group = topic_with_records(cli), new_group()
    assert len(consume_json(cli, topic, "--group", group, "--timeout-ms", "1500")) == 10
    before = committed(cli, group)

    # When a reset to the earliest offsets is run without --execute
    dry = cli.ok("groups", "reset-offsets", group, "--topic", topic, "--to-earliest")

    # Then it prints the before/after table, says it was a dry run, and changes nothing
    rows = [line.split() for line in dry.stdout.decode().splitlines()]
    assert rows[0] == ["TOPIC", "PARTITION", "BEFORE", "AFTER"]
    assert rows[1:] == [[topic, str(p), str(before[p]) if before[p] is not None else "-", "0"] for p in (0, 1)]
    assert b"dry run" in dry.stderr
    assert committed(cli, group) == before

    # When it is executed
    done = json.loads(
        cli.ok("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute", "-o", "json").stdout
    )

    # Then the offsets are 0, and a fresh consume of the group sees all 10 records again
    assert done["executed"] is True and [r["after"] for r in done["resets"]] == [0, 0]
    assert committed(cli, group) == {0: 0, 1: 0}
    again = consume_json(cli, topic, "--group", group, "--timeout-ms", "1500")
    assert sorted(r["value"] for r in again) == sorted(f"v{i}" for i in range(10))


def test_every_reset_spec_is_clamped_to_the_log(cli: Cli) -> None:
    # Given a group at offset 3 of a 1-partition topic of 10 records
    topic, group = topic_with_records(cli, partitions=1), new_group()
    consume_json(cli, topic, "--group", group, "-n", "3")

    def after(*spec: str) -> int:
        out = json.loads(cli.ok("groups", "reset-offsets", group, "--topic", f"{topic}:0", *spec, "-o", "json").stdout)
        assert out["executed"] is False and out["resets"][0]["before"] == 3
        value: int = out["resets"][0]["after"]
        return value

    # Then each spec moves it where it says, within [log start, next offset]
    assert after("--to-latest") == 10
    assert after("--to-offset", "7") == 7
    assert after("--to-offset", "99") == 10
    assert after("--shift-by", "-2") == 1
    assert after("--shift-by", "-50") == 0
    assert after("--shift-by", "4") == 7
    assert after("--to-datetime", "2000-01-01T00:00:00Z") == 0
    assert after("--to-datetime", "2100-01-01") == 10
    assert after("--by-duration", "1d") == 0
    assert after("--by-duration", "0s") == 10


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of"),
        (("--to-earliest", "--to-latest"), "exactly one of"),
        (("--by-duration", "15 minutes"), "not a duration"),
        (("--to-datetime", "yesterday"), "ISO-8601"),
    ],
)
def test_a_reset_needs_exactly_one_valid_spec(cli: Cli, args: tuple[str, ...], message: str) -> None:
    line = cli.fails("groups", "reset-offsets", "g", "--topic", "t", *args, code=2)
    assert message in line


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_reset_and_delete_are_refused_while_a_member_is_live_and_stopping_it_commits_and_leaves(
    cli: Cli, stop: signal.Signals
) -> None:
    # Given `consume --group` following a topic
    topic, group = topic_with_records(cli, partitions=1, records=3), new_group()
    with cli.popen("consume", topic, "--group", group) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            assert read_lines(proc.stdout, 3) == [b"v0\n", b"v1\n", b"v2\n"]
            # When the group's offsets are reset or the group deleted while it is a member
            refused = cli.fails("groups", "reset-offsets", group, "--topic", topic, "--to-earliest", "--execute")
            not_deleted = cli.fails("groups", "delete", group)
            # Then both are refused with one clear line naming the live member
            [member] = describe(cli, group)["members"]
            assert "live member" in refused and member["member_id"] in refused
            assert "live member" in not_deleted
        finally:
            # When it is stopped with Ctrl-C or SIGTERM
            proc.send_signal(stop)
            code = proc.wait(10)
        assert code == 0
        assert proc.stderr.read() == b""
    # Then it committed what it printed and left the group at once
    desc = describe(cli, group)
    assert desc["members"] == [] and desc["partitions"][0]["committed_offset"] == 3


def test_a_group_is_deleted_with_its_offsets(cli: Cli) -> None:
    # Given a group with committed offsets
    topic, group = topic_with_records(cli, partitions=1), new_group()
    consume_json(cli, topic, "--group", group, "-n", "2")

    # When it is deleted
    deleted = cli.ok("groups", "delete", group)

    # Then it is gone from the list, and deleting it again is a clear error
    assert f"deleted group {group}" in deleted.stdout.decode()
    assert group not in [g["group"] for g in json.loads(cli.ok("groups", "list", "-o", "json").stdout)]
    assert cli.fails("groups", "delete", group) == f"error: group {group} not found"
    # And a new member of that group starts from the beginning again
    assert len(consume_json(cli, topic, "--group", group, "-n", "10")) == 10


def test_consume_group_rejects_a_partition_or_an_offset_start(cli: Cli) -> None:
    assert "--partition" in cli.fails("consume", "t", "--group", "g", "-p", "0", code=2)
    assert "earliest or latest" in cli.fails("consume", "t", "--group", "g", "--from", "5", code=2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("orders", ("orders", None)), ("orders:2,0,2", ("orders", [0, 2])), ("a.b-c_d:7", ("a.b-c_d", [7]))],
)
def test_topic_partition_lists_parse(text: str, expected: tuple[str, list[int] | None]) -> None:
    assert parse_topic_partitions(text) == expected


@pytest.mark.parametrize("text", ["", ":1", "orders:", "orders:x", "orders:1,,2", "orders:-1"])
def test_malformed_topic_partition_lists_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_topic_partitions(text)


def test_describe_wait_caught_up_waits_for_the_group_to_exist_and_reach_lag_0_or_fails_after_its_timeout(
    cli: Cli,
) -> None:
    # Given 10 records and a group that consumed 3 of them
    topic, group = topic_with_records(cli, partitions=1), new_group()
    consume_json(cli, topic, "--group", group, "-n", "3")

    # When describe waits for it to catch up, while nothing consumes
    behind = cli.fails("groups", "describe", group, "--wait-caught-up", "1")
    missing = cli.fails("groups", "describe", new_group(), "--wait-caught-up", "0.5")

    # Then it fails after the timeout, saying what is left
    assert behind == f"error: group {group} has not caught up after 1 s (lag 7)"
    assert "does not exist" in missing

    # When a member reads the rest while describe waits
    waiting = cli.popen("groups", "describe", group, "--wait-caught-up", "20", "-o", "json")
    consume_json(cli, topic, "--group", group, "-e")
    out, _ = waiting.communicate(timeout=30)

    # Then describe returns once the lag is 0, with that description
    assert waiting.returncode == 0
    assert [p["lag"] for p in json.loads(out)["partitions"]] == [0]
