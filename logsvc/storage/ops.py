"""Write operations: what the writer thread runs inside one group-commit transaction.

Each :class:`Op` is split in two: :meth:`Op.check` raises the caller's error (TopicNotFound,
InvalidPartition, ...) *before anything is written*, so an op that fails fails alone and the
others in the same transaction still commit; :meth:`Op.write` then writes and updates the
transaction's working copy of the state (:class:`TxnContext`), which is published only after the
commit succeeds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import lmdb
import msgpack

from logsvc.storage import keys, producers, rules
from logsvc.storage.base import Appended, TopicMeta
from logsvc.storage.producers import BatchEntry, Produced, ProducerState
from logsvc.storage.state import NEXT_PRODUCER_ID, NEXT_TOPIC_ID, Catalog, Dbs, PartState, encode_topic, pack_state
from logsvc.topic_config import TopicConfig
from logsvc_wire.batch import BatchHeader, with_log_append_time

log = logging.getLogger(__name__)

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
        self.next_producer_id = catalog.next_producer_id
        self.producers: dict[bytes, ProducerState] = {}  # changed producer states (storage.producers)
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

    def producer_state(self, key: bytes) -> ProducerState | None:
        """A producer's state on a partition as of this transaction (expired or not); None if none."""
        st = self.producers.get(key)
        if st is None:
            raw = self.txn.get(key, db=self.dbs.producers)
            if raw is not None:
                st = producers.decode(raw)
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
        db = self.dbs.producers
        for key, state in self.producers.items():
            put(key, producers.encode(state), db=db)

    def publish(self) -> None:
        self.catalog.publish(self.topics, self.parts, self.dropped, self.next_topic_id, self.next_producer_id)


class Op:
    """One write request; the caller blocks in :meth:`wait` until the writer completes it."""

    appends = False  # refused with StorageFull when the disk or the map is full
    nbytes = 0  # batch bytes, to bound a group
    nbatches = 0  # record batches, for the writer's stats

    def __init__(self) -> None:
        self._done = threading.Lock()
        self._done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None
        self.completed = False
        self.on_complete: Callable[[], None] | None = None  # called on the writer thread once done

    def check(self, ctx: TxnContext) -> Any:
        """Raise the caller's error without writing anything; return what :meth:`write` needs."""
        return None

    def write(self, ctx: TxnContext, plan: Any) -> Any:
        raise NotImplementedError

    def complete(self) -> None:
        if not self.completed:
            self.completed = True
            self._done.release()
            if self.on_complete is not None:
                try:
                    self.on_complete()
                except Exception:  # a listener's bug must not stop the writer answering the others
                    log.exception("an append's completion callback failed")

    def wait(self) -> Any:
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return self.result


# Per batch of an idempotent append: None = append it, an entry = a duplicate of that stored batch.
_Decisions = list[BatchEntry | None] | None


