"""The mirrored topics on both sides: what logsvc has, and the same topics made ready on Kafka.

:func:`prepare` creates each topic on Kafka with logsvc's partition count (and the configs that
map, :data:`~.target.TOPIC_CONFIGS`) when it is missing, and grows a Kafka topic with fewer
partitions (as MirrorMaker 2 does), since a record must land on the partition number it had; when
the cluster refuses to grow it, the mirror cannot copy that topic and stops, saying so. A running
mirror calls it again for topics that gained partitions on logsvc.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from logsvc_client import Admin
from logsvc_client.errors import FailedPrecondition, LogsvcError
from logsvc_client.topics import TopicDescription

from .target import KafkaTarget, kafka_topic_config

log = logging.getLogger("logsvc_connect.mirror")


def describe(source: Admin, topics: Sequence[str]) -> dict[str, TopicDescription]:
    """logsvc's description of each topic (TopicNotFound names a missing one)."""
    return {topic: source.describe_topic(topic) for topic in topics}


def prepare(target: KafkaTarget, sources: dict[str, TopicDescription]) -> None:
    """Make every topic of ``sources`` ready on Kafka (see the module docstring).

    Raises:
      FailedPrecondition: a Kafka topic has fewer partitions than the logsvc topic, and the
        cluster refused to add them.
    """
    for topic, description in sources.items():
        wanted = description.partition_count
        have = target.partition_count(topic)
        if have is None:
            config = kafka_topic_config(description.config)
            target.create_topic(topic, wanted, config)
            shown = ", ".join(f"{k}={v}" for k, v in sorted(config.items())) or "default config"
            log.info("created Kafka topic %s with %d partitions (%s)", topic, wanted, shown)
        elif have < wanted:
            try:
                target.add_partitions(topic, wanted)
            except LogsvcError as e:
                raise FailedPrecondition(
                    f"Kafka topic {topic!r} has {have} partitions, fewer than the {wanted} of the logsvc topic, "
                    f"and adding partitions to it failed ({e.message}): every record keeps its partition "
                    "number, so add partitions to the Kafka topic first",
                    topic=topic,
                ) from None
            log.info("added %d partitions to Kafka topic %s (now %d, as on logsvc)", wanted - have, topic, wanted)
        elif have > wanted:
            log.info("Kafka topic %s has %d partitions; only the first %d receive records", topic, have, wanted)
