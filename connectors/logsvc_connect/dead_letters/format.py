"""The dead-letter format: the one definition the writer (:mod:`.writer`), ``logsvc dlq`` and
``logsvc records status`` (through :mod:`.review`) share.

A sink connector sends a record that fails on its data to its dead-letter topic —
``<connector>.dlq`` (:func:`dlq_topic`) unless its config names another ``dlq_topic`` — always to
partition :data:`DLQ_PARTITION` (0), created with one partition when missing. A dead-lettered
record keeps the source record's key, value and headers (less any ``dlq.*`` ones); its own
timestamp is when it was dead-lettered (the source record's is in ``dlq.timestamp``); it gains
headers:

=====================  ===========================================================
``dlq.topic``          source topic
``dlq.partition``      source partition (decimal)
``dlq.offset``         source offset (decimal)
``dlq.timestamp``      source record timestamp in ms (decimal)
``dlq.connector``      the connector's name
``dlq.error.class``    the error's class (e.g. ``DataError``, ``NotNullViolation``)
``dlq.error.message``  the error message (UTF-8, at most :data:`MESSAGE_MAX_BYTES` bytes)
``dlq.attempts``       how many times the write that failed the record ran: 1, plus one per
                       retry of its batch after the database failed (a record that fails to
                       decode or in a filter was never written: 1)
=====================  ===========================================================

A stored batch of the source partition that does not decode at all (a
:class:`~logsvc_client.errors.CorruptBatch`: written by an older version, or damaged on disk) is
dead-lettered whole, as one record whose value is the stored batch's bytes (no key, no headers of
its own), with ``dlq.offset`` its base offset, ``dlq.last_offset`` its last offset (only these
dead letters have it), no ``dlq.timestamp``, and ``dlq.error.class`` = :data:`CORRUPT_BATCH`. It
cannot be replayed (``logsvc dlq replay`` refuses: it would write the corrupt batch back).

A replay (``logsvc dlq replay``) produces the original record again with two more headers,
:data:`REPLAY_OF` = ``<topic>/<partition>/<offset>`` of the source record and
:data:`REPLAY_DLQ_OFFSET` = the dead letter's offset, and remembers it in
``<dlq topic>.replays`` (:func:`marker_topic`, one partition): one record per replay, key = the DLQ
offset (decimal), headers :data:`MARKER_TOPIC` / :data:`MARKER_PARTITION` / :data:`MARKER_OFFSET`
saying where the copy landed.

:class:`DeadLetter` reads these headers back (None for a missing or malformed one);
:class:`Replay` is one marker read back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from logsvc_client.errors import CorruptBatch
from logsvc_client.records import Record

HEADER_PREFIX = "dlq."
DLQ_SUFFIX = ".dlq"
DLQ_PARTITION = 0  # where connectors write dead letters
MESSAGE_MAX_BYTES = 4096

TOPIC = "dlq.topic"
PARTITION = "dlq.partition"
OFFSET = "dlq.offset"
LAST_OFFSET = "dlq.last_offset"
TIMESTAMP = "dlq.timestamp"
CONNECTOR = "dlq.connector"
ERROR_CLASS = "dlq.error.class"
ERROR_MESSAGE = "dlq.error.message"
ATTEMPTS = "dlq.attempts"

CORRUPT_BATCH = CorruptBatch.__name__  # dlq.error.class of a dead-lettered stored batch

REPLAY_PREFIX = "logsvc.replay."
REPLAY_OF = "logsvc.replay.of"
REPLAY_DLQ_OFFSET = "logsvc.replay.dlq_offset"
MARKER_TOPIC = "logsvc.replay.topic"
MARKER_PARTITION = "logsvc.replay.partition"
MARKER_OFFSET = "logsvc.replay.offset"


def dlq_topic(connector: str) -> str:
    """The default dead-letter topic of ``connector``."""
    return f"{connector}{DLQ_SUFFIX}"


def marker_topic(dlq_topic: str) -> str:
    """Where the replays of ``dlq_topic``'s records are remembered."""
    return f"{dlq_topic}.replays"


def _message(message: str) -> bytes:
    return message.encode("utf-8", "replace")[:MESSAGE_MAX_BYTES]


