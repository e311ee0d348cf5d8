"""Kafka's topic config names and logsvc's: the one table of them.

The broker takes a Kafka name wherever it takes a topic config key (``retention.ms`` is stored and
shown as ``retention_ms``, :mod:`logsvc.topic_config`), and the client's admin on a Kafka cluster
sends logsvc's names as Kafka's (:mod:`logsvc_client.kafka.admin`); both read this table.
"""

from __future__ import annotations

#: Kafka topic config name -> logsvc's (the value means the same on both).
KAFKA_NAMES = {
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "message.timestamp.type": "timestamp_type",
    "max.message.bytes": "max_batch_bytes",
}

#: logsvc topic config name -> Kafka's.
LOGSVC_NAMES_TO_KAFKA = {logsvc: kafka for kafka, logsvc in KAFKA_NAMES.items()}
