"""`logsvc partitions describe|dump|trim`, through the broker and straight from a data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lmdb

from tests.cli.conftest import Cli, start_broker


def produce_batches(cli: Cli, topic: str, *batches: list[bytes], partition: int = 0) -> None:
    """Each list of values is one `logsvc produce` run, so one stored batch."""
    for values in batches:
        cli.ok("produce", topic, "--partition", str(partition), input=b"".join(v + b"\n" for v in values))


def dump_json(cli: Cli, topic: str, *args: str) -> list[dict[str, Any]]:
    out = cli.ok("partitions", "dump", topic, "--partition", "0", "-o", "json", *args).stdout.decode()
    return [json.loads(line) for line in out.splitlines()]


def test_describe_shows_offsets_and_sizes_per_partition(cli: Cli) -> None:
    # Given a topic with 2 partitions and 3 records in partition 1
    topic = cli.new_topic(2)
    produce_batches(cli, topic, [b"a", b"b", b"c"], partition=1)

    # When its partitions are described as a table and as JSON
    table = cli.ok("partitions", "describe", topic).stdout.decode().splitlines()
    doc = json.loads(cli.ok("partitions", "describe", topic, "-o", "json").stdout)

    # Then partition 1 holds offsets 0..2 and partition 0 is empty
    assert table[0].split()[:4] == ["PARTITION", "LOG", "START", "NEXT"]
    assert [line.split()[:4] for line in table[1:]] == [["0", "0", "0", "0"], ["1", "0", "3", "3"]]
    p1 = doc["partitions"][1]
    assert (p1["log_start_offset"], p1["next_offset"], p1["record_count"]) == (0, 3, 3)
    assert p1["bytes"] > 0 and p1["first_timestamp_ms"] <= p1["last_timestamp_ms"]


def test_dump_shows_batch_boundaries_records_and_verified_checksums(cli: Cli) -> None:
    # Given two batches: offsets 0-1 and offset 2 (keyed, with a header)
    topic = cli.new_topic()
    produce_batches(cli, topic, [b"first", b"second"])
    cli.ok("produce", topic, "-k", "=", "-H", "h=1", input=b"key=third\n")

    # When the partition is dumped as text and as JSON
    text = cli.ok("partitions", "dump", topic, "--partition", "0").stdout.decode().splitlines()
    batches = dump_json(cli, topic)

    # Then each batch is announced with its offsets and a good checksum, followed by its records
    assert text[0].startswith("batch offsets 0-1: 2 record(s), ") and text[0].endswith(" ok")
    assert text[1].split()[0] == "0" and text[1].endswith("key=null  first")
    assert text[2].split()[0] == "1" and text[2].endswith("second")
    assert text[3].startswith("batch offset 2: 1 record(s)") and text[3].endswith(" ok")
    assert text[4].split()[0] == "2" and text[4].endswith("key=key  third  headers: h=1")
    assert [(b["base_offset"], b["record_count"], b["crc_ok"]) for b in batches] == [(0, 2, True), (2, 1, True)]
    assert [r["value"] for b in batches for r in b["records"]] == ["first", "second", "third"]
    assert batches[1]["records"][0]["headers"] == [["h", "1"]]


def test_compressed_batches_are_produced_dumped_with_their_codec_and_consumed(cli: Cli) -> None:
    # Given records produced with --compression zstd, then a batch without compression
    topic = cli.new_topic()
    lines = [b'{"symbol": "AAPL", "qty": %d}' % i for i in range(50)]
    cli.ok("produce", topic, "--partition", "0", "--compression", "zstd", input=b"".join(v + b"\n" for v in lines))
    produce_batches(cli, topic, [b"plain"])

    # When the partition is dumped, Then the compressed batches say so and their records are shown
    text = cli.ok("partitions", "dump", topic, "--partition", "0").stdout.decode().splitlines()
    announced = [line for line in text if line.startswith("batch ")]
    assert all("bytes (zstd)," in line for line in announced[:-1]) and "(zstd)" not in announced[-1]
    batches = dump_json(cli, topic)
    assert {b["compression"] for b in batches[:-1]} == {"zstd"} and batches[-1]["compression"] == "none"
    assert [r["value"] for b in batches for r in b["records"]] == [v.decode() for v in lines] + ["plain"]
    # And consume prints every value
    consumed = cli.ok("consume", topic, "-n", "51").stdout.decode().splitlines()
    assert consumed == [v.decode() for v in lines] + ["plain"]
    # And an unknown codec is a usage error naming the choices
    assert "'lz4' is not one of 'none', 'gzip', 'zstd'" in cli.fails("produce", topic, "--compression", "lz4", code=2)


def test_dump_starts_at_from_and_stops_after_max_records(cli: Cli) -> None:
    # Given one batch of five records
    topic = cli.new_topic()
    produce_batches(cli, topic, [b"v%d" % i for i in range(5)])

    # When dumping two records from offset 1 (inside the batch)
    batches = dump_json(cli, topic, "--from", "1", "--max-records", "2")

    # Then the batch is shown whole in its header, with only the records asked for
    assert [(b["base_offset"], b["record_count"]) for b in batches] == [(0, 5)]
    assert [r["offset"] for r in batches[0]["records"]] == [1, 2]


def test_trim_moves_the_log_start_and_readers_follow_it(cli: Cli) -> None:
    # Given batches at offsets 0-1 and 2-3
    topic = cli.new_topic()
    produce_batches(cli, topic, [b"a", b"b"], [b"c", b"d"])

    # When the partition is trimmed before offset 3 (inside the second batch)
    trimmed = json.loads(cli.ok("partitions", "trim", topic, "-p", "0", "--before", "3", "-o", "json").stdout)
    text = cli.ok("partitions", "trim", topic, "-p", "0", "--before", "3").stdout.decode()

    # Then the log starts at 3: dump and consume begin there, and reading before it is an error
    assert trimmed == {"topic": topic, "partition": 0, "log_start_offset": 3}
    assert text.strip() == f"trimmed {topic}/0: log start offset is now 3"
    assert [r["offset"] for b in dump_json(cli, topic) for r in b["records"]] == [3]
    assert cli.ok("consume", topic, "--timeout-ms", "300").stdout == b"d\n"
    line = cli.fails("partitions", "dump", topic, "--partition", "0", "--from", "1")
    assert line == f"error: offset 1 is out of range for {topic}/0: the log start offset is 3 and the next offset 4"


def test_describe_and_dump_read_a_data_directory_while_the_broker_runs(cli: Cli) -> None:
    # Given records stored by the running broker
    topic = cli.new_topic()
    produce_batches(cli, topic, [b"x", b"y"], [b"z"])

    # When the same commands read the broker's data directory directly
    data_dir = str(cli.data_dir)
    via_dir = cli.ok("partitions", "describe", topic, "--data-dir", data_dir, "-o", "json", server=False).stdout
    via_server = cli.ok("partitions", "describe", topic, "-o", "json").stdout
    dump_dir = cli.ok("partitions", "dump", topic, "-p", "0", "--data-dir", data_dir, server=False).stdout
    dump_server = cli.ok("partitions", "dump", topic, "-p", "0").stdout

    # Then they print exactly what the broker reports
    assert json.loads(via_dir) == json.loads(via_server)
    assert dump_dir == dump_server
    assert dump_dir.count(b"batch ") == 2


def test_a_partition_that_does_not_exist_is_a_clear_error(cli: Cli) -> None:
    # Given a topic with one partition
    topic = cli.new_topic()

    # When partition 5 is dumped, through the broker and from the data directory
    via_server = cli.fails("partitions", "dump", topic, "--partition", "5")
    via_dir = cli.fails("partitions", "dump", topic, "--partition", "5", "--data-dir", str(cli.data_dir))

    # Then both name the partition and the range
    expected = f"error: partition 5 does not exist in {topic} (partitions 0 to 0)"
    assert via_server == expected and via_dir == expected


def test_server_and_data_dir_together_are_a_usage_error(cli: Cli) -> None:
    # When both sources are named
    line = cli.fails("partitions", "describe", "x", "--data-dir", str(cli.data_dir), "--server", cli.address, code=2)

    # Then the command refuses
    assert "give --server or --data-dir, not both" in line


def corrupt_stored_value(data_dir: Path, old: bytes, new: bytes) -> None:
    """Rewrite one stored batch's payload behind the broker's back (its CRC no longer matches)."""
    env = lmdb.open(str(data_dir), max_dbs=16, subdir=True)
    try:
        batches = env.open_db(b"batches", create=False)
        with env.begin(write=True, db=batches) as txn:
            for key, value in txn.cursor():
                if old in value:
                    txn.put(key, value.replace(old, new))
                    return
        raise AssertionError(f"{old!r} is not stored")
    finally:
        env.close()


def test_dump_reports_a_batch_whose_checksum_does_not_match(tmp_path: Path) -> None:
    # Given a stopped broker's data directory in which one stored batch was altered
    broker = start_broker(tmp_path / "data")
    try:
        cli = Cli(broker.address, broker.data_dir)
        topic = cli.new_topic()
        produce_batches(cli, topic, [b"good"], [b"original"])
        assert broker.terminate() == 0
    finally:
        broker.kill()
    corrupt_stored_value(tmp_path / "data", b"original", b"ORIGINAL")

    # When the partition is dumped from the data directory, as text and as JSON
    text = cli.run("partitions", "dump", topic, "-p", "0", "--data-dir", str(tmp_path / "data"), server=False)
    as_json = cli.run("partitions", "dump", topic, "-p", "0", "--data-dir", str(tmp_path / "data"), "-o", "json")

    # Then the bad batch is marked at its place, the good one is not, and the exit is 1
    lines = text.stdout.decode().splitlines()
    assert lines[0].endswith(" ok") and "MISMATCH" not in lines[0]
    assert "crc32 0x" in lines[2] and "MISMATCH (payload has 0x" in lines[2]
    assert lines[3].endswith("ORIGINAL")
    assert text.returncode == 1 and as_json.returncode == 1
    assert text.stderr.decode() == f"error: 1 batch(es) of {topic}/0 failed the CRC32 check (at offset 1)\n"
    assert [json.loads(line)["crc_ok"] for line in as_json.stdout.splitlines()] == [True, False]
