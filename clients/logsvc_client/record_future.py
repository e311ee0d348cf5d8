"""The producer's batches and the per-record futures that point into them.

A :class:`ProducerBatch` is the unit the producer sends (one partition's records) and the one
place completion is recorded: base offset or error, a lazily created event for waiters, and the
callbacks. A :class:`RecordFuture` is two slots (its batch and its index in it), so ``send`` pays
for one small object per record and no lock, event or ``concurrent.futures.Future``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

from .errors import LogsvcError, Timeout
from .records import RecordPosition

log = logging.getLogger("logsvc_client.producer")

# Guards every batch's lazy event and callback list. Held only for a few bytecodes, and only by
# waiters, callback registration and completion; never on the send path.
_COMPLETION_LOCK = threading.Lock()

# A record as the codec takes it: (timestamp_ms, key, value, headers).
RawRecord = tuple[int, bytes | None, bytes | None, Any]


class ProducerBatch:
    """One partition's records on their way to the broker, and their shared completion."""

    __slots__ = (
        "_callbacks",
        "_event",
        "attempts",
        "base_offset",
        "base_sequence",
        "created",
        "done",
        "encoded",
        "error",
        "nbytes",
        "partition",
        "producer_epoch",
        "producer_id",
        "records",
        "retry_at",
        "seq",
        "topic",
    )

    def __init__(self, topic: str, partition: int, created: float, seq: int) -> None:
        self.topic = topic
        self.partition = partition
        self.created = created  # monotonic seconds, for linger
        self.seq = seq  # creation order, for flush
        self.records: list[RawRecord] | None = []  # dropped once encoded
        self.nbytes = 0  # estimated encoded size of the records (buffer accounting)
        self.encoded: bytes | None = None  # kept for retries, dropped on completion
        self.attempts = 0
        self.retry_at = 0.0
        # Idempotence: set when first drained, kept on retries (see logsvc_client.idempotence).
        self.producer_id = 0
        self.producer_epoch = 0
        self.base_sequence = -1
        self.done = False
        self.base_offset = -1
        self.error: LogsvcError | None = None
        self._event: threading.Event | None = None
        self._callbacks: list[tuple[RecordFuture, Callable[[RecordFuture], object]]] | None = None

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
        self.records = None
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


class RecordFuture:
    """The outcome of one :meth:`Producer.send`: where the record was stored, or why it was not."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: ProducerBatch, index: int) -> None:
        self._batch = batch
        self._index = index

    def __eq__(self, other: object) -> bool:
        """Two futures of the same record are equal."""
        if not isinstance(other, RecordFuture):
            return NotImplemented
        return self._batch is other._batch and self._index == other._index

    def __hash__(self) -> int:
        return hash((id(self._batch), self._index))

    def __repr__(self) -> str:
        b = self._batch
        if not b.done:
            return f"<RecordFuture {b.topic}/{b.partition} pending>"
        if b.error is not None:
            return f"<RecordFuture {b.topic}/{b.partition} failed: {b.error!r}>"
        return f"<RecordFuture {b.topic}/{b.partition}@{b.base_offset + self._index}>"

    @property
    def topic(self) -> str:
        return self._batch.topic

    @property
    def partition(self) -> int:
        return self._batch.partition

    def done(self) -> bool:
        return self._batch.done

    def result(self, timeout: float | None = None) -> RecordPosition:
        """The record's partition and offset once acknowledged (waits up to ``timeout`` seconds).

        Raises the project exception the batch failed with, or :class:`~logsvc_client.errors.Timeout`.
        """
        b = self._batch
        if not b.done and not b.wait(timeout):
            raise Timeout(f"record for {b.topic}/{b.partition} not acknowledged within {timeout} s")
        if b.error is not None:
            raise b.error.with_traceback(None)
        return RecordPosition(b.partition, b.base_offset + self._index)

    def exception(self, timeout: float | None = None) -> LogsvcError | None:
        """The error the record failed with, None when it was stored (waits like :meth:`result`)."""
        b = self._batch
        if not b.done and not b.wait(timeout):
            raise Timeout(f"record for {b.topic}/{b.partition} not acknowledged within {timeout} s")
        return b.error

    def add_done_callback(self, fn: Callable[[RecordFuture], object]) -> None:
        """Call ``fn(future)`` when done: at once if it is, else on the producer's I/O thread
        (keep it short; exceptions are logged and ignored)."""
        self._batch.add_callback(self, fn)


class RecordFutures(Sequence[RecordFuture]):
    """The futures of a :meth:`Producer.send_many` call, in order, made when asked for.

    It keeps each record's batch and index in two flat lists instead of one RecordFuture object
    per record: those objects would be garbage-collector-tracked allocations, and a thousand of
    them per call made full collections run during a long produce.
    """

    __slots__ = ("batches", "indexes")

    def __init__(self) -> None:
        self.batches: list[ProducerBatch] = []
        self.indexes: list[int] = []

    def __len__(self) -> int:
        return len(self.indexes)

    @overload
    def __getitem__(self, i: int) -> RecordFuture: ...

    @overload
    def __getitem__(self, i: slice) -> list[RecordFuture]: ...

    def __getitem__(self, i: int | slice) -> RecordFuture | list[RecordFuture]:
        if isinstance(i, slice):
            return list(map(RecordFuture, self.batches[i], self.indexes[i]))
        return RecordFuture(self.batches[i], self.indexes[i])

    def __iter__(self) -> Iterator[RecordFuture]:
        return map(RecordFuture, self.batches, self.indexes)

    def __add__(self, other: Sequence[RecordFuture]) -> list[RecordFuture]:
        return [*self, *other]

    def __radd__(self, other: Sequence[RecordFuture]) -> list[RecordFuture]:
        return [*other, *self]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordFutures | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<RecordFutures of {len(self)} records>"
