"""The producer's background sender: drain ready batches, encode, produce, complete or retry.

One thread per producer. It waits on the accumulator's condition until a batch is ready (or the
earliest linger deadline passes), takes the ready batches with the lock held, then encodes them
and starts the requests without it. Responses arrive on a gRPC thread: a batch is completed, put
back at the head of its partition for a retry (retriable errors, up to ``retries`` times with
capped exponential backoff), or failed with the project's exception.

Idempotent (``sequences`` given, :mod:`~logsvc_client.producer.idempotence`): before sequence numbers are
assigned the sender makes sure it holds a producer identity (InitProducer, on this thread; a
failure there is handled like a failed send of the drained batches). A partition's batches in one
request share their fate: all retried, or all failed, and then the partition's waiting batches
that already carry sequences fail too and the partition starts again under the next epoch.
UnknownProducer (the broker forgot the producer, so it stored none of the batch) is retried
under the next epoch from sequence 0, like an unavailable broker.

With ``linger_ms=0`` a thread about to wait for a record that is still in the accumulator sends
the ready batches itself (:meth:`Sender.send_now`), waiting for the answer: over the transport's
ProduceStream call (:mod:`~logsvc_client.transport.produce_stream`, no call set-up per request),
else with a blocking Produce call. The answer then reaches it without two thread hand-offs (to
this thread, and back from gRPC's), about 0.15 ms of a single-record round trip. The batches go
through the same drain, sequencing, in-flight limit and response handling as this thread's; a
retry is this thread's again.

A topic's partial batches go one request at a time: a batch taken before it is full (its linger
over, at linger 0 at once, or by flush or close) is ``partial``, and while a partial batch of a
topic is in flight, that topic's batches whose linger is over stay in the accumulator until it is
answered (or until they fill up, are flushed, or the buffer runs full), then go together in the next
request. Full batches still fill all ``max_in_flight`` requests. Every request costs the broker a
few hundred µs of CPU whatever it carries, so threads that each wait for their own record at linger
0 would otherwise send up to ``max_in_flight`` requests of a record or two each: on the reference
machine, 4 processes of 16 such threads acknowledged 6,060 - 6,300 sends/s that way and 10,845 -
13,990 with partial batches one request at a time (``make bench-sync-senders``). A lone sender's
record still goes at once: nothing is in flight before it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from logsvc_wire import batch as codec
from logsvc_wire import record_codec

from ..errors import LogsvcError, TopicNotFound, UnknownProducer
from ..transport.base import ProduceTransport
from ..transport.retry import Backoff
from .accumulator import Accumulator
from .batches import ProducerBatch
from .idempotence import Sequences, request_groups
from .topic_batches import TopicBatches

log = logging.getLogger("logsvc_client.producer")

_payload = record_codec.payload
#: drained batches, per topic: one Produce request each
Requests = list[tuple[TopicBatches, list[ProducerBatch]]]


class Sender(threading.Thread):
    def __init__(
        self,
        accumulator: Accumulator,
        transport: ProduceTransport,
        *,
        max_in_flight: int,
        max_request_bytes: int,
        retries: int,
        backoff: Backoff,
        metadata_max_age_ms: float = 300_000,
        compression: str = "none",
        clock: Callable[[], float] = time.monotonic,
        sequences: Sequences | None = None,
        request_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(name="logsvc-producer-sender", daemon=True)
        self._acc = accumulator
        self._transport = transport
        self._max_in_flight = max_in_flight
        self._max_request_bytes = max_request_bytes
        self._retries = retries
        self._backoff = backoff
        self._clock = clock
        self._compression = compression
        self._metadata_max_age_s = metadata_max_age_ms / 1000
        self._metadata_due = clock() + self._metadata_max_age_s
        self._sequences = sequences
        self._request_timeout_s = request_timeout_s
        self.in_flight = 0  # requests sent and not answered (changed with the lock held)
        # topic -> its batches in flight that were taken before they were full (lock held; no zeros)
        self.partial_in_flight: dict[str, int] = {}
        self.stopped = False  # set with the lock held: exit now, whatever is pending

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as e:  # a bug: fail every record rather than leave them hanging
            log.exception("the producer's sender thread failed")
            self._acc.abort(LogsvcError(f"the producer's sender thread failed: {e!r}"))

    def _loop(self) -> None:
        acc = self._acc
        clock = self._clock
        while True:
            refresh = False
            with acc.lock:
                while True:
                    if self.stopped or (acc.closed and not acc.incomplete):
                        acc.sleep_until = math.inf
                        return
                    now = clock()
                    if now >= self._metadata_due:
                        refresh = True
                        break
                    slots = self._max_in_flight - self.in_flight
                    requests, deadline, sequenced = self._take_locked(now, slots)
                    if requests:
                        acc.sleep_until = -math.inf
                        break
                    acc.sleep_until = min(deadline if slots > 0 else math.inf, self._metadata_due)
                    acc.wake.wait(max(0.0, acc.sleep_until - now))
            if refresh:
                self._refresh_metadata()
                continue
            self._dispatch(requests, sequenced)

    def send_now(self, batch: ProducerBatch, timeout_s: float | None) -> None:
        """On a thread about to wait ``timeout_s`` for ``batch``: when the batch is still in the
        accumulator, drain the ready batches (it among them, at linger 0) and send them from this
        thread with a blocking call. Nothing when the wait is shorter than the request timeout
        (the call could outlast it), the in-flight limit is reached or the sender stopped."""
        if timeout_s is not None and timeout_s < self._request_timeout_s:
            return
        with self._acc.lock:
            slots = self._max_in_flight - self.in_flight
            if batch.done or self.stopped or slots <= 0:
                return
            requests, _, sequenced = self._take_locked(self._clock(), slots)
        if requests:
            self._dispatch(requests, sequenced, wait=True)

    def _take_locked(self, now: float, slots: int) -> tuple[Requests, float, bool]:
        """Lock held: the ready batches in at most ``slots`` requests, counted in flight; when the
        next batch becomes ready; whether they carry their sequence numbers already (the usual
        case: no broker call needed first, see :meth:`_sequence`)."""
        requests, deadline = self._acc.drain_locked(
            now, slots, self._max_request_bytes, partial_held=self.partial_in_flight
        )
        sequences = self._sequences
        sequenced = sequences is None
        if requests:
            self.in_flight += len(requests)
            for t, batches in requests:
                self._count_partial(t, batches, +1)
            if sequences is not None and sequences.identity_wanted() is None:
                for _, batches in requests:
                    sequences.assign(batches)
                sequenced = True
        return requests, deadline, sequenced

    def _dispatch(self, requests: Requests, sequenced: bool, wait: bool = False) -> None:
        """Send drained requests (from this thread or, with ``wait``, a waiting one), after
        :meth:`_sequence` when they have no sequence numbers yet."""
        if not sequenced and not self._sequence(requests):
            return
        for t, batches in requests:
            self._send(t, batches, wait)

    def _sequence(self, requests: Requests) -> bool:
        """Give the drained batches their sequence numbers, first getting a producer identity when
        there is none or a partition was reset; False (the batches handed to the retry path) when
        the broker could not give one."""
        sequences = self._sequences
        assert sequences is not None
        wanted = sequences.identity_wanted()
        if wanted is not None:
            try:
                identity = self._transport.init_producer(*wanted)
            except LogsvcError as e:
                for t, batches in requests:
                    self._on_response(t, batches, None, e)
                return False
            with self._acc.lock:
                sequences.set_identity(identity)
        with self._acc.lock:
            for _, batches in requests:
                sequences.assign(batches)
        return True

    def _refresh_metadata(self) -> None:
        """Every ``metadata_max_age_ms``: pick up partitions added to the topics in use."""
        self._metadata_due = self._clock() + self._metadata_max_age_s
        try:
            for name in self._acc.refresh_topics():
                log.info("topic %s has new partitions; records from now on use them", name)
        except LogsvcError as e:  # unavailable or deleted: the sends report it; try again next time
            log.debug("refreshing partition counts failed: %s", e)

    def stop(self) -> None:
        with self._acc.lock:
            self.stopped = True
            self._acc.wake.notify()

    def _send(self, t: TopicBatches, batches: list[ProducerBatch], wait: bool = False) -> None:
        if self._sequences is not None:
            groups = request_groups(batches)
            if len(groups) > 1:  # partitions under different identities (just after a reset)
                with self._acc.lock:
                    self.in_flight += len(groups) - 1
                for group in groups:
                    self._send_one(t, group, wait)
                return
        self._send_one(t, batches, wait)

    def _send_one(self, t: TopicBatches, batches: list[ProducerBatch], wait: bool = False) -> None:
        try:
            payload = [(b.partition, self._encoded(b)) for b in batches]

            def done(offsets: list[int] | None, error: LogsvcError | None) -> None:
                self._on_response(t, batches, offsets, error)

            if self._sequences is None:
                self._transport.produce(t.name, payload, done, wait=wait)
            else:
                first = batches[0]
                self._transport.produce(
                    t.name,
                    payload,
                    done,
                    producer_id=first.producer_id,
                    producer_epoch=first.producer_epoch,
                    sequences=[b.base_sequence for b in batches],
                    wait=wait,
                )
        except LogsvcError as e:
            self._on_response(t, batches, None, e)
        except Exception as e:  # a bug must fail the records, not kill the thread and hang them
            log.exception("sending a produce request failed")
            self._on_response(t, batches, None, LogsvcError(f"sending a produce request failed: {e!r}"))

    def _encoded(self, b: ProducerBatch) -> bytes:
        if b.encoded is None:
            assert b.buffer is not None
            payload, first_ts, max_ts = _payload(b.buffer, b.count)
            b.encoded = codec.batch_of(payload, b.count, first_ts, max_ts, self._compression)
            b.buffer = None
        return b.encoded

    def _on_response(
        self, t: TopicBatches, batches: list[ProducerBatch], offsets: list[int] | None, error: LogsvcError | None
    ) -> None:
        acc = self._acc
        if error is None and offsets is not None:
            with acc.lock:
                self._answered_locked(t, batches)
                acc.release_locked(t, batches)
            for b, offset in zip(batches, offsets, strict=True):
                b.complete(offset)
            return
        assert error is not None
        if self._sequences is not None:
            self._on_idempotent_error(t, batches, error)
            return
        retry: list[ProducerBatch] = []
        failed = batches
        if error.retriable and not self.stopped:
            retry = [b for b in batches if b.attempts < self._retries and not b.done]
            failed = [b for b in batches if b not in retry]
        if isinstance(error, TopicNotFound):
            acc.forget_topic(t)
        attempt = max((b.attempts for b in retry), default=0)
        for b in retry:
            b.attempts += 1
        if retry:
            log.info("produce to %s failed (%s); retrying %d batches", t.name, error, len(retry))
        retry_at = self._clock() + self._backoff.delay_s(attempt)
        with acc.lock:
            self._answered_locked(t, batches)
            if retry:
                acc.requeue_locked(t, retry, retry_at)
            acc.release_locked(t, failed)
        for b in failed:
            b.fail(error)

    def _answered_locked(self, t: TopicBatches, batches: list[ProducerBatch]) -> None:
        """Lock held: a request of ``batches`` to ``t`` was answered (stored, failed or to be retried)."""
        self.in_flight -= 1
        self._count_partial(t, batches, -1)

    def _count_partial(self, t: TopicBatches, batches: list[ProducerBatch], sign: int) -> None:
        """Lock held: ``batches``' partial ones into (+1) or out of (-1) ``t``'s count in flight."""
        n = sum(b.partial for b in batches)
        if n:
            left = self.partial_in_flight.get(t.name, 0) + sign * n
            if left:
                self.partial_in_flight[t.name] = left
            else:
                del self.partial_in_flight[t.name]

    def _on_idempotent_error(self, t: TopicBatches, batches: list[ProducerBatch], error: LogsvcError) -> None:
        """A failed request of an idempotent producer; see the module docstring."""
        acc, sequences = self._acc, self._sequences
        assert sequences is not None
        forgotten = isinstance(error, UnknownProducer)
        retriable = (error.retriable or forgotten) and not self.stopped
        by_partition: dict[int, list[ProducerBatch]] = {}
        for b in batches:
            by_partition.setdefault(b.partition, []).append(b)
        retry: list[ProducerBatch] = []
        failed: list[ProducerBatch] = []
        if isinstance(error, TopicNotFound):
            acc.forget_topic(t)
        with acc.lock:
            self._answered_locked(t, batches)
            for partition, own in by_partition.items():
                if retriable and own[0].attempts < self._retries and not own[0].done:
                    if forgotten:  # the broker stored none of them: sequence them again, from 0
                        for b in own + acc.sequenced_locked(t, partition, remove=False):
                            b.base_sequence = -1
                        sequences.reset(t.name, partition)
                    retry.extend(own)
                else:
                    failed.extend(own)
                    failed.extend(acc.sequenced_locked(t, partition, remove=True))
                    sequences.reset(t.name, partition)
            attempt = max((b.attempts for b in retry), default=0)
            for b in retry:
                b.attempts += 1
            if retry:
                acc.requeue_locked(t, retry, self._clock() + self._backoff.delay_s(attempt))
            acc.release_locked(t, failed)
        if retry:
            log.info("produce to %s failed (%s); retrying %d batches", t.name, error, len(retry))
        for b in failed:
            b.fail(error)
