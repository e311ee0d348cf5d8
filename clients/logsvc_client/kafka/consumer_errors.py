"""What a Kafka consumer does with an error librdkafka hands out in place of a record.

:func:`judge` names the action and the project exception: ``"stop"`` (fatal — fenced by a newer
member with the same instance id, or any other fatal error: every later poll raises it),
``"until_seek"`` (the partition's offset is outside the log under ``auto_offset_reset="none"``:
every poll raises it until the partition is seeked), ``"raise"`` (a topic or partition that does
not exist: this poll raises it, once :func:`confirmed_missing` has asked the cluster) or ``"log"``
(librdkafka retries by itself, or joins the group again after ``max_poll_interval_ms``: logged as a
WARNING on ``logsvc_client.consumer``).

librdkafka says ``UNKNOWN_TOPIC_OR_PART`` whenever one broker's answer lacks the topic: for a
deleted topic, but also for a moment after a topic is created, or while a broker that has not yet
seen the latest metadata answers. Ending a consumer (and the connector around it) on the second kind
would be wrong, so a not-found error is raised only when a fresh metadata lookup agrees.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException

from ..errors import FencedInstance, LogsvcError, OffsetOutOfRange
from .errors import translate

log = logging.getLogger("logsvc_client.consumer")

Action = Literal["stop", "until_seek", "raise", "log"]

_OUT_OF_RANGE = (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE)
_NOT_FOUND = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC, KafkaError._UNKNOWN_PARTITION)


def judge(message: Any, group_id: str | None, instance_id: str | None) -> tuple[Action, LogsvcError | None]:
    """The action for librdkafka's error ``message`` and its exception (None for "log")."""
    error: KafkaError = message.error()
    code = error.code()
    if code == KafkaError.FENCED_INSTANCE_ID or (error.fatal() and "fenced" in error.str().lower()):
        return "stop", FencedInstance(
            f"another consumer joined group {group_id} with this consumer's instance id "
            f"{instance_id!r}: this one is fenced and stops ({error.str()})",
            kafka_error=error.name(),
        )
    if error.fatal():
        return "stop", translate(error, f"consumer of group {group_id}")
    if code in _OUT_OF_RANGE and message.topic() is not None:
        topic, partition = message.topic(), message.partition()
        return "until_seek", OffsetOutOfRange(
            f"the offset of {topic}/{partition} is outside the log and auto_offset_reset is 'none': "
            f"seek to an offset to go on ({error.str()})",
            topic=topic,
            partition=partition,
        )
    if code in _NOT_FOUND:
        return "raise", translate(error, f"poll of {_place(message)}", topic=message.topic())
    if code == KafkaError._MAX_POLL_EXCEEDED:  # librdkafka left the group: the next poll joins again
        log.warning("group %s: %s; joining again", group_id, error.str())
    else:
        log.warning("consumer: %s (%s)", error.str(), error.name())
    return "log", None


def confirmed_missing(rd: Any, message: Any, timeout_s: float) -> bool:
    """Whether the cluster's metadata, asked now through librdkafka consumer ``rd``, agrees that the
    topic (or partition) of not-found error ``message`` does not exist. When the topic and partition
    are there, or the cluster cannot be asked, the error is logged as a WARNING and False returned:
    librdkafka fetches on by itself once its metadata catches up."""
    topic, partition = message.topic(), message.partition()
    if not topic:
        return True
    try:
        metadata = rd.list_topics(topic, timeout=timeout_s)
    except KafkaException as e:
        log.warning(
            "consumer: %s for topic %r, and the cluster could not be asked whether it exists (%s); polling on",
            message.error().str(),
            topic,
            e,
        )
        return False
    found = metadata.topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        return True
    if partition is not None and partition >= len(found.partitions):
        return True
    log.warning(
        "consumer: %s for %s, but the cluster's metadata has it (%d partitions): a stale answer; polling on",
        message.error().str(),
        _place(message),
        len(found.partitions),
    )
    return False


def _place(message: Any) -> str:
    """The partition (``t/1``) or, for a topic-wide error, the topic (``topic 't'``) of ``message``."""
    topic, partition = message.topic(), message.partition()
    return f"{topic}/{partition}" if partition is not None and partition >= 0 else f"topic {topic!r}"
