"""The per-record future of the producer on Kafka: completed by librdkafka's delivery report.

:class:`KafkaRecordFuture` has :class:`~logsvc_client.producer.futures.RecordFuture`'s API (it
is one, so ``Producer.send`` is typed the same on both transports): ``result``, ``exception``,
``done``, ``add_done_callback``, ``topic`` and ``partition``. Its state is set once, by
:meth:`KafkaRecordFuture.deliver` on the producer's poll thread, under the producer's one
condition, which is also what :meth:`~KafkaRecordFuture.result` waits on (no lock or event per
record).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..errors import LogsvcError, Timeout
from ..producer.futures import RecordFuture
from ..records import RecordPosition

_log = logging.getLogger(__name__)


class KafkaRecordFuture(RecordFuture):
    """The outcome of one send to a Kafka cluster: where the record was stored, or why not."""

    __slots__ = ("_callbacks", "_cond", "_done", "_error", "_offset", "_partition", "_topic")

    def __init__(self, cond: threading.Condition, topic: str, partition: int) -> None:
        """``partition`` -1: librdkafka chooses it (a record without a key); known once delivered."""
        self._cond = cond
        self._topic = topic
        self._partition = partition
        self._offset = -1
        self._done = False
        self._error: LogsvcError | None = None
        self._callbacks: list[Callable[[RecordFuture], object]] | None = None

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        where = f"{self._topic}/{self._partition if self._partition >= 0 else '?'}"
        if not self._done:
            return f"<RecordFuture {where} pending>"
        if self._error is not None:
            return f"<RecordFuture {where} failed: {self._error!r}>"
        return f"<RecordFuture {where}@{self._offset}>"

    @property
    def topic(self) -> str:
        return self._topic

    @property
    def partition(self) -> int:
        """The record's partition: known at send for an explicit partition or a key (Kafka's
        murmur2, as librdkafka computes it); for a record without a key, librdkafka's choice,
        so this waits until the record is delivered or failed."""
        if self._partition < 0 and not self._done:
            self._wait(None)
        return self._partition

    def done(self) -> bool:
        return self._done

    def _wait(self, timeout: float | None) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._done, timeout):
                raise Timeout(f"record for {self._topic} not acknowledged within {timeout} s")

    def result(self, timeout: float | None = None) -> RecordPosition:
        """The record's partition and offset once acknowledged (waits up to ``timeout`` seconds).

        Raises the project exception the record failed with, or :class:`~logsvc_client.errors.Timeout`.
        """
        if not self._done:
            self._wait(timeout)
        if self._error is not None:
            raise self._error.with_traceback(None)
        return RecordPosition(self._partition, self._offset)

    def exception(self, timeout: float | None = None) -> LogsvcError | None:
        """The error the record failed with, None when it was stored (waits like :meth:`result`)."""
        if not self._done:
            self._wait(timeout)
        return self._error

    def add_done_callback(self, fn: Callable[[RecordFuture], object]) -> None:
        """Call ``fn(future)`` when done: at once if it is, else on the producer's poll thread
        (keep it short; exceptions are logged and ignored)."""
        with self._cond:
            if not self._done:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        _call(fn, self)

    def deliver(self, partition: int, offset: int, error: LogsvcError | None) -> None:
        """Complete the future (librdkafka's delivery report) and run its callbacks."""
        with self._cond:
            if partition >= 0:
                self._partition = partition
            self._offset = offset
            self._error = error
            self._done = True
            callbacks, self._callbacks = self._callbacks, None
            self._cond.notify_all()
        for fn in callbacks or ():
            _call(fn, self)


def _call(fn: Callable[[RecordFuture], object], future: RecordFuture) -> None:
    try:
        fn(future)
    except Exception:
        _log.exception("a record future's done callback failed")
