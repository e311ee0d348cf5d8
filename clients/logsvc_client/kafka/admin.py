"""The admin on a Kafka cluster: :class:`~logsvc_client.transport.base.AdminTransport` over
librdkafka's ``AdminClient``.

``Admin("kafka://...")`` talks through a :class:`KafkaAdminTransport`, so ``logsvc topics``,
``partitions``, ``groups`` and the tools built on the admin run on a Kafka cluster. Topics,
offsets, trimming (DeleteRecords), the broker-partitioned produce path (a librdkafka producer)
and reading stored records (:mod:`~logsvc_client.kafka.log_reader`) are here; consumer groups in
:mod:`~logsvc_client.kafka.group_admin`.

Topic config: Kafka's own dotted names (``retention.ms``, ``cleanup.policy``) pass through as
they are; logsvc's names with a Kafka equivalent are mapped (:data:`CONFIG_NAMES`); the others
(``max_uncompressed_batch_bytes``, a partitioner other than murmur2) are InvalidConfig naming the
key. A description shows the Kafka names of the settings that are not the broker's defaults.

What a Kafka cluster does not tell a client, and so a description leaves out: a partition's
size in bytes (``bytes`` is -1), its first and last record timestamps (-1), the topic's numeric
id (0: Kafka's ids are UUIDs) and creation time (-1). ``record_count`` is next offset - log
start (a compacted topic holds fewer). ACLs and quotas are Kafka's own (``kafka-acls``,
``kafka-configs``): their admin calls are refused with FailedPrecondition saying so. ``whoami``
is the SASL user name, or ``User:ANONYMOUS`` without SASL.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NoReturn

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as RdProducer
from confluent_kafka import TopicPartition as RdTopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

from logsvc_wire.kafka_names import LOGSVC_NAMES_TO_KAFKA

from ..acls import Acl, AclFilter, Quota, Quotas
from ..errors import FailedPrecondition, InvalidConfig, InvalidPartition, LogsvcError, TopicNotFound
from ..records import ProducerRecord, RecordPosition
from ..security import Security
from ..topics import OffsetAndTimestamp, PartitionInfo, TopicDescription, TopicSummary
from ..transport.base import FetchedPartition
from ..transport.grpc_admin import check_offset_spec
from .errors import translate, wait
from .group_admin import KafkaGroupCalls
from .log_reader import read_partition
from .producer import topic_partition_count
from .settings import client_config

#: logsvc topic config names -> Kafka's (the value means the same): the wire's one table.
CONFIG_NAMES = LOGSVC_NAMES_TO_KAFKA


def kafka_topic_config(config: Mapping[str, str]) -> dict[str, str]:
    """``config`` with logsvc's names as Kafka's (see the module docstring); InvalidConfig naming
    a logsvc key Kafka has nothing for."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if "." in key:
            out[key] = value
        elif key in CONFIG_NAMES:
            out[CONFIG_NAMES[key]] = value
        elif key == "partitioner" and value == "murmur2":
            continue  # Kafka's rule, which the producer always uses
        else:
            known = ", ".join(sorted(CONFIG_NAMES))
            raise InvalidConfig(
                f"topic config {key}={value!r} has no Kafka equivalent: use Kafka's own names "
                f"(e.g. retention.ms) or one of {known}",
                key=key,
            )
    return out


