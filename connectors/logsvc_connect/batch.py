"""A batch as the connector runtime hands it to a sink, and the pure steps that make it from the
polled records: the offsets its commit stores, values decoded, same ids compacted.

The consumer decodes fetched batches straight into :class:`~logsvc_connect.sink.SinkRecord`
tuples (topic, partition, offset, timestamp_ms, key, value, headers, doc None), and per-record
work here runs as C iterators over them (``itemgetter``, ``map``, ``zip``): no Python bytecode, and
no second tuple, per record on the no-op path.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter

from logsvc_client import TopicPartition
from logsvc_connect.sink import DataError, SinkRecord
from logsvc_connect.values import decode_value

_new = tuple.__new__
topic_partition_of, offset_of, value_of = itemgetter(0, 1), itemgetter(2), itemgetter(5)

#: records that failed on their data, with why: what goes to the dead-letter topic
Failed = list[tuple[SinkRecord, DataError]]


@dataclass(slots=True)
class Batch:
    """A batch ready for the sink: its records decoded, filtered and compacted, the decoding and
    filter failures dead-lettered, and the offsets its commit stores."""

    records: list[SinkRecord]
    offsets: dict[TopicPartition, int]
    #: whether the sink is called (records to write, or offsets an exactly-once sink stores)
    writes: bool
    #: records compaction left out because a later record of the batch has the same id (written
    #: by that one's write)
    replaced: int = 0


def next_offsets(
    records: Sequence[SinkRecord], past_corrupt: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """The offsets a batch of ``records`` (in offset order per partition) completes: each
    partition's next offset after its last record, and at least ``past_corrupt``'s (the offset
    after a dead-lettered corrupt stored batch)."""
    last = dict(zip(map(topic_partition_of, records), map(offset_of, records), strict=True))  # last one wins
    offsets = {TopicPartition(*tp): offset + 1 for tp, offset in last.items()}
    for tp, after in past_corrupt.items():
        offsets[tp] = max(after, offsets.get(tp, 0))
    return offsets


def decoded(records: list[SinkRecord], value_format: str) -> tuple[list[SinkRecord], Failed]:
    """``records`` (with doc None) with their values decoded as ``value_format``; the records that
    do not decode apart."""
    out: list[SinkRecord] = []
    failed: Failed = []
    for r in records:
        try:
            out.append(_new(SinkRecord, (*r[:7], decode_value(r.value, value_format))))
        except DataError as e:
            failed.append((r, e))
    return out, failed


def compacted(records: Sequence[SinkRecord], identity: Callable[[SinkRecord], Hashable]) -> list[int] | None:
    """The indexes of the records to write when only the last record of each ``identity`` in the
    batch is kept (a later write of the same id would replace it), in batch order; None when every
    identity is distinct. The one place duplicate ids are compacted: adapters get distinct ids."""
    last = dict(zip(map(identity, records), range(len(records)), strict=True))
    if len(last) == len(records):
        return None
    return sorted(last.values())


def kept(records: list[SinkRecord], identity: Callable[[SinkRecord], Hashable]) -> list[SinkRecord]:
    """``records`` with only the last of each ``identity`` (see :func:`compacted`)."""
    indexes = compacted(records, identity)
    return records if indexes is None else [records[i] for i in indexes]
