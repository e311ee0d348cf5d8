"""`logsvc topics ...`, the global options and error reporting, run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.conftest import Cli
from tests.conftest import cli_env


def test_a_topic_is_created_listed_described_and_deleted_as_tables(cli: Cli) -> None:
    # Given a new topic with 3 partitions and a retention setting
    name = cli.new_topic(3, "retention_ms=60000")

    # When it is listed and described as tables
    listed = cli.ok("topics", "list").stdout.decode()
    described = cli.ok("topics", "describe", name).stdout.decode()

    # Then the list has its row, and the description its config and one aligned row per partition
    assert any(line.split() == [name, "3"] for line in listed.splitlines())
    assert listed.splitlines()[0].split() == ["TOPIC", "PARTITIONS"]
    assert ["topic:", name] in [line.split() for line in described.splitlines()]
    assert "retention_ms=60000" in described
    rows = [line.split() for line in described.splitlines() if line.strip()[:1].isdigit()]
    assert [r[:4] for r in rows] == [["0", "0", "0", "0"], ["1", "0", "0", "0"], ["2", "0", "0", "0"]]

    # When it is deleted
    deleted = cli.ok("topics", "delete", name)

    # Then it is gone from the list
    assert f"deleted topic {name}" in deleted.stdout.decode()
    assert name not in cli.ok("topics", "list").stdout.decode()


def test_topics_commands_print_json_with_output_json(cli: Cli) -> None:
    # Given a topic created with -o json
    name = f"json-{cli.new_topic()}"
    created = json.loads(cli.ok("topics", "create", name, "--partitions", "2", "-o", "json").stdout)

    # When it is listed and described as JSON
    listed = json.loads(cli.ok("topics", "list", "--output", "json").stdout)
    described = json.loads(cli.ok("topics", "describe", name, "-o", "json").stdout)
    deleted = json.loads(cli.ok("topics", "delete", name, "-o", "json").stdout)

    # Then every answer is one parseable document with the topic's fields
    assert created["name"] == name and len(created["partitions"]) == 2
    assert {"name": name, "partitions": 2} in listed
    assert described["topic_id"] == created["topic_id"]
    assert described["config"]["timestamp_type"] == "CreateTime"
    assert described["partitions"][1] == {
        "partition": 1,
        "log_start_offset": 0,
        "next_offset": 0,
        "record_count": 0,
        "bytes": 0,
        "first_timestamp_ms": -1,
        "last_timestamp_ms": -1,
    }
    assert deleted == {"deleted": name}


def test_a_topic_is_altered_adding_partitions_and_changing_config(cli: Cli) -> None:
    # Given a 2-partition topic that keeps records a minute
    name = cli.new_topic(2, "retention_ms=60000")

    # When it grows to 4 partitions, keeps records a day, and max_batch_bytes is reset
    done = cli.ok(
        "topics", "alter", name, "--partitions", "4", "--config", "retention_ms=86400000",
        "--reset-config", "max_batch_bytes", "-o", "json",
    )  # fmt: skip

    # Then the new description says so
    altered = json.loads(done.stdout)
    assert [p["partition"] for p in altered["partitions"]] == [0, 1, 2, 3]
    assert altered["config"]["retention_ms"] == "86400000"
    assert altered["config"]["max_batch_bytes"] == "8388608"
    # And shrinking it, or altering nothing, is refused with one error line
    assert cli.fails("topics", "alter", name, "--partitions", "3") == (
        f"error: topic {name} has 4 partitions; partitions can be added, never removed (asked for 3)"
    )
    assert "give --partitions, --config or --reset-config" in cli.fails("topics", "alter", name, code=2)


def test_an_invalid_topic_name_is_one_error_line_and_exit_1(cli: Cli) -> None:
    # When a topic with a space in its name is created
    line = cli.fails("topics", "create", "bad name", "--partitions", "1")

    # Then the error names the value that was wrong
    assert "invalid topic name 'bad name'" in line


def test_an_unknown_topic_and_a_bad_config_key_are_clear_errors(cli: Cli) -> None:
    # When a missing topic is described, and a topic is created with an unknown config key
    missing = cli.fails("topics", "describe", "no-such-topic")
    bad_config = cli.fails("topics", "create", "cfg-topic", "--partitions", "1", "--config", "colour=blue")

    # Then each error names what was wrong
    assert "no-such-topic" in missing
    assert "colour" in bad_config


def test_bad_usage_is_one_error_line_and_exit_2(cli: Cli) -> None:
    # When --partitions is missing, or not a number
    missing = cli.fails("topics", "create", "x", code=2)
    not_a_number = cli.fails("topics", "create", "x", "--partitions", "many", code=2)

    # Then click's message is shortened to one line pointing at the command's help
    assert "--partitions" in missing and "logsvc topics create --help" in missing
    assert "'many' is not a valid integer" in not_a_number


def test_an_unreachable_server_is_reported_with_its_address(cli: Cli) -> None:
    # Given an address where nothing listens
    cli = Cli("127.0.0.1:1", cli.data_dir)

    # When topics are listed there
    line = cli.fails("topics", "list")

    # Then the error says which broker cannot be reached
    assert line.startswith("error: cannot reach logsvc at 127.0.0.1:1 (")


def test_the_server_comes_from_logsvc_server_when_no_flag_is_given(cli: Cli) -> None:
    # Given LOGSVC_SERVER pointing at the broker and no --server flag
    name = cli.new_topic()

    # When topics are listed
    done = cli.run("topics", "list", server=False, env={"LOGSVC_SERVER": cli.address})

    # Then the broker from the environment answered
    assert done.returncode == 0 and name in done.stdout.decode()


def test_server_given_after_the_command_wins(cli: Cli) -> None:
    # Given a wrong global address and the right one after the command
    done = cli.run("topics", "list", "--server", cli.address, server=False, env={"LOGSVC_SERVER": "127.0.0.1:1"})

    # Then the command used the later one
    assert done.returncode == 0, done.stderr


def test_the_main_help_shows_examples_and_every_command() -> None:
    # When the top-level help is shown
    done = subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "--help"], capture_output=True, env=cli_env(), timeout=30
    )

    # Then it lists the commands and shows examples
    text = done.stdout.decode()
    assert done.returncode == 0
    assert "Examples:" in text
    for command in ("serve", "topics", "produce", "consume", "partitions"):
        assert f"  {command}" in text


def test_create_with_if_not_exists_succeeds_on_an_existing_topic_and_leaves_it_as_it_is(cli: Cli) -> None:
    # Given a topic with 2 partitions
    name = cli.new_topic(2)

    # When it is created again with --if-not-exists (and another partition count), then without
    again = cli.ok("topics", "create", name, "--partitions", "4", "--if-not-exists")
    as_json = json.loads(cli.ok("topics", "create", name, "--partitions", "2", "--if-not-exists", "-o", "json").stdout)
    refused = cli.fails("topics", "create", name, "--partitions", "2")

    # Then the first two succeed, saying so, and the topic keeps its 2 partitions; without the flag it is an error
    assert again.stdout.decode().strip() == f"kept existing topic {name} with 2 partition(s)"
    assert "already exists with 2 partition(s), not 4" in again.stderr.decode()
    assert as_json["name"] == name and len(as_json["partitions"]) == 2
    assert "already exists" in refused
    # ... and a new topic is created as usual
    created = cli.ok("topics", "create", f"{name}-new", "--partitions", "1", "--if-not-exists")
    assert created.stdout.decode().strip() == f"created topic {name}-new with 1 partition(s)"


def test_numbers_no_field_can_hold_are_one_error_line_naming_the_value(cli: Cli) -> None:
    # Given a topic
    topic = cli.new_topic(2)
    huge = "99999999999999999999"  # past 2^64

    # When numbers too big for the wire's integer fields are given to each kind of command
    usage = [  # refused by the option itself: exit 2, pointing at --help
        cli.fails("topics", "create", "huge-partitions", "--partitions", "99999999999", code=2),
        cli.fails("topics", "alter", topic, "--partitions", "99999999999", code=2),
        cli.fails("consume", topic, "--partition", "99999999999", "-e", code=2),
        cli.fails("offsets", topic, "--at", huge, code=2),
        cli.fails("consume", topic, "--from", f"@{huge}", "-e", code=2),
        cli.fails("groups", "reset-offsets", "g-huge", "--topic", topic, "--to-offset", huge, "--execute", code=2),
        cli.fails("quotas", "set", "User:huge", "--produce-bytes-per-second", huge, code=2),
    ]
    refused = cli.fails("topics", "create", "huge-retention", "--partitions", "1", "--config", f"retention.ms={huge}")

    # Then each is one error line naming the value and the range it must be in, never an
    # "unexpected" error
    for line in [*usage, refused]:
        assert "unexpected" not in line, line
        assert huge in line or "99999999999" in line, line
        assert " to " in line or "<=x<=" in line, line
    # and nothing was created
    listed = cli.ok("topics", "list").stdout.decode()
    assert "huge-partitions" not in listed and "huge-retention" not in listed
