"""A batch for the PostgreSQL sink, split into one group per topic, ready to write.

:func:`group_records` splits the records by topic (one table each) and, within a group, applies
the tombstones — their keys are collected for the ``DELETE`` that runs before the rows go in, and a
record a later tombstone deletes anyway is dropped. Duplicate ids are not compacted here: the
runtime does it before the batch reaches the sink (one record per id).
:meth:`TopicGroup.encode` then turns the group's live records into staging rows
(:class:`~logsvc_connect.postgres.rows.RowEncoder`), a record that cannot be encoded failing
alone — or, for a plain jsonb batch bound for a direct COPY, into that COPY's data
(:mod:`~logsvc_connect.postgres.copy_stream`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from ..sink import DataError, SinkRecord
from .copy_stream import jsonb_copy
from .rows import Row, RowEncoder

#: fields of a SinkRecord tuple, for per-record work done by C iterators
_TOPIC, _VALUE = itemgetter(0), itemgetter(5)


@dataclass
class TopicGroup:
    """One topic's share of a batch, ready to write."""

    topic: str
    #: rows whose JSON only PostgreSQL has checked (RowEncoder.trust_json)
    trusted: bool = False
    #: the records to insert (indexes into the batch), and the rows of those that encoded
    live: list[int] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    #: instead of ``rows`` (then empty): the binary COPY data of the rows (copy_stream.jsonb_copy)
    stream: bytes | None = None
    delete_keys: list[bytes] = field(default_factory=list)

    def encode(
        self,
        records: Sequence[SinkRecord],
        encoder: RowEncoder,
        failed: dict[int, DataError],
        trust: bool,
        stream: bool = False,
    ) -> None:
        """The group's staging rows; a record that cannot be encoded goes to ``failed``. ``trust``:
        leave JSON to PostgreSQL to check. ``stream``: when the records are plain jsonb ones (every
        one encodes), their binary COPY data in :attr:`stream` instead of rows."""
        self.trusted = encoder.trust_json = trust
        self.rows, self.indexes, self.stream = [], [], None
        live = [records[i] for i in self.live] if len(self.live) < len(records) else records
        if stream and encoder.plain_jsonb and trust:
            self.stream = jsonb_copy(live if isinstance(live, list) else list(live), self.topic, encoder.needs_key)
            if self.stream is not None:
                self.indexes = self.live
                return
        rows = encoder.rows(live)
        if rows is not None:
            self.rows, self.indexes = rows, self.live
            return
        encode = encoder.row
        try:
            self.rows = [encode(records[i]) for i in self.live]
            self.indexes = self.live
            return
        except DataError:
            pass
        for i in self.live:  # some record is bad: again, one at a time
            try:
                self.rows.append(encode(records[i]))
            except DataError as e:
                failed[i] = e
                continue
            self.indexes.append(i)


def group_records(records: Sequence[SinkRecord]) -> list[TopicGroup]:
    """The records' groups, with tombstones applied and their ``live`` records chosen."""
    # the per-record checks run as C iterators over the record tuples (see _TOPIC and friends)
    by_topic: dict[str, list[int]] = {}
    topics = set(map(_TOPIC, records))
    if len(topics) <= 1:
        by_topic = {topics.pop(): list(range(len(records)))} if records else {}
    else:
        for i, r in enumerate(records):
            by_topic.setdefault(r.topic, []).append(i)
    groups = []
    for topic, indexes in by_topic.items():
        group = TopicGroup(topic)
        live = indexes
        if None in map(_VALUE, map(records.__getitem__, indexes)):
            live = _apply_tombstones(records, indexes, group)
        group.live = live
        groups.append(group)
    return groups


def _apply_tombstones(records: Sequence[SinkRecord], indexes: list[int], group: TopicGroup) -> list[int]:
    """Collect the tombstones' keys and drop the records a later tombstone deletes anyway
    (the DELETE runs before the INSERT)."""
    deleted: set[bytes] = set()
    live = []
    for i in reversed(indexes):
        r = records[i]
        if r.value is None:
            if r.key is not None and r.key not in deleted:
                deleted.add(r.key)
                group.delete_keys.append(r.key)
        elif r.key is None or r.key not in deleted:
            live.append(i)
    live.reverse()
    return live