class Append(Op):
    """Append validated batches (``(partition, bytes, header)``) to one topic.

    With a ``producer`` (id, epoch) and one base sequence per batch, the sequence rules of
    :mod:`logsvc.storage.producers` run in :meth:`check`, against this transaction's working
    state, so appends of one producer in one group commit see each other (a duplicate inside
    the same commit is found too); the new producer state is written with the batches.
    """

    appends = True

    def __init__(
        self,
        topic: str,
        items: list[tuple[int, bytes | memoryview, BatchHeader]],
        producer: tuple[int, int] | None = None,
        sequences: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.topic = topic
        self.items = items
        self.producer = producer
        self.sequences = sequences
        self.nbytes = sum(len(data) for _, data, _ in items)
        self.nbatches = len(items)
        self._states: dict[bytes, ProducerState] = {}

    def check(self, ctx: TxnContext) -> tuple[TopicMeta, _Decisions]:
        meta = ctx.topic(self.topic)  # the topic may have changed since the caller looked
        for partition, data, _ in self.items:
            rules.check_partition(meta, partition)
            rules.check_size(meta, partition, len(data))
        if self.producer is None:
            return meta, None
        return meta, self._decide(ctx, meta)

    def _decide(self, ctx: TxnContext, meta: TopicMeta) -> list[BatchEntry | None]:
        """Each batch's fate, in request order; the producer states to write go to ``_states``."""
        assert self.producer is not None and self.sequences is not None
        producer_id, epoch = self.producer
        producers.check_issued(producer_id, ctx.next_producer_id)
        now = ctx.now_ms()
        expiration_ms = ctx.catalog.producer_id_expiration_ms
        append_time = now if meta.config.log_append_time else -1
        states: dict[bytes, ProducerState] = {}
        next_offsets: dict[int, int] = {}
        out: list[BatchEntry | None] = []
        for (partition, _, header), seq in zip(self.items, self.sequences, strict=True):
            key = producers.state_key(meta.topic_id, partition, producer_id)
            state = states.get(key) or producers.live(ctx.producer_state(key), now, expiration_ms)
            produced = Produced(producer_id, epoch, seq)
            count = header.record_count
            duplicate = producers.decide(state, produced, count, f"{meta.name}/{partition}")
            out.append(duplicate)
            if duplicate is None:
                base = next_offsets.get(partition)
                if base is None:
                    base = ctx.peek(meta.topic_id, partition).next_offset
                next_offsets[partition] = base + count
                states[key] = producers.appended(state, produced, count, (base, append_time), now)
        self._states = states
        return out

    def write(self, ctx: TxnContext, plan: tuple[TopicMeta, _Decisions]) -> list[Appended]:
        meta, decisions = plan
        topic_id = meta.topic_id
        log_append_time = meta.config.log_append_time
        now = ctx.now_ms() if log_append_time else -1
        put, batches, index = ctx.txn.put, ctx.dbs.batches, ctx.dbs.timeindex
        out = []
        for i, (partition, data, header) in enumerate(self.items):
            if decisions is not None and (duplicate := decisions[i]) is not None:
                out.append(Appended(partition, duplicate.base_offset, duplicate.log_append_time_ms, True))
                continue
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
            out.append(Appended(partition, base, now, False, header.record_count))
        ctx.producers.update(self._states)
        return out


class InitProducer(Op):
    """Hand out the next producer id (epoch 0), persisted before it is returned."""

    def write(self, ctx: TxnContext, plan: None) -> tuple[int, int]:
        producer_id = ctx.next_producer_id
        ctx.next_producer_id += 1
        ctx.txn.put(NEXT_PRODUCER_ID, keys.U64.pack(ctx.next_producer_id), db=ctx.dbs.meta)
        return producer_id, 0


def expire_producers(ctx: TxnContext, now_ms: int) -> int:
    """Delete the producer states idle for longer than the expiration; how many were deleted."""
    expiration_ms = ctx.catalog.producer_id_expiration_ms
    cur = ctx.cursor("producers")
    deleted = 0
    if not cur.first():
        return 0
    while len(key := cur.key()):
        if bytes(key) not in ctx.producers and now_ms - producers.last_write_ms(cur.value()) > expiration_ms:
            cur.delete()
            deleted += 1
        elif not cur.next():
            break
    return deleted


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
        for name in ("batches", "timeindex", "partitions", "producers"):
            delete_prefix(ctx.cursor(name), prefix)
        for state_key in [k for k in ctx.producers if k.startswith(prefix)]:
            del ctx.producers[state_key]
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


class ExpireGroupOffsets(Op):
    """Delete the offsets of every group whose newest commit is older than ``before_ms`` and
    which is not in ``keep``; the result is the deleted groups, sorted."""

    def __init__(self, before_ms: int, keep: frozenset[str]) -> None:
        super().__init__()
        self.before_ms, self.keep = before_ms, keep

    def write(self, ctx: TxnContext, plan: None) -> list[str]:
        cur = ctx.cursor("groups")
        expired: list[bytes] = []
        found = cur.first()
        while found:
            prefix = keys.group_prefix_of(cur.key())
            newest = -1
            while found and cur.key()[: len(prefix)] == prefix:
                newest = max(newest, msgpack.unpackb(cur.value(), raw=False)[2])
                found = cur.next()
            if newest < self.before_ms and prefix[2:].decode("utf-8") not in self.keep:
                expired.append(prefix)
        for prefix in expired:
            delete_prefix(cur, prefix)
        return sorted(prefix[2:].decode("utf-8") for prefix in expired)


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
