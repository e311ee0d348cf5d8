"""The Fetch request a consumer has in flight, and waiting for its answer.

A :class:`~logsvc_client.consumer.fetcher.Fetcher` has at most one Fetch on its way at a time, kept in an
:class:`InFlightFetch`: sent ahead while the application works (prefetch), or when a poll needs
records. It remembers the fetcher's *epoch* when it was sent (any change of assignment or
position starts a new one, and an answer sent for an older one is not used) and, with priority
lanes, the partitions it asked for. Waiting for it (:meth:`InFlightFetch.wait`) or for nothing
(:meth:`InFlightFetch.pause`) also ends once the event given to
:meth:`InFlightFetch.interrupt_on` is set. While the broker is unavailable the fetcher asks
again after a backoff, for up to the retry policy's ``timeout_ms``; then the error is raised
(:meth:`InFlightFetch.on_unavailable`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from ..errors import Unavailable
from ..records import TopicPartition
from ..transport.base import ConsumeTransport, FetchedPartition, PendingFetch
from ..transport.retry import RetryPolicy

log = logging.getLogger("logsvc_client.consumer")


class InFlightFetch:
    """The Fetch in flight (``future``, None when there is none); see the module docstring."""

    def __init__(
        self, transport: ConsumeTransport, max_bytes: int, retry: RetryPolicy, clock: Callable[[], float]
    ) -> None:
        self._transport = transport
        self._max_bytes = max_bytes
        self._retry = retry
        self._clock = clock
        self._wake: threading.Event | None = None
        self._unavailable_since: float | None = None
        self.future: PendingFetch | None = None
        self.epoch = -1  # the fetcher's epoch when it was sent
        self.tps: frozenset[TopicPartition] = frozenset()  # with lanes: the partitions asked for

    def interrupt_on(self, wake: threading.Event) -> None:
        """From now on :meth:`wait` and :meth:`pause` also end once ``wake`` is set."""
        self._wake = wake

    def send(
        self,
        tps: list[TopicPartition],
        offsets: Mapping[TopicPartition, int],
        max_records: int,
        max_wait_ms: int,
        epoch: int,
    ) -> None:
        """Send a Fetch of ``tps`` from their ``offsets``, for the fetcher's ``epoch``."""
        timeout_s = max_wait_ms / 1000 + self._retry.timeout_ms / 1000
        self.future = self._transport.start_fetch(
            [(tp, offsets[tp]) for tp in tps],
            max_records=max_records,
            max_bytes=self._max_bytes,
            max_wait_ms=max_wait_ms,
            timeout_s=timeout_s,
        )
        self.epoch = epoch

    def done(self) -> bool:
        """True when a Fetch is in flight and has finished (its answer is waiting)."""
        return self.future is not None and self.future.done()

    def cancel(self) -> None:
        """Drop the Fetch in flight, if any."""
        if self.future is not None:
            self.future.cancel()
            self.future = None

    def wait(self, timeout_s: float) -> bool:
        """Wait for the Fetch in flight to finish, or for the :meth:`interrupt_on` event; True when
        it is done."""
        future = self.future
        assert future is not None
        wake = self._wake
        if wake is None or future.done():
            return future.wait(timeout_s)
        future.add_done_callback(wake.set)
        wake.wait(timeout_s)
        return bool(future.done())

    def answer(self) -> list[FetchedPartition]:
        """The answer of the finished Fetch, which is no longer in flight; raises what it failed with."""
        future = self.future
        assert future is not None
        self.future = None
        partitions = future.result()
        self._unavailable_since = None
        return partitions

    def pause(self, timeout_s: float) -> None:
        """Wait ``timeout_s`` with nothing in flight (less once the :meth:`interrupt_on` event is set)."""
        if timeout_s > 0:
            if self._wake is None:
                time.sleep(timeout_s)
            else:
                self._wake.wait(timeout_s)

    def on_unavailable(self, error: Unavailable, deadline: float) -> bool:
        """After a Fetch failed with ``error``: raise it once the broker has been unavailable for
        longer than the retry policy's ``timeout_ms``, else back off (within ``deadline``); True
        when there is time left to fetch again."""
        now = self._clock()
        if self._unavailable_since is None:
            self._unavailable_since = now
        elif now - self._unavailable_since > self._retry.timeout_ms / 1000:
            self._unavailable_since = None
            raise error
        pause = min(self._retry.backoff.delay_s(1), max(0.0, deadline - now))
        log.debug("fetch failed (%s); retrying in %.3f s", error, pause)
        time.sleep(pause)
        return deadline - self._clock() > 0