class KafkaAdminTransport(KafkaGroupCalls):
    """The admin's calls on a Kafka cluster (see the module docstring). Reads are retried by
    librdkafka; nothing is retried here."""

    def __init__(self, address: str, *, request_timeout_ms: int = 30_000, security: Security | None = None) -> None:
        self.address = address
        self._config = client_config(address, security)
        # A metadata look-up of a missing topic must not create it (librdkafka's default for the
        # producer-like handles the admin and produce_records use).
        self._config["allow.auto.create.topics"] = False
        self._timeout_s = request_timeout_ms / 1000
        try:
            self._admin = AdminClient(dict(self._config))
        except KafkaException as e:
            raise translate(e, f"admin settings for {address}") from None
        self._producer: RdProducer | None = None

    # -- topics ---------------------------------------------------------------------------------

    def _partition_count(self, topic: str) -> int:
        return topic_partition_count(self._admin, topic, self._timeout_s)

    def _partitions(self, topic: str, partitions: Iterable[int] | None) -> list[int]:
        """``partitions`` (None or empty: all of the topic's), each checked to exist."""
        count = self._partition_count(topic)
        wanted = sorted(set(partitions or ())) or list(range(count))
        for p in wanted:
            _check_partition(topic, p, count)
        return wanted

    def create_topic(self, name: str, partitions: int, config: Mapping[str, str]) -> TopicDescription:
        topic = NewTopic(name, num_partitions=partitions, replication_factor=-1, config=kafka_topic_config(config))
        what = f"create topic {name!r}"
        wait(self._admin.create_topics([topic], request_timeout=self._timeout_s)[name], what, self._timeout_s)
        self._await_metadata(name, lambda n: n == partitions)
        return self.describe_topic(name)

    def _await_metadata(self, name: str, ok: Any) -> None:
        """Wait (up to the request timeout) until the cluster's metadata shows ``name`` with a
        partition count ``ok`` accepts (it lags behind a create or a new partition)."""
        deadline = time.monotonic() + self._timeout_s
        while True:
            try:
                if ok(self._partition_count(name)):
                    return
            except TopicNotFound:
                pass
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def alter_topic(
        self, name: str, partitions: int, set_config: Mapping[str, str], reset_config: Sequence[str]
    ) -> TopicDescription:
        count = self._partition_count(name)
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
            for k, v in kafka_topic_config(set_config).items()
        ]
        reset = kafka_topic_config({k: "" for k in reset_config if k != "partitioner"})
        entries += [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in reset]
        if partitions and partitions != count:
            if partitions < count:
                raise InvalidPartition(
                    f"topic {name} has {count} partitions: it cannot shrink to {partitions}",
                    topic=name,
                    partitions=partitions,
                )
            what = f"grow topic {name!r} to {partitions} partitions"
            futures = self._admin.create_partitions([NewPartitions(name, partitions)], request_timeout=self._timeout_s)
            wait(futures[name], what, self._timeout_s)
            self._await_metadata(name, lambda n: n >= partitions)
        if entries:
            resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
            altered = self._admin.incremental_alter_configs([resource], request_timeout=self._timeout_s)
            wait(next(iter(altered.values())), f"alter config of topic {name!r}", self._timeout_s)
        return self.describe_topic(name)

    def delete_topic(self, name: str) -> None:
        self._partition_count(name)  # TopicNotFound naming it, as on logsvc
        futures = self._admin.delete_topics([name], request_timeout=self._timeout_s)
        wait(futures[name], f"delete topic {name!r}", self._timeout_s)

    def list_topics(self) -> list[TopicSummary]:
        try:
            metadata = self._admin.list_topics(timeout=self._timeout_s)
        except KafkaException as e:
            raise translate(e, "list topics") from None
        return sorted(
            (
                TopicSummary(name, len(t.partitions))
                for name, t in metadata.topics.items()
                if t.error is None and not name.startswith("__")  # Kafka's internal topics
            ),
            key=lambda t: t.name,
        )

    def _topic_config(self, name: str) -> dict[str, str]:
        """The topic's settings that are not the broker's defaults, by their Kafka names."""
        resource = ConfigResource(ResourceType.TOPIC, name)
        futures = self._admin.describe_configs([resource], request_timeout=self._timeout_s)
        entries = wait(next(iter(futures.values())), f"describe config of topic {name!r}", self._timeout_s)
        return {k: str(e.value) for k, e in sorted(entries.items()) if not e.is_default and e.value is not None}

    def describe_topic(self, name: str) -> TopicDescription:
        """Partitions with their log start and next offset (see the module docstring for what a
        Kafka cluster does not tell)."""
        count = self._partition_count(name)
        earliest = self._offsets(name, OffsetSpec.earliest(), range(count))
        latest = self._offsets(name, OffsetSpec.latest(), range(count))
        partitions = [
            PartitionInfo(
                partition=p,
                log_start_offset=earliest[p][0],
                next_offset=latest[p][0],
                record_count=max(0, latest[p][0] - earliest[p][0]),
                bytes=-1,
                first_timestamp_ms=-1,
                last_timestamp_ms=-1,
            )
            for p in range(count)
        ]
        return TopicDescription(name, 0, self._topic_config(name), -1, partitions)

    # -- offsets --------------------------------------------------------------------------------

    def _offsets(self, topic: str, spec: OffsetSpec, partitions: Iterable[int]) -> dict[int, tuple[int, int]]:
        """``{partition: (offset, timestamp)}`` of Kafka's ListOffsets for ``spec``."""
        request = {RdTopicPartition(topic, p): spec for p in partitions}
        if not request:
            return {}
        futures = self._admin.list_offsets(request, request_timeout=self._timeout_s)
        out = {}
        for tp, future in futures.items():
            info = wait(future, f"list offsets of {topic}/{tp.partition}", self._timeout_s)
            out[tp.partition] = (int(info.offset), int(info.timestamp))
        return out

    def list_offsets(
        self, topic: str, spec: str, timestamp_ms: int | None = None, partitions: Iterable[int] | None = None
    ) -> dict[int, int]:
        check_offset_spec(spec, timestamp_ms)
        wanted = self._partitions(topic, partitions)
        if spec == "timestamp":
            assert timestamp_ms is not None
            return {p: found.offset for p, found in self.offsets_for_time(topic, timestamp_ms, wanted).items()}
        kafka_spec = OffsetSpec.earliest() if spec == "earliest" else OffsetSpec.latest()
        return {p: offset for p, (offset, _) in self._offsets(topic, kafka_spec, wanted).items()}

    def offsets_for_time(
        self, topic: str, timestamp_ms: int, partitions: Iterable[int] | None = None
    ) -> dict[int, OffsetAndTimestamp]:
        check_offset_spec("timestamp", timestamp_ms)
        wanted = self._partitions(topic, partitions)
        found = self._offsets(topic, OffsetSpec.for_timestamp(timestamp_ms), wanted)
        missing = [p for p, (offset, _) in found.items() if offset < 0]  # no record at or after it
        ends = self._offsets(topic, OffsetSpec.latest(), missing)
        return {
            p: OffsetAndTimestamp(ends[p][0], None) if offset < 0 else OffsetAndTimestamp(offset, ts)
            for p, (offset, ts) in sorted(found.items())
        }

    def trim(self, topic: str, partition: int, before_offset: int) -> int:
        _check_partition(topic, partition, self._partition_count(topic))
        tp = RdTopicPartition(topic, partition, before_offset)
        futures = self._admin.delete_records([tp], request_timeout=self._timeout_s)
        deleted = wait(
            next(iter(futures.values())), f"trim {topic}/{partition} before {before_offset}", self._timeout_s
        )
        return int(deleted.low_watermark)

    # -- records --------------------------------------------------------------------------------

    def produce_records(self, topic: str, records: Iterable[ProducerRecord]) -> list[RecordPosition]:
        """Sent through a librdkafka producer (idempotent, murmur2_random: Kafka's partitioning)."""
        records = list(records)
        if not records:
            return []
        count = self._partition_count(topic)
        for r in records:
            if r.partition is not None:
                _check_partition(topic, r.partition, count)
        producer = self._produce_client()
        positions: list[RecordPosition | LogsvcError | None] = [None] * len(records)
        what = f"produce to {topic}"

        def reporter(i: int) -> Any:
            def report(error: KafkaError | None, message: Message) -> None:
                if error is None:
                    positions[i] = RecordPosition(message.partition() or 0, message.offset() or 0)
                else:
                    positions[i] = translate(error, what)

            return report

        try:
            for i, r in enumerate(records):
                kwargs: dict[str, Any] = {"on_delivery": reporter(i)}
                if r.partition is not None:
                    kwargs["partition"] = r.partition
                if r.headers:
                    kwargs["headers"] = list(r.headers)  # already (str, bytes) pairs (Admin checks them)
                if r.timestamp_ms is not None:
                    kwargs["timestamp"] = r.timestamp_ms
                producer.produce(topic, r.value, r.key, **kwargs)
                producer.poll(0)
        except KafkaException as e:
            raise translate(e, what) from None
        except BufferError:
            raise translate(KafkaError(KafkaError._QUEUE_FULL), what) from None
        if producer.flush(self._timeout_s):
            raise translate(KafkaError(KafkaError._MSG_TIMED_OUT), what)
        out: list[RecordPosition] = []
        for p in positions:
            if not isinstance(p, RecordPosition):
                raise p if p is not None else translate(KafkaError(KafkaError._MSG_TIMED_OUT), what)
            out.append(p)
        return out

    def _produce_client(self) -> RdProducer:
        if self._producer is None:
            config = dict(self._config)
            config.update(
                {"enable.idempotence": True, "partitioner": "murmur2_random", "allow.auto.create.topics": False}
            )
            config["linger.ms"] = 1
            self._producer = RdProducer(config)
        return self._producer

    def read_batches(self, topic: str, partition: int, offset: int, max_bytes: int) -> FetchedPartition:
        _check_partition(topic, partition, self._partition_count(topic))
        return read_partition(self._config, topic, partition, offset, max_bytes, self._timeout_s)

    # -- access control: Kafka's own tools ------------------------------------------------------

    def create_acls(self, acls: Sequence[Acl]) -> int:
        _logsvc_only("create_acls", "kafka-acls --add")

    def describe_acls(self, filter: AclFilter) -> list[Acl]:
        _logsvc_only("describe_acls", "kafka-acls --list")

    def delete_acls(self, filters: Sequence[AclFilter]) -> list[Acl]:
        _logsvc_only("delete_acls", "kafka-acls --remove")

    def alter_quotas(self, set: Sequence[Quota], remove: Sequence[str]) -> None:
        _logsvc_only("alter_quotas", "kafka-configs --alter --entity-type users")

    def describe_quotas(self, principal: str) -> Quotas:
        _logsvc_only("describe_quotas", "kafka-configs --describe --entity-type users")

    def whoami(self) -> str:
        """``User:`` and the SASL user name, or ``User:ANONYMOUS`` without SASL (as Kafka names it)."""
        return f"User:{self._config.get('sasl.username') or 'ANONYMOUS'}"

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(self._timeout_s)
            self._producer = None


def _check_partition(topic: str, partition: int, count: int) -> None:
    if not 0 <= partition < count:
        raise InvalidPartition(
            f"partition {partition} does not exist in {topic} (partitions 0 to {count - 1})",
            topic=topic,
            partition=partition,
            partitions=count,
        )


def _logsvc_only(call: str, instead: str) -> NoReturn:
    raise FailedPrecondition(
        f"{call} is a logsvc broker's call; on a Kafka cluster ACLs and quotas are Kafka's own: use {instead}",
        call=call,
    )