def record_headers(
    headers: Sequence[tuple[str, bytes]] | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    connector: str,
    error_class: str,
    error_message: str,
    attempts: int,
) -> list[tuple[str, bytes]]:
    """The headers of a dead-lettered record: its own (``headers``, less any ``dlq.*``), then the
    ``dlq.*`` ones."""
    own = [(name, value) for name, value in (headers or ()) if not name.startswith(HEADER_PREFIX)]
    return [
        *own,
        (TOPIC, topic.encode()),
        (PARTITION, str(partition).encode()),
        (OFFSET, str(offset).encode()),
        (TIMESTAMP, str(timestamp_ms).encode()),
        (CONNECTOR, connector.encode()),
        (ERROR_CLASS, error_class.encode()),
        (ERROR_MESSAGE, _message(error_message)),
        (ATTEMPTS, str(attempts).encode()),
    ]


def corrupt_batch_headers(error: CorruptBatch, connector: str, attempts: int) -> list[tuple[str, bytes]]:
    """The headers of a dead-lettered stored batch that does not decode (``error`` as the
    consumer raises it)."""
    d = error.details
    return [
        (TOPIC, str(d["topic"]).encode()),
        (PARTITION, str(d["partition"]).encode()),
        (OFFSET, str(d["base_offset"]).encode()),
        (LAST_OFFSET, str(d["last_offset"]).encode()),
        (CONNECTOR, connector.encode()),
        (ERROR_CLASS, CORRUPT_BATCH.encode()),
        (ERROR_MESSAGE, _message(error.message)),
        (ATTEMPTS, str(attempts).encode()),
    ]


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

    @classmethod
    def of(cls, marker: Record) -> Replay | None:
        """The replay a record of a marker topic remembers; None when it is not one of ours."""
        h = dict(marker.headers or ())
        dlq_offset, partition, offset = _int(marker.key), _int(h.get(MARKER_PARTITION)), _int(h.get(MARKER_OFFSET))
        topic = _text(h.get(MARKER_TOPIC))
        if dlq_offset is None or topic is None or partition is None or offset is None:
            return None
        return cls(dlq_offset, topic, partition, offset, marker.timestamp_ms)


def marker_headers(topic: str, partition: int, offset: int) -> list[tuple[str, str]]:
    """The headers of a replay marker: where the copy landed."""
    return [(MARKER_TOPIC, topic), (MARKER_PARTITION, str(partition)), (MARKER_OFFSET, str(offset))]


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
        h = {name: value for name, value in record.headers or () if name.startswith(HEADER_PREFIX)}
        return cls(
            record,
            _text(h.get(TOPIC)),
            _int(h.get(PARTITION)),
            _int(h.get(OFFSET)),
            _int(h.get(LAST_OFFSET)),
            _int(h.get(TIMESTAMP)),
            _text(h.get(CONNECTOR)),
            _text(h.get(ERROR_CLASS)),
            _text(h.get(ERROR_MESSAGE)),
            _int(h.get(ATTEMPTS)),
        )

    @property
    def offset(self) -> int:
        return self.record.offset

    @property
    def is_corrupt_batch(self) -> bool:
        """A whole stored batch that did not decode (its raw bytes), not a record."""
        return self.error_class == CORRUPT_BATCH and self.source_last_offset is not None

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
        """Whether this dead letter is of the record ``topic/partition@offset``."""
        if (self.source_topic, self.source_partition) != (topic, partition) or self.source_offset is None:
            return False
        last = self.source_offset if self.source_last_offset is None else self.source_last_offset
        return self.source_offset <= offset <= last

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The source record's headers: without ``dlq.*`` (and without an earlier replay's)."""
        return [
            (name, value)
            for name, value in self.record.headers or ()
            if not name.startswith(HEADER_PREFIX) and not name.startswith(REPLAY_PREFIX)
        ]

    def replay_headers(self) -> list[tuple[str, bytes]]:
        """The headers of a replayed copy: the original ones, then where it came from."""
        headers = self.original_headers()
        if self.has_source:
            headers.append((REPLAY_OF, self.source.encode()))
        headers.append((REPLAY_DLQ_OFFSET, str(self.offset).encode()))
        return headers
