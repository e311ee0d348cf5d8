"""Reading one partition of a Kafka topic as logsvc record batches, for the log-inspecting tools.

``logsvc records``, ``partitions dump`` and the dead-letter tools read stored batches
(:meth:`~logsvc_client.Admin.read_batches`) and decode them with :mod:`logsvc_wire.batch`. On
Kafka, :func:`read_partition` consumes the records from an offset with a short-lived consumer
(assigned, never in a group) and encodes them as logsvc batches (:func:`~logsvc_wire.batch.encode_batch`):
one batch per run of consecutive offsets (Kafka's offsets may have gaps, e.g. transaction
markers or compaction), so every record keeps its Kafka offset. The end of the partition is
the high watermark of the fetch answers (``enable.partition.eof``), not a ListOffsets call.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message
from confluent_kafka import TopicPartition as RdTopicPartition

from logsvc_wire.batch import RECORD_OVERHEAD, encode_batch

from ..errors import OffsetOutOfRange
from ..transport.base import FetchedPartition
from .errors import translate

#: A batch made from Kafka records holds at most about this many bytes.
_BATCH_BYTES = 1 << 20


def reader_config(base: dict[str, Any]) -> dict[str, Any]:
    """A consumer that is assigned partitions, never joins a group and never commits."""
    config = dict(base)
    config.update(
        {
            "group.id": f"logsvc-reader-{uuid.uuid4().hex}",  # required by librdkafka, never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "error",
        }
    )
    return config


def read_partition(
    config: dict[str, Any], topic: str, partition: int, offset: int, max_bytes: int, timeout_s: float
) -> FetchedPartition:
    """The records of ``topic``/``partition`` from ``offset`` on, up to about ``max_bytes`` (at
    least one record when there is one), as logsvc batches.

    Raises:
      OffsetOutOfRange: ``offset`` is outside the partition's stored records.
      Unavailable, Timeout: the cluster did not answer within ``timeout_s``.
    """
    consumer = Consumer(reader_config(config))
    what = f"read {topic}/{partition} from offset {offset}"
    try:
        consumer.assign([RdTopicPartition(topic, partition, offset)])
        messages: list[Message] = []
        size = 0
        end = -1
        deadline = time.monotonic() + timeout_s
        while size < max_bytes or not messages:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            got = consumer.consume(500, 0)  # what has arrived, without waiting
            if not got:
                one = consumer.poll(min(left, 0.2))
                got = [] if one is None else [one]
            for m in got:
                error = m.error()
                if error is None:
                    messages.append(m)
                    size += RECORD_OVERHEAD + len(m.key() or b"") + len(m.value() or b"")
                elif error.code() == KafkaError._PARTITION_EOF:
                    end = m.offset() or 0
                elif error.code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
                    raise _out_of_range(consumer, topic, partition, offset, what)
                else:
                    raise translate(error, what)
            if end >= 0:
                break
            if not messages:
                # A fetch answer's high watermark is known now: past it is out of range (some
                # Kafka-protocol brokers answer an empty fetch there instead of the error).
                _, high = consumer.get_watermark_offsets(RdTopicPartition(topic, partition), cached=True)
                if 0 <= high < offset:
                    raise _out_of_range(consumer, topic, partition, offset, what)
        low, high = consumer.get_watermark_offsets(RdTopicPartition(topic, partition), cached=True)
        if end < 0:
            end = high if high >= 0 else (messages[-1].offset() or 0) + 1 if messages else offset
        if low < 0:
            low = min(offset, messages[0].offset() or 0) if messages else offset
        return FetchedPartition(topic, partition, low, max(end, high), _batches(messages))
    except KafkaException as e:
        raise translate(e, what) from None
    finally:
        consumer.close()


def first_timestamps(
    config: dict[str, Any], positions: Sequence[tuple[str, int, int]], timeout_s: float
) -> dict[tuple[str, int], int]:
    """The timestamp of the record at each ``(topic, partition, offset)`` (or the first one after
    it), read with one assigned consumer; a partition with no record there is left out (also when
    the cluster does not answer within ``timeout_s``). What a group's lag in time is made of."""
    if not positions:
        return {}
    consumer = Consumer(reader_config(config))
    found: dict[tuple[str, int], int] = {}
    done: set[tuple[str, int]] = set()
    try:
        consumer.assign([RdTopicPartition(t, p, o) for t, p, o in positions])
        deadline = time.monotonic() + timeout_s
        while len(done) < len(positions) and time.monotonic() < deadline:
            for m in consumer.consume(500, min(0.2, max(0.0, deadline - time.monotonic()))):
                key = (m.topic() or "", m.partition() or 0)
                if key in done:
                    continue
                error = m.error()
                if error is None:
                    found[key] = m.timestamp()[1]
                    done.add(key)
                elif error.code() == KafkaError._PARTITION_EOF:
                    done.add(key)
                    consumer.pause([RdTopicPartition(*key)])
    except KafkaException:
        pass  # what was found is the answer: a lag in time left unknown is shown as 0
    finally:
        consumer.close()
    return found


def _out_of_range(consumer: Consumer, topic: str, partition: int, offset: int, what: str) -> OffsetOutOfRange:
    tp = RdTopicPartition(topic, partition)
    low, high = consumer.get_watermark_offsets(tp, cached=True)  # a fetch answer's, when there was one
    if high < 0:
        with contextlib.suppress(KafkaException):  # the message then says [-1, -1]
            low, high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
    return OffsetOutOfRange(
        f"{what}: offset {offset} is outside {topic}/{partition} [{low}, {high}]",
        topic=topic,
        partition=partition,
        offset=offset,
        log_start_offset=low,
        next_offset=high,
    )


def _batches(messages: list[Message]) -> list[tuple[int, bytes]]:
    """``messages`` (one partition's, in offset order) as ``(base offset, logsvc batch)``: a new
    batch at every gap in the offsets and at about :data:`_BATCH_BYTES`."""
    out: list[tuple[int, bytes]] = []
    rows: list[list[Any]] = []
    base = next_offset = -1
    size = 0
    for m in messages:
        offset = m.offset() or 0
        if rows and (offset != next_offset or size >= _BATCH_BYTES):
            out.append((base, encode_batch(rows)))
            rows, size = [], 0
        if not rows:
            base = offset
        _, timestamp_ms = m.timestamp()
        key, value = m.key(), m.value()
        headers: Any = m.headers()  # a list of (name, bytes | None) pairs, or None
        rows.append(
            [
                max(0, timestamp_ms),
                key,
                value,
                [(name, data or b"") for name, data in headers] if headers else None,
            ]
        )
        size += RECORD_OVERHEAD + len(key or b"") + len(value or b"")
        next_offset = offset + 1
    if rows:
        out.append((base, encode_batch(rows)))
    return out
