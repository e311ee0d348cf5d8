"""The per-record futures of the producer, which point into its batches.

A :class:`RecordFuture` is two slots (its :class:`~logsvc_client.producer.batches.ProducerBatch`
and its index in it), so ``send`` pays for one small object per record and no lock, event or
``concurrent.futures.Future``; :class:`RecordFutures` is the futures of one ``send_many``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

from ..errors import LogsvcError, Timeout
from ..records import RecordPosition
from .batches import ProducerBatch


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
