"""The storage contract: what the broker needs from a log store, documented once.

:class:`Store` is implemented by :class:`logsvc.storage.lmdb_store.LmdbStore` (the real one) and
:class:`logsvc.storage.memory.MemoryStore` (an in-memory fake honouring the same contract); one
contract test suite (tests/storage/test_store_*.py, over the ``store`` fixture) runs against both.

Rules every implementation follows:

* Offsets are dense per partition, start at 0 and are never reused (not even after a topic's
  partitions are trimmed empty or a store is reopened).
* A batch is stored as the bytes the producer sent (see proto/logsvc/v1/logsvc.proto), under its
  base offset; the store reads only its header. ``append`` returns once the data is durable
  (fsync'd, unless the store was opened with ``durability="os"``).
* All batches of one ``append`` call are written atomically, and concurrent ``append`` and
  ``commit_offsets`` calls are group-committed (one transaction, one fsync for many callers).
* Idempotent appends (a producer id from :meth:`Store.init_producer`, an epoch and one base
  sequence per batch) follow the rules of :mod:`logsvc.storage.producers` (specified in the
  proto, "IDEMPOTENT PRODUCE"): a retried batch is answered with its original offsets and written
  once, within one group commit, across commits and across a reopen; the producer state is
  written atomically with the batches, forgotten after ``producer_id_expiration_ms`` without a
  write, and deleted with its topic.
* Errors are the project's own (:mod:`logsvc_wire.errors`), with messages naming the value
  that was wrong; nothing is written when a call fails.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from logsvc.acl import Acl, AclFilter, QuotaOverride
from logsvc.topic_config import TopicConfig
from logsvc_wire.errors import StorageFailed


class TopicMeta(NamedTuple):
    name: str
    topic_id: int
    partitions: int
    config: TopicConfig
    created_ms: int


class PartitionState(NamedTuple):
    partition: int
    log_start_offset: int
    next_offset: int
    bytes: int
    first_timestamp_ms: int  # -1 when the partition holds no batch
    last_timestamp_ms: int  # max timestamp of the last batch; -1 when empty

    @property
    def record_count(self) -> int:
        return self.next_offset - self.log_start_offset


class Appended(NamedTuple):
    partition: int
    base_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    duplicate: bool = False  # an idempotent producer's retry of a batch already stored there
    record_count: int = 0  # records written (0 for a duplicate): callers need not parse the header again


class FetchedBatches(NamedTuple):
    log_start_offset: int
    next_offset: int
    batches: list[tuple[int, bytes]]  # (base_offset, batch bytes), in offset order
    #: records in ``batches`` from the offset asked on (as the stored headers count them, even a
    #: corrupt batch's): callers need not parse the headers again
    record_count: int = 0


class OffsetForTime(NamedTuple):
    offset: int  # first offset whose timestamp >= the time asked, else next_offset
    timestamp_ms: int  # that record's timestamp, -1 when there is none


class CommittedOffset(NamedTuple):
    topic: str
    partition: int
    offset: int
    metadata: str
    commit_time_ms: int


class PendingAppend:
    """An append :meth:`Store.start_append` has queued: :meth:`result` is its answer once the
    ``on_done`` given there has been called (before that it blocks until the append is done)."""

    def __init__(self, result: Callable[[], list[Appended]]) -> None:
        self._result = result

    def result(self) -> list[Appended]:
        """What :meth:`Store.append` would have returned, or raises what it would have raised."""
        return self._result()


def _raise(error: Exception) -> list[Appended]:
    raise error


class Store(abc.ABC):
    """A durable, partitioned log of record batches, plus committed consumer-group offsets."""

    # -- topics ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_topic(self, name: str, partitions: int, config: TopicConfig) -> TopicMeta:
        """Create a topic. TopicAlreadyExists if it exists. Name/count already validated by caller
        is not assumed: InvalidTopicName / InvalidPartition when wrong."""

    @abc.abstractmethod
    def alter_topic(self, name: str, *, partitions: int | None = None, config: TopicConfig | None = None) -> TopicMeta:
        """Grow a topic to ``partitions`` (None: unchanged; the new partitions start empty at offset 0)
        and/or replace its ``config`` (retention applies from the next check). TopicNotFound;
        InvalidPartition for fewer partitions than it has or more than the store allows; InvalidConfig
        for a changed partitioner (keys would move to other partitions). Nothing changes on error."""

    @abc.abstractmethod
    def delete_topic(self, name: str) -> None:
        """Delete a topic, its batches and every group's committed offsets on it. TopicNotFound."""

    @abc.abstractmethod
    def list_topics(self) -> list[TopicMeta]:
        """All topics, sorted by name."""

    @abc.abstractmethod
    def topic(self, name: str) -> TopicMeta:
        """One topic's metadata. TopicNotFound when missing."""

    @abc.abstractmethod
    def partition_states(self, topic: str) -> list[PartitionState]:
        """Per-partition offsets, sizes and timestamps, in partition order. TopicNotFound."""

    # -- records --------------------------------------------------------------------------------

    @abc.abstractmethod
    def append(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes | memoryview]],
        *,
        producer_id: int = 0,
        producer_epoch: int = 0,
        sequences: Sequence[int] | None = None,
    ) -> list[Appended]:
        """Append ``(partition, batch)`` pairs atomically and durably; return where each went.

        TopicNotFound, InvalidPartition (partition out of range), InvalidBatch (anything off the
        specification: header, CRC, count, every record's types, header timestamps, inflation
        past the topic's max_uncompressed_batch_bytes — see ``batch.validate``), BatchTooLarge
        (over the topic's max_batch_bytes), StorageFull (disk full or the map cannot grow; reads
        and offset commits keep working), StorageFailed (the storage can no longer write).
        LogAppendTime topics get their header rewritten after the check.

        With ``producer_id`` (not 0), ``producer_epoch`` and ``sequences`` (each batch's base
        sequence): idempotent. A duplicate is not written and comes back as its original
        :class:`Appended` with ``duplicate=True``; OutOfOrderSequence, ProducerFenced or
        UnknownProducer refuse the whole call. InvalidRequest for fields out of range.
        """

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
        """:meth:`append` without waiting for it, for a caller that must not block (the broker's
        event loop): what can be checked on the caller's thread may raise here; then the append is
        queued and ``on_done`` is called once it is durable or has failed — on another thread
        (keep it short and never let it raise), or before this returns — after which
        :meth:`PendingAppend.result` answers at once. This default appends here, then calls
        ``on_done``."""
        try:
            appended = self.append(
                topic, batches, producer_id=producer_id, producer_epoch=producer_epoch, sequences=sequences
            )
        except Exception as e:
            pending = PendingAppend(functools.partial(_raise, e))
        else:
            pending = PendingAppend(lambda: appended)
        on_done()
        return pending

    @abc.abstractmethod
    def init_producer(self, producer_id: int = 0, producer_epoch: int = 0) -> tuple[int, int]:
        """``(producer id, epoch)`` for an idempotent producer: a new id (durably counted, never
        handed out twice) with epoch 0 when ``producer_id`` is 0; else the same id with the next
        epoch (a new id once the epoch is used up). UnknownProducer for an id never issued."""

    @abc.abstractmethod
    def read(self, topic: str, partition: int, offset: int, max_bytes: int, max_records: int = 0) -> FetchedBatches:
        """Batches from the one holding ``offset`` onwards, up to ``max_bytes`` (at least one
        batch when any) and ``max_records`` (0 = no limit; whole batches).

        OffsetOutOfRange when ``offset`` is below the log start or above the next offset (the
        message names the valid range); reading at exactly the next offset returns no batches.
        """

    @abc.abstractmethod
    def wait_for_data(self, positions: Sequence[tuple[str, int, int]], timeout_s: float) -> bool:
        """Block until any ``(topic, partition, offset)`` has data at ``offset`` or later, or the
        timeout passes; True when data is there. Woken by appends, never by polling."""

    @abc.abstractmethod
    def has_data(self, topic: str, partition: int, offset: int) -> bool:
        """``wait_for_data`` for one position without waiting: True when a read at ``offset``
        would return batches or raise (unknown topic or partition, offset out of range, closed)."""

    @abc.abstractmethod
    def add_data_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change that may wake ``wait_for_data`` (commits, trims,
        deletes, close), on the thread that made it, so waiters that cannot block a thread (an
        event loop) can check :meth:`has_data` again. It must return at once and not call the store."""

    @abc.abstractmethod
    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> OffsetForTime:
        """The first offset whose record timestamp is >= ``timestamp_ms`` (from the time index)."""

    @abc.abstractmethod
    def trim(self, topic: str, partition: int, before_offset: int) -> int:
        """Delete records before ``before_offset`` (whole batches; a batch straddling it stays but
        the log start moves to exactly ``before_offset``). OffsetOutOfRange past next offset.
        Returns the new log start offset (never moves backwards)."""

    @abc.abstractmethod
    def apply_retention(self, now_ms: int) -> int:
        """Apply every topic's retention_ms / retention_bytes from the head of each partition,
        deleting whole batches; return how many batches were deleted."""

    # -- consumer-group offsets -------------------------------------------------------------------

    @abc.abstractmethod
    def commit_offsets(self, group: str, offsets: Sequence[tuple[str, int, int, str]], now_ms: int) -> None:
        """Durably store ``(topic, partition, offset, metadata)`` for ``group`` (group-committed,
        fsync'd before returning). TopicNotFound / InvalidPartition for unknown targets."""

    @abc.abstractmethod
    def committed_offsets(self, group: str) -> list[CommittedOffset]:
        """The group's committed offsets, sorted by topic and partition (empty when none)."""

    @abc.abstractmethod
    def list_groups(self) -> list[str]:
        """Groups that have committed offsets, sorted."""

    @abc.abstractmethod
    def delete_group_offsets(self, group: str) -> int:
        """Delete every committed offset of ``group``; return how many were deleted."""

    @abc.abstractmethod
    def expire_group_offsets(self, before_ms: int, keep: Collection[str] = ()) -> list[str]:
        """Delete every committed offset of each group whose newest commit is older than
        ``before_ms`` (commit_time_ms < before_ms), except the groups in ``keep`` (those the caller
        knows to be alive); return the groups deleted, sorted. One atomic write: a commit that
        lands first makes its group's newest commit recent, so the group stays."""

    # -- access control ---------------------------------------------------------------------------

    @abc.abstractmethod
    def acls(self) -> list[Acl]:
        """Every stored ACL, sorted by resource, then principal (:func:`logsvc.acl.sort_key`)."""

    @abc.abstractmethod
    def add_acls(self, acls: Sequence[Acl]) -> int:
        """Store ``acls`` (each checked and normalised by :func:`logsvc.acl.parse_acl`: InvalidRequest
        naming the field, and nothing stored); all or none, durable before returning. An ACL
        already stored (or given twice) is kept once; returns how many were not there before."""

    @abc.abstractmethod
    def remove_acls(self, filters: Sequence[AclFilter]) -> list[Acl]:
        """Delete every ACL that any of ``filters`` selects (:func:`logsvc.acl.matches`), atomically
        and durably; returns the deleted ACLs, sorted. No filter deletes nothing."""

    @abc.abstractmethod
    def quota_overrides(self) -> list[QuotaOverride]:
        """Every principal's stored quota override, sorted by principal."""

    @abc.abstractmethod
    def set_quota_overrides(self, items: Sequence[QuotaOverride]) -> None:
        """Merge overrides into the stored ones, in order, atomically and durably: a None rate keeps
        the stored one (the default applies when there is none), 0 = no limit; an override left
        with no rate at all is removed. InvalidRequest for a principal that is not one
        ``User:NAME`` or a negative rate (nothing stored)."""

    @abc.abstractmethod
    def remove_quota_overrides(self, principals: Sequence[str]) -> list[str]:
        """Delete the overrides of ``principals`` atomically and durably; returns the principals
        that had one, sorted."""

    # -- lifecycle --------------------------------------------------------------------------------

    @abc.abstractmethod
    def storage_bytes(self) -> int:
        """Bytes the store occupies on disk (0 for in-memory stores)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Finish pending writes and release the store. Further calls raise Unavailable."""

    def on_failure(self, listener: Callable[[StorageFailed], None]) -> None:
        """Call ``listener`` once if the store can no longer write (after which every write
        raises StorageFailed); at once if it already cannot. A store that cannot fail this way
        (the in-memory one) never calls it."""
        del listener

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
