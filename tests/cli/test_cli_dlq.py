"""`logsvc dlq list|show|replay`, as subprocesses against a real broker.

The dead letters are written by the connectors' own :class:`DeadLetters`, exactly as a running
connector writes them.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

from logsvc_client import Admin, Producer, TopicPartition
from logsvc_client.records import Record
from logsvc_connect.dead_letters import DeadLetters
from logsvc_connect.sink import DataError, SinkRecord
from tests.cli.conftest import Cli
from tests.cli.test_cli_produce_consume import consume_json

_connectors = itertools.count()
TIMESTAMP_MS = 1_767_323_045_000  # 2026-01-02T03:04:05Z


def new_connector() -> str:
    return f"sink{next(_connectors)}-{os.getpid()}"


def produce_source(cli: Cli, count: int, partitions: int = 2, start_ms: int = TIMESTAMP_MS) -> list[Record]:
    """A new topic with ``count`` records (keys k0.., a header each, timestamps from ``start_ms``
    1 ms apart); the records as stored."""
    topic = cli.new_topic(partitions)
    with Producer(cli.address, linger_ms=0) as producer:
        sent = [
            (key, value, headers, producer.send(topic, value, key, headers=headers, timestamp_ms=start_ms + i))
            for i, (key, value, headers) in enumerate(
                (b"k%d" % i, b'{"n": %d}' % i, (("trace", b"t%d" % i),)) for i in range(count)
            )
        ]
        positions = [future.result() for *_, future in sent]
    return [
        Record(topic, pos.partition, pos.offset, start_ms + i, key, value, headers)
        for i, ((key, value, headers, _), pos) in enumerate(zip(sent, positions, strict=True))
    ]


def dead_letter(
    cli: Cli, connector: str, records: list[Record], dlq_topic: str | None = None, attempts: int = 3
) -> None:
    """Send ``records`` to the connector's dead-letter topic as the connector runtime does, then
    commit the connector's group past them (as the runtime does after a batch)."""
    letters = DeadLetters(cli.address, dlq_topic or f"{connector}.dlq", connector)
    try:
        failed = [(SinkRecord(*r, doc=None), DataError(f"bad value at {r.offset}", "ValueError")) for r in records]
        letters.send(failed, attempts=attempts)
    finally:
        letters.close()
    past: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        past[tp] = max(past.get(tp, 0), r.offset + 1)
    with Admin(cli.address) as admin:
        admin.commit_offsets(connector, past)


def dlq_json(cli: Cli, connector: str, *args: str) -> Any:
    return json.loads(cli.ok("dlq", *args, connector, "-o", "json").stdout)


def next_offsets(cli: Cli, topic: str) -> dict[int, int]:
    described = json.loads(cli.ok("topics", "describe", topic, "-o", "json").stdout)
    return {p["partition"]: p["next_offset"] for p in described["partitions"]}


def record_at(cli: Cli, topic: str, partition: int, offset: int) -> dict[str, Any]:
    (found,) = consume_json(cli, topic, "-p", str(partition), "--from", str(offset), "-n", "1")
    return found


def test_dlq_list_shows_each_dead_letter_with_its_source_error_attempts_and_time(cli: Cli) -> None:
    # Given a connector that dead-lettered two records, one with a long two-line message
    connector = new_connector()
    records = produce_source(cli, 3)
    dead_letter(cli, connector, records[:2])
    long_message = "x" * 100 + "\nsecond line"
    letters = DeadLetters(cli.address, f"{connector}.dlq", connector)
    letters.send([(SinkRecord(*records[2], doc=None), DataError(long_message, "NotNullViolation"))], attempts=1)
    letters.close()

    # When the dead letters are listed as JSON
    listed = dlq_json(cli, connector, "list")

    # Then each shows its DLQ offset, source (with the record's own time), error, attempts and
    # when it was dead-lettered, none replayed yet
    assert [d["dlq_offset"] for d in listed] == [0, 1, 2]
    first = listed[0]
    assert first["source"] == {
        "topic": records[0].topic,
        "partition": records[0].partition,
        "offset": records[0].offset,
        "timestamp": TIMESTAMP_MS,
    }
    assert first["error"] == {"class": "ValueError", "message": f"bad value at {records[0].offset}"}
    assert (first["attempts"], first["connector"]) == (3, connector)
    assert abs(first["timestamp"] / 1000 - time.time()) < 60  # dead-lettered just now
    assert (first["replayed"], first["replays"]) == (False, [])
    assert listed[2]["error"] == {"class": "NotNullViolation", "message": long_message}

    # And the table has a row each, the long message shortened to one line
    table = cli.ok("dlq", "list", connector).stdout.decode().splitlines()
    assert table[0].split()[:4] == ["DLQ", "OFFSET", "SOURCE", "TOPIC"]
    assert len(table) == 4
    assert "ValueError" in table[1] and records[0].topic in table[1] and table[1].endswith("no")
    assert "NotNullViolation" in table[3] and "x" * 30 + "…" in table[3] and "second line" not in table[3]


