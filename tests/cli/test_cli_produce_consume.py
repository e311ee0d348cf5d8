"""`logsvc produce` and `logsvc consume`, as subprocesses against a real broker."""

from __future__ import annotations

import datetime as dt
import json
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, Any

from tests.cli.conftest import Cli
from tests.conftest import BrokerProcess, cli_env


def read_line(stream: IO[bytes], timeout_s: float = 10) -> bytes:
    """One line from a child's pipe, failing the test instead of hanging."""
    readable, _, _ = select.select([stream], [], [], timeout_s)
    assert readable, f"no output within {timeout_s} s"
    return stream.readline()


def consume_json(cli: Cli, topic: str, *args: str) -> list[dict[str, Any]]:
    out = cli.ok("consume", topic, "-o", "json", *args).stdout.decode()
    return [json.loads(line) for line in out.splitlines()]


def produce_lines(cli: Cli, topic: str, lines: list[bytes], *args: str) -> None:
    cli.ok("produce", topic, *args, input=b"".join(line + b"\n" for line in lines))


def test_produce_acknowledges_each_line_while_stdin_is_still_open(cli: Cli) -> None:
    # Given `logsvc produce -o json` with its stdin kept open
    topic = cli.new_topic()
    with cli.popen("produce", topic, "-o", "json") as proc:
        assert proc.stdin is not None and proc.stdout is not None
        # When one line is written
        proc.stdin.write(b"first\n")
        proc.stdin.flush()

        # Then its acknowledgement arrives before the input ends
        assert json.loads(read_line(proc.stdout)) == {"partition": 0, "offset": 0}

        # And so does the next one's
        proc.stdin.write(b"second\n")
        proc.stdin.flush()
        assert json.loads(read_line(proc.stdout)) == {"partition": 0, "offset": 1}
        proc.stdin.close()
        assert proc.wait(10) == 0
        assert proc.stdout.read() == b""


def test_produce_prints_a_summary_on_stderr_and_nothing_on_stdout(cli: Cli) -> None:
    # Given a topic with 2 partitions
    topic = cli.new_topic(2)

    # When three lines are produced without -o json, the last without a newline
    done = cli.ok("produce", topic, input=b"a\nb\nc")

    # Then stdout is empty, stderr has the count, and all three were stored
    assert done.stdout == b""
    assert b"3 record(s) produced" in done.stderr
    assert sorted(r["value"] for r in consume_json(cli, topic, "--max-records", "3")) == ["a", "b", "c"]


def test_keys_headers_and_tombstones_round_trip_through_consume_json(cli: Cli) -> None:
    # Given keyed lines with headers, one of them with an empty value sent as a tombstone
    topic = cli.new_topic()
    produce_lines(
        cli,
        topic,
        [b"user-1:a:b", b"user-2:", b":no key?"],
        "--key-separator", ":", "--header", "source=cli", "-H", "n=1", "--null-value",
    )  # fmt: skip

    # When they are consumed as JSON
    records = consume_json(cli, topic, "--max-records", "3")

    # Then key and value split at the first separator, headers come along, empty value is null
    assert [(r["offset"], r["key"], r["value"]) for r in records] == [
        (0, "user-1", "a:b"),
        (1, "user-2", None),
        (2, "", "no key?"),
    ]
    assert all(r["headers"] == [["source", "cli"], ["n", "1"]] for r in records)
    assert all(r["topic"] == topic and r["partition"] == 0 and r["timestamp"] > 0 for r in records)


def test_a_line_without_the_key_separator_is_an_error(cli: Cli) -> None:
    # When a line lacks the separator
    topic = cli.new_topic()
    line = cli.fails("produce", topic, "--key-separator", "=", input=b"k=v\nnope\n")

    # Then the error names the line
    assert line == "error: line 2 has no key separator '='"


def test_values_that_are_not_utf8_are_shown_as_base64(cli: Cli) -> None:
    # Given a value that is not UTF-8 and one that is (not ASCII)
    topic = cli.new_topic()
    produce_lines(cli, topic, [b"\xff\xfe\x00", "grüße".encode()])

    # When consumed as JSON and as plain lines
    records = consume_json(cli, topic, "-n", "2")
    plain = cli.ok("consume", topic, "-n", "2").stdout

    # Then the binary value is base64-marked, the text is text, and plain output is the bytes
    assert [r["value"] for r in records] == [{"base64": "//4A"}, "grüße"]
    assert plain == b"\xff\xfe\x00\n" + "grüße".encode() + b"\n"


