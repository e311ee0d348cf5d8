"""What a topic's partitions hold, read through the admin's ``read_batches`` and decoded with the
wire's codec: the same on a logsvc broker and on a Kafka cluster (where the admin re-encodes what
it consumed as logsvc batches), so producer tests check what was stored without a Consumer."""

from __future__ import annotations

from logsvc_client import Admin, Record
from logsvc_wire.batch import decode_records


def stored_records(admin: Admin, topic: str, partition: int = 0, offset: int = 0) -> list[Record]:
    """Every record of ``topic``/``partition`` from ``offset`` to the partition's end."""
    records: list[Record] = []
    while True:
        fetched = admin.read_batches(topic, partition, offset)
        for base, data in fetched.batches:
            records += decode_records(topic, partition, base, data, offset)
        if records:
            offset = records[-1].offset + 1
        if offset >= fetched.next_offset or not fetched.batches:
            return records


def stored_topic(admin: Admin, topic: str) -> list[Record]:
    """Every record of every partition of ``topic``, partition by partition."""
    count = next(t.partitions for t in admin.list_topics() if t.name == topic)
    return [r for p in range(count) for r in stored_records(admin, topic, p)]