def test_dlq_list_filters_by_source_topic_and_stops_at_max_records(cli: Cli) -> None:
    # Given dead letters from two source topics in one DLQ
    connector = new_connector()
    first, second = produce_source(cli, 3), produce_source(cli, 2)
    dead_letter(cli, connector, [*first, *second])

    # When the list is filtered by source topic, then cut at 2
    only_second = dlq_json(cli, connector, "list", "--source-topic", second[0].topic)
    at_most_two = dlq_json(cli, connector, "list", "--max-records", "2")

    # Then only the matching ones, and only the first two, are shown
    assert [d["dlq_offset"] for d in only_second] == [3, 4]
    assert [d["dlq_offset"] for d in at_most_two] == [0, 1]


def test_dlq_show_gives_the_record_in_full_with_its_original_key_value_and_headers(cli: Cli) -> None:
    # Given a dead-lettered record with a header of its own
    connector = new_connector()
    (record,) = produce_source(cli, 1)
    dead_letter(cli, connector, [record])

    # When it is shown as JSON and as text
    shown = dlq_json(cli, connector, "show", "--offset", "0")
    text = cli.ok("dlq", "show", connector, "--offset", "0").stdout.decode()

    # Then both have the source, the error, and the original record without the dlq.* headers
    assert (shown["key"], shown["value"], shown["headers"]) == ("k0", '{"n": 0}', [["trace", "t0"]])
    assert shown["source"]["topic"] == record.topic and shown["error"]["class"] == "ValueError"
    fields = {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}
    assert fields["source"] == f"{record.topic}/{record.partition}@{record.offset}"
    assert fields["error message"] == "bad value at 0"
    assert fields["value"] == '{"n": 0}'
    assert fields["headers"] == "trace=t0"
    assert fields["dead-lettered at"].startswith(time.strftime("%Y-%m-%d", time.gmtime()))


def test_dlq_replay_produces_the_record_onto_its_source_partition_with_replay_headers(cli: Cli) -> None:
    # Given a record of partition 1 that was dead-lettered
    connector = new_connector()
    records = produce_source(cli, 6)
    failed = next(r for r in records if r.partition == 1)
    dead_letter(cli, connector, [failed])
    before = next_offsets(cli, failed.topic)

    # When it is replayed
    replayed = dlq_json(cli, connector, "replay", "--offset", "0")

    # Then a copy lands at the end of the same partition, with the original key, value, headers
    # and the replay headers
    assert replayed == [
        {
            "dlq_offset": 0,
            "source": {"topic": failed.topic, "partition": 1, "offset": failed.offset},
            "replayed_to": {"topic": failed.topic, "partition": 1, "offset": before[1]},
        }
    ]
    copy = record_at(cli, failed.topic, 1, before[1])
    assert (copy["key"], copy["value"]) == (f"k{records.index(failed)}", f'{{"n": {records.index(failed)}}}')
    assert copy["headers"] == [
        ["trace", f"t{records.index(failed)}"],
        ["logsvc.replay.of", f"{failed.topic}/1/{failed.offset}"],
        ["logsvc.replay.dlq_offset", "0"],
    ]
    assert next_offsets(cli, failed.topic) == {0: before[0], 1: before[1] + 1}

    # And the list now says it was replayed, and where to
    (listed,) = dlq_json(cli, connector, "list")
    assert listed["replayed"] is True
    assert [(p["topic"], p["partition"], p["offset"]) for p in listed["replays"]] == [(failed.topic, 1, before[1])]


