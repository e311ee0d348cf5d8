"""Hostile ids in human-readable output: control characters a client, a producer or a broker put
in a string (client and instance ids, group names, header names, keys) are shown as escapes in
tables, fields, notes and error lines, never written to the terminal raw. (Topic and group names
cannot hold them: the broker refuses such names.)"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from logsvc.cli.output import format_table, preview, printable
from logsvc_client import Consumer
from tests.cli.conftest import Cli
from tests.cli.test_cli_produce_consume import produce_lines

HOSTILE = "evil\x1b[2J\x1b]0;pwned\x07\r\nFORGED  ROW\u202e"
RAW = (b"\x1b", b"\r", b"\x07", "\u202e".encode())
_groups = itertools.count()


def assert_no_control_bytes(out: bytes) -> None:
    for raw in RAW:
        assert raw not in out, f"{raw!r} printed raw in {out!r}"


@pytest.fixture
def hostile_member(cli: Cli) -> Iterator[tuple[str, str]]:
    """A live member whose client and instance ids hold ESC, BEL, CR, LF and a bidi override:
    (group, topic)."""
    topic = cli.new_topic()
    group = f"hostile-ids{next(_groups)}-{os.getpid()}"  # apart from the other tests' g<N>-<pid> groups
    with Consumer(cli.address, group, client_id=HOSTILE, instance_id=HOSTILE) as consumer:
        consumer.subscribe(topic)
        consumer.poll(timeout_ms=3_000)
        assert consumer.assignment()
        yield group, topic


def test_printable_escapes_control_characters_and_keeps_other_text() -> None:
    # Given text with control, separator and format characters next to ordinary non-ASCII text
    # When it is made printable
    shown = printable("caf\u00e9 \u00fcber\x1b[31m\r\n\t\x00\x7f\x9b\u2028\u202e ok")

    # Then each invisible character is an escape and the rest stays as it was
    assert shown == "caf\u00e9 \u00fcber\\x1b[31m\\r\\n\\t\\x00\\x7f\\x9b\\u2028\\u202e ok"
    assert printable(shown) == shown
    assert preview(b"a\nb") == "a\\nb"


def test_a_table_cell_with_a_newline_stays_on_its_row() -> None:
    # Given a row whose text cell holds CR and LF
    # When the table is formatted
    table = format_table(("ID", "N"), [("a\r\nFORGED", 1), ("b", 2)])

    # Then it has a header and two rows, the cell escaped
    assert table.splitlines() == ["ID           N", "a\\r\\nFORGED  1", "b            2"]


def test_groups_describe_escapes_a_members_client_and_instance_ids(cli: Cli, hostile_member: tuple[str, str]) -> None:
    # Given a live member whose client id and instance id hold terminal escapes and CR/LF
    group, _ = hostile_member

    # When the group is described as a table
    out = cli.ok("groups", "describe", group).stdout

    # Then no control byte reaches the terminal, the ids show as escapes, and no row is forged
    assert_no_control_bytes(out)
    text = out.decode()
    escaped = "evil\\x1b[2J\\x1b]0;pwned\\x07\\r\\nFORGED  ROW\\u202e"
    assert text.count(escaped) == 2  # the instance id and the client id
    assert not any(line.startswith("FORGED") for line in text.splitlines())
    members = text.split("\n\n")[1].splitlines()
    assert len(members) == 2  # the header and the one member

    # And JSON keeps the exact ids (JSON escapes them)
    desc = json.loads(cli.ok("groups", "describe", group, "-o", "json").stdout)
    assert desc["members"][0]["client_id"] == HOSTILE
    assert desc["members"][0]["instance_id"] == HOSTILE


def test_partitions_dump_escapes_keys_values_and_header_names(cli: Cli) -> None:
    # Given a record whose key, value and header name and value hold control characters
    topic = cli.new_topic()
    produce_lines(
        cli,
        topic,
        [b"k\x1b[2J|v\x1b]0;pwned\x07\rFORGED"],
        "--key-separator",
        "|",
        "--header",
        f"h{HOSTILE}=x\x1b[31m",
    )

    # When the partition is dumped as text
    out = cli.ok("partitions", "dump", topic, "--partition", "0").stdout

    # Then every one of them is escaped, and the record is one line
    assert_no_control_bytes(out)
    text = out.decode()
    assert "key=k\\x1b[2J" in text and "v\\x1b]0;pwned\\x07\\rFORGED" in text
    assert "hevil\\x1b[2J" in text and "=x\\x1b[31m" in text
    assert len(text.splitlines()) == 2  # the batch line and the record line


def test_an_error_line_escapes_what_the_user_gave(cli: Cli, tmp_path: Path) -> None:
    # Given a config path holding terminal escapes, which does not exist
    config = tmp_path / "conf\x1b[2J\x07.toml"

    # When a connector is started with it
    error = cli.fails("connect", "python", "--config", str(config))

    # Then the one error line names it escaped
    assert "\x1b" not in error and "conf\\x1b[2J\\x07.toml" in error
