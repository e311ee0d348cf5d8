"""The producer's unit of sending: one partition's records and their shared completion.

A :class:`ProducerBatch` is the unit the producer sends (one partition's records) and the one
place completion is recorded: base offset or error, a lazily created event for waiters, and the
callbacks of the :class:`~logsvc_client.producer.futures.RecordFuture` objects pointing into it
(:mod:`~logsvc_client.producer.futures`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import LogsvcError

if TYPE_CHECKING:  # for annotations only: futures imports this module, not the other way
    from .futures import RecordFuture

log = logging.getLogger("logsvc_client.producer")

# Guards every batch's lazy event and callback list. Held only for a few bytecodes, and only by
# waiters, callback registration and completion; never on the send path.
_COMPLETION_LOCK = threading.Lock()


class ProducerBatch:
    """One partition's records on their way to the broker, and their shared completion."""

    __slots__ = (
        "_callbacks",
        "_event",
        "attempts",
        "base_offset",
        "base_sequence",
        "buffer",
        "count",
        "created",
        "done",
        "encoded",
        "error",
        "nbytes",
        "partial",
        "partition",
        "producer_epoch",
        "producer_id",
        "retry_at",
        "seq",
        "steal",
        "topic",
    )

    def __init__(self, topic: str, partition: int, created: float, seq: int) -> None:
        self.topic = topic
        self.partition = partition
        self.created = created  # monotonic seconds, for linger
        self.seq = seq  # creation order, for flush
        # the records, msgpack-encoded one after another as they are queued (logsvc_wire.record_codec);
        # dropped once the batch is encoded
        self.buffer: bytearray | None = bytearray()
        self.count = 0  # records in the batch
        self.nbytes = 0  # upper bound of the batch's encoded size (batch limit, buffer accounting)
        self.encoded: bytes | None = None  # kept for retries, dropped on completion
        self.attempts = 0
        self.retry_at = 0.0
        # taken before it was full (linger over, linger 0, flush or close): see Sender.partial_in_flight
        self.partial = False
        # Idempotence: set when first drained, kept on retries (see logsvc_client.producer.idempotence).
        self.producer_id = 0
        self.producer_epoch = 0
        self.base_sequence = -1
        self.done = False
        self.base_offset = -1
        self.error: LogsvcError | None = None
        self._event: threading.Event | None = None
        self._callbacks: list[tuple[RecordFuture, Callable[[RecordFuture], object]]] | None = None
        #: what a thread about to wait for the batch calls first, with its timeout: sends the batch
        #: from that thread while it still waits to be sent (the accumulator's ``steal``)
        self.steal: Callable[[ProducerBatch, float | None], None] | None = None

    def __repr__(self) -> str:
        state = "done" if self.done else "pending"
        return f"<ProducerBatch {self.topic}/{self.partition} seq={self.seq} {state}>"

    def complete(self, base_offset: int) -> None:
        """The broker stored the batch at ``base_offset``."""
        if not self.done:
            self.base_offset = base_offset
            self._finish()

    def fail(self, error: LogsvcError) -> None:
        """The batch will not be stored; every record's future raises ``error``."""
        if not self.done:
            self.error = error
            self._finish()

    def _finish(self) -> None:
        self.encoded = None
        self.buffer = None
        with _COMPLETION_LOCK:
            if self.done:
                return
            self.done = True
            event, callbacks = self._event, self._callbacks
            self._callbacks = None
        if event is not None:
            event.set()
        for future, fn in callbacks or ():
            try:
                fn(future)
            except Exception:
                log.exception("a RecordFuture callback raised; ignored")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the batch is done or ``timeout_s`` passes; True when done."""
        if self.done:
            return True
        with _COMPLETION_LOCK:
            if self.done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout_s)

    def add_callback(self, future: RecordFuture, fn: Callable[[RecordFuture], object]) -> None:
        with _COMPLETION_LOCK:
            if not self.done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append((future, fn))
                return
        fn(future)