def test_replaying_a_record_twice_is_refused_without_force_and_nothing_is_produced(cli: Cli) -> None:
    # Given two dead letters, the second one replayed already
    connector = new_connector()
    records = produce_source(cli, 2, partitions=1)
    dead_letter(cli, connector, records)
    cli.ok("dlq", "replay", connector, "--offset", "1")
    before = next_offsets(cli, records[0].topic)

    # When both are replayed
    error = cli.fails("dlq", "replay", connector, "--offset", "0", "--offset", "1")

    # Then it is refused, naming where the earlier replay went, and neither was produced
    earlier = f"{records[0].topic}/0@2"
    assert error.startswith(f"error: DLQ record 1 of {connector}.dlq was already replayed to {earlier} at ")
    assert error.endswith("; use --force to replay it again")
    assert next_offsets(cli, records[0].topic) == before
    assert [d["replayed"] for d in dlq_json(cli, connector, "list")] == [False, True]

    # And with --force both are replayed
    forced = dlq_json(cli, connector, "replay", "--offset", "0", "--offset", "1", "--force")
    assert [r["replayed_to"]["offset"] for r in forced] == [3, 4]
    assert [len(d["replays"]) for d in dlq_json(cli, connector, "list")] == [1, 2]


def test_replay_all_takes_every_record_not_replayed_yet(cli: Cli) -> None:
    # Given three dead letters, the middle one replayed already
    connector = new_connector()
    records = produce_source(cli, 3, partitions=1)
    dead_letter(cli, connector, records)
    cli.ok("dlq", "replay", connector, "--offset", "1")

    # When all are replayed
    done = cli.ok("dlq", "replay", connector, "--all")

    # Then the other two are, with a table and a summary
    lines = done.stdout.decode().splitlines()
    assert lines[0].split() == ["DLQ", "OFFSET", "SOURCE", "REPLAYED", "TO"]
    assert [line.split()[0] for line in lines[1:]] == ["0", "2"]
    assert done.stderr.decode() == f"replayed 2 record(s) of {connector}.dlq to {records[0].topic}\n"

    # And a second --all finds nothing left, while --all --force replays all three again
    again = cli.ok("dlq", "replay", connector, "--all")
    assert again.stdout == b"" and b"nothing to replay" in again.stderr
    assert len(dlq_json(cli, connector, "replay", "--all", "--force")) == 3


def test_a_record_dead_lettered_twice_is_replayed_once(cli: Cli) -> None:
    # Given record 0 dead-lettered twice (a connector killed before it committed past it, then
    # restarted) and record 1 once: DLQ offsets 0 and 2 are copies of one dead letter
    connector = new_connector()
    records = produce_source(cli, 2, partitions=1)
    dead_letter(cli, connector, records)
    dead_letter(cli, connector, records[:1])
    topic, before = records[0].topic, next_offsets(cli, records[0].topic)[0]

    # When both copies are asked for by offset, Then that is refused (unless --force), naming them
    twins = cli.fails("dlq", "replay", connector, "--offset", "0", "--offset", "2")
    assert twins.startswith(f"error: DLQ records 0, 2 of {connector}.dlq are copies of one dead-lettered record")
    assert next_offsets(cli, topic) == {0: before}

    # When every dead letter is replayed
    replayed = dlq_json(cli, connector, "replay", "--all")

    # Then each source record is produced once, record 0 from its newest copy
    assert [(r["dlq_offset"], r["source"]["offset"]) for r in replayed] == [(1, 1), (2, 0)]
    assert next_offsets(cli, topic) == {0: before + 2}
    # And every copy counts as replayed: listing says so, and replaying the older copy is refused
    assert [d["replayed"] for d in dlq_json(cli, connector, "list")] == [True, True, True]
    error = cli.fails("dlq", "replay", connector, "--offset", "0")
    assert f"was already replayed to {topic}/0@{before + 1} at " in error
    assert error.endswith("(as DLQ record 2, a copy); use --force to replay it again")


def test_replay_to_another_topic_leaves_the_source_topic_alone(cli: Cli) -> None:
    # Given a dead letter of a 2-partition topic and a retry topic
    connector = new_connector()
    (failed,) = produce_source(cli, 1)
    dead_letter(cli, connector, [failed])
    retry = cli.new_topic(1)
    before = next_offsets(cli, failed.topic)

    # When it is replayed --to the retry topic
    (replayed,) = dlq_json(cli, connector, "replay", "--offset", "0", "--to", retry)

    # Then it lands there, saying where it came from; the source topic is unchanged
    assert replayed["replayed_to"] == {"topic": retry, "partition": 0, "offset": 0}
    copy = record_at(cli, retry, 0, 0)
    assert ["logsvc.replay.of", f"{failed.topic}/{failed.partition}/{failed.offset}"] in copy["headers"]
    assert next_offsets(cli, failed.topic) == before

    # And a topic that does not exist is refused before anything is produced
    assert cli.fails("dlq", "replay", connector, "--offset", "0", "--force", "--to", "no-such-topic") == (
        "error: cannot replay to topic no-such-topic: it does not exist"
    )


