"""Topic names and per-topic configuration: parsing, validation, defaults.

Topic config travels as string pairs (gRPC map, CLI ``--config key=value``) and is stored
parsed. Unknown keys and bad values raise :class:`InvalidConfig` naming the key.

Kafka's dotted names are accepted wherever a key is (:data:`KAFKA_NAMES`, the one alias table):
``retention.ms=86400000`` is stored and shown as ``retention_ms``. A Kafka name logsvc has no
equivalent for (``segment.ms``, ``cleanup.policy``, ...) is refused naming it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from logsvc_wire.batch import MAX_UNCOMPRESSED_BATCH_BYTES
from logsvc_wire.errors import InvalidConfig, InvalidPartition, InvalidTopicName
from logsvc_wire.kafka_names import KAFKA_NAMES
from logsvc_wire.types import MAX_LONG

TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
PARTITIONERS = ("murmur2",)
UNCOMPRESSED_FACTOR = 4  # max_uncompressed_batch_bytes = 0 means this many times max_batch_bytes


def canonical_key(key: str) -> str:
    """logsvc's name for a topic config key: a Kafka dotted name (:data:`KAFKA_NAMES`) mapped, any
    other key as it is (whether it is known is :meth:`TopicConfig.parse`'s to say)."""
    return KAFKA_NAMES.get(key, key)


def canonical_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``raw`` with Kafka names mapped to logsvc's; InvalidConfig when a key is given under both
    names (``retention.ms`` and ``retention_ms``)."""
    config: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in raw.items():
        name = canonical_key(key)
        if name in config:
            raise InvalidConfig(f"topic config {key!r} and {given[name]!r} are the same key ({name})", key=key)
        config[name] = value
        given[name] = key
    return config


def _unknown_key(key: str, known: Iterable[str]) -> InvalidConfig:
    kafka = f" (a Kafka name logsvc has no equivalent for; Kafka names it takes: {', '.join(KAFKA_NAMES)})"
    return InvalidConfig(
        f"unknown topic config key {key!r}{kafka if '.' in key else ''}; known keys: {', '.join(sorted(known))}",
        key=key,
    )


def check_topic_name(name: str) -> str:
    """``name`` when it is a valid topic name (``[A-Za-z0-9._-]{1,249}``, not ``.`` or ``..``)."""
    if not isinstance(name, str) or not TOPIC_NAME.fullmatch(name) or name in (".", ".."):
        raise InvalidTopicName(
            f"invalid topic name {name!r}: use 1 to 249 of [A-Za-z0-9._-], not '.' or '..'", topic=name
        )
    return name


def check_partition_count(partitions: int, max_partitions: int) -> int:
    if not 1 <= partitions <= max_partitions:
        raise InvalidPartition(
            f"partition count {partitions} is out of range: use 1 to {max_partitions}", partitions=partitions
        )
    return partitions


@dataclasses.dataclass(frozen=True)
class TopicConfig:
    """Per-topic settings. -1 means unlimited for the retention limits."""

    retention_ms: int = -1
    retention_bytes: int = -1
    timestamp_type: str = "CreateTime"
    max_batch_bytes: int = 8 * 1024 * 1024
    partitioner: str = "murmur2"
    max_uncompressed_batch_bytes: int = 0
    """How far a compressed batch may inflate; 0 = UNCOMPRESSED_FACTOR x max_batch_bytes."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> TopicConfig:
        """Build from string (or typed) values, keys by logsvc's or Kafka's name; unknown keys and
        bad values are InvalidConfig."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in canonical_config(raw).items():
            if key not in fields:
                raise _unknown_key(key, fields)
            if fields[key].type in ("int", int):
                try:
                    values[key] = int(value)
                except (TypeError, ValueError):
                    raise InvalidConfig(f"topic config {key}={value!r} is not an integer", key=key) from None
            else:
                values[key] = str(value)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        for key in ("retention_ms", "retention_bytes"):
            v = getattr(self, key)
            if v < -1 or v == 0 or v > MAX_LONG:
                raise InvalidConfig(
                    f"topic config {key}={v} must be from 1 to {MAX_LONG}, or -1 for unlimited", key=key
                )
        if self.timestamp_type not in TIMESTAMP_TYPES:
            raise InvalidConfig(
                f"topic config timestamp_type={self.timestamp_type!r} must be one of {', '.join(TIMESTAMP_TYPES)}",
                key="timestamp_type",
            )
        if not 1024 <= self.max_batch_bytes <= 256 * 1024 * 1024:
            raise InvalidConfig(
                f"topic config max_batch_bytes={self.max_batch_bytes} must be between 1024 and 268435456",
                key="max_batch_bytes",
            )
        limit = self.max_uncompressed_batch_bytes
        if limit and not self.max_batch_bytes <= limit <= MAX_UNCOMPRESSED_BATCH_BYTES:
            raise InvalidConfig(
                f"topic config max_uncompressed_batch_bytes={limit} must be 0 ({UNCOMPRESSED_FACTOR} x "
                f"max_batch_bytes) or between max_batch_bytes ({self.max_batch_bytes}) and "
                f"{MAX_UNCOMPRESSED_BATCH_BYTES}",
                key="max_uncompressed_batch_bytes",
            )
        if self.partitioner not in PARTITIONERS:
            raise InvalidConfig(
                f"topic config partitioner={self.partitioner!r} must be one of {', '.join(PARTITIONERS)}",
                key="partitioner",
            )

    @classmethod
    def default(cls, key: str) -> str:
        """The default value of ``key`` (logsvc's or Kafka's name) as a string; InvalidConfig naming
        an unknown key."""
        defaults = cls().as_strings()
        if canonical_key(key) not in defaults:
            raise _unknown_key(key, defaults)
        return defaults[canonical_key(key)]

    def as_strings(self) -> dict[str, str]:
        return {k: str(v) for k, v in dataclasses.asdict(self).items()}

    @property
    def uncompressed_limit(self) -> int:
        """The most bytes a compressed batch may inflate to (max_uncompressed_batch_bytes, or its default)."""
        return self.max_uncompressed_batch_bytes or UNCOMPRESSED_FACTOR * self.max_batch_bytes

    @property
    def log_append_time(self) -> bool:
        return self.timestamp_type == "LogAppendTime"


def check_partition(topic: str, partition: int, partitions: int) -> int:
    """``partition`` when it exists in a topic of ``partitions`` partitions, else InvalidPartition."""
    if not 0 <= partition < partitions:
        raise InvalidPartition(
            f"partition {partition} does not exist in {topic} (partitions 0 to {partitions - 1})",
            topic=topic,
            partition=partition,
            partitions=partitions,
        )
    return partition
