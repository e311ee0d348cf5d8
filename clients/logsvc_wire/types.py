"""The plain value types both sides of the wire share: a partition's name, a decoded record, and
the commit metadata that marks an offset reset.

The broker's group coordinator assigns :class:`TopicPartition` s, the codec
(:func:`~logsvc_wire.batch.decode_records`) decodes batches into :class:`Record` tuples, and the
client hands both to its users (re-exported as ``logsvc_client.TopicPartition`` and
``logsvc_wire.types.Record``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

Headers = tuple[tuple[str, bytes], ...]

MAX_LONG = 2**63 - 1
"""A signed 64-bit long: what Kafka's offsets, timestamps and retention limits are (and logsvc's
committed offsets, ListOffsets timestamps and retention_ms / retention_bytes)."""
MAX_PARTITION_COUNT = 2**31 - 1
"""The most partitions a topic can have: Kafka's partition count is a 32-bit int (a logsvc broker
allows at most its ``max_partitions``, 10,000 by default, and says so)."""


class TopicPartition(NamedTuple):
    topic: str
    partition: int


class Record(NamedTuple):
    """One consumed record. ``key``/``value`` are bytes or None (a tombstone has value None)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None


def record_padding(record_type: type[tuple[Any, ...]]) -> tuple[None, ...]:
    """What a record of ``record_type`` holds past :class:`Record`'s seven fields: one None per
    further NamedTuple field (``()`` for Record itself), for decoders that build a wider record in
    the same pass (a sink runtime's, with room for the decoded value)."""
    return (None,) * (len(getattr(record_type, "_fields", ())) - len(Record._fields))


#: the metadata `logsvc groups reset-offsets` (ResetOffsets) commits with the offsets it resets: a
#: consumer that keeps offsets of its own (an exactly-once sink) takes the group's offset over its
#: own while this marks it, so a reset replays every connector alike
RESET_METADATA = "logsvc.reset-offsets"
