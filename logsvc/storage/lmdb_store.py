"""The LMDB store: one environment per data directory, one writer thread, lock-free readers.

Layout (see :mod:`logsvc.storage.keys` for the key formats): named databases ``meta``, ``topics``
(name -> msgpack metadata), ``batches`` (each producer batch stored as sent, under its base
offset), ``timeindex``, ``partitions`` (log start, bytes, time-index high mark) and ``groups``
(committed offsets). Next offsets live in memory and are rebuilt at open from the last batch key
of each partition.

Writes go through the :class:`~logsvc.storage.writer.Writer` (group commit). Reads use read-only
transactions, many at once, each holding the :class:`~logsvc.storage.guard.ReadGuard` shared so a
map resize can wait for them. Nothing on the append or read path decodes records.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import lmdb
import msgpack

from logsvc.acl import Acl, AclFilter, QuotaOverride
from logsvc.storage import access, keys, producers, rules, timeindex
from logsvc.storage.base import (
    Appended,
    CommittedOffset,
    FetchedBatches,
    OffsetForTime,
    PartitionState,
    PendingAppend,
    Store,
    TopicMeta,
)
from logsvc.storage.environment import open_environment
from logsvc.storage.guard import ReadGuard
from logsvc.storage.lock import DirectoryLock
from logsvc.storage.ops import (
    AlterTopic,
    Append,
    CommitOffsets,
    CreateTopic,
    DeleteGroupOffsets,
    DeleteTopic,
    ExpireGroupOffsets,
    InitProducer,
    Op,
)
from logsvc.storage.retention import ApplyRetention, Trim
from logsvc.storage.state import Catalog, Dbs
from logsvc.storage.writer import Writer, WriterStats
from logsvc.topic_config import TopicConfig, check_partition_count, check_topic_name
from logsvc_wire.batch import stored_span
from logsvc_wire.errors import InvalidRequest, NotFound, StorageFailed

log = logging.getLogger(__name__)


class LmdbStore(Store):
    """A :class:`~logsvc.storage.base.Store` in one LMDB environment. Use :meth:`open`."""

    def __init__(
        self,
        path: str,
        env: lmdb.Environment,
        dbs: Dbs,
        catalog: Catalog,
        *,
        readonly: bool,
        max_partitions: int,
        clock: Callable[[], int],
        max_map_size_bytes: int,
        retention_check_interval_ms: int,
        stale_readers_cleared: int,
        lock: DirectoryLock | None = None,
        validate_records: bool = True,
    ) -> None:
        self.path = path
        self.validate_records = validate_records
        self.readonly = readonly
        self.stale_readers_cleared = stale_readers_cleared
        self._env = env
        self._dbs = dbs
        self._catalog = catalog
        self._max_partitions = max_partitions
        self._clock = clock
        self._guard = ReadGuard()
        self._data = threading.Condition()
        self._closed = False
        self._lock = lock
        self._failure_listeners: list[Callable[[StorageFailed], None]] = []
        self._data_listeners: list[Callable[[], None]] = []
        self._writer: Writer | None = None
        if not readonly:
            self._writer = Writer(
                env,
                dbs,
                catalog,
                self._guard,
                path=path,
                clock=clock,
                max_map_size_bytes=max_map_size_bytes,
                retention_check_interval_ms=retention_check_interval_ms,
                on_commit=self._notify,
                on_failure=self._failed,
            )

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        durability: str = "fsync",
        map_size_bytes: int = 1 << 30,
        max_map_size_bytes: int = 0,
        max_partitions: int = 10_000,
        retention_check_interval_ms: int = 300_000,
        clock: Callable[[], int] = rules.wall_clock_ms,
        readonly: bool = False,
        producer_id_expiration_ms: int = producers.DEFAULT_EXPIRATION_MS,
        validate_records: bool = True,
    ) -> LmdbStore:
        """Open (creating when writable) the store in directory ``path``.

        ``durability="fsync"`` (the default) fsyncs every commit before acknowledging it; ``"os"``
        leaves flushing to the OS (faster; a machine crash can lose acknowledged writes).
        ``map_size_bytes`` is the initial map (a sparse reservation, not disk space); it doubles on
        demand up to ``max_map_size_bytes`` (0 = no limit). ``max_partitions`` caps one topic's
        partition count. The writer applies retention every ``retention_check_interval_ms``
        (0 = never; :meth:`apply_retention` still works). ``clock`` returns wall time in ms
        (LogAppendTime, creation times, periodic retention). ``readonly=True`` opens without the
        lock file, for inspect tools running next to a broker: no writer, a snapshot of the
        offsets as of opening, and every write raises InvalidRequest. A writable open holds the
        directory's lock (``logsvc.lock``) until :meth:`close`: DataDirectoryLocked while another
        process (a broker, another writable open) holds it. ``validate_records=False`` skips the
        per-record check of appended batches (the broker setting of that name). An idempotent
        producer's state on a partition is forgotten ``producer_id_expiration_ms`` after its last write
        there.
        """
        rules.check_durability(durability)
        where = os.fspath(path)
        if max_map_size_bytes:
            map_size_bytes = min(map_size_bytes, max_map_size_bytes)
        opened = open_environment(where, sync=durability == "fsync", map_size_bytes=map_size_bytes, readonly=readonly)
        opened.catalog.producer_id_expiration_ms = producer_id_expiration_ms
        try:
            return cls(
                where,
                opened.env,
                opened.dbs,
                opened.catalog,
                readonly=readonly,
                max_partitions=max_partitions,
                clock=clock,
                max_map_size_bytes=max_map_size_bytes,
                retention_check_interval_ms=retention_check_interval_ms,
                stale_readers_cleared=opened.stale_readers_cleared,
                lock=opened.lock,
                validate_records=validate_records,
            )
        except BaseException:
            opened.env.close()
            if opened.lock is not None:
                opened.lock.release()
            raise

    @property
    def stats(self) -> WriterStats:
        """Writer counters (commits, ops, map_grows); all zero for a read-only store."""
        return self._writer.stats if self._writer is not None else WriterStats()

    # -- topics -----------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, config: TopicConfig) -> TopicMeta:
        check_topic_name(name)
        check_partition_count(partitions, self._max_partitions)
        config.validate()
        meta: TopicMeta = self._submit(CreateTopic(name, partitions, config))
        return meta

    def alter_topic(self, name: str, *, partitions: int | None = None, config: TopicConfig | None = None) -> TopicMeta:
        meta: TopicMeta = self._submit(AlterTopic(name, partitions, config, self._max_partitions))
        return meta

    def delete_topic(self, name: str) -> None:
        self._submit(DeleteTopic(name))

    def list_topics(self) -> list[TopicMeta]:
        self._check_open()
        return sorted(self._catalog.topics.values(), key=lambda meta: meta.name)

    def topic(self, name: str) -> TopicMeta:
        self._check_open()
        return self._catalog.topic(name)

    def partition_states(self, topic: str) -> list[PartitionState]:
        self._check_open()
        meta = self._catalog.topic(topic)
        return [self._catalog.part(topic, p)[1].public(p) for p in range(meta.partitions)]

    # -- records ----------------------------------------------------------------------------------

    def append(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes | memoryview]],
        *,
        producer_id: int = 0,
        producer_epoch: int = 0,
        sequences: Sequence[int] | None = None,
    ) -> list[Appended]:
        op = self._append_op(topic, batches, producer_id, producer_epoch, sequences)
        if op is None:
            return []
        appended: list[Appended] = self._submit(op)
        return appended

    def start_append(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes | memoryview]],
        on_done: Callable[[], None],
        *,
        producer_id: int = 0,
        producer_epoch: int = 0,
        sequences: Sequence[int] | None = None,
    ) -> PendingAppend:
        """Checks every batch here (raising InvalidBatch and the like), queues the write to the
        writer thread, which calls ``on_done`` after the commit (the fsync) or the failure."""
        op = self._append_op(topic, batches, producer_id, producer_epoch, sequences)
        if op is None:
            on_done()
            return PendingAppend(list)
        op.on_complete = on_done
        self._check_writable()
        assert self._writer is not None
        self._writer.enqueue(op)
        return PendingAppend(op.wait)

    def _append_op(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes | memoryview]],
        producer_id: int,
        producer_epoch: int,
        sequences: Sequence[int] | None,
    ) -> Append | None:
        """The checked Append op of :meth:`append` (None when there are no batches)."""
        self._check_writable()
        producer, seqs = producers.request_fields(producer_id, producer_epoch, sequences, len(batches))
        meta = self._catalog.topic(topic)
        # Validation (CRC and all) runs here, on the caller's thread, in parallel with others.
        items = [(p, data, rules.check_batch(meta, p, data, self.validate_records)) for p, data in batches]
        if not items:
            return None
        return Append(topic, items, producer, seqs)

    def init_producer(self, producer_id: int = 0, producer_epoch: int = 0) -> tuple[int, int]:
        self._check_writable()
        if producer_id:
            bumped = producers.next_identity(producer_id, producer_epoch, self._catalog.next_producer_id)
            if bumped is not None:
                return bumped
        identity: tuple[int, int] = self._submit(InitProducer())
        return identity

    def read(self, topic: str, partition: int, offset: int, max_bytes: int, max_records: int = 0) -> FetchedBatches:
        self._check_open()
        meta, st = self._catalog.part(topic, partition)
        log_start, next_offset = st.log_start, st.next_offset
        if not log_start <= offset <= next_offset:
            raise rules.out_of_range(topic, partition, offset, log_start, next_offset)
        out: list[tuple[int, bytes]] = []
        if offset == next_offset:
            return FetchedBatches(log_start, next_offset, out)
        prefix = keys.partition_key(meta.topic_id, partition)
        with self._snapshot() as txn:
            cur = txn.cursor(db=self._dbs.batches)
            if not _seek_holding(cur, prefix, offset):
                raise self._vanished(topic, partition, offset)
            size = records = 0
            while (key := cur.key())[: keys.PREFIX_SIZE] == prefix:
                base = keys.unpack_position(key)[2]
                if base >= next_offset:  # committed after our look at the state
                    break
                value = cur.value()
                count = stored_span(value).record_count - max(0, offset - base)
                if out and (size + len(value) > max_bytes or 0 < max_records <= records):
                    break
                out.append((base, bytes(value)))
                size += len(value)
                records += count
                if not cur.next():
                    break
        return FetchedBatches(log_start, next_offset, out, records)

    def wait_for_data(self, positions: Sequence[tuple[str, int, int]], timeout_s: float) -> bool:
        """As the contract says; also True at once for a position that a read would refuse
        (unknown topic or partition, offset out of range), so the caller's read reports it."""
        return rules.wait_ready(self._data, self._ready, positions, timeout_s, self._check_open)

    def has_data(self, topic: str, partition: int, offset: int) -> bool:
        return self._closed or self._ready(topic, partition, offset)

    def add_data_listener(self, listener: Callable[[], None]) -> None:
        with self._data:
            self._data_listeners.append(listener)

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> OffsetForTime:
        self._check_open()
        meta, st = self._catalog.part(topic, partition)
        log_start, next_offset = st.log_start, st.next_offset
        none = OffsetForTime(next_offset, -1)
        if log_start >= next_offset:
            return none
        prefix = keys.partition_key(meta.topic_id, partition)
        with self._snapshot() as txn:
            base = timeindex.first_batch_at(txn, self._dbs, meta.topic_id, partition, timestamp_ms)
            if base is None:
                return none
            cur = txn.cursor(db=self._dbs.batches)
            if not _seek_holding(cur, prefix, max(base, log_start)):
                return none
            while (key := cur.key())[: keys.PREFIX_SIZE] == prefix:
                base = keys.unpack_position(key)[2]
                if base >= next_offset:
                    break
                found = rules.first_record_at(cur.value(), base, log_start, timestamp_ms)
                if found is not None:
                    return OffsetForTime(*found)
                if not cur.next():
                    break
        return none

    def trim(self, topic: str, partition: int, before_offset: int) -> int:
        log_start: int = self._submit(Trim(topic, partition, before_offset))
        return log_start

    def apply_retention(self, now_ms: int) -> int:
        deleted: int = self._submit(ApplyRetention(now_ms))
        return deleted

    # -- consumer-group offsets -------------------------------------------------------------------

    def commit_offsets(self, group: str, offsets: Sequence[tuple[str, int, int, str]], now_ms: int) -> None:
        self._check_writable()
        keys.group_prefix(group)
        self._submit(CommitOffsets(group, list(offsets), now_ms))

    def committed_offsets(self, group: str) -> list[CommittedOffset]:
        self._check_open()
        try:
            prefix = keys.group_prefix(group)
        except InvalidRequest:
            return []
        out = []
        by_id = self._catalog.by_id
        with self._snapshot() as txn:
            cur = txn.cursor(db=self._dbs.groups)
            if cur.set_range(prefix):
                while (key := cur.key())[: len(prefix)] == prefix:
                    _, topic_id, partition = keys.split_group_key(key)
                    meta = by_id.get(topic_id)
                    if meta is not None:
                        offset, metadata, commit_ms = msgpack.unpackb(cur.value(), raw=False)
                        out.append(CommittedOffset(meta.name, partition, offset, metadata, commit_ms))
                    if not cur.next():
                        break
        return sorted(out, key=lambda c: (c.topic, c.partition))

    def list_groups(self) -> list[str]:
        self._check_open()
        groups = []
        with self._snapshot() as txn:
            cur = txn.cursor(db=self._dbs.groups)
            found = cur.first()
            while found:
                key = cur.key()
                groups.append(keys.split_group_key(key)[0])
                found = cur.set_range(keys.group_after(keys.group_prefix_of(key)))
        return sorted(groups)

    def delete_group_offsets(self, group: str) -> int:
        self._check_writable()
        try:
            keys.group_prefix(group)
        except InvalidRequest:
            return 0
        deleted: int = self._submit(DeleteGroupOffsets(group))
        return deleted

    def expire_group_offsets(self, before_ms: int, keep: Collection[str] = ()) -> list[str]:
        self._check_writable()
        expired: list[str] = self._submit(ExpireGroupOffsets(before_ms, frozenset(keep)))
        return expired

    # -- access control (layout and ops: storage.access) ---------------------------------------------

    def acls(self) -> list[Acl]:
        self._check_open()
        with self._snapshot() as txn:
            return access.read_acls(txn, self._dbs.acls)

    def add_acls(self, acls: Sequence[Acl]) -> int:
        self._check_writable()
        created: int = self._submit(access.AddAcls(access.checked_acls(acls)))
        return created

    def remove_acls(self, filters: Sequence[AclFilter]) -> list[Acl]:
        removed: list[Acl] = self._submit(access.RemoveAcls(list(filters))) if filters else []
        return removed

    def quota_overrides(self) -> list[QuotaOverride]:
        self._check_open()
        with self._snapshot() as txn:
            return access.read_quotas(txn, self._dbs.quotas)

    def set_quota_overrides(self, items: Sequence[QuotaOverride]) -> None:
        self._check_writable()
        self._submit(access.SetQuotas(access.checked_quotas(items)))

    def remove_quota_overrides(self, principals: Sequence[str]) -> list[str]:
        removed: list[str] = self._submit(access.RemoveQuotas(list(principals)))
        return removed

    # -- lifecycle --------------------------------------------------------------------------------

    def storage_bytes(self) -> int:
        self._check_open()
        return os.path.getsize(os.path.join(self.path, "data.mdb"))

    def close(self) -> None:
        with self._data:
            if self._closed:
                return
            self._closed = True
            self._wake()
        if self._writer is not None:
            self._writer.close()
        with self._guard.exclusive():
            self._guard.close()
            try:
                if self._writer is not None and self._writer.failure is None:
                    self._env.sync(True)  # a no-op after fsync'd commits; flushes durability="os"
            except lmdb.Error as e:
                log.error("storage sync at close failed: %s", e)
            finally:
                self._env.close()
                if self._lock is not None:
                    self._lock.release()

    @property
    def failure(self) -> StorageFailed | None:
        """Why the store can no longer write (None while it can): see :mod:`~logsvc.storage.writer`."""
        return self._writer.failure if self._writer is not None else None

    def on_failure(self, listener: Callable[[StorageFailed], None]) -> None:
        """Call ``listener`` (on the writer thread) once the store can no longer write; at once
        if it already cannot."""
        with self._data:
            self._failure_listeners.append(listener)
            failure = self.failure
        if failure is not None:
            listener(failure)

    # -- internals --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise rules.closed()

    def _check_writable(self) -> None:
        self._check_open()
        if self._writer is None:
            raise rules.read_only(self.path)

    def _submit(self, op: Op) -> Any:
        self._check_writable()
        assert self._writer is not None
        return self._writer.submit(op)

    def _failed(self, failure: StorageFailed) -> None:
        with self._data:
            listeners = list(self._failure_listeners)
        for listener in listeners:
            listener(failure)

    def _notify(self) -> None:
        with self._data:
            self._wake()

    def _wake(self) -> None:
        """Under ``self._data``: wake every ``wait_for_data`` and tell the data listeners."""
        self._data.notify_all()
        for listener in self._data_listeners:
            listener()

    def _ready(self, topic: str, partition: int, offset: int) -> bool:
        meta = self._catalog.topics.get(topic)
        if meta is None or not 0 <= partition < meta.partitions:
            return True
        st = self._catalog.parts.get((meta.topic_id, partition))
        return st is None or offset != st.next_offset  # data there, or a read would raise

    def _vanished(self, topic: str, partition: int, offset: int) -> Exception:
        """The error for a batch deleted between the state check and the read transaction."""
        try:
            _, st = self._catalog.part(topic, partition)
        except NotFound as e:
            return e
        return rules.out_of_range(topic, partition, offset, st.log_start, st.next_offset)

    @contextmanager
    def _snapshot(self) -> Iterator[lmdb.Transaction[memoryview]]:
        """A read-only transaction, held under the read guard."""
        while True:
            self._guard.acquire_shared()
            try:
                txn = self._env.begin(buffers=True)
            except lmdb.MapResizedError:  # another process grew the map: adopt its size
                self._guard.release_shared()
                with self._guard.exclusive():
                    self._env.set_mapsize(0)
                continue
            except lmdb.PanicError as e:  # a failed write left the environment unusable
                self._guard.release_shared()
                failure = self.failure
                raise StorageFailed(
                    failure.message if failure else f"storage at {self.path} can no longer be read: {e}",
                    path=self.path,
                ) from e
            except BaseException:
                self._guard.release_shared()
                raise
            break
        try:
            yield txn
        finally:
            txn.abort()
            self._guard.release_shared()


def _seek_holding(cur: lmdb.Cursor[memoryview], prefix: bytes, offset: int) -> bool:
    """Position ``cur`` on the batch of partition ``prefix`` holding ``offset``; False if none does."""
    if cur.set_range(prefix + keys.U64.pack(offset + 1)):
        if not cur.prev():
            return False
    elif not cur.last():
        return False
    key = cur.key()
    if key[: keys.PREFIX_SIZE] != prefix:
        return False
    base = keys.unpack_position(key)[2]
    return bool(base + stored_span(cur.value()).record_count > offset)
