"""``logsvc dlq list|show|replay CONNECTOR``: review a connector's dead-lettered records and replay them.

A sink connector sends a record that fails on its data to its dead-letter topic (``<connector>.dlq``
unless configured otherwise), always to partition 0, with the source record's key, value and
headers and ``dlq.*`` headers saying where it came from and why it failed (see
``logsvc_connect.dead_letters``). These commands read that partition; ``--topic`` names another
dead-letter topic.

``replay`` produces the original record again onto its source topic and partition (or ``--to``
another topic), with ``logsvc.replay.of`` = "<topic>/<partition>/<offset>" and
``logsvc.replay.dlq_offset`` = N, so a fixed handler or a repaired table can take it. The source
topic comes from the ``dlq.topic`` header, which anyone who can produce to the DLQ topic can write:
without ``--to`` or ``--force`` it must be a topic the connector consumes (see
:func:`connector_topics`), so a forged dead letter cannot be replayed into another team's topic. Each replay
is remembered in ``<dlq topic>.replays`` (one partition, created on the first replay): one record
per replay, key = the DLQ offset (decimal), headers ``logsvc.replay.topic|partition|offset`` saying
where the copy landed. A record already replayed is refused unless ``--force``. The replayed copies
are produced before their markers, so a crash in between can leave a replay unremembered (a second
replay then duplicates it), never a replay remembered that did not happen.

A whole stored batch that did not decode (``dlq.error.class`` = CorruptBatch, see
``logsvc_connect.dead_letters``) is listed with the offset range it covers (``5-7``); its value is
the batch's raw bytes, for inspection (``show -o json`` gives them in base64). ``replay`` refuses
it: producing it would put the corrupt batch back into a topic (``--all`` leaves it out).

A source record can be dead-lettered more than once (a connector killed between dead-lettering it
and committing past it does it again after its restart): those DLQ records are copies of one dead
letter. ``replay --all`` replays such a record once, from its newest copy, and a replay through any
copy counts as a replay of every copy (``list`` and ``show`` say so too).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from logsvc.cli.dead_letters import (
    MARKER_OFFSET,
    MARKER_PARTITION,
    MARKER_TOPIC,
    REPLAY_DLQ_OFFSET,
    REPLAY_OF,
    DeadLetter,
    DeadLetterTopic,
    marker_topic,
    open_dlq,
)
from logsvc.cli.output import (
    Escaped,
    echo_fields,
    echo_json,
    echo_table,
    iso_ms,
    json_bytes,
    note,
    output_option,
    preview,
    printable,
)
from logsvc.cli.sources import ServerSource, Source
from logsvc.cli.state import get_state, server_option
from logsvc_client import Admin, ProducerRecord
from logsvc_client.errors import FailedPrecondition, GroupNotFound, TopicAlreadyExists, TopicNotFound

F = TypeVar("F", bound=Callable[..., Any])
MESSAGE_WIDTH = 48
INDENT = " " * len("error message: ")  # continuation lines of a message in `show`


def dlq_topic_option(fn: F) -> F:
    return click.option(
        "--topic",
        "dlq_topic",
        metavar="DLQ_TOPIC",
        default=None,
        help="The dead-letter topic, when the connector configures its own dlq_topic [default: CONNECTOR.dlq].",
    )(fn)


@click.group()
def dlq() -> None:
    """Review a sink connector's dead-lettered records and replay them.

    \b
    Examples:
      logsvc dlq list orders-sink                       # what failed, where from, why
      logsvc dlq show orders-sink --offset 3 -o json    # one dead letter in full
      logsvc dlq replay orders-sink --offset 3          # back onto its source partition
      logsvc dlq replay orders-sink --all --to orders-retry
    """


@dlq.command("list")
@click.argument("connector")
@dlq_topic_option
@click.option("--source-topic", metavar="TOPIC", default=None, help="Only records dead-lettered from TOPIC.")
@click.option("-n", "--max-records", type=click.IntRange(min=1), default=None, help="Show at most this many.")
@server_option
@output_option(as_table="a row per dead letter, messages shortened", as_json="an array, messages in full")
def list_(
    connector: str, dlq_topic: str | None, source_topic: str | None, max_records: int | None, output: str
) -> None:
    """List CONNECTOR's dead-lettered records: source topic, partition and offset, the error's
    class and message, attempts, time, and whether it was replayed."""
    with ServerSource(get_state().address()) as source:
        found = open_dlq(source, connector, dlq_topic)
    letters = [d for d in found.letters if source_topic is None or d.source_topic == source_topic]
    letters = letters[:max_records]
    if output == "json":
        echo_json([d.as_json(found.replays_of(d)) for d in letters])
    elif letters:
        echo_table(
            ("DLQ OFFSET", "SOURCE TOPIC", "PARTITION", "OFFSET", "ERROR", "MESSAGE", "ATTEMPTS", "TIME", "REPLAYED"),
            [
                (
                    d.offset,
                    d.source_topic,
                    d.source_partition,
                    d.source_offsets,
                    d.error_class,
                    None if d.error_message is None else preview(d.error_message.encode(), MESSAGE_WIDTH),
                    d.attempts,
                    iso_ms(d.record.timestamp_ms),
                    "yes" if found.replays_of(d) else "no",
                )
                for d in letters
            ],
        )
    else:
        note(f"no dead-lettered records in {found.name}" + (f" from {source_topic}" if source_topic else ""))


def _message_lines(message: str) -> Escaped:
    """A multi-line error message, each line escaped, continuation lines indented under the first."""
    return Escaped(("\n" + INDENT).join(printable(line) for line in message.split("\n")))


def _full(data: bytes | None) -> str:
    return preview(data, width=4 * len(data) + 8 if data else 8)


@dlq.command()
@click.argument("connector")
@click.option("--offset", type=click.IntRange(min=0), required=True, help="The dead letter's offset in the DLQ.")
@dlq_topic_option
@server_option
@output_option(as_table="the fields, then key, value and headers", as_json="one object")
def show(connector: str, offset: int, dlq_topic: str | None, output: str) -> None:
    """Show one dead-lettered record in full: where it came from, the error, its replays, and the
    original key, value and headers."""
    with ServerSource(get_state().address()) as source:
        found = open_dlq(source, connector, dlq_topic)
    d = found.letter(offset)
    replays = found.replays_of(d)
    if output == "json":
        echo_json(
            {
                **d.as_json(replays),
                "key": json_bytes(d.record.key),
                "value": json_bytes(d.record.value),
                "headers": [[name, json_bytes(value)] for name, value in d.original_headers()],
            }
        )
        return
    echo_fields(
        [
            ("dlq record", f"{d.record.topic}/{d.record.partition}@{d.offset}"),
            ("time", iso_ms(d.record.timestamp_ms)),
            ("connector", d.connector or "-"),
            ("source", f"{d.source_topic}/{d.source_partition}@{d.source_offsets}" if d.has_source else "-"),
            ("source time", iso_ms(d.source_timestamp_ms)),
            ("error class", d.error_class or "-"),
            (
                "error message",
                "-"
                if d.error_message is None
                else Escaped(("\n" + INDENT).join(map(printable, d.error_message.split("\n")))),
            ),
            ("attempts", d.attempts if d.attempts is not None else "-"),
            ("replayed", ", ".join(f"to {p.where} at {iso_ms(p.timestamp_ms)}" for p in replays) or "no"),
            ("key", _full(d.record.key)),
            ("value", _full(d.record.value)),
            ("headers", ", ".join(f"{name}={_full(value)}" for name, value in d.original_headers()) or "-"),
        ]
    )


@dataclass(frozen=True)
class Planned:
    letter: DeadLetter
    topic: str
    partition: int | None  # None: the target topic's partitioner decides


def _plan(
    found: DeadLetterTopic, offsets: Sequence[int], replay_all: bool, to: str | None, force: bool
) -> list[Planned]:
    """What to replay where; refuses (before anything is produced) a record already replayed. A
    source record dead-lettered more than once (see :meth:`DeadLetterTopic.copies`) is replayed
    once, from its newest copy, and counts as replayed when any copy was."""
    if replay_all:
        corrupt = [d.offset for d in found.letters if d.is_corrupt_batch]
        if corrupt:
            note(f"skipping {len(corrupt)} dead-lettered corrupt batch(es) (offsets {corrupt[:10]}): not replayable")
        newest = [d for d in found.letters if found.copies(d)[-1] is d and not d.is_corrupt_batch]
        chosen = [d for d in newest if force or not found.replays_of(d)]
        skipped = [d.offset for d in chosen if not d.has_source and to is None]
        if skipped:
            note(f"skipping {len(skipped)} record(s) without dlq.* source headers (offsets {skipped[:10]}); use --to")
        chosen = [d for d in chosen if d.has_source or to is not None]
    else:
        chosen = [found.letter(n) for n in sorted(set(offsets))]
        for d in chosen:
            if d.is_corrupt_batch:
                raise FailedPrecondition(
                    f"DLQ record {d.offset} of {found.name} is the corrupt stored batch at offsets "
                    f"{d.source_offsets} of {d.source_topic}/{d.source_partition}, not a record: replaying it "
                    f"would put the corrupt batch back into a topic (`logsvc dlq show CONNECTOR --offset {d.offset}` "
                    "shows its raw bytes)"
                )
            if not d.has_source and to is None:
                raise FailedPrecondition(
                    f"DLQ record {d.offset} of {found.name} has no dlq.topic/partition/offset headers; "
                    "give the topic to replay it to with --to"
                )
            earlier = found.replays_of(d)
            if earlier and not force:
                last = earlier[-1]
                through = "" if last.dlq_offset == d.offset else f" (as DLQ record {last.dlq_offset}, a copy)"
                raise FailedPrecondition(
                    f"DLQ record {d.offset} of {found.name} was already replayed to {last.where} at "
                    f"{iso_ms(last.timestamp_ms)}{through}; use --force to replay it again"
                )
        if not force:
            for d in chosen:
                twins = [c.offset for c in found.copies(d) if c in chosen]
                if len(twins) > 1:
                    raise FailedPrecondition(
                        f"DLQ records {', '.join(map(str, twins))} of {found.name} are copies of one dead-lettered "
                        f"record ({d.source}); give one of them, or use --force to replay each"
                    )
    planned = []
    for d in chosen:
        topic = to or d.source_topic
        assert topic is not None
        planned.append(Planned(d, topic, d.source_partition if topic == d.source_topic else None))
    return planned


def connector_topics(admin: Admin, connector: str) -> set[str]:
    """The topics ``connector`` consumes, as the broker knows them: those its consumer group (named
    after the connector) has committed offsets for or its live members are assigned."""
    try:
        desc = admin.describe_group(connector)
    except GroupNotFound:
        return set()
    return {p.topic for p in desc.partitions} | {tp.topic for m in desc.members for tp in m.assignment}


def _own_sources(
    admin: Admin, connector: str, found: DeadLetterTopic, planned: list[Planned], replay_all: bool
) -> list[Planned]:
    """``planned`` when every source topic named by a ``dlq.topic`` header is one the connector
    consumes: anyone who can produce to the DLQ topic can write that header, so it is not trusted
    to pick a target. Otherwise FailedPrecondition naming the records (with --all: those records
    are left out, with a note)."""
    own = connector_topics(admin, connector)
    foreign = [p for p in planned if p.topic not in own]
    if not foreign:
        return planned
    topics = ", ".join(sorted({p.topic for p in foreign}))
    offsets = [p.letter.offset for p in foreign]
    consumed = ", ".join(sorted(own)) or "none known: its group has no committed offsets"
    why = (
        f"their dlq.topic header names {topics}, which connector {connector} does not consume (its topics: {consumed})"
    )
    if replay_all:
        note(f"skipping {len(foreign)} record(s) of {found.name} (offsets {offsets[:10]}): {why}; use --to or --force")
        return [p for p in planned if p.topic in own]
    raise FailedPrecondition(
        f"DLQ record(s) {', '.join(map(str, offsets[:10]))} of {found.name} not replayed: {why}; "
        "give the topic with --to, or use --force to replay to it anyway"
    )


def _check_targets(source: Source, planned: Sequence[Planned]) -> None:
    """Every target topic exists and has the partition a record goes to (before producing any)."""
    for topic in sorted({p.topic for p in planned}):
        try:
            view = source.describe(topic)
        except TopicNotFound:
            raise TopicNotFound(f"cannot replay to topic {topic}: it does not exist", topic=topic) from None
        for p in planned:
            if p.topic == topic and p.partition is not None:
                view.partition(p.partition)


def _replay_record(p: Planned) -> ProducerRecord:
    d = p.letter
    headers = d.original_headers()
    if d.has_source:
        headers.append((REPLAY_OF, d.source.encode()))
    headers.append((REPLAY_DLQ_OFFSET, str(d.offset).encode()))
    return ProducerRecord(d.record.value, d.record.key, headers=headers, partition=p.partition)


def _marker(p: Planned, partition: int, offset: int) -> ProducerRecord:
    value = {"dlq_offset": p.letter.offset, "topic": p.topic, "partition": partition, "offset": offset}
    headers = [(MARKER_TOPIC, p.topic), (MARKER_PARTITION, str(partition)), (MARKER_OFFSET, str(offset))]
    return ProducerRecord(json.dumps(value), str(p.letter.offset), headers=headers, partition=0)


@dlq.command()
@click.argument("connector")
@click.option(
    "--offset", "offsets", type=click.IntRange(min=0), multiple=True, help="A DLQ offset to replay (repeatable)."
)
@click.option("--all", "replay_all", is_flag=True, help="Every record not replayed yet (with --force: every record).")
@click.option("--to", "to_topic", metavar="TOPIC", default=None, help="Produce to TOPIC instead of the source topic.")
@click.option(
    "--force",
    is_flag=True,
    help="Replay records that were replayed before, and to source topics the connector does not consume.",
)
@dlq_topic_option
@server_option
@output_option(as_table="a row per replayed record", as_json="an array, one object per replayed record")
def replay(
    connector: str,
    offsets: tuple[int, ...],
    replay_all: bool,
    to_topic: str | None,
    force: bool,
    dlq_topic: str | None,
    output: str,
) -> None:
    """Produce dead-lettered records again, onto their source topic and partition (or --to TOPIC).

    The copy has the original key, value and headers, plus logsvc.replay.of = TOPIC/PARTITION/OFFSET
    of the source record and logsvc.replay.dlq_offset = N. A record replayed before is refused
    unless --force; when any requested record is refused, nothing is replayed. Replays are
    remembered in the topic DLQ_TOPIC.replays.

    The source topic comes from the record's dlq.topic header, which anyone able to write to the
    DLQ topic can set: it must be a topic CONNECTOR consumes (its group has committed offsets for
    it or is assigned it), else the record is refused (left out with --all) unless --to or --force.
    """
    if bool(offsets) == replay_all:
        raise click.UsageError("give --offset N (repeatable) or --all")
    address = get_state().address()
    with ServerSource(address) as source, Admin(address) as admin:
        found = open_dlq(source, connector, dlq_topic)
        planned = _plan(found, offsets, replay_all, to_topic, force)
        if to_topic is None and not force:
            planned = _own_sources(admin, connector, found, planned, replay_all)
        if not planned:
            why = "was replayed before (--force replays them again)" if found.letters else "(it has none)"
            note(f"nothing to replay: every dead-lettered record of {found.name} {why}")
            if output == "json":
                echo_json([])
            return
        _check_targets(source, planned)
        with contextlib.suppress(TopicAlreadyExists):
            admin.create_topic(marker_topic(found.name), 1)
        landed: dict[int, tuple[int, int]] = {}  # index in planned -> (partition, offset)
        for topic in sorted({p.topic for p in planned}):
            batch = [(i, p) for i, p in enumerate(planned) if p.topic == topic]
            positions = admin.produce_records(topic, [_replay_record(p) for _, p in batch])
            landed.update((i, (pos.partition, pos.offset)) for (i, _), pos in zip(batch, positions, strict=True))
        markers = [_marker(p, *landed[i]) for i, p in enumerate(planned)]
        admin.produce_records(marker_topic(found.name), markers)
    rows = [(p, *landed[i]) for i, p in enumerate(planned)]
    if output == "json":
        echo_json(
            [
                {
                    "dlq_offset": p.letter.offset,
                    "source": {
                        "topic": p.letter.source_topic,
                        "partition": p.letter.source_partition,
                        "offset": p.letter.source_offset,
                    },
                    "replayed_to": {"topic": p.topic, "partition": partition, "offset": offset},
                }
                for p, partition, offset in rows
            ]
        )
    else:
        echo_table(
            ("DLQ OFFSET", "SOURCE", "REPLAYED TO"),
            [
                (p.letter.offset, p.letter.source if p.letter.has_source else None, f"{p.topic}/{pt}@{o}")
                for p, pt, o in rows
            ],
        )
    targets = ", ".join(sorted({p.topic for p in planned}))
    note(f"replayed {len(planned)} record(s) of {found.name} to {targets}")
