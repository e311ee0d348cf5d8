"""The dead-letter topic: where records that fail on their data go, with the reason attached.

A dead-lettered record keeps the source record's key, value and headers and gains headers:

=====================  ===========================================================
``dlq.topic``          source topic
``dlq.partition``      source partition (decimal)
``dlq.offset``         source offset (decimal)
``dlq.timestamp``      source record timestamp in ms (decimal)
``dlq.connector``      the connector's name
``dlq.error.class``    the error's class (e.g. ``DataError``, ``NotNullViolation``)
``dlq.error.message``  the error message
``dlq.attempts``       how many times the write that failed the record ran: 1, plus one per
                       retry of its batch after the database failed (a record that fails to
                       decode or in a filter was never written: 1)
=====================  ===========================================================

A stored batch of the source partition that does not decode at all (a
:class:`~logsvc_client.errors.CorruptBatch`: written by an older version, or damaged on disk) is
dead-lettered whole, as one record whose value is the stored batch's bytes (no key, no headers of
its own), with ``dlq.offset`` its base offset, ``dlq.last_offset`` its last offset (only these
dead letters have it), no ``dlq.timestamp``, and ``dlq.error.class`` = ``CorruptBatch``. It
cannot be replayed (``logsvc dlq replay`` refuses: it would write the corrupt batch back).

The record is acknowledged by the broker before the source offset is committed past it, so the
decision survives a restart: the partition moves on and the record is not tried again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from logsvc_client import Admin, Producer
from logsvc_client.errors import CorruptBatch, TopicAlreadyExists
from logsvc_connect.sink import DataError, SinkRecord

HEADER_PREFIX = "dlq."
CORRUPT_BATCH = "CorruptBatch"  # dlq.error.class of a dead-lettered stored batch
MESSAGE_MAX_BYTES = 4096


def dead_letter_headers(record: SinkRecord, error: DataError, connector: str, attempts: int) -> list[tuple[str, bytes]]:
    own = [(name, value) for name, value in (record.headers or ()) if not name.startswith(HEADER_PREFIX)]
    return [
        *own,
        ("dlq.topic", record.topic.encode()),
        ("dlq.partition", str(record.partition).encode()),
        ("dlq.offset", str(record.offset).encode()),
        ("dlq.timestamp", str(record.timestamp_ms).encode()),
        ("dlq.connector", connector.encode()),
        ("dlq.error.class", error.error_class.encode()),
        ("dlq.error.message", error.message.encode("utf-8", "replace")[:MESSAGE_MAX_BYTES]),
        ("dlq.attempts", str(attempts).encode()),
    ]


def corrupt_batch_headers(error: CorruptBatch, connector: str, attempts: int) -> list[tuple[str, bytes]]:
    d = error.details
    return [
        ("dlq.topic", str(d["topic"]).encode()),
        ("dlq.partition", str(d["partition"]).encode()),
        ("dlq.offset", str(d["base_offset"]).encode()),
        ("dlq.last_offset", str(d["last_offset"]).encode()),
        ("dlq.connector", connector.encode()),
        ("dlq.error.class", CORRUPT_BATCH.encode()),
        ("dlq.error.message", error.message.encode("utf-8", "replace")[:MESSAGE_MAX_BYTES]),
        ("dlq.attempts", str(attempts).encode()),
    ]


class DeadLetters:
    """Sends failed records to ``topic`` (created with one partition when missing), partition 0.

    ``admin`` is the owner's admin client, used to create the topic (None: one is opened for that
    call); the records go through a producer of its own, opened on the first dead letter."""

    def __init__(self, server: str, topic: str, connector: str, admin: Admin | None = None) -> None:
        self.topic = topic
        self.connector = connector
        self.admin = admin
        self._server = server
        self._producer: Producer | None = None

    def _ensure(self) -> Producer:
        if self._producer is None:
            if self.admin is not None:
                self._create_topic(self.admin)
            else:
                with Admin(self._server) as admin:
                    self._create_topic(admin)
            self._producer = Producer(self._server, linger_ms=0)
        return self._producer

    def _create_topic(self, admin: Admin) -> None:
        with contextlib.suppress(TopicAlreadyExists):
            admin.create_topic(self.topic, 1)

    def send(self, failed: Sequence[tuple[SinkRecord, DataError]], attempts: int = 1) -> None:
        """Produce every failed record and wait until all are acknowledged. ``attempts``: how many
        times the write that failed them ran (``dlq.attempts``)."""
        if not failed:
            return
        producer = self._ensure()
        futures = [
            producer.send(
                self.topic,
                record.value,
                record.key,
                partition=0,
                headers=dead_letter_headers(record, error, self.connector, attempts),
                timestamp_ms=record.timestamp_ms,
            )
            for record, error in failed
        ]
        for future in futures:
            future.result()

    def send_corrupt_batch(self, error: CorruptBatch, attempts: int = 1) -> None:
        """Produce the stored batch ``error`` reports (its bytes in ``details["batch"]``, as the
        consumer raises it) and wait until it is acknowledged."""
        producer = self._ensure()
        batch = error.details["batch"]
        future = producer.send(
            self.topic, batch, None, partition=0, headers=corrupt_batch_headers(error, self.connector, attempts)
        )
        future.result()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
