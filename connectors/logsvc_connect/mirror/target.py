"""The Kafka cluster a mirror copies to: its topics, the end of its partitions, its groups' offsets.

Everything the mirror asks Kafka, apart from producing, goes through :class:`KafkaTarget`, and
every librdkafka error leaves it as the project's exception
(:func:`logsvc_client.kafka.errors.translate`).

The end of a partition is read the way that works on every Kafka-protocol broker: a consumer
fetches from a known offset until librdkafka reports the partition's end (``enable.partition.eof``),
and the high watermark of that last Fetch is the answer. ListOffsets "latest" would be quicker but
Tansu answers 1 to it whatever the partition holds.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from confluent_kafka import (
    TIMESTAMP_CREATE_TIME,
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
)
from confluent_kafka import TopicPartition as KafkaPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from logsvc_client.errors import Timeout
from logsvc_client.kafka.address import parse
from logsvc_client.kafka.errors import translate
from logsvc_client.kafka.settings import client_config
from logsvc_client.records import TopicPartition
from logsvc_wire.types import RESET_METADATA

#: logsvc topic config key -> Kafka topic config key, for the configs that mean the same thing.
#: timestamp_type is left out on purpose: the copy keeps each record's own timestamp, which a
#: Kafka topic only does as CreateTime (its default).
TOPIC_CONFIGS = {
    "retention_ms": "retention.ms",
    "retention_bytes": "retention.bytes",
    "max_batch_bytes": "max.message.bytes",
}

#: group states in which Kafka refuses (or a member would overwrite) an admin's offset commit
_ACTIVE_STATES = {
    ConsumerGroupState.STABLE,
    ConsumerGroupState.PREPARING_REBALANCING,
    ConsumerGroupState.COMPLETING_REBALANCING,
}


#: what the mirror compares of a record on both sides: (timestamp ms, key, value); the timestamp
#: is None when the Kafka topic sets its own (LogAppendTime)
RecordFields = tuple[int | None, bytes | None, bytes | None]


class PartitionEnd(NamedTuple):
    """Where a Kafka partition ends."""

    high_watermark: int
    #: the last record read on the way (None when the read started at the end)
    last: RecordFields | None


def kafka_topic_config(config: Mapping[str, str]) -> dict[str, str]:
    """The Kafka topic config for a logsvc topic's ``config`` (the keys of :data:`TOPIC_CONFIGS`)."""
    return {TOPIC_CONFIGS[k]: str(v) for k, v in config.items() if k in TOPIC_CONFIGS}


