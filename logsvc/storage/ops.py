"""Write operations: what the writer thread runs inside one group-commit transaction.

Each :class:`Op` is split in two: :meth:`Op.check` raises the caller's error (TopicNotFound,
InvalidPartition, ...) *before anything is written*, so an op that fails fails alone and the
others in the same transaction still commit; :meth:`Op.write` then writes and updates the
transaction's working copy of the state (:class:`TxnContext`), which is published only after the
commit succeeds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import lmdb
import msgpack

from logsvc.storage import keys, rules
from logsvc.storage.base import Appended, TopicMeta
from logsvc.storage.state import NEXT_TOPIC_ID, Catalog, Dbs, PartState, encode_topic, pack_state
from logsvc.topic_config import TopicConfig
from logsvc_client.batch import BatchHeader, with_log_append_time

if TYPE_CHECKING:
    Cursor = lmdb.Cursor[memoryview]


class TxnContext:
    """One write transaction and the working copy of the state it changes."""

    def __init__(self, txn: lmdb.Transaction[memoryview], dbs: Dbs, catalog: Catalog, clock: Callable[[], int]) -> None:
        self.txn = txn
        self.dbs = dbs
        self.catalog = catalog
        self.topics: dict[str, TopicMeta | None] = {}  # created (meta) or deleted (None) topics
        self.parts: dict[tuple[int, int], PartState] = {}  # changed partitions (working copies)
        self.dropped: dict[int, int] = {}  # deleted topic id -> its partition count
        self.next_topic_id = catalog.next_topic_id
        self._clock = clock
        self._now_ms = -1
        self._cursors: dict[str, Cursor] = {}

    def now_ms(self) -> int:
        """The time of this transaction (one clock reading shared by its ops)."""
        if self._now_ms < 0:
            self._now_ms = self._clock()
        return self._now_ms

    def find_topic(self, name: str) -> TopicMeta | None:
        if name in self.topics:
            return self.topics[name]
        return self.catalog.topics.get(name)

    def topic(self, name: str) -> TopicMeta:
        meta = self.find_topic(name)
        if meta is None:
            raise rules.topic_not_found(name)
        return meta

    def all_topics(self) -> list[TopicMeta]:
        names = set(self.catalog.topics) | set(self.topics)
        return [meta for meta in map(self.find_topic, sorted(names)) if meta is not None]

    def peek(self, topic_id: int, partition: int) -> PartState:
        """A partition's current state, read-only."""
        key = (topic_id, partition)
        st = self.parts.get(key)
        return st if st is not None else self.catalog.parts[key]

    def part(self, topic_id: int, partition: int) -> PartState:
        """A partition's working copy, to change; persisted at :meth:`flush`."""
        key = (topic_id, partition)
        st = self.parts.get(key)
        if st is None:
            st = self.parts[key] = self.catalog.parts[key].copy()
        return st

    def cursor(self, name: str) -> Cursor:
        """This transaction's cursor on one database (callers position it before use)."""
        cur = self._cursors.get(name)
        if cur is None:
            cur = self._cursors[name] = self.txn.cursor(db=getattr(self.dbs, name))
        return cur

    def flush(self) -> None:
        """Persist the changed partition states (once per partition per transaction)."""
        put, db = self.txn.put, self.dbs.partitions
        for (topic_id, partition), st in self.parts.items():
            put(keys.partition_key(topic_id, partition), pack_state(st), db=db)

    def publish(self) -> None:
        self.catalog.publish(self.topics, self.parts, self.dropped, self.next_topic_id)


class Op:
    """One write request; the caller blocks in :meth:`wait` until the writer completes it."""

    appends = False  # refused with StorageFull when the disk or the map is full
    nbytes = 0  # batch bytes, to bound a group

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.completed = False

    def check(self, ctx: TxnContext) -> Any:
        """Raise the caller's error without writing anything; return what :meth:`write` needs."""
        return None

    def write(self, ctx: TxnContext, plan: Any) -> Any:
        raise NotImplementedError

    def complete(self) -> None:
        if not self.completed:
            self.completed = True
            self._done.release()

    def wait(self) -> Any:
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return self.result


class Append(Op):
    """Append validated batches (``(partition, bytes, header)``) to one topic."""

    appends = True

    def __init__(self, topic: str, items: list[tuple[int, bytes, BatchHeader]]) -> None:
        super().__init__()
        self.topic = topic
        self.items = items
        self.nbytes = sum(len(data) for _, data, _ in items)

    def check(self, ctx: TxnContext) -> TopicMeta:
        meta = ctx.topic(self.topic)  # the topic may have changed since the caller looked
        for partition, data, _ in self.items:
            rules.check_partition(meta, partition)
            rules.check_size(meta, partition, len(data))
        return meta

    def write(self, ctx: TxnContext, meta: TopicMeta) -> list[Appended]:
        topic_id = meta.topic_id
        log_append_time = meta.config.log_append_time
        now = ctx.now_ms() if log_append_time else -1
        put, batches, index = ctx.txn.put, ctx.dbs.batches, ctx.dbs.timeindex
        out = []
        for partition, data, header in self.items:
            st = ctx.part(topic_id, partition)
            first_ts, max_ts = header.first_timestamp_ms, header.max_timestamp_ms
            if log_append_time:
                data = with_log_append_time(data, now)
                first_ts = max_ts = now
            base = st.next_offset
            put(keys.position_key(topic_id, partition, base), data, db=batches)
            if max_ts > st.index_max_ts:
                put(keys.position_key(topic_id, partition, max_ts), keys.U64.pack(base), db=index)
                st.index_max_ts = max_ts
            if st.first_ts < 0:
                st.first_ts = first_ts
            st.last_ts = max_ts
            st.next_offset = base + header.record_count
            st.bytes += len(data)
            out.append(Appended(partition, base, now))
        return out


