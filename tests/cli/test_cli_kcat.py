"""kcat habits in the CLI, as subprocesses against a real broker: consume -f/-e/-o/-Z, several
topics and patterns, produce -D/FILE/--jsonl, logsvc offsets, Kafka's topic config names, --debug
after the command."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.cli.conftest import Cli


def consume_json(cli: Cli, *args: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in cli.ok("consume", *args, "-e", "-q", "--output", "json").stdout.splitlines()]


def test_a_format_string_prints_every_code(cli: Cli) -> None:
    # Given a keyed record with two headers, and a tombstone without a key
    topic = cli.new_topic()
    cli.ok("produce", topic, "-K", ":", "-H", "a=1", "-H", "b=x y", "-Z", input=b"k1:v\xffalue\nk2:\n")
    cli.ok("produce", topic, input=b"plain\n")
    stamps = [r["timestamp"] for r in consume_json(cli, topic)]

    # When consumed with a format string using every %-code and escape
    fmt = "%t|%p|%o|%k|%s|%S|%K|%T|%h|%%|\\t|\\\\\\n"
    out = cli.ok("consume", topic, "-e", "-q", "-f", fmt).stdout

    # Then each record is printed byte for byte as the format says (null as null, lengths -1)
    assert out == (
        f"{topic}|0|0|k1|".encode() + b"v\xffalue" + f"|6|2|{stamps[0]}|a=1,b=x y|%|\t|\\\n".encode()
        + f"{topic}|0|1|k2|null|-1|2|{stamps[1]}|a=1,b=x y|%|\t|\\\n".encode()
        + f"{topic}|0|2|null|plain|5|-1|{stamps[2]}||%|\t|\\\n".encode()
    )  # fmt: skip


def test_minus_z_tells_a_tombstone_from_the_text_null(cli: Cli) -> None:
    # Given the text "null" and a tombstone
    topic = cli.new_topic()
    cli.ok("produce", topic, "-Z", input=b"null\n\n")

    # When consumed plainly (as before), with -Z, and with a format showing the length
    plain = cli.ok("consume", topic, "-e").stdout
    kcat = cli.ok("consume", topic, "-e", "-Z").stdout
    lengths = cli.ok("consume", topic, "-e", "-Z", "-f", "%s %S\\n").stdout

    # Then the default is unchanged, and -Z prints kcat's NULL for the tombstone only
    assert plain == b"null\nnull\n"
    assert kcat == b"null\nNULL\n"
    assert lengths == b"null 4\nNULL -1\n"


def test_exit_at_end_stops_after_exactly_the_records_there_at_start(cli: Cli) -> None:
    # Given two partitions holding 5 records, and an empty topic
    topic = cli.new_topic(2)
    cli.ok("produce", topic, "-K", ":", input=b"".join(b"k%d:v%d\n" % (i, i) for i in range(5)))
    empty = cli.new_topic(3)

    # When consuming with -e and no timeout
    started = time.monotonic()
    done = cli.ok("consume", topic, "-e")
    nothing = cli.ok("consume", empty, "-e", "-q")

    # Then exactly the 5 records are printed, each partition's end noted, and the empty one exits at once
    assert sorted(done.stdout.splitlines()) == [b"v0", b"v1", b"v2", b"v3", b"v4"]
    assert sorted(done.stderr.decode().splitlines()) == [
        f"reached the end of {topic}/0 at offset {len([r for r in consume_json(cli, topic) if r['partition'] == 0])}",
        f"reached the end of {topic}/1 at offset {len([r for r in consume_json(cli, topic) if r['partition'] == 1])}",
    ]
    assert nothing.stdout == b"" and nothing.stderr == b""
    assert time.monotonic() - started < 15


def test_from_minus_n_gives_the_last_n_of_each_partition(cli: Cli) -> None:
    # Given two partitions with several records each
    topic = cli.new_topic(2)
    for p in (0, 1):
        cli.ok("produce", topic, "-p", str(p), input=b"".join(b"p%d-%d\n" % (p, i) for i in range(4)))

    # When asking for the last 2 (--from -2, kcat's -o -2) and for more than there are
    last_two = consume_json(cli, topic, "--from", "-2")
    kcat = consume_json(cli, topic, "-o", "-2")
    too_many = consume_json(cli, topic, "-o", "-10")

    # Then each partition gives its last 2, or all it has
    assert sorted((r["partition"], r["offset"], r["value"]) for r in last_two) == [
        (0, 2, "p0-2"), (0, 3, "p0-3"), (1, 2, "p1-2"), (1, 3, "p1-3"),
    ]  # fmt: skip
    assert kcat == last_two
    assert len(too_many) == 8


def test_o_takes_kcat_offsets_and_still_the_output_format(cli: Cli) -> None:
    # Given a topic of four records, two before and two after a moment
    topic = cli.new_topic()
    cli.ok("produce", topic, input=b"a\nb\n")
    time.sleep(0.05)
    middle_ms = time.time_ns() // 1_000_000
    time.sleep(0.05)
    cli.ok("produce", topic, input=b"c\nd\n")

    # When -o is given offsets in kcat's forms, and json as before
    beginning = cli.ok("consume", topic, "-e", "-q", "-o", "beginning").stdout
    end = cli.ok("consume", topic, "-e", "-q", "-o", "end").stdout
    at_two = cli.ok("consume", topic, "-e", "-q", "-o", "2").stdout
    since = cli.ok("consume", topic, "-e", "-q", "-o", f"s@{middle_ms}").stdout
    until = cli.ok("consume", topic, "-q", "-o", "beginning", "-o", f"e@{middle_ms}").stdout
    as_json = cli.ok("consume", topic, "-e", "-o", "json", "-o", "-1").stdout

    # Then each starts (or stops) where kcat would, and -o json still means JSON
    assert (beginning, end, at_two, since, until) == (b"a\nb\nc\nd\n", b"", b"c\nd\n", b"c\nd\n", b"a\nb\n")
    assert json.loads(as_json)["value"] == "d"


def test_bad_kcat_options_are_one_error_line(cli: Cli) -> None:
    topic = cli.new_topic()
    # When -o, -f, a start twice, or stored without a group are wrong
    assert "-o takes json, table, or a kcat offset" in cli.fails("consume", topic, "-o", "yaml", code=2)
    assert "%x in '%x' is not a format code" in cli.fails("consume", topic, "-f", "%x", code=2)
    assert "give one start" in cli.fails("consume", topic, "-o", "end", "--from", "earliest", code=2)
    assert "stored needs --group" in cli.fails("consume", topic, "-o", "stored", code=2)
    assert "no topic matches" in cli.fails("consume", "^nothing-here-.*", code=2)


def test_several_topics_and_a_pattern_are_read_together(cli: Cli) -> None:
    # Given two topics sharing a prefix and a third
    prefix = f"{cli.new_topic()}-multi"
    for name in (f"{prefix}.a", f"{prefix}.b", f"other-{prefix}"):
        cli.ok("topics", "create", name, "--partitions", "1")
        cli.ok("produce", name, input=name.encode() + b"\n")

    # When consuming two named topics, a ^pattern, and a --pattern
    named = cli.ok("consume", f"{prefix}.a", "-t", f"other-{prefix}", "-e", "-q", "-f", "%t=%s\\n").stdout
    caret = cli.ok("consume", f"^{prefix}\\..*", "-e", "-q", "-f", "%t\\n").stdout
    flag = cli.ok("consume", f"{prefix}.[ab]", "--pattern", "-e", "-q", "-f", "%t\\n").stdout

    # Then the records of exactly the topics named or matched are printed
    assert sorted(named.decode().splitlines()) == sorted([f"{prefix}.a={prefix}.a", f"other-{prefix}=other-{prefix}"])
    assert sorted(caret.decode().splitlines()) == [f"{prefix}.a", f"{prefix}.b"]
    assert sorted(flag.decode().splitlines()) == [f"{prefix}.a", f"{prefix}.b"]


def test_nul_separated_binary_values_round_trip_byte_for_byte(cli: Cli) -> None:
    # Given values holding newlines, CR, 0xff and every other byte but NUL, joined by NUL
    topic = cli.new_topic()
    values = [b"line1\nline2\r\n", bytes(range(1, 256)), b"", b"\xff\xfe"]
    cli.ok("produce", topic, "-D", "\\0", input=b"\0".join(values) + b"\0")

    # When they are consumed with a NUL after each value (a format, and kcat's -D)
    out = cli.ok("consume", topic, "-e", "-q", "-f", "%s\\0").stdout
    delimited = cli.ok("consume", topic, "-e", "-q", "-D", "\\0").stdout

    # Then exactly those values come back, none split
    assert out.split(b"\0")[:-1] == values
    assert delimited == out == b"\0".join(values) + b"\0"


def test_multi_byte_delimiters_and_key_delimiters(cli: Cli) -> None:
    # Given records separated by "||" with keys after a tab
    topic = cli.new_topic()
    cli.ok("produce", topic, "-D", "||", "-K", "\\t", input=b"k1\ta|b||k2\tc\nd||")

    # Then each record splits at the first tab into key and value
    assert cli.ok("consume", topic, "-e", "-q", "-f", "%k=%s;").stdout == b"k1=a|b;k2=c\nd;"


def test_each_file_argument_is_one_record_unless_split(cli: Cli, tmp_path: Path) -> None:
    # Given two files, one of them binary with newlines, and an empty one
    files = {"one.bin": b"\x00\x01\n\x02\n", "two.txt": b"x\ny\n", "empty": b""}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    whole, split = cli.new_topic(), cli.new_topic()

    # When they are produced as FILE arguments, then split at lines with -l
    cli.ok("produce", whole, *(str(tmp_path / n) for n in files), "-Z")
    cli.ok("produce", split, str(tmp_path / "two.txt"), "-l")
    stdin_whole = cli.new_topic()
    cli.ok("produce", stdin_whole, "--whole-file", input=b"a\nb\n")

    # Then each file is one record (the empty one a tombstone with -Z), or one per line with -l
    assert cli.ok("consume", whole, "-e", "-q", "-Z", "-f", "%S:%s|").stdout == b"5:\x00\x01\n\x02\n|4:x\ny\n|-1:NULL|"
    assert cli.ok("consume", split, "-e", "-q").stdout == b"x\ny\n"
    assert cli.ok("consume", stdin_whole, "-e", "-q", "-f", "%s|").stdout == b"a\nb\n|"


def test_json_lines_carry_key_value_headers_partition_and_timestamp_per_record(cli: Cli) -> None:
    # Given JSON lines with per-record fields, base64 bytes, list and object headers, a tombstone
    topic = cli.new_topic(3)
    lines = [
        {"key": "k1", "value": "text", "headers": {"h": "1"}, "partition": 2, "timestamp": 1_700_000_000_000},
        {"key": {"base64": "/wA="}, "value": {"base64": "/wAB"}, "headers": [["r", "a"], ["r", "b"]], "partition": 0},
        {"value": None, "partition": 1, "timestamp": 5},
    ]
    done = cli.ok(
        "produce", topic, "--jsonl", "-H", "all=yes", "-o", "json",
        input=b"".join(json.dumps(doc).encode() + b"\n" for doc in lines),
    )  # fmt: skip

    # When consumed as JSON
    acks = [json.loads(line) for line in done.stdout.splitlines()]
    records = {r["partition"]: r for r in consume_json(cli, topic)}

    # Then every field arrived as written (the -H header first)
    assert acks == [{"partition": 2, "offset": 0}, {"partition": 0, "offset": 0}, {"partition": 1, "offset": 0}]
    assert (records[2]["key"], records[2]["value"], records[2]["timestamp"]) == ("k1", "text", 1_700_000_000_000)
    assert records[2]["headers"] == [["all", "yes"], ["h", "1"]]
    assert (records[0]["key"], records[0]["value"]) == ({"base64": "/wA="}, {"base64": "/wAB"})
    assert records[0]["headers"] == [["all", "yes"], ["r", "a"], ["r", "b"]]
    assert (records[1]["key"], records[1]["value"], records[1]["timestamp"]) == (None, None, 5)

    # And consume -o json piped into produce --jsonl copies the records
    copy = cli.new_topic(3)
    cli.ok("produce", copy, "--jsonl", input=cli.ok("consume", topic, "-e", "-q", "-o", "json").stdout)
    strip = lambda r: {k: v for k, v in r.items() if k != "topic"}  # noqa: E731
    assert sorted(map(json.dumps, map(strip, consume_json(cli, copy)))) == sorted(
        map(json.dumps, map(strip, consume_json(cli, topic)))
    )


def test_bad_json_lines_are_one_error_line_naming_the_line(cli: Cli) -> None:
    topic = cli.new_topic()
    assert cli.fails("produce", topic, "--jsonl", input=b'{"value": "a"}\nnope\n').startswith("error: line 2: not JSON")
    assert cli.fails("produce", topic, "--jsonl", input=b'{"valeu": "a"}\n') == (
        "error: line 1: unknown field 'valeu': use key, value, headers, partition, timestamp"
    )
    assert "is not an escape" in cli.fails("produce", topic, "-D", "\\q", code=2)


def test_offsets_at_earliest_latest_and_a_time(cli: Cli) -> None:
    # Given two partitions, records at known timestamps, and partition 0 trimmed
    topic = cli.new_topic(2)
    lines = [{"value": f"v{i}", "partition": i % 2, "timestamp": 1000 * (i + 1)} for i in range(6)]
    cli.ok("produce", topic, "--jsonl", input=b"".join(json.dumps(d).encode() + b"\n" for d in lines))
    cli.ok("partitions", "trim", topic, "-p", "0", "--before", "1")

    # When asking for the offsets at earliest, latest, a time and a time after every record
    earliest = json.loads(cli.ok("offsets", topic, "--at", "earliest", "-o", "json").stdout)
    latest = cli.ok("offsets", topic).stdout.decode()
    at_time = json.loads(cli.ok("offsets", topic, "--at", "3500", "-o", "json").stdout)
    after = json.loads(cli.ok("offsets", topic, "--at", "1970-01-01T00:01:00Z", "-p", "1", "-o", "json").stdout)

    # Then each partition's offset (and the found record's timestamp) is printed
    assert [(o["partition"], o["offset"]) for o in earliest] == [(0, 1), (1, 0)]
    assert [line.split() for line in latest.splitlines()] == [["PARTITION", "OFFSET"], ["0", "3"], ["1", "3"]]
    assert at_time == [
        {"topic": topic, "partition": 0, "offset": 2, "timestamp": 5000},
        {"topic": topic, "partition": 1, "offset": 1, "timestamp": 4000},
    ]
    assert after == [{"topic": topic, "partition": 1, "offset": 3, "timestamp": None}]
    assert "'soon' is not an ISO-8601 time" in cli.fails("offsets", topic, "--at", "soon", code=2)
    assert cli.fails("offsets", "no-such-topic-kcat") == "error: topic 'no-such-topic-kcat' does not exist"


def test_kafka_topic_config_names_are_accepted_and_unknown_ones_refused(cli: Cli) -> None:
    # Given a topic created with Kafka's dotted names
    topic = cli.new_topic(1, "retention.ms=60000", "max.message.bytes=1048576")

    # When it is altered with Kafka's names, and a reset by Kafka's name
    cli.ok(
        "topics",
        "alter",
        topic,
        "--config",
        "retention.bytes=5000000",
        "--config",
        "message.timestamp.type=LogAppendTime",
    )
    config = json.loads(cli.ok("topics", "alter", topic, "--reset-config", "retention.ms", "-o", "json").stdout)[
        "config"
    ]

    # Then logsvc's names hold the values
    assert (config["retention_ms"], config["retention_bytes"], config["max_batch_bytes"]) == (
        "-1",
        "5000000",
        "1048576",
    )
    assert config["timestamp_type"] == "LogAppendTime"

    # And a Kafka name without an equivalent is refused naming the key, with exit 1
    line = cli.fails("topics", "alter", topic, "--config", "segment.ms=1000")
    assert line.startswith("error: unknown topic config key 'segment.ms' (a Kafka name logsvc has no equivalent for")
    assert "unknown topic config key 'cleanup.policy'" in cli.fails(
        "topics", "create", f"{topic}-x", "-p", "1", "--config", "cleanup.policy=compact"
    )


def test_debug_is_accepted_after_the_subcommand(cli: Cli) -> None:
    # Given a topic
    topic = cli.new_topic()

    # When --debug follows a command and a subcommand
    listed = cli.ok("topics", "list", "--debug")
    line = cli.fails("consume", "no-such-topic-debug", "-e", "--debug")

    # Then they run as with --debug before them
    assert listed.stdout.startswith(b"TOPIC") and topic in listed.stdout.decode()
    assert line == "error: topic 'no-such-topic-debug' does not exist"


def test_x_properties_map_to_client_settings_and_unknown_ones_are_refused(cli: Cli) -> None:
    # Given records produced gzip-compressed through -X
    topic = cli.new_topic()
    cli.ok("produce", topic, "-X", "compression.codec=gzip", "-X", "linger.ms=0", input=b"a\nb\n")

    # When consumed with consumer properties through -X
    out = cli.ok("consume", topic, "-e", "-q", "-X", "fetch.max.bytes=1024", "-X", "check.crcs=false").stdout

    # Then they arrive, and a property without an equivalent or a bad value is one error line
    assert out == b"a\nb\n"
    assert "'acks' has no logsvc equivalent here" in cli.fails("produce", topic, "-X", "acks=0", code=2)
    assert "'maybe' is not true or false" in cli.fails("consume", topic, "-X", "check.crcs=maybe", code=2)


def test_b_names_the_broker_as_in_kcat(cli: Cli) -> None:
    # Given a topic
    topic = cli.new_topic()

    # When the broker is given with kcat's -b, after the command and before it
    after = cli.ok("topics", "list", "-b", cli.address, server=False)
    before = cli.ok("-b", cli.address, "topics", "list", server=False)

    # Then both reach it
    assert topic in after.stdout.decode() and before.stdout == after.stdout