def forge_dead_letter(cli: Cli, connector: str, record: Record) -> None:
    """Write a dead letter naming ``record`` as its source into the connector's DLQ topic, as anyone
    who can produce to that topic can: the connector never consumed ``record``'s topic."""
    letters = DeadLetters(cli.address, f"{connector}.dlq", connector)
    try:
        letters.send([(SinkRecord(*record, doc=None), DataError("forged", "ValueError"))], attempts=1)
    finally:
        letters.close()


def test_replay_refuses_a_source_topic_the_connector_does_not_consume_unless_forced(cli: Cli) -> None:
    # Given a connector's DLQ holding its own dead letter (offset 0) and a forged one naming
    # another team's topic as its source (offset 1)
    connector = new_connector()
    (own,) = produce_source(cli, 1, partitions=1)
    dead_letter(cli, connector, [own])
    (victim,) = produce_source(cli, 1, partitions=1)
    forge_dead_letter(cli, connector, victim)
    before = next_offsets(cli, victim.topic)

    # When the forged one is replayed
    error = cli.fails("dlq", "replay", connector, "--offset", "1", "--offset", "0")

    # Then it is refused with one line naming the topic and the connector's own topics, and
    # nothing is produced anywhere
    assert error.startswith(f"error: DLQ record(s) 1 of {connector}.dlq not replayed: their dlq.topic header names ")
    assert f"names {victim.topic}, which connector {connector} does not consume (its topics: {own.topic})" in error
    assert next_offsets(cli, victim.topic) == before
    assert [d["replayed"] for d in dlq_json(cli, connector, "list")] == [False, False]

    # When everything is replayed, Then only the connector's own dead letter is, with a note
    done = cli.ok("dlq", "replay", connector, "--all")
    assert [line.split()[0] for line in done.stdout.decode().splitlines()[1:]] == ["0"]
    assert f"skipping 1 record(s) of {connector}.dlq (offsets [1]): their dlq.topic header names" in (
        done.stderr.decode()
    )
    assert next_offsets(cli, victim.topic) == before

    # And --force replays it to the topic its header names, --to to the topic given
    (forced,) = dlq_json(cli, connector, "replay", "--offset", "1", "--force")
    assert forced["replayed_to"]["topic"] == victim.topic
    retry = cli.new_topic(1)
    (redirected,) = dlq_json(cli, connector, "replay", "--offset", "1", "--force", "--to", retry)
    assert redirected["replayed_to"]["topic"] == retry


def test_replay_refuses_header_targets_when_the_connector_has_no_group(cli: Cli) -> None:
    # Given a DLQ topic of a connector that never committed anything (no such group)
    connector = new_connector()
    (record,) = produce_source(cli, 1, partitions=1)
    forge_dead_letter(cli, connector, record)

    # When its record is replayed to the topic its header names
    error = cli.fails("dlq", "replay", connector, "--offset", "0")

    # Then that is refused: the connector's topics cannot be known
    assert "(its topics: none known: its group has no committed offsets)" in error
    assert error.endswith("give the topic with --to, or use --force to replay to it anyway")


def test_dlq_commands_name_the_missing_dlq_topic_and_the_valid_offsets(cli: Cli) -> None:
    # Given a connector whose DLQ is configured as another topic
    connector = new_connector()
    dead_letter(cli, connector, produce_source(cli, 1), dlq_topic=f"{connector}-failures")

    # When its default DLQ, then an offset past the end of the configured one, are asked for
    missing = cli.fails("dlq", "list", connector)
    past_end = cli.fails("dlq", "show", connector, "--topic", f"{connector}-failures", "--offset", "7")

    # Then the errors name the topic and the offsets it holds; --topic finds the dead letter
    assert missing.startswith(f"error: dead-letter topic {connector}.dlq of connector {connector} does not exist")
    assert past_end == (
        f"error: offset 7 is out of range for {connector}-failures/0: it holds offsets 0 to 0 "
        "(log start offset 0, next offset 1)"
    )
    assert len(dlq_json(cli, connector, "list", "--topic", f"{connector}-failures")) == 1
    assert "give --offset N" in cli.fails("dlq", "replay", connector, code=2)
