"""Producer: batches records per partition on the client and sends them on a background thread.

How a record flows: :meth:`Producer.send` (or :meth:`Producer.send_many`, many at once) →
:class:`~logsvc_client.producer.accumulator.Accumulator` (partitioned, and encoded into its
partition's open batch by :mod:`~logsvc_wire.record_codec`, in C when built) →
:class:`~logsvc_client.producer.sender.Sender` (when the batch is full, has lingered
``linger_ms``, or is flushed: framed by :func:`~logsvc_wire.batch.batch_of` and sent with the
topic's other ready batches in one Produce request) → the broker's answer completes the
batch, and so every :class:`~logsvc_client.producer.futures.RecordFuture` pointing into it.

Partitioning matches Apache Kafka: an explicit partition wins, a key goes to
``murmur2(key) % partitions``, records without a key stick to one partition per batch.
Records of one partition are stored in the order they were sent, retries included.

Idempotent by default (Kafka's ``enable.idempotence``): the producer gets a producer id from the
broker and numbers each partition's records (:mod:`~logsvc_client.producer.idempotence`), so a batch sent
again after a lost answer or a broker restart is stored once and its futures get the offsets of
the first write.

``Producer("kafka://b1:9092,...")`` is a :class:`~logsvc_client.kafka.producer.KafkaProducer`
instead (chosen in :meth:`Producer.__new__`): the same API over librdkafka, on a Kafka cluster.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Literal, Protocol

from logsvc_wire.batch import check_compression

from ..errors import InvalidConfig, Timeout, Unavailable
from ..kafka.address import is_kafka
from ..security import Security
from ..transport.base import MAX_MESSAGE_BYTES, ProduceTransport
from ..transport.grpc import GrpcTransport
from ..transport.retry import Backoff, RetryPolicy
from .accumulator import Accumulator
from .futures import RecordFuture
from .idempotence import Sequences
from .sender import Sender

BufferFullPolicy = Literal["block", "raise"]


class Send(Protocol):
    """The signature and contract of :attr:`Producer.send`."""

    def __call__(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        *,
        partition: int | None = None,
        headers: object = None,
        timestamp_ms: int | None = None,
    ) -> RecordFuture:
        """Queue one record; returns at once with a future of its position.

        Parameters:
          topic: the topic; the first send to it looks up its partitions.
          value: bytes, or str (sent as UTF-8), or None (a tombstone).
          key: bytes, str or None; a key chooses the partition by its murmur2 hash.
          partition: an explicit partition (wins over the key).
          headers: a sequence of ``(name, bytes | str)`` pairs, or a mapping.
          timestamp_ms: the record's timestamp (default: now).

        Raises:
          TopicNotFound: the topic does not exist (first send to it).
          InvalidPartition: ``partition`` is not one of the topic's.
          BufferFull: the buffer stayed full (``buffer_full`` policy).
          BatchTooLarge: the record is larger than the whole buffer.
          FailedPrecondition: the producer is closed.
        """
        ...


# Ready batches of one topic are grouped into requests of about this size.
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def _check(name: str, value: float, minimum: float) -> None:
    if not isinstance(value, int | float) or value < minimum:
        raise InvalidConfig(f"producer option {name}={value!r} must be a number >= {minimum}", key=name)


def check_options(
    *,
    linger_ms: float,
    max_batch_bytes: int,
    max_buffer_bytes: int,
    buffer_timeout_ms: float,
    retries: int,
    retry_backoff_ms: float,
    request_timeout_ms: float,
    max_in_flight: int,
    metadata_max_age_ms: float,
    compression: str,
    enable_idempotence: bool,
    buffer_full: str,
) -> None:
    """InvalidConfig naming the first producer option out of range (the same rules on every
    transport)."""
    _check("linger_ms", linger_ms, 0)
    _check("max_batch_bytes", max_batch_bytes, 1024)
    _check("max_buffer_bytes", max_buffer_bytes, 1024)
    _check("buffer_timeout_ms", buffer_timeout_ms, 0)
    _check("retries", retries, 0)
    _check("retry_backoff_ms", retry_backoff_ms, 0)
    _check("request_timeout_ms", request_timeout_ms, 1)
    _check("max_in_flight", max_in_flight, 1)
    _check("metadata_max_age_ms", metadata_max_age_ms, 1)
    check_compression(compression)
    if max_batch_bytes > MAX_MESSAGE_BYTES // 2:
        raise InvalidConfig(
            f"max_batch_bytes={max_batch_bytes} is above {MAX_MESSAGE_BYTES // 2}", key="max_batch_bytes"
        )
    if not isinstance(enable_idempotence, bool):
        raise InvalidConfig(
            f"producer option enable_idempotence={enable_idempotence!r} must be True or False",
            key="enable_idempotence",
        )
    if buffer_full not in ("block", "raise"):
        raise InvalidConfig(f"buffer_full={buffer_full!r} must be 'block' or 'raise'", key="buffer_full")


class Producer:
    """Sends records to topics in client-side batches; see the module docstring.

    ``max_buffer_bytes`` bounds the records not yet acknowledged; when it is full ``send`` blocks
    up to ``buffer_timeout_ms`` (``buffer_full="block"``) or raises
    :class:`~logsvc_client.errors.BufferFull` at once (``"raise"``). A failed request is retried
    ``retries`` times when the broker is unavailable, waiting ``retry_backoff_ms`` doubled each
    time (with jitter); ``max_in_flight`` bounds concurrent Produce requests (one per partition
    at most, so a partition's records are stored in send order). Batches sent before they are
    full (linger over, or linger 0) go one request at a time, the records sent meanwhile together
    in the next one; full batches use every slot (see :mod:`~logsvc_client.producer.sender`).

    ``enable_idempotence`` (default True, as Kafka since 3.0): every batch carries the producer's
    id, epoch and the sequence number of its first record, assigned once and kept on retries;
    the broker stores a retried batch once and answers it with the original offsets, so
    retries never duplicate records. A batch that fails for good fails its futures with the
    error (:class:`~logsvc_client.errors.OutOfOrderSequence`,
    :class:`~logsvc_client.errors.ProducerFenced`, Unavailable after ``retries``, ...) and its
    partition starts over under the next epoch; the producer goes on. When the broker has
    forgotten the producer (:class:`~logsvc_client.errors.UnknownProducer`, after its
    ``producer_id_expiration_ms`` without a write) nothing of the batch was stored, so it is
    sent again under the next epoch. ``False``: no producer id; a retry after a lost answer
    may store a batch twice (needed only for a broker older than InitProducer).
    """

    #: Queue one record; returns at once with a :class:`RecordFuture` (see :class:`Send` for the
    #: parameters and errors). It is the accumulator's
    #: :meth:`~logsvc_client.producer.accumulator.Accumulator.send_function` (its ``append``, with
    #: the common record queued in C when the codec's extension runs), set per instance in
    #: ``__init__``: ``send`` is the hot path, and a wrapper would cost a call per record.
    send: Send

    def __new__(cls, address: str, *args: object, **kwargs: object) -> Producer:
        """A :class:`~logsvc_client.kafka.producer.KafkaProducer` for a ``kafka://`` address (no
        ``transport`` given), else a Producer over gRPC (or the transport given)."""
        if cls is Producer and kwargs.get("transport") is None and is_kafka(address):
            from ..kafka.producer import KafkaProducer  # confluent-kafka only when used

            return object.__new__(KafkaProducer)
        return object.__new__(cls)

    def __init__(
        self,
        address: str,
        *,
        linger_ms: float = 5,
        max_batch_bytes: int = 1_048_576,
        max_buffer_bytes: int = 64 * 1024 * 1024,
        buffer_full: BufferFullPolicy = "block",
        buffer_timeout_ms: float = 60_000,
        retries: int = 5,
        retry_backoff_ms: float = 100,
        request_timeout_ms: float = 30_000,
        max_in_flight: int = 5,
        metadata_max_age_ms: float = 300_000,
        compression: str = "none",
        security: Security | None = None,
        transport: ProduceTransport | None = None,
        enable_idempotence: bool = True,
    ) -> None:
        """``compression``: ``none``, ``gzip`` or ``zstd``; each batch's payload is compressed whole
        in the sender thread, stored compressed by the broker and inflated by consumers (the batch
        size limits apply before compression). ``metadata_max_age_ms``: how often the partition
        counts of the topics in use are looked up again, so partitions added to a topic are used.
        ``security``: TLS and token settings (None: from the environment, see
        :mod:`logsvc_client.security`). ``transport`` replaces the gRPC connection to ``address``
        (tests use an in-memory one)."""
        check_options(
            linger_ms=linger_ms,
            max_batch_bytes=max_batch_bytes,
            max_buffer_bytes=max_buffer_bytes,
            buffer_timeout_ms=buffer_timeout_ms,
            retries=retries,
            retry_backoff_ms=retry_backoff_ms,
            request_timeout_ms=request_timeout_ms,
            max_in_flight=max_in_flight,
            metadata_max_age_ms=metadata_max_age_ms,
            compression=compression,
            enable_idempotence=enable_idempotence,
            buffer_full=buffer_full,
        )
        self.address = address
        backoff = Backoff(base_ms=retry_backoff_ms, max_ms=max(retry_backoff_ms, 5_000))
        self._transport = transport or GrpcTransport(
            address,
            request_timeout_ms=request_timeout_ms,
            retry=RetryPolicy(retries=retries, backoff=backoff, timeout_ms=request_timeout_ms),
            security=security,
        )
        self._acc = Accumulator(
            self._transport.partition_count,
            first_partition_count=functools.partial(self._transport.partition_count, auto_create=True),
            linger_ms=linger_ms,
            max_batch_bytes=max_batch_bytes,
            max_buffer_bytes=max_buffer_bytes,
            block_when_full=buffer_full == "block",
            buffer_timeout_ms=buffer_timeout_ms,
        )
        self.send = self._acc.send_function()  # the one definition of send (see the attribute's comment)
        self._sender = Sender(
            self._acc,
            self._transport,
            max_in_flight=max_in_flight,
            max_request_bytes=min(MAX_REQUEST_BYTES, MAX_MESSAGE_BYTES // 2),
            retries=retries,
            backoff=backoff,
            metadata_max_age_ms=metadata_max_age_ms,
            compression=compression,
            sequences=Sequences() if enable_idempotence else None,
            request_timeout_s=request_timeout_ms / 1000,
        )
        self.enable_idempotence = enable_idempotence
        self._closed = False
        if linger_ms == 0:  # a record waited for is sent by the waiting thread (Sender.send_now)
            self._acc.steal = self._sender.send_now
        self._sender.start()

    def send_many(
        self,
        topic: str,
        values: Sequence[bytes | str | None],
        keys: Sequence[bytes | str | None] | None = None,
        *,
        partition: int | None = None,
        headers: object = None,
        timestamp_ms: int | None = None,
    ) -> Sequence[RecordFuture]:
        """Queue a batch the application already holds: like ``send(topic, values[i], keys[i],
        ...)`` for each i in order, with the per-record work done in bulk; returns the futures.

        ``keys`` is None (no keys) or one key per value (InvalidRequest otherwise); ``partition``,
        ``headers`` and ``timestamp_ms`` (default: now, once for the call) apply to every record.
        Partitions, per-partition order and buffer accounting are those of ``send``. A malformed
        record fails the call before anything is queued. When the buffer is full, what fits is
        queued and the call waits for space and goes on (``buffer_full="block"``), so a call
        larger than ``max_buffer_bytes`` completes; or raises BufferFull (``"raise"``) once the
        records that fit are queued. Every error from ``send_many`` carries in
        ``error.details["futures"]`` the futures of the records queued before it (a prefix of
        ``values``, empty when none was), which are sent as usual.
        """
        return self._acc.append_many(
            topic, values, keys, partition=partition, headers=headers, timestamp_ms=timestamp_ms
        )

    def partition_count(self, topic: str) -> int:
        """The topic's partition count as the producer knows it (looked up once)."""
        return self._acc.partition_count(topic)

    def flush(self, timeout: float | None = None) -> None:
        """Send everything buffered now, and wait until all of it is acknowledged or failed.

        Raises :class:`~logsvc_client.errors.Timeout` when ``timeout`` seconds pass first. Failed
        records are reported through their futures, not here.
        """
        pending = self._acc.begin_flush()
        deadline = None if timeout is None else time.monotonic() + timeout
        for b in pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not b.wait(left):
                raise Timeout(f"flush did not complete within {timeout} s ({len(pending)} batches pending)")

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout`` seconds), stop the sender and close the connection.

        Records still unacknowledged when the timeout passes fail with Unavailable.
        """
        if self._closed:
            return
        self._closed = True
        self._acc.close()
        try:
            self.flush(timeout)
        except Timeout:
            pass
        finally:
            self._acc.abort(Unavailable("the producer was closed before the record was acknowledged"))
            self._sender.stop()
            self._sender.join(timeout=5)
            self._transport.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
