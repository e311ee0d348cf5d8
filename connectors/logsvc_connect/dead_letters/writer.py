"""The dead-letter writer: where a connector's records that fail on their data go, with the
reason attached, in the format :mod:`.format` defines.

The record is acknowledged by the broker before the source offset is committed past it, so the
decision survives a restart: the partition moves on and the record is not tried again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from logsvc_client import Admin, Producer
from logsvc_client.errors import CorruptBatch, TopicAlreadyExists
from logsvc_connect.errors import DataError
from logsvc_connect.sink import SinkRecord

from .format import DLQ_PARTITION, corrupt_batch_headers, record_headers


def dead_letter_headers(record: SinkRecord, error: DataError, connector: str, attempts: int) -> list[tuple[str, bytes]]:
    """The headers of ``record`` dead-lettered for ``error`` (see :mod:`.format`)."""
    return record_headers(
        record.headers,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp_ms,
        connector=connector,
        error_class=error.error_class,
        error_message=error.message,
        attempts=attempts,
    )


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
                partition=DLQ_PARTITION,
                headers=dead_letter_headers(record, error, self.connector, attempts),
                # the dead letter's own time is when it was dead-lettered; dlq.timestamp keeps the
                # source record's
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
            self.topic,
            batch,
            None,
            partition=DLQ_PARTITION,
            headers=corrupt_batch_headers(error, self.connector, attempts),
        )
        future.result()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None
