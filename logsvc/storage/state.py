"""Topic and partition state: what the store keeps in memory, how it is persisted in LMDB, and
how it is rebuilt when a data directory is opened.

The :class:`Catalog` is the *published* view that readers use without locks: the writer thread
never mutates a published :class:`PartState` or topic dict, it replaces them after its
transaction commits (see :meth:`Catalog.publish`), so a reader sees either the state before a
commit or after it, never a half-applied one.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

import lmdb
import msgpack

from logsvc.storage import keys, producers, rules
from logsvc.storage.base import PartitionState, TopicMeta
from logsvc.topic_config import TopicConfig
from logsvc_wire.batch import stored_span

_STATE = struct.Struct(">QQq")  # log_start_offset, bytes, index_max_ts
NEXT_TOPIC_ID = b"next_topic_id"
NEXT_PRODUCER_ID = b"next_producer_id"
FORMAT = b"format"
FORMAT_VERSION = b"1"


@dataclasses.dataclass(slots=True)
class PartState:
    log_start: int = 0
    next_offset: int = 0
    bytes: int = 0
    first_ts: int = -1  # first timestamp of the head batch; -1 when no batch is stored
    last_ts: int = -1  # max timestamp of the last batch; -1 when no batch is stored
    index_max_ts: int = -1  # greatest timestamp the time index holds for this partition

    def copy(self) -> PartState:
        return PartState(self.log_start, self.next_offset, self.bytes, self.first_ts, self.last_ts, self.index_max_ts)

    def public(self, partition: int) -> PartitionState:
        return PartitionState(partition, self.log_start, self.next_offset, self.bytes, self.first_ts, self.last_ts)


def pack_state(st: PartState) -> bytes:
    return _STATE.pack(st.log_start, st.bytes, st.index_max_ts)


def encode_topic(meta: TopicMeta) -> bytes:
    doc = {
        "topic_id": meta.topic_id,
        "partitions": meta.partitions,
        "config": meta.config.as_strings(),
        "created_ms": meta.created_ms,
    }
    return bytes(msgpack.packb(doc, use_bin_type=True))


def decode_topic(name: str, raw: bytes | memoryview) -> TopicMeta:
    doc: dict[str, Any] = msgpack.unpackb(raw, raw=False)
    config = TopicConfig.parse(doc["config"])
    return TopicMeta(name, int(doc["topic_id"]), int(doc["partitions"]), config, int(doc["created_ms"]))


#: Named databases a data directory written by an older version may lack.
_ADDED_LATER = ("producers", "acls", "quotas")


class Dbs(NamedTuple):
    """The named databases of one environment."""

    meta: Any  # store-wide values: format version, next topic id
    topics: Any  # topic name -> msgpack TopicMeta
    batches: Any  # (topic_id, partition, base_offset) -> batch bytes
    timeindex: Any  # (topic_id, partition, running max timestamp) -> base offset
    partitions: Any  # (topic_id, partition) -> packed PartState
    groups: Any  # (group, topic_id, partition) -> msgpack [offset, metadata, commit_time_ms]
    producers: Any  # (topic_id, partition, producer_id) -> idempotent producer state (storage.producers)
    acls: Any  # one key per ACL -> b"" (storage.access)
    quotas: Any  # principal -> msgpack quota override (storage.access)

    @classmethod
    def open(cls, env: lmdb.Environment, create: bool) -> Dbs:
        """Open (or create) every named database. Read-only opens of a directory written before a
        database existed get None for it (read-only stores never look at producer state, and see
        no ACLs or quota overrides)."""
        dbs: list[Any] = []
        for name in cls._fields:
            try:
                dbs.append(env.open_db(name.encode(), create=create))
            except lmdb.NotFoundError:
                if create or name not in _ADDED_LATER:
                    raise
                dbs.append(None)
        return cls(*dbs)


class Catalog:
    """Topics by name and id, and every partition's state, as of the last commit."""

    def __init__(
        self,
        topics: dict[str, TopicMeta],
        parts: dict[tuple[int, int], PartState],
        next_topic_id: int,
        next_producer_id: int = 1,
    ) -> None:
        self.topics = topics
        self.by_id = {meta.topic_id: meta for meta in topics.values()}
        self.parts = parts
        self.next_topic_id = next_topic_id
        self.next_producer_id = next_producer_id  # the next id InitProducer hands out
        # How long a producer's state on a partition outlives its last write (set by the store).
        self.producer_id_expiration_ms = producers.DEFAULT_EXPIRATION_MS

    def topic(self, name: str) -> TopicMeta:
        meta = self.topics.get(name)
        if meta is None:
            raise rules.topic_not_found(name)
        return meta

    def part(self, name: str, partition: int) -> tuple[TopicMeta, PartState]:
        """The topic and one partition's state; TopicNotFound / InvalidPartition."""
        meta = self.topic(name)
        rules.check_partition(meta, partition)
        st = self.parts.get((meta.topic_id, partition))
        if st is None:  # deleted between the two lookups
            raise rules.topic_not_found(name)
        return meta, st

    def publish(
        self,
        topics: Mapping[str, TopicMeta | None],
        parts: Mapping[tuple[int, int], PartState],
        dropped: Mapping[int, int],
        next_topic_id: int,
        next_producer_id: int | None = None,
    ) -> None:
        """Make a committed transaction's changes visible: partitions before the topics that
        own them appear, topics before the partitions they owned disappear."""
        if next_producer_id is not None:
            self.next_producer_id = next_producer_id
        self.parts.update(parts)
        if topics or dropped:
            by_name = dict(self.topics)
            by_id = dict(self.by_id)
            for name, meta in topics.items():
                if meta is None:
                    by_name.pop(name, None)
                else:
                    by_name[name] = by_id[meta.topic_id] = meta
            for topic_id in dropped:
                by_id.pop(topic_id, None)
            self.topics, self.by_id = by_name, by_id
            for topic_id, count in dropped.items():
                for p in range(count):
                    self.parts.pop((topic_id, p), None)
        self.next_topic_id = next_topic_id


