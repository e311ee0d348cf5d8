"""Reviewing dead letters: read a connector's dead-letter topic and its replay markers, find the
dead letters of one record, plan a replay and carry it out.

What ``logsvc dlq list|show|replay`` and ``logsvc records status`` do, apart from parsing their
arguments and printing (:mod:`logsvc.cli.dlq`, :mod:`logsvc.cli.records`). The format read and
written is :mod:`.format`'s. Records are read as raw stored batches from a :class:`BatchSource`
(the CLI's broker source), so a stored batch of a dead-letter topic that does not decode itself is
skipped with a warning (``warn``, the CLI's stderr note) instead of stopping the review.

A source record can be dead-lettered more than once (a connector killed between dead-lettering it
and committing past it does it again after its restart; so does a replay of the source topic):
those DLQ records are copies of one dead letter (:meth:`DeadLetterTopic.copies`). A replay through
any copy counts as a replay of every copy, and ``replay_all`` replays such a record once, from its
newest copy.

The source topic of a replay comes from the ``dlq.topic`` header, which anyone who can produce to
the DLQ topic can write: without ``to`` or ``force`` it must be a topic the connector consumes
(:func:`own_sources`), so a forged dead letter cannot be replayed into another team's topic.
Replayed copies are produced before their markers, so a crash in between can leave a replay
unremembered (a second replay then duplicates it), never a replay remembered that did not happen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from logsvc_client import Admin, ProducerRecord
from logsvc_client.errors import (
    CorruptBatch,
    FailedPrecondition,
    GroupNotFound,
    OffsetOutOfRange,
    TopicAlreadyExists,
    TopicNotFound,
)
from logsvc_client.records import Record
from logsvc_wire.batch import decode_records

from .format import DLQ_PARTITION, DeadLetter, Replay, dlq_topic, marker_headers, marker_topic

#: where warnings for the person reviewing go (the CLI passes its stderr note)
Warn = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def _iso_ms(timestamp_ms: int) -> str:
    """A millisecond timestamp as the CLI prints it (ISO-8601 UTC, milliseconds, ``Z``)."""
    if timestamp_ms < 0:
        return "-"
    moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


# -- what the review reads from -----------------------------------------------------------------


class PartitionRange(Protocol):
    @property
    def partition(self) -> int: ...
    @property
    def log_start_offset(self) -> int: ...
    @property
    def next_offset(self) -> int: ...


class TopicRange(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def partitions(self) -> Sequence[PartitionRange]: ...
    def partition(self, partition: int) -> PartitionRange:
        """The partition; InvalidPartition when the topic has no such partition."""
        ...


class BatchSource(Protocol):
    """Topic descriptions and raw stored batches (the CLI's :class:`~logsvc.cli.sources.Source`)."""

    def describe(self, topic: str) -> TopicRange:
        """The topic; TopicNotFound when it does not exist."""
        ...

    def batches(self, topic: str, partition: int, offset: int, end_offset: int) -> Iterator[tuple[int, bytes]]:
        """Every stored batch holding an offset in ``[offset, end_offset)``, in offset order."""
        ...


# -- reading a partition ------------------------------------------------------------------------


def read_records(
    source: BatchSource,
    topic: str,
    partition: int,
    start: int,
    end: int,
    skip_corrupt: bool = False,
    warn: Warn = _stderr,
) -> Iterator[Record]:
    """The records of ``topic/partition`` with offsets in ``[start, end)``, in offset order.
    A stored batch that does not decode raises CorruptBatch, or with ``skip_corrupt`` is left
    out with a warning."""
    for base, data in source.batches(topic, partition, start, end):
        try:
            records = decode_records(topic, partition, base, data, start_offset=start)
        except CorruptBatch as e:
            if not skip_corrupt:
                raise
            warn(f"warning: {e.message}; left out (see `logsvc partitions verify {topic}`)")
            continue
        for record in records:
            if record.offset >= end:
                return
            yield record


def out_of_range(topic: str, part: PartitionRange, offset: int) -> OffsetOutOfRange:
    """The error for an offset that holds no record, naming the offsets that do."""
    start, end = part.log_start_offset, part.next_offset
    held = f"it holds offsets {start} to {end - 1}" if end > start else "it holds no records"
    return OffsetOutOfRange(
        f"offset {offset} is out of range for {topic}/{part.partition}: {held} "
        f"(log start offset {start}, next offset {end})",
        log_start_offset=start,
        next_offset=end,
    )


def record_at(source: BatchSource, topic: str, part: PartitionRange, offset: int) -> Record:
    """The record at ``offset``; OffsetOutOfRange unless ``log start <= offset < next offset``."""
    if part.log_start_offset <= offset < part.next_offset:
        for record in read_records(source, topic, part.partition, offset, offset + 1):
            return record
    raise out_of_range(topic, part, offset)


def dead_letters_of(
    source: BatchSource, admin: Admin, topic: str, partition: int, offset: int, warn: Warn = _stderr
) -> list[DeadLetter]:
    """Every dead letter of the record ``topic/partition@offset``, in every topic named ``*.dlq``."""
    found: list[DeadLetter] = []
    for name in sorted(t.name for t in admin.list_topics() if t.name.endswith(dlq_topic(""))):
        try:
            view = source.describe(name)
        except TopicNotFound:
            continue  # deleted meanwhile
        for part in view.partitions:
            records = read_records(source, name, part.partition, part.log_start_offset, part.next_offset, True, warn)
            found.extend(d for d in map(DeadLetter.of, records) if d.is_of(topic, partition, offset))
    return found


# -- a connector's dead-letter topic and its replay markers -------------------------------------


@dataclass
class DeadLetterTopic:
    """The dead letters of one topic (its partition 0) and what was replayed of them."""

    view: TopicRange
    letters: list[DeadLetter]
    replays: dict[int, list[Replay]]  # DLQ offset -> replays, oldest first

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def partition(self) -> PartitionRange:
        return self.view.partition(DLQ_PARTITION)

    def letter(self, offset: int) -> DeadLetter:
        """The dead letter at ``offset``; OffsetOutOfRange naming the offsets the DLQ holds."""
        for d in self.letters:
            if d.offset == offset:
                return d
        raise out_of_range(self.name, self.partition, offset)

    def copies(self, letter: DeadLetter) -> list[DeadLetter]:
        """Every dead letter of ``letter``'s source record, ``letter`` included, oldest first (see
        the module docstring). A letter without source headers is only a copy of itself."""
        if not letter.has_source:
            return [letter]
        return self._by_source[letter.source]

    @functools.cached_property
    def _by_source(self) -> dict[str, list[DeadLetter]]:
        out: dict[str, list[DeadLetter]] = {}
        for d in self.letters:
            if d.has_source:
                out.setdefault(d.source, []).append(d)
        return out

    def replays_of(self, letter: DeadLetter) -> list[Replay]:
        """The replays of ``letter``'s source record, through any of its copies, oldest first."""
        found = [r for d in self.copies(letter) for r in self.replays.get(d.offset, ())]
        return sorted(found, key=lambda r: (r.timestamp_ms, r.dlq_offset))


def open_dlq(source: BatchSource, connector: str, topic: str | None, warn: Warn = _stderr) -> DeadLetterTopic:
    """The connector's dead-letter topic (``topic`` or ``<connector>.dlq``) with its replays;
    TopicNotFound saying what to do when it does not exist."""
    name = topic or dlq_topic(connector)
    try:
        view = source.describe(name)
    except TopicNotFound:
        whose = f"connector {connector}" if topic is None else f"--topic {name}"
        raise TopicNotFound(
            f"dead-letter topic {name} of {whose} does not exist (nothing was dead-lettered yet, "
            "or the connector names another dlq_topic: give it with --topic)",
            topic=name,
        ) from None
    part = view.partition(DLQ_PARTITION)
    records = read_records(source, name, DLQ_PARTITION, part.log_start_offset, part.next_offset, True, warn)
    letters = [DeadLetter.of(r) for r in records]
    return DeadLetterTopic(view, letters, read_replays(source, marker_topic(name), warn))


def read_replays(source: BatchSource, name: str, warn: Warn = _stderr) -> dict[int, list[Replay]]:
    """The replays remembered in the marker topic ``name``, by DLQ offset."""
    try:
        part = source.describe(name).partition(0)
    except TopicNotFound:
        return {}  # nothing was replayed yet
    out: dict[int, list[Replay]] = {}
    for r in read_records(source, name, 0, part.log_start_offset, part.next_offset, True, warn):
        replay = Replay.of(r)
        if replay is not None:  # else not one of ours
            out.setdefault(replay.dlq_offset, []).append(replay)
    return out


# -- replaying ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """A dead letter to replay, and where to."""

    letter: DeadLetter
    topic: str
    partition: int | None  # None: the target topic's partitioner decides


@dataclass(frozen=True)
class Replayed:
    """A dead letter replayed: where its copy landed."""

    planned: Planned
    partition: int
    offset: int


def plan(
    found: DeadLetterTopic,
    offsets: Sequence[int],
    replay_all: bool,
    to: str | None,
    force: bool,
    warn: Warn = _stderr,
) -> list[Planned]:
    """What to replay where: the dead letters at ``offsets``, or with ``replay_all`` every one not
    replayed yet (with ``force``: every one), to ``to`` or their source topic and partition.

    Raises FailedPrecondition (before anything is produced) for a corrupt batch, a letter without
    source headers and no ``to``, a record already replayed or two copies of one record (unless
    ``force``); ``replay_all`` leaves such letters out, with a warning. A source record
    dead-lettered more than once is replayed once, from its newest copy, and counts as replayed
    when any copy was."""
    if replay_all:
        corrupt = [d.offset for d in found.letters if d.is_corrupt_batch]
        if corrupt:
            warn(f"skipping {len(corrupt)} dead-lettered corrupt batch(es) (offsets {corrupt[:10]}): not replayable")
        newest = [d for d in found.letters if found.copies(d)[-1] is d and not d.is_corrupt_batch]
        chosen = [d for d in newest if force or not found.replays_of(d)]
        skipped = [d.offset for d in chosen if not d.has_source and to is None]
        if skipped:
            warn(f"skipping {len(skipped)} record(s) without dlq.* source headers (offsets {skipped[:10]}); use --to")
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
                    f"{_iso_ms(last.timestamp_ms)}{through}; use --force to replay it again"
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


def own_sources(
    admin: Admin,
    connector: str,
    found: DeadLetterTopic,
    planned: list[Planned],
    replay_all: bool,
    warn: Warn = _stderr,
) -> list[Planned]:
    """``planned`` when every source topic named by a ``dlq.topic`` header is one the connector
    consumes: anyone who can produce to the DLQ topic can write that header, so it is not trusted
    to pick a target. Otherwise FailedPrecondition naming the records (with ``replay_all``: those
    records are left out, with a warning)."""
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
        warn(f"skipping {len(foreign)} record(s) of {found.name} (offsets {offsets[:10]}): {why}; use --to or --force")
        return [p for p in planned if p.topic in own]
    raise FailedPrecondition(
        f"DLQ record(s) {', '.join(map(str, offsets[:10]))} of {found.name} not replayed: {why}; "
        "give the topic with --to, or use --force to replay to it anyway"
    )


def check_targets(source: BatchSource, planned: Sequence[Planned]) -> None:
    """Every target topic exists and has the partition a record goes to (before producing any):
    TopicNotFound or InvalidPartition otherwise."""
    for topic in sorted({p.topic for p in planned}):
        try:
            view = source.describe(topic)
        except TopicNotFound:
            raise TopicNotFound(f"cannot replay to topic {topic}: it does not exist", topic=topic) from None
        for p in planned:
            if p.topic == topic and p.partition is not None:
                view.partition(p.partition)


def replay(admin: Admin, found: DeadLetterTopic, planned: Sequence[Planned]) -> list[Replayed]:
    """Produce the ``planned`` copies (each target topic's in one call), then remember each replay
    in the marker topic (created when missing); where each copy landed, in ``planned`` order."""
    markers_topic = marker_topic(found.name)
    with contextlib.suppress(TopicAlreadyExists):
        admin.create_topic(markers_topic, 1)
    landed: dict[int, tuple[int, int]] = {}  # index in planned -> (partition, offset)
    for topic in sorted({p.topic for p in planned}):
        batch = [(i, p) for i, p in enumerate(planned) if p.topic == topic]
        positions = admin.produce_records(topic, [_copy(p) for _, p in batch])
        landed.update((i, (pos.partition, pos.offset)) for (i, _), pos in zip(batch, positions, strict=True))
    replayed = [Replayed(p, *landed[i]) for i, p in enumerate(planned)]
    admin.produce_records(markers_topic, [_marker(r) for r in replayed])
    return replayed


def _copy(p: Planned) -> ProducerRecord:
    d = p.letter
    return ProducerRecord(d.record.value, d.record.key, headers=d.replay_headers(), partition=p.partition)


def _marker(r: Replayed) -> ProducerRecord:
    p = r.planned
    value = {"dlq_offset": p.letter.offset, "topic": p.topic, "partition": r.partition, "offset": r.offset}
    headers = marker_headers(p.topic, r.partition, r.offset)
    return ProducerRecord(json.dumps(value), str(p.letter.offset), headers=headers, partition=0)
