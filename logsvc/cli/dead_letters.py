"""Dead letters as the CLI reads them: a connector's dead-letter topic, its records with their
``dlq.*`` headers parsed, and the replays remembered in ``<dlq topic>.replays``.

Used by ``logsvc dlq`` (:mod:`logsvc.cli.dlq`) and ``logsvc records status``
(:mod:`logsvc.cli.records`). The header names are the ones the connectors write
(:mod:`logsvc_connect.dead_letters`). A dead letter may be a whole stored batch that did not decode
(``dlq.error.class`` = CorruptBatch, its raw bytes as the value, ``dlq.offset`` to
``dlq.last_offset`` the offsets it covers): :attr:`DeadLetter.is_corrupt_batch`. A stored batch of a
dead-letter topic that does not decode itself is skipped with a warning on stderr.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from logsvc.cli.output import iso_ms, note
from logsvc.cli.sources import PartitionView, Source, TopicView
from logsvc_client import Admin
from logsvc_client.errors import CorruptBatch, OffsetOutOfRange, TopicNotFound
from logsvc_client.records import Record
from logsvc_wire.batch import decode_records

DLQ_PREFIX = "dlq."
DLQ_SUFFIX = ".dlq"
DLQ_PARTITION = 0  # where connectors write dead letters
REPLAY_PREFIX = "logsvc.replay."
REPLAY_OF = "logsvc.replay.of"
REPLAY_DLQ_OFFSET = "logsvc.replay.dlq_offset"
MARKER_TOPIC = "logsvc.replay.topic"
MARKER_PARTITION = "logsvc.replay.partition"
MARKER_OFFSET = "logsvc.replay.offset"


# -- reading a partition ------------------------------------------------------------------------


def read_records(
    source: Source, topic: str, partition: int, start: int, end: int, skip_corrupt: bool = False
) -> Iterator[Record]:
    """The records of ``topic/partition`` with offsets in ``[start, end)``, in offset order.
    A stored batch that does not decode raises CorruptBatch, or with ``skip_corrupt`` is left
    out with a warning on stderr."""
    for base, data in source.batches(topic, partition, start, end):
        try:
            records = decode_records(topic, partition, base, data, start_offset=start)
        except CorruptBatch as e:
            if not skip_corrupt:
                raise
            note(f"warning: {e.message}; left out (see `logsvc partitions verify {topic}`)")
            continue
        for record in records:
            if record.offset >= end:
                return
            yield record


def out_of_range(topic: str, part: PartitionView, offset: int) -> OffsetOutOfRange:
    """The error for an offset that holds no record, naming the offsets that do."""
    start, end = part.log_start_offset, part.next_offset
    held = f"it holds offsets {start} to {end - 1}" if end > start else "it holds no records"
    return OffsetOutOfRange(
        f"offset {offset} is out of range for {topic}/{part.partition}: {held} "
        f"(log start offset {start}, next offset {end})",
        log_start_offset=start,
        next_offset=end,
    )


def record_at(source: Source, topic: str, part: PartitionView, offset: int) -> Record:
    """The record at ``offset``; OffsetOutOfRange unless ``log start <= offset < next offset``."""
    if part.log_start_offset <= offset < part.next_offset:
        for record in read_records(source, topic, part.partition, offset, offset + 1):
            return record
    raise out_of_range(topic, part, offset)


# -- what a dead letter says --------------------------------------------------------------------


def _int(data: bytes | None) -> int | None:
    try:
        return int(data) if data is not None else None
    except ValueError:
        return None


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


@dataclass(frozen=True)
class Replay:
    """One replay of a dead letter: where its copy landed, and when."""

    dlq_offset: int
    topic: str
    partition: int
    offset: int
    timestamp_ms: int

    @property
    def where(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp_ms,
            "time": iso_ms(self.timestamp_ms),
        }


@dataclass(frozen=True)
class DeadLetter:
    """A record of a dead-letter topic, with its ``dlq.*`` headers read (None when missing)."""

    record: Record
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    source_last_offset: int | None  # a dead-lettered corrupt batch: the last offset it covers
    source_timestamp_ms: int | None
    connector: str | None
    error_class: str | None
    error_message: str | None
    attempts: int | None

    @classmethod
    def of(cls, record: Record) -> DeadLetter:
        h = {name: value for name, value in record.headers or () if name.startswith(DLQ_PREFIX)}
        return cls(
            record,
            _text(h.get("dlq.topic")),
            _int(h.get("dlq.partition")),
            _int(h.get("dlq.offset")),
            _int(h.get("dlq.last_offset")),
            _int(h.get("dlq.timestamp")),
            _text(h.get("dlq.connector")),
            _text(h.get("dlq.error.class")),
            _text(h.get("dlq.error.message")),
            _int(h.get("dlq.attempts")),
        )

    @property
    def offset(self) -> int:
        return self.record.offset

    @property
    def is_corrupt_batch(self) -> bool:
        """A whole stored batch that did not decode (its raw bytes), not a record."""
        return self.error_class == CorruptBatch.__name__ and self.source_last_offset is not None

    @property
    def source_offsets(self) -> str | None:
        """The source offset, or for a corrupt batch the range it covers (``5-7``)."""
        if self.source_offset is None:
            return None
        last = self.source_last_offset
        return str(self.source_offset) if last is None or last == self.source_offset else f"{self.source_offset}-{last}"

    @property
    def has_source(self) -> bool:
        return self.source_topic is not None and self.source_partition is not None and self.source_offset is not None

    @property
    def source(self) -> str:
        return f"{self.source_topic}/{self.source_partition}/{self.source_offset}"

    def is_of(self, topic: str, partition: int, offset: int) -> bool:
        if (self.source_topic, self.source_partition) != (topic, partition) or self.source_offset is None:
            return False
        last = self.source_offset if self.source_last_offset is None else self.source_last_offset
        return self.source_offset <= offset <= last

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The source record's headers: without ``dlq.*`` (and without an earlier replay's)."""
        return [
            (name, value)
            for name, value in self.record.headers or ()
            if not name.startswith(DLQ_PREFIX) and not name.startswith(REPLAY_PREFIX)
        ]

    def as_json(self, replays: Sequence[Replay] = ()) -> dict[str, Any]:
        r = self.record
        return {
            "dlq_topic": r.topic,
            "dlq_partition": r.partition,
            "dlq_offset": r.offset,
            "timestamp": r.timestamp_ms,
            "time": iso_ms(r.timestamp_ms),
            "connector": self.connector,
            "source": {
                "topic": self.source_topic,
                "partition": self.source_partition,
                "offset": self.source_offset,
                "timestamp": self.source_timestamp_ms,
                # a dead-lettered corrupt batch: the last offset it covers
                **({} if self.source_last_offset is None else {"last_offset": self.source_last_offset}),
            },
            "corrupt_batch": self.is_corrupt_batch,
            "error": {"class": self.error_class, "message": self.error_message},
            "attempts": self.attempts,
            "replayed": bool(replays),
            "replays": [p.as_json() for p in replays],
        }