def load_catalog(txn: lmdb.Transaction[memoryview], dbs: Dbs) -> Catalog:
    """Read topics and partition states, rebuilding each partition's next offset from its last
    batch key (never below its stored log start, so a partition emptied by retention keeps it)."""
    raw_id = txn.get(NEXT_TOPIC_ID, db=dbs.meta)
    next_topic_id = keys.U32.unpack(raw_id)[0] if raw_id is not None else 1
    raw_pid = txn.get(NEXT_PRODUCER_ID, db=dbs.meta)
    next_producer_id = keys.U64.unpack(raw_pid)[0] if raw_pid is not None else 1
    topics: dict[str, TopicMeta] = {}
    for name, raw in txn.cursor(db=dbs.topics):
        meta = decode_topic(bytes(name).decode("utf-8"), raw)
        topics[meta.name] = meta
    parts: dict[tuple[int, int], PartState] = {}
    cur = txn.cursor(db=dbs.batches)
    for meta in topics.values():
        for p in range(meta.partitions):
            st = PartState()
            stored = txn.get(keys.partition_key(meta.topic_id, p), db=dbs.partitions)
            if stored is not None:
                st.log_start, st.bytes, st.index_max_ts = _STATE.unpack(stored)
            st.next_offset = st.log_start
            prefix = keys.partition_key(meta.topic_id, p)
            if cur.set_range(prefix) and cur.key()[: keys.PREFIX_SIZE] == prefix:
                st.first_ts = stored_span(cur.value()).first_timestamp_ms
                _seek_last(cur, prefix)
                base = keys.unpack_position(cur.key())[2]
                last = stored_span(cur.value())
                st.next_offset = max(base + last.record_count, st.log_start)
                st.last_ts = last.max_timestamp_ms
            parts[(meta.topic_id, p)] = st
    return Catalog(topics, parts, next_topic_id, next_producer_id)


def _seek_last(cur: lmdb.Cursor[memoryview], prefix: bytes) -> None:
    """Position ``cur`` on the last key of the partition ``prefix`` (which holds at least one)."""
    after = prefix + keys.U64.pack(keys.U64_MAX)
    if cur.set_range(after):
        if cur.key() != after:
            cur.prev()
    else:
        cur.last()