class KafkaTarget:
    """The mirror's view of a Kafka cluster (``kafka://...`` address)."""

    def __init__(self, address: str, request_timeout_s: float = 30) -> None:
        self.address = address
        self.bootstrap_servers = parse(address).bootstrap_servers
        self._timeout_s = request_timeout_s
        self._config = client_config(address, client_id="logsvc-mirror")
        self._admin = AdminClient(dict(self._config))

    def client_config(self, **overrides: Any) -> dict[str, Any]:
        """The librdkafka settings of another client on this cluster (the mirror's producer)."""
        return {**self._config, **overrides}

    # -- topics ---------------------------------------------------------------------------------

    def partition_count(self, topic: str) -> int | None:
        """The topic's partition count on Kafka; None when it does not exist.

        Asks for the metadata of every topic: a Metadata request naming the topic creates it on a
        broker with ``auto.create.topics.enable`` (and on Tansu always), with the broker's default
        partition count instead of the source's.
        """
        try:
            metadata = self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException as e:
            raise translate(e, f"read the metadata of Kafka topic {topic!r}") from None
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            return None
        return len(found.partitions)

    def create_topic(self, topic: str, partitions: int, config: Mapping[str, str]) -> None:
        """Create the topic and wait until the cluster's metadata shows all its partitions."""
        new = NewTopic(topic, partitions, replication_factor=-1, config=dict(config))
        try:
            self._admin.create_topics([new], request_timeout=self._timeout_s)[topic].result(self._timeout_s)
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise translate(e, f"create Kafka topic {topic!r}") from None
        self._await_partitions(topic, partitions)

    def add_partitions(self, topic: str, partitions: int) -> None:
        """Grow the topic to ``partitions`` and wait until the cluster's metadata shows them all
        (the project's error when the cluster refuses: a broker without CreatePartitions, ACLs)."""
        try:
            self._admin.create_partitions([NewPartitions(topic, partitions)], request_timeout=self._timeout_s)[
                topic
            ].result(self._timeout_s)
        except KafkaException as e:
            raise translate(e, f"grow Kafka topic {topic!r} to {partitions} partitions") from None
        self._await_partitions(topic, partitions)

    def _await_partitions(self, topic: str, partitions: int) -> None:
        deadline = time.monotonic() + self._timeout_s
        while self.partition_count(topic) != partitions:
            if time.monotonic() > deadline:
                raise Timeout(f"Kafka topic {topic!r} did not show {partitions} partitions within {self._timeout_s} s")
            time.sleep(0.05)

    # -- the end of partitions ------------------------------------------------------------------

    def ends(self, starts: Mapping[TopicPartition, int | None]) -> dict[TopicPartition, PartitionEnd]:
        """Each partition's high watermark and last record, read by fetching from its offset in
        ``starts`` to its end (see the module docstring). For an offset past the end the answer is
        the high watermark of the Fetch answers (and no record); None starts one record before
        what ListOffsets calls the end (Kafka: one record read; Tansu, which answers 1: all)."""
        if not starts:
            return {}
        consumer = Consumer(
            self.client_config(
                **{
                    "group.id": f"logsvc-mirror-tail-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "error",
                    "fetch.wait.max.ms": 50,
                }
            )
        )
        found: dict[TopicPartition, PartitionEnd] = {}
        last: dict[tuple[str, int], RecordFields] = {}
        try:
            assigned = []
            for tp, offset in starts.items():
                if offset is None:
                    _, high = consumer.get_watermark_offsets(KafkaPartition(tp.topic, tp.partition), self._timeout_s)
                    offset = max(0, high - 1)
                assigned.append(KafkaPartition(tp.topic, tp.partition, offset))
            consumer.assign(assigned)
            deadline = time.monotonic() + self._timeout_s
            while len(found) < len(starts):
                if time.monotonic() > deadline:
                    missing = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in starts if tp not in found)
                    raise Timeout(f"could not read to the end of Kafka partitions {missing}")
                for msg in consumer.consume(10_000, timeout=0.5):
                    error = msg.error()
                    if error is None:
                        kind, timestamp = msg.timestamp()
                        fields = (timestamp if kind == TIMESTAMP_CREATE_TIME else None, msg.key(), msg.value())
                        last[(msg.topic(), msg.partition())] = fields  # type: ignore[index]
                        continue
                    tp = TopicPartition(str(msg.topic()), int(msg.partition() or 0))
                    if error.code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE):
                        # the start is outside the log (Kafka says so; Tansu does not): its end
                        # from ListOffsets, which Kafka answers right
                        kp = KafkaPartition(tp.topic, tp.partition)
                        found[tp] = PartitionEnd(consumer.get_watermark_offsets(kp, self._timeout_s)[1], None)
                        continue
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise translate(error, f"read Kafka topic {tp.topic!r} partition {tp.partition}")
                    _, high = consumer.get_watermark_offsets(KafkaPartition(tp.topic, tp.partition), cached=True)
                    found[tp] = PartitionEnd(max(high, int(msg.offset() or 0)), last.get(tp))
                for kp in assigned:  # a start past the end: Tansu answers no error, so no EOF either
                    tp = TopicPartition(kp.topic, kp.partition)
                    if tp not in found and not last.get((kp.topic, kp.partition)):
                        _, high = consumer.get_watermark_offsets(kp, cached=True)
                        if 0 <= high < kp.offset:
                            found[tp] = PartitionEnd(high, None)
        except KafkaException as e:
            raise translate(e, "read the end of Kafka partitions") from None
        finally:
            consumer.close()
        return found

    # -- groups ---------------------------------------------------------------------------------

    def group_is_active(self, group: str) -> bool:
        """True while the Kafka group has members (or is rebalancing)."""
        try:
            future = self._admin.describe_consumer_groups([group], request_timeout=self._timeout_s)[group]
            return future.result(self._timeout_s).state in _ACTIVE_STATES
        except KafkaException as e:
            if e.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return False
            raise translate(e, f"describe Kafka group {group!r}") from None

    def committed(self, group: str, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offsets on Kafka (partitions without one left out)."""
        request = ConsumerGroupTopicPartitions(group, [KafkaPartition(tp.topic, tp.partition) for tp in partitions])
        try:
            answer = self._admin.list_consumer_group_offsets([request], request_timeout=self._timeout_s)[group]
            listed = answer.result(self._timeout_s).topic_partitions
        except KafkaException as e:
            raise translate(e, f"read the offsets of Kafka group {group!r}") from None
        return {TopicPartition(p.topic, p.partition): p.offset for p in listed if p.offset >= 0 and p.error is None}

    def commit(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``{partition: next offset}`` for the (memberless) group on Kafka, marked as
        ``logsvc groups reset-offsets`` marks its offsets (:data:`~logsvc_wire.types.RESET_METADATA`):
        a consumer that keeps offsets of its own — an exactly-once Postgres connector, whose table
        holds logsvc's offsets — takes the translated offset over its own when it starts on Kafka."""
        request = ConsumerGroupTopicPartitions(
            group,
            [
                KafkaPartition(tp.topic, tp.partition, offset, metadata=RESET_METADATA)
                for tp, offset in sorted(offsets.items())
            ],
        )
        try:
            answer = self._admin.alter_consumer_group_offsets([request], request_timeout=self._timeout_s)[group]
            for p in answer.result(self._timeout_s).topic_partitions:
                if p.error is not None:
                    raise translate(p.error, f"commit offsets of Kafka group {group!r}")
        except KafkaException as e:
            raise translate(e, f"commit offsets of Kafka group {group!r}") from None