def dead_letters_of(source: Source, admin: Admin, topic: str, partition: int, offset: int) -> list[DeadLetter]:
    """Every dead letter of the record ``topic/partition@offset``, in every topic named ``*.dlq``."""
    found: list[DeadLetter] = []
    for name in sorted(t.name for t in admin.list_topics() if t.name.endswith(DLQ_SUFFIX)):
        try:
            view = source.describe(name)
        except TopicNotFound:
            continue  # deleted meanwhile
        for part in view.partitions:
            records = read_records(source, name, part.partition, part.log_start_offset, part.next_offset, True)
            found.extend(d for d in map(DeadLetter.of, records) if d.is_of(topic, partition, offset))
    return found


# -- a connector's dead-letter topic and its replay markers -------------------------------------


@dataclass
class DeadLetterTopic:
    """The dead letters of one topic (its partition 0) and what was replayed of them."""

    view: TopicView
    letters: list[DeadLetter]
    replays: dict[int, list[Replay]]  # DLQ offset -> replays, oldest first

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def partition(self) -> PartitionView:
        return self.view.partition(DLQ_PARTITION)

    def letter(self, offset: int) -> DeadLetter:
        """The dead letter at ``offset``; OffsetOutOfRange naming the offsets the DLQ holds."""
        for d in self.letters:
            if d.offset == offset:
                return d
        raise out_of_range(self.name, self.partition, offset)

    def copies(self, letter: DeadLetter) -> list[DeadLetter]:
        """Every dead letter of ``letter``'s source record, ``letter`` included, oldest first. A
        connector killed between dead-lettering a record and committing past it dead-letters the
        record again after its restart (so does a replay of the source topic): those are copies of
        one dead letter. A letter without source headers is only a copy of itself."""
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


def marker_topic(dlq_topic: str) -> str:
    return f"{dlq_topic}.replays"


def open_dlq(source: Source, connector: str, topic: str | None) -> DeadLetterTopic:
    """The connector's dead-letter topic (``topic`` or ``<connector>.dlq``) with its replays."""
    name = topic or f"{connector}{DLQ_SUFFIX}"
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
    records = read_records(source, name, DLQ_PARTITION, part.log_start_offset, part.next_offset, True)
    return DeadLetterTopic(view, [DeadLetter.of(r) for r in records], read_replays(source, marker_topic(name)))


def read_replays(source: Source, name: str) -> dict[int, list[Replay]]:
    try:
        part = source.describe(name).partition(0)
    except TopicNotFound:
        return {}  # nothing was replayed yet
    out: dict[int, list[Replay]] = {}
    for r in read_records(source, name, 0, part.log_start_offset, part.next_offset, True):
        h = dict(r.headers or ())
        dlq_offset, partition, offset = _int(r.key), _int(h.get(MARKER_PARTITION)), _int(h.get(MARKER_OFFSET))
        topic = _text(h.get(MARKER_TOPIC))
        if dlq_offset is None or topic is None or partition is None or offset is None:
            continue  # not one of ours
        out.setdefault(dlq_offset, []).append(Replay(dlq_offset, topic, partition, offset, r.timestamp_ms))
    return out


# -- commands -----------------------------------------------------------------------------------
