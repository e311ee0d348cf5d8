"""The CLI over partitions that hold bad batches written straight into LMDB (as data from an older
version would be): `consume` reports them or skips them, `partitions verify` lists them (through
the broker and from the data directory), and `dump`, `groups describe`, `records status` and
`dlq list|replay` keep working."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from logsvc_client import Admin
from logsvc_connect.dead_letters import DeadLetters
from logsvc_wire.batch import corrupt
from tests.cli.conftest import Cli, start_broker
from tests.conftest import BrokerProcess
from tests.fixtures.corrupt import BAD_BATCHES, good_batch, plant, str_key

BEFORE = [b"before-%d" % i for i in range(4)]
AFTER = [b"after-%d" % i for i in range(3)]


def bad_magic() -> bytes:
    """A batch whose header has magic 7 (no version of the format)."""
    data = bytearray(good_batch([b"x", b"y"]))
    data[0] = 7
    return bytes(data)


@dataclass
class Planted:
    cli: Cli
    data_dir: Path
    bad: bytes
    base: int  # the bad batch of topic "bad", partition 0
    last: int
    typed_bases: list[int]  # topic "typed": a str key batch and a bad-magic batch, between good ones


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    """A broker whose topics "bad" (a batch that is not msgpack between good records), "typed"
    (a record with a str key, a batch with a bad header) and "clean" were planted while it was
    stopped."""
    data_dir = tmp_path_factory.mktemp("corrupt") / "data"
    broker: BrokerProcess = start_broker(data_dir)
    try:
        cli = Cli(broker.address, data_dir)
        for topic in ("bad", "typed", "clean"):
            cli.ok("topics", "create", topic, "--partitions", "1")
        cli.ok("produce", "bad", input=b"".join(v + b"\n" for v in BEFORE))
        cli.ok("produce", "clean", input=b"a\nb\nc\n")
        cli.ok("topics", "create", "appended", "--partitions", "1", "--config", "timestamp_type=LogAppendTime")
        cli.ok("produce", "appended", "--compression", "zstd", input=b"a\nb\n")
        assert broker.terminate() == 0
        bad = BAD_BATCHES["not msgpack"]()
        (base,) = plant(data_dir, "bad", 0, [bad])
        typed = plant(data_dir, "typed", 0, [good_batch([b"1"]), str_key(), bad_magic(), good_batch([b"2"])])
        broker = start_broker(data_dir)
        cli = Cli(broker.address, data_dir)
        cli.ok("produce", "bad", input=b"".join(v + b"\n" for v in AFTER))
        yield Planted(cli, data_dir, bad, base, base + 1, typed)
    finally:
        broker.kill()


# -- consume ------------------------------------------------------------------------------------


def test_consume_prints_the_records_before_a_corrupt_batch_then_stops_with_one_error_line(planted: Planted) -> None:
    # When the partition is consumed from the start
    done = planted.cli.run("consume", "bad", "--timeout-ms", "2000")

    # Then the records before the bad batch are printed, then one error line names its range
    assert done.stdout.decode().splitlines() == [v.decode() for v in BEFORE]
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in stderr
    (line,) = stderr.splitlines()
    assert line.startswith(f"error: stored batch at offsets {planted.base}-{planted.last} of bad/0 is corrupt: ")
    assert line.endswith("(--skip-corrupt reads on past it)")


def test_consume_with_skip_corrupt_prints_every_good_record_and_one_warning(planted: Planted) -> None:
    # When the partition is consumed with --skip-corrupt
    done = planted.cli.run("consume", "bad", "--skip-corrupt", "--timeout-ms", "2000")

    # Then every good record is printed once, in order, and one warning names the skipped batch
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == [v.decode() for v in BEFORE + AFTER]
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"warning: stored batch at offsets {planted.base}-{planted.last} of bad/0 is corrupt")
    assert lines[0].endswith(f"skipped it, reading on from offset {planted.last + 1}")


def test_a_group_consume_commits_what_it_printed_before_a_corrupt_batch_and_a_skipping_one_commits_past_it(
    planted: Planted,
) -> None:
    cli = planted.cli
    # When a group consumes the partition, Then it stops at the bad batch having committed up to it
    stopped = cli.run("consume", "bad", "--group", "audit", "--timeout-ms", "2000")
    assert stopped.returncode == 1 and len(stopped.stderr.splitlines()) == 1
    assert stopped.stdout.decode().splitlines() == [v.decode() for v in BEFORE]
    with Admin(cli.address) as admin:
        assert admin.committed_offsets("audit")[("bad", 0)].offset == planted.base  # type: ignore[index]

    # When the group consumes again, Then it stops at the same place, printing nothing again
    again = cli.run("consume", "bad", "--group", "audit", "--timeout-ms", "2000")
    assert again.returncode == 1 and again.stdout == b""

    # Then `groups describe` and `records status` still work on the partition (lag from the header)
    described = json.loads(cli.ok("groups", "describe", "audit", "-o", "json").stdout)
    (row,) = [p for p in described["partitions"] if p["topic"] == "bad"]
    assert (row["committed_offset"], row["lag"]) == (planted.base, planted.last + 1 + len(AFTER) - planted.base)
    assert row["lag_ms"] > 0
    status = json.loads(
        cli.ok("records", "status", "bad", "-p", "0", "--offset", str(planted.base), "-o", "json").stdout
    )
    assert f"offsets {planted.base}-{planted.last} of bad/0 is corrupt" in status["record"]["corrupt_batch"]
    assert [(g["group"], g["status"]) for g in status["groups"]] == [("audit", "pending")]

    # When it consumes with --skip-corrupt, Then it prints what follows and commits past it all
    skipping = cli.run("consume", "bad", "--group", "audit", "--skip-corrupt", "--timeout-ms", "2000")
    assert skipping.returncode == 0, skipping.stderr
    assert skipping.stdout.decode().splitlines() == [v.decode() for v in AFTER]
    with Admin(cli.address) as admin:
        committed = admin.committed_offsets("audit")[("bad", 0)].offset  # type: ignore[index]
    assert committed == planted.last + 1 + len(AFTER)


def test_consume_reports_a_record_of_the_wrong_types_and_skips_it_and_a_bad_header_with_skip_corrupt(
    planted: Planted,
) -> None:
    # When the topic holding a record with a str key, then a batch with a bad header, is consumed
    stopped = planted.cli.run("consume", "typed", "--timeout-ms", "2000")
    skipping = planted.cli.run("consume", "typed", "--skip-corrupt", "--timeout-ms", "2000")

    # Then without --skip-corrupt it prints the record before it and one error line naming it —
    # the record alone while decoding hands such records out as they are (consume checks their
    # types), its whole batch once decoding checks record types itself
    str_key_base, magic_base = planted.typed_bases[1:3]
    assert stopped.returncode == 1 and stopped.stdout == b"1\n"
    (line,) = stopped.stderr.decode().splitlines()
    where = rf"(record at offset {str_key_base}|batch at offsets {str_key_base}-{str_key_base + 1})"
    assert re.fullmatch(
        rf"error: stored {where} of typed/0 is corrupt: .*key.*str.* \(--skip-corrupt reads on past it\)", line
    )
    # And with it, every good record (the other record of the str key's batch too, while
    # decoding lets it through) and one warning for each bad record or batch
    assert skipping.returncode == 0, skipping.stderr
    assert skipping.stdout.decode().splitlines() in (["1", "v", "2"], ["1", "2"])
    warnings = skipping.stderr.decode().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: stored ") for w in warnings)
    assert any(re.search(rf"{where} of typed/0 is corrupt", w) for w in warnings)
    assert any(f"batch at offsets {magic_base}-{magic_base + 1} of typed/0" in w for w in warnings)


# -- verify -------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["server", "data-dir"])
def test_verify_lists_the_bad_batch_and_exits_1(planted: Planted, where: str) -> None:
    # When the topic is verified through the broker, or straight from the data directory
    source = ["--data-dir", str(planted.data_dir)] if where == "data-dir" else []
    text = planted.cli.run("partitions", "verify", "bad", *source, server=where == "server")
    as_json = planted.cli.run("partitions", "verify", "bad", "-o", "json", *source, server=where == "server")

    # Then the bad batch is listed with its partition, range and reason, and the exit is 1
    assert text.returncode == 1 and as_json.returncode == 1
    rows = text.stdout.decode().splitlines()
    assert rows[0].split() == ["PARTITION", "OFFSETS", "BYTES", "REASON"]
    assert rows[1].split()[:3] == ["0", f"{planted.base}-{planted.last}", str(len(planted.bad))]
    assert len(rows) == 2 and rows[1].split()[3:]  # a reason
    assert (
        text.stderr.decode()
        == f"error: 1 of 3 stored batch(es) of bad are bad (partition@offsets: 0@{planted.base}-{planted.last})\n"
    )
    doc = json.loads(as_json.stdout)
    assert doc["ok"] is False
    assert [(b["partition"], b["base_offset"], b["last_offset"]) for b in doc["bad_batches"]] == [
        (0, planted.base, planted.last)
    ]
    assert doc["partitions"] == [
        {
            "partition": 0,
            "log_start_offset": 0,
            "next_offset": planted.last + 1 + len(AFTER),
            "batches": 3,
            "records": planted.last + 1 + len(AFTER),
            "bad_batches": 1,
        }
    ]


def test_verify_finds_wrong_record_types_and_an_unreadable_header(planted: Planted) -> None:
    # When the topic holding a str key and a bad magic is verified
    done = planted.cli.run("partitions", "verify", "typed", "-o", "json")

    # Then both are listed, each with its reason, and the good batches are not
    assert done.returncode == 1
    bad = json.loads(done.stdout)["bad_batches"]
    str_key_base, magic_base = planted.typed_bases[1:3]
    assert [b["base_offset"] for b in bad] == [str_key_base, magic_base]
    assert "key" in bad[0]["reason"] and "str" in bad[0]["reason"]
    assert bad[1]["reason"].startswith("unreadable header: record batch magic 7")


@pytest.mark.parametrize("topic", ["clean", "appended"])
def test_verify_of_a_clean_topic_exits_0(planted: Planted, topic: str) -> None:
    # When a topic of good batches is verified (one of them with LogAppendTime and zstd: the
    # broker set the LogAppendTime bit and the header's timestamps), Then the exit is 0 with a
    # summary on stderr
    for source in ([], ["--data-dir", str(planted.data_dir)]):
        done = planted.cli.run("partitions", "verify", topic, *source, server=not source)
        assert done.returncode == 0, done.stderr
        assert done.stdout == b""
        assert done.stderr.decode() == f"{topic}: 1 stored batch(es) in 1 partition(s) checked, all good\n"


def test_dump_shows_a_batch_with_an_unreadable_header_at_its_place_and_goes_on(planted: Planted) -> None:
    # When the partition with a bad-magic batch is dumped
    done = planted.cli.run("partitions", "dump", "typed", "-p", "0")

    # Then the bad header is one line at its place, the batches after it are shown, the exit is 1
    lines = done.stdout.decode().splitlines()
    magic_base = planted.typed_bases[2]
    expected = (
        f"batch at offset {magic_base}: {len(bad_magic())} bytes, unreadable header: record batch magic 7 is not 1"
    )
    assert expected in lines
    (undecodable,) = [line for line in lines if line.startswith("  (records cannot be decoded: ")]
    assert "key" in undecodable and "str" in undecodable
    assert lines[-1].rstrip().endswith("2")
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()
    assert "have an unreadable header" in done.stderr.decode()


# -- dead letters -------------------------------------------------------------------------------


def test_dlq_list_shows_a_dead_lettered_corrupt_batch_by_its_range_and_replay_refuses_it(planted: Planted) -> None:
    # Given a connector's dead-letter topic holding the bad batch, as the connector writes it
    cli = planted.cli
    error = corrupt("bad", 0, planted.base, planted.last - planted.base + 1, "not msgpack")
    error.details["batch"] = planted.bad
    letters = DeadLetters(cli.address, "sink.dlq", "sink")
    try:
        letters.send_corrupt_batch(error)
    finally:
        letters.close()

    # When the dead letters are listed, Then the batch shows with its offset range
    listed = json.loads(cli.ok("dlq", "list", "sink", "-o", "json").stdout)
    assert len(listed) == 1
    assert listed[0]["corrupt_batch"] is True
    assert (listed[0]["source"]["offset"], listed[0]["source"]["last_offset"]) == (planted.base, planted.last)
    assert listed[0]["error"]["class"] == "CorruptBatch"
    table = cli.ok("dlq", "list", "sink").stdout.decode().splitlines()
    assert f"{planted.base}-{planted.last}" in table[1].split()
    shown = cli.ok("dlq", "show", "sink", "--offset", "0").stdout.decode()
    fields = {k: v.strip() for k, _, v in (line.partition(":") for line in shown.splitlines())}
    assert fields["source"] == f"bad/0@{planted.base}-{planted.last}"

    # When it is replayed, Then that is refused with one error line, and nothing was produced
    line = cli.fails("dlq", "replay", "sink", "--offset", "0")
    assert "is the corrupt stored batch at offsets" in line and "not a record" in line
    all_of_them = cli.run("dlq", "replay", "sink", "--all")
    assert all_of_them.returncode == 0 and "not replayable" in all_of_them.stderr.decode()
    with Admin(cli.address) as admin:
        assert admin.list_offsets("bad", "latest")[0] == planted.last + 1 + len(AFTER)
