"""The producer on a Kafka cluster: :class:`~logsvc_client.Producer`'s API over librdkafka.

``Producer("kafka://b1:9092,...")`` is a :class:`KafkaProducer` (``Producer.__new__`` picks it),
so code written against the producer runs unchanged. The checks of ``send`` and ``send_many``
are the gRPC producer's (:mod:`logsvc_client.records`: types, partitions, headers, timestamps),
made before librdkafka sees a record, and every failure is the project's exception
(:mod:`logsvc_client.kafka.errors`). librdkafka batches, compresses, retries and numbers the
records (idempotence); a background thread serves its delivery reports (``poll``), which
complete each record's :class:`~logsvc_client.kafka.futures.KafkaRecordFuture`.

The options map onto librdkafka's settings:

========================  ===============================================================
``linger_ms``             ``linger.ms``
``max_batch_bytes``       ``batch.size`` (and ``message.max.bytes`` when larger)
``max_buffer_bytes``      ``queue.buffering.max.kbytes``
``compression``           ``compression.type`` (none, gzip, zstd)
``enable_idempotence``    ``enable.idempotence`` (and so ``acks=all``)
``request_timeout_ms``    ``request.timeout.ms``; with ``retries``: ``delivery.timeout.ms`` =
                          ``request_timeout_ms * (retries + 1) + linger_ms``, the time a
                          record may take
``retries``               ``retries``
``retry_backoff_ms``      ``retry.backoff.ms``
``max_in_flight``         ``max.in.flight`` (at most 5 with idempotence, as Kafka requires)
``metadata_max_age_ms``   ``topic.metadata.refresh.interval.ms``, and how long a partition
                          count is kept here
(always)                  ``partitioner=murmur2_random`` (Kafka's Java default: logsvc's rule)
========================  ===============================================================

Differences from the gRPC producer: a record without a key or partition gets the partition
librdkafka chooses (sticky per batch, like logsvc's), so its future's ``partition`` is known once
it is delivered; a record larger than the topic's ``max.message.bytes`` fails through its future
(librdkafka's MSG_SIZE_TOO_LARGE as BatchTooLarge) or at once when larger than the client's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as RdProducer

from logsvc_wire.partitioner import partition_for_key

from ..errors import (
    BatchTooLarge,
    BufferFull,
    FailedPrecondition,
    InvalidConfig,
    InvalidPartition,
    InvalidRequest,
    LogsvcError,
    Timeout,
    Unavailable,
)
from ..producer.bulk import _all_to_bytes
from ..producer.futures import RecordFuture
from ..producer.producer import BufferFullPolicy, Producer, check_options
from ..records import check_timestamp, to_bytes, to_headers
from ..security import Security
from ..transport.base import ProduceTransport
from .errors import translate
from .futures import KafkaRecordFuture
from .settings import client_config

#: How often the poll thread wakes up without delivery reports (to notice close).
_POLL_S = 0.1
_PURGED = (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)


def producer_config(
    address: str,
    security: Security | None,
    *,
    linger_ms: float,
    max_batch_bytes: int,
    max_buffer_bytes: int,
    retries: int,
    retry_backoff_ms: float,
    request_timeout_ms: float,
    max_in_flight: int,
    metadata_max_age_ms: float,
    compression: str,
    enable_idempotence: bool,
) -> dict[str, Any]:
    """librdkafka's producer settings for the producer's options (the table of the module docstring)."""
    config = client_config(address, security)
    backoff = max(1, int(retry_backoff_ms))
    config.update(
        {
            "enable.idempotence": enable_idempotence,
            "partitioner": "murmur2_random",
            "linger.ms": linger_ms,
            "batch.size": max_batch_bytes,
            "queue.buffering.max.kbytes": max(1, max_buffer_bytes // 1024),
            "queue.buffering.max.messages": 2_147_483_647,
            "compression.type": compression,
            "request.timeout.ms": int(request_timeout_ms),
            "delivery.timeout.ms": int(min(request_timeout_ms * (retries + 1) + linger_ms, 2_147_483_647)),
            "retries": retries,
            "retry.backoff.ms": backoff,
            "retry.backoff.max.ms": max(backoff, 1_000),
            "max.in.flight": max_in_flight,
            "topic.metadata.refresh.interval.ms": int(metadata_max_age_ms),
            "allow.auto.create.topics": False,  # a missing topic is TopicNotFound, as on logsvc
        }
    )
    if max_batch_bytes > 1_000_000:
        config["message.max.bytes"] = max_batch_bytes
    return config


class KafkaProducer(Producer):
    """:class:`~logsvc_client.Producer` on a Kafka cluster (see the module docstring)."""

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
        """The options of :class:`~logsvc_client.Producer`; ``transport`` is not used on Kafka."""
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
        if enable_idempotence and max_in_flight > 5:
            raise InvalidConfig(
                f"producer option max_in_flight={max_in_flight} must be at most 5 with enable_idempotence on Kafka",
                key="max_in_flight",
            )
        if linger_ms > 900_000:
            raise InvalidConfig(
                f"producer option linger_ms={linger_ms} must be at most 900000 on Kafka (librdkafka's limit)",
                key="linger_ms",
            )
        config = producer_config(
            address,
            security,
            linger_ms=linger_ms,
            max_batch_bytes=max_batch_bytes,
            max_buffer_bytes=max_buffer_bytes,
            retries=retries,
            retry_backoff_ms=retry_backoff_ms,
            request_timeout_ms=request_timeout_ms,
            max_in_flight=max_in_flight,
            metadata_max_age_ms=metadata_max_age_ms,
            compression=compression,
            enable_idempotence=enable_idempotence,
        )
        try:
            self._rd = RdProducer(config)
        except KafkaException as e:
            raise translate(e, f"producer settings for {address}") from None
        self.address = address
        self.enable_idempotence = enable_idempotence
        self._block = buffer_full == "block"
        self._max_buffer_bytes = max_buffer_bytes
        self._buffer_timeout_s = buffer_timeout_ms / 1000
        self._metadata_max_age_s = metadata_max_age_ms / 1000
        self._timeout_s = request_timeout_ms / 1000
        self._partitions: dict[str, tuple[int, float]] = {}  # topic -> (count, when looked up)
        self._cond = threading.Condition()
        self._closed = False
        self._stopping = threading.Event()
        self.send = self._send
        self._poller = threading.Thread(target=self._poll_loop, name="logsvc-kafka-producer-poll", daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        """Serve librdkafka's delivery reports until close (they complete the futures)."""
        while not self._stopping.is_set():
            self._rd.poll(_POLL_S)

    # -- sending --------------------------------------------------------------------------------

    def _send(
        self,
        topic: str,
        value: bytes | str | None,
        key: bytes | str | None = None,
        *,
        partition: int | None = None,
        headers: object = None,
        timestamp_ms: int | None = None,
    ) -> RecordFuture:
        """``Producer.send`` (see :class:`~logsvc_client.producer.producer.Send`)."""
        count = self._partition_count(topic)
        data = to_bytes(value)
        key_data = to_bytes(key, "key")
        if partition is not None:
            _check_partition(topic, partition, count)
        pairs = to_headers(headers) if headers is not None else None
        if timestamp_ms is not None:
            check_timestamp(timestamp_ms)
        self._check_size(data, key_data)
        return self._produce(topic, count, data, key_data, partition, pairs, timestamp_ms)

    def _check_size(self, value: bytes | None, key: bytes | None) -> None:
        """BatchTooLarge for a record the whole buffer cannot hold (librdkafka would refuse it
        as "queue full" for ever)."""
        size = len(value or b"") + len(key or b"")
        if size > self._max_buffer_bytes:
            raise BatchTooLarge(
                f"record of about {size} bytes is larger than max_buffer_bytes={self._max_buffer_bytes}"
            )

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
        """``Producer.send_many``: every record checked before any is queued, then queued in order;
        errors carry ``details["futures"]``, the futures of the records queued before them."""
        futures: list[RecordFuture] = []
        try:
            count = self._partition_count(topic)
            n = len(values)
            if keys is not None and len(keys) != n:
                raise InvalidRequest(f"send_many got {n} values but {len(keys)} keys (one key per value, or keys=None)")
            if partition is not None:
                _check_partition(topic, partition, count)
            if timestamp_ms is None:
                timestamp_ms = time.time_ns() // 1_000_000
            else:
                check_timestamp(timestamp_ms)
            pairs = to_headers(headers) if headers is not None else None
            datas = _all_to_bytes(values, "value")
            key_datas = [None] * n if keys is None else _all_to_bytes(keys, "key")
            for data, key_data in zip(datas, key_datas, strict=True):
                self._check_size(data, key_data)
            for data, key_data in zip(datas, key_datas, strict=True):
                futures.append(self._produce(topic, count, data, key_data, partition, pairs, timestamp_ms))
        except LogsvcError as e:
            e.details["futures"] = futures
            raise
        return futures

    def _produce(
        self,
        topic: str,
        count: int,
        value: bytes | None,
        key: bytes | None,
        partition: int | None,
        headers: list[tuple[str, bytes]] | None,
        timestamp_ms: int | None,
    ) -> KafkaRecordFuture:
        """Hand one checked record to librdkafka, waiting for buffer space per ``buffer_full``."""
        if self._closed:
            raise FailedPrecondition("the producer is closed")
        if partition is None and key is not None:
            known = partition_for_key(key, count)  # what murmur2_random gives; checked by the tests
        else:
            known = -1 if partition is None else partition
        future = KafkaRecordFuture(self._cond, topic, known)
        kwargs: dict[str, Any] = {"on_delivery": _reporter(future, topic)}
        if partition is not None:
            kwargs["partition"] = partition
        if headers:
            kwargs["headers"] = headers
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        deadline = None
        while True:
            try:
                self._rd.produce(topic, value, key, **kwargs)
                return future
            except BufferError:
                if not self._block:
                    raise BufferFull(
                        f"producer buffer is full ({len(self._rd)} records of max_buffer_bytes="
                        f"{self._max_buffer_bytes} bytes unsent)"
                    ) from None
                now = time.monotonic()
                deadline = deadline or now + self._buffer_timeout_s
                if now >= deadline or self._closed:
                    raise BufferFull(
                        f"producer buffer stayed full for buffer_timeout_ms={self._buffer_timeout_s * 1000:g} "
                        f"({len(self._rd)} records of max_buffer_bytes={self._max_buffer_bytes} bytes unsent)"
                    ) from None
                # As the gRPC producer does, a full buffer sends what lingers: librdkafka's flush
                # sends at once, and its delivery reports free space.
                self._rd.flush(min(0.05, deadline - now))
            except KafkaException as e:
                raise translate(e, f"send to {topic}") from None

    # -- metadata -------------------------------------------------------------------------------

    def partition_count(self, topic: str) -> int:
        """The topic's partition count as the producer knows it (looked up again after
        ``metadata_max_age_ms``)."""
        return self._partition_count(topic)

    def _partition_count(self, topic: str) -> int:
        known = self._partitions.get(topic)
        now = time.monotonic()
        if known is not None and now - known[1] < self._metadata_max_age_s:
            return known[0]
        if self._closed:
            raise FailedPrecondition("the producer is closed")
        count = topic_partition_count(self._rd, topic, self._timeout_s)
        self._partitions[topic] = (count, now)
        return count

    # -- completion -----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Send everything buffered now, and wait until all of it is acknowledged or failed.

        Raises :class:`~logsvc_client.errors.Timeout` when ``timeout`` seconds pass first. Failed
        records are reported through their futures, not here. (librdkafka serves delivery reports
        on the flushing thread too: done callbacks may run here.)
        """
        left = self._rd.flush(-1 if timeout is None else timeout)
        if left:
            raise Timeout(f"flush did not complete within {timeout} s ({left} records pending)")

    def close(self, timeout: float | None = None) -> None:
        """Flush (up to ``timeout`` seconds) and stop; records still unacknowledged then fail with
        Unavailable."""
        if self._closed:
            return
        self._closed = True
        try:
            self.flush(timeout)
        except Timeout:
            pass
        finally:
            self._rd.purge()
            self._rd.flush(1)  # serve the purged records' reports: their futures fail
            self._stopping.set()
            self._poller.join(timeout=5)
            close = getattr(self._rd, "close", None)  # confluent-kafka >= 2.11 has it
            if close is not None:
                close()

    def __enter__(self) -> KafkaProducer:
        return self


def _check_partition(topic: str, partition: object, count: int) -> None:
    if partition.__class__ is not int or not 0 <= partition < count:
        raise InvalidPartition(f"partition {partition!r} does not exist in {topic} (partitions 0 to {count - 1})")


def _reporter(future: KafkaRecordFuture, topic: str) -> Any:
    """The librdkafka delivery callback that completes ``future``."""

    def report(error: KafkaError | None, message: Message) -> None:
        if error is None:
            future.deliver(message.partition() or 0, message.offset() or 0, None)
        elif error.code() in _PURGED:
            future.deliver(-1, -1, Unavailable("the producer was closed before the record was acknowledged"))
        else:
            future.deliver(-1, -1, translate(error, f"send to {topic}"))

    return report


def topic_partition_count(client: Any, topic: str, timeout_s: float) -> int:
    """``topic``'s partition count from the cluster's metadata (``client``: any librdkafka
    client). Raises TopicNotFound, or Unavailable when the cluster does not answer."""
    try:
        metadata = client.list_topics(topic, timeout=timeout_s)
    except KafkaException as e:
        raise translate(e, f"look up topic {topic!r}") from None
    found = metadata.topics.get(topic)
    if found is None:
        raise translate(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART), f"look up topic {topic!r}")
    if found.error is not None:
        raise translate(found.error, f"topic {topic!r}", topic=topic)
    return len(found.partitions)