class CreateTopic(Op):
    def __init__(self, name: str, partitions: int, config: TopicConfig) -> None:
        super().__init__()
        self.name, self.partitions, self.config = name, partitions, config

    def check(self, ctx: TxnContext) -> None:
        if ctx.find_topic(self.name) is not None:
            raise rules.topic_exists(self.name)

    def write(self, ctx: TxnContext, plan: None) -> TopicMeta:
        topic_id = ctx.next_topic_id
        ctx.next_topic_id += 1
        meta = TopicMeta(self.name, topic_id, self.partitions, self.config, ctx.now_ms())
        ctx.txn.put(self.name.encode("utf-8"), encode_topic(meta), db=ctx.dbs.topics)
        ctx.txn.put(NEXT_TOPIC_ID, keys.U32.pack(ctx.next_topic_id), db=ctx.dbs.meta)
        ctx.topics[self.name] = meta
        for partition in range(self.partitions):
            ctx.parts[(topic_id, partition)] = PartState()
        return meta


class AlterTopic(Op):
    def __init__(self, name: str, partitions: int | None, config: TopicConfig | None, max_partitions: int) -> None:
        super().__init__()
        self.name, self.partitions, self.config, self.max_partitions = name, partitions, config, max_partitions

    def check(self, ctx: TxnContext) -> tuple[TopicMeta, TopicMeta]:
        meta = ctx.topic(self.name)
        return meta, rules.altered(meta, self.partitions, self.config, self.max_partitions)

    def write(self, ctx: TxnContext, plan: tuple[TopicMeta, TopicMeta]) -> TopicMeta:
        meta, altered = plan
        ctx.txn.put(self.name.encode("utf-8"), encode_topic(altered), db=ctx.dbs.topics)
        ctx.topics[self.name] = altered
        for partition in range(meta.partitions, altered.partitions):
            ctx.parts[(meta.topic_id, partition)] = PartState()
        return altered


class DeleteTopic(Op):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def check(self, ctx: TxnContext) -> TopicMeta:
        return ctx.topic(self.name)

    def write(self, ctx: TxnContext, meta: TopicMeta) -> None:
        prefix = keys.topic_prefix(meta.topic_id)
        for name in ("batches", "timeindex", "partitions"):
            delete_prefix(ctx.cursor(name), prefix)
        cur = ctx.cursor("groups")
        if cur.first():
            while len(key := cur.key()):
                if key[-keys.PREFIX_SIZE : -keys.PREFIX_SIZE + 4] == prefix:
                    cur.delete()
                elif not cur.next():
                    break
        ctx.txn.delete(self.name.encode("utf-8"), db=ctx.dbs.topics)
        ctx.topics[self.name] = None
        ctx.dropped[meta.topic_id] = meta.partitions
        for partition in range(meta.partitions):
            ctx.parts.pop((meta.topic_id, partition), None)


class CommitOffsets(Op):
    def __init__(self, group: str, offsets: Sequence[tuple[str, int, int, str]], now_ms: int) -> None:
        super().__init__()
        self.group, self.offsets, self.now_ms = group, offsets, now_ms

    def check(self, ctx: TxnContext) -> list[tuple[bytes, bytes]]:
        prefix = keys.group_prefix(self.group)
        rows = []
        for topic, partition, offset, metadata in self.offsets:
            meta = ctx.topic(topic)
            rules.check_partition(meta, partition)
            rules.check_commit_offset(topic, partition, offset)
            value = msgpack.packb([offset, metadata, self.now_ms], use_bin_type=True)
            rows.append((keys.group_key(prefix, meta.topic_id, partition), bytes(value)))
        return rows

    def write(self, ctx: TxnContext, rows: list[tuple[bytes, bytes]]) -> None:
        for key, value in rows:
            ctx.txn.put(key, value, db=ctx.dbs.groups)


class DeleteGroupOffsets(Op):
    def __init__(self, group: str) -> None:
        super().__init__()
        self.group = group

    def check(self, ctx: TxnContext) -> bytes:
        return keys.group_prefix(self.group)

    def write(self, ctx: TxnContext, prefix: bytes) -> int:
        return delete_prefix(ctx.cursor("groups"), prefix)  # the length prefix makes it exact


def delete_prefix(cur: Cursor, prefix: bytes) -> int:
    """Delete every key starting with ``prefix``; how many were deleted."""
    n = 0
    if not cur.set_range(prefix):
        return 0
    size = len(prefix)
    while cur.key()[:size] == prefix:
        cur.delete()
        n += 1
    return n
