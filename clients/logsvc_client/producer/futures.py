"""The per-record futures of the producer, which point into its batches.

A :class:`RecordFuture` is two slots (its :class:`~logsvc_client.producer.batches.ProducerBatch`
and its index in it), so ``send`` pays for one small object per record and no lock, event or
``concurrent.futures.Future``; :class:`RecordFutures` is the futures of one ``send_many``, with
no object per record at all until one is asked for.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from typing import overload

from ..errors import LogsvcError, Timeout
from ..records import RecordPosition
from .batches import ProducerBatch


class RecordFuture:
    """The outcome of one :meth:`Producer.send`: where the record was stored, or why it was not."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: ProducerBatch, index: int) -> None:
        # Nothing else: the codec's FastAppend (Producer.send's C lane) makes futures by setting
        # these two slots on a new instance, as this does.
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

        With ``linger_ms=0``, a record still waiting to be sent is sent from this thread, with the
        other ready batches, when ``timeout`` is None or at least the producer's
        ``request_timeout_ms`` (:meth:`~logsvc_client.producer.sender.Sender.send_now`).

        Raises the project exception the batch failed with, or :class:`~logsvc_client.errors.Timeout`.
        """
        b = self._batch
        if not _settled(b, timeout):
            raise Timeout(f"record for {b.topic}/{b.partition} not acknowledged within {timeout} s")
        if b.error is not None:
            raise b.error.with_traceback(None)
        return RecordPosition(b.partition, b.base_offset + self._index)

    def exception(self, timeout: float | None = None) -> LogsvcError | None:
        """The error the record failed with, None when it was stored (waits like :meth:`result`)."""
        b = self._batch
        if not _settled(b, timeout):
            raise Timeout(f"record for {b.topic}/{b.partition} not acknowledged within {timeout} s")
        return b.error

    def add_done_callback(self, fn: Callable[[RecordFuture], object]) -> None:
        """Call ``fn(future)`` when done: at once if it is, else on the thread that receives the
        broker's answer: the producer's I/O thread, or the thread that sent the batch from
        :meth:`result` (keep it short; exceptions are logged and ignored)."""
        self._batch.add_callback(self, fn)


def _settled(b: ProducerBatch, timeout: float | None) -> bool:
    """Wait for ``b`` up to ``timeout`` seconds, first sending it from this thread when it may
    (:attr:`ProducerBatch.steal`); True when it is done."""
    if b.done:
        return True
    steal = b.steal
    if steal is not None:
        steal(b, timeout)
    return b.done or b.wait(timeout)


class RecordFutures(Sequence[RecordFuture]):
    """The futures of a :meth:`Producer.send_many` call, in order, made when asked for.

    No object per record: the records were appended to batches a slice at a time, and each slice
    is one entry here — its slot's first rank, its batch and the batch index of that first
    record (:meth:`add`) — so the i-th future is found from the call's slot and rank arrays
    (:class:`~logsvc_client.producer.bulk.BulkRecords`) with one bisection. ``len`` is the number
    of records queued so far (a prefix of the call when an error stopped it).
    """

    __slots__ = ("_ranks", "_segments", "_slots", "_starts", "queued")

    def __init__(self) -> None:
        self._slots: Sequence[int] = ()
        self._ranks: Sequence[int] = ()
        self._starts: dict[int, list[int]] = {}  # slot -> first rank of each of its slices
        self._segments: dict[int, list[tuple[ProducerBatch, int]]] = {}  # slot -> (batch, its first index)
        self.queued = 0

    def of_call(self, slots: Sequence[int], ranks: Sequence[int]) -> None:
        """The call's slot and rank of each record (``slots[i]``, ``ranks[i]``)."""
        self._slots, self._ranks = slots, ranks

    def add(self, slot: int, first_rank: int, batch: ProducerBatch, first_index: int) -> None:
        """Records of ``slot`` from rank ``first_rank`` on went to ``batch`` from ``first_index``
        on (until the slot's next slice)."""
        starts = self._starts.get(slot)
        if starts is None:
            self._starts[slot] = [first_rank]
            self._segments[slot] = [(batch, first_index)]
            return
        starts.append(first_rank)
        self._segments[slot].append((batch, first_index))

    def __len__(self) -> int:
        return self.queued

    def _future(self, i: int) -> RecordFuture:
        s, r = self._slots[i], self._ranks[i]
        k = bisect_right(self._starts[s], r) - 1
        batch, first_index = self._segments[s][k]
        return RecordFuture(batch, first_index + r - self._starts[s][k])

    @overload
    def __getitem__(self, i: int) -> RecordFuture: ...

    @overload
    def __getitem__(self, i: slice) -> list[RecordFuture]: ...

    def __getitem__(self, i: int | slice) -> RecordFuture | list[RecordFuture]:
        if isinstance(i, slice):
            return [self._future(j) for j in range(*i.indices(self.queued))]
        if i < 0:
            i += self.queued
        if not 0 <= i < self.queued:
            raise IndexError("RecordFutures index out of range")
        return self._future(i)

    def __iter__(self) -> Iterator[RecordFuture]:
        return map(self._future, range(self.queued))

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