def test_consume_starts_at_an_offset_and_stops_after_max_records(cli: Cli) -> None:
    # Given five records
    topic = cli.new_topic()
    produce_lines(cli, topic, [b"v%d" % i for i in range(5)])

    # When consuming two from offset 2, and everything from earliest with a key column
    from_two = cli.ok("consume", topic, "--from", "2", "--max-records", "2").stdout
    keyed = cli.ok("consume", topic, "-n", "5", "--key-separator", "=").stdout

    # Then exactly those records are printed
    assert from_two == b"v2\nv3\n"
    assert keyed.splitlines()[0] == b"null=v0"


def test_consume_with_timeout_stops_when_no_new_record_arrives(cli: Cli) -> None:
    # Given three records
    topic = cli.new_topic()
    produce_lines(cli, topic, [b"a", b"b", b"c"])

    # When consuming from earliest and from latest with a short timeout
    everything = cli.ok("consume", topic, "--timeout-ms", "300")
    nothing = cli.ok("consume", topic, "--from", "latest", "--timeout-ms", "300")

    # Then the first prints all three and ends, the second prints nothing and ends
    assert everything.stdout == b"a\nb\nc\n"
    assert nothing.stdout == b""


def test_consume_from_a_time_skips_older_records(cli: Cli) -> None:
    # Given two records produced, a moment, then two more
    topic = cli.new_topic()
    produce_lines(cli, topic, [b"old-1", b"old-2"])
    time.sleep(0.05)
    middle = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    produce_lines(cli, topic, [b"new-1", b"new-2"])

    # When consuming from the moment in between (ISO-8601), and from an hour ago (duration)
    iso = middle.replace(tzinfo=None).isoformat(timespec="milliseconds")  # naive means UTC
    since_middle = cli.ok("consume", topic, "--from", f"@{iso}", "--timeout-ms", "300").stdout
    last_hour = cli.ok("consume", topic, "--from", "@-1h", "--timeout-ms", "300").stdout

    # Then only the newer records, or all of them, are printed
    assert since_middle == b"new-1\nnew-2\n"
    assert last_hour == b"old-1\nold-2\nnew-1\nnew-2\n"


def test_an_offset_out_of_range_is_a_clear_error(cli: Cli) -> None:
    # Given a partition holding offsets 0 and 1
    topic = cli.new_topic()
    produce_lines(cli, topic, [b"a", b"b"])

    # When consuming from offset 99
    line = cli.fails("consume", topic, "--partition", "0", "--from", "99")

    # Then the error names the offset and the valid range
    assert line == f"error: offset 99 is out of range for {topic}/0: the log start offset is 0 and the next offset 2"


def test_a_bad_from_value_is_a_usage_error(cli: Cli) -> None:
    # When --from is neither a keyword, an offset nor a time
    line = cli.fails("consume", "any", "--from", "@yesterday", code=2)

    # Then the error explains the accepted forms
    assert "'yesterday' is not an ISO-8601 time" in line


def test_following_consume_prints_new_records_and_exits_quietly_on_ctrl_c(cli: Cli) -> None:
    # Given a consumer following an empty topic
    topic = cli.new_topic()
    with cli.popen("consume", topic) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            # When a record is produced while it follows
            produce_lines(cli, topic, [b"live"])

            # Then it prints the record
            assert read_line(proc.stdout) == b"live\n"
        finally:
            # And on Ctrl-C it exits 0 with nothing on stderr
            proc.send_signal(signal.SIGINT)
            code = proc.wait(10)
        assert code == 0
        assert proc.stderr.read() == b""


def test_consume_piped_into_a_reader_that_stops_exits_quietly(cli: Cli) -> None:
    # Given enough records to fill a pipe several times over
    topic = cli.new_topic()
    produce_lines(cli, topic, [b"x" * 200] * 3000)

    # When the reader takes one line and closes the pipe (like `| head -1`)
    argv = cli.argv("consume", topic, "-n", "3000")
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert read_line(proc.stdout) == b"x" * 200 + b"\n"
        proc.stdout.close()

        # Then the consumer ends without an error or a traceback
        assert proc.wait(10) == 0
        assert proc.stderr.read() == b""


def test_produce_to_a_missing_topic_creates_it_on_a_broker_that_auto_creates_topics(tmp_path: Path) -> None:
    # Given a broker started with --auto-create-topics (default_partitions 1)
    broker = BrokerProcess(tmp_path / "data", "--auto-create-topics", base_env=cli_env()).start()
    try:
        cli = Cli(broker.address, tmp_path)
        # When the CLI produces to a topic nobody created
        cli.ok("produce", "autotopic", input=b"one\ntwo\n")
        # Then the topic exists and holds both lines
        out = cli.ok("consume", "autotopic", "--from", "earliest", "--max-records", "2", "--timeout-ms", "5000")
        assert out.stdout == b"one\ntwo\n"
    finally:
        broker.kill()
