"""An in-memory :class:`~logsvc.storage.base.Store` honouring the same contract as the LMDB store
(same checks, same errors, same messages; see :mod:`logsvc.storage.rules`), for fast tests of the
layers above storage. Thread-safe: one lock around everything, a condition for ``wait_for_data``.

It ships in the package on purpose, as dramatiq ships its ``StubBroker``: it is the contract's
reference fake. The storage contract suite runs against it and the LMDB store alike (so it can
never drift from the contract), and code built on :class:`~logsvc.storage.base.Store` — a
broker embedded in an application's tests: ``create_server(settings, store=MemoryStore())`` — can
use it without a data directory. Nothing of it survives the process.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Collection, Sequence

from logsvc.acl import Acl, AclFilter, QuotaOverride, matches
from logsvc.storage import access, keys, producers, rules
from logsvc.storage.base import (
    Appended,
    CommittedOffset,
    FetchedBatches,
    OffsetForTime,
    PartitionState,
    Store,
    TopicMeta,
)
from logsvc.topic_config import TopicConfig, check_partition_count, check_topic_name
from logsvc_wire.batch import BatchHeader, read_header, with_log_append_time
from logsvc_wire.errors import InvalidRequest


class _Partition:
    def __init__(self) -> None:
        self.bases: list[int] = []
        self.batches: list[bytes] = []
        self.log_start = 0
        self.next_offset = 0
        self.bytes = 0

    def holding(self, offset: int) -> int:
        """Index of the batch holding ``offset`` (which must be in the log)."""
        return bisect.bisect_right(self.bases, offset) - 1

    def delete_head(self) -> int:
        """Delete the head batch; its end offset."""
        data = self.batches.pop(0)
        end = self.bases.pop(0) + read_header(data).record_count
        self.bytes -= len(data)
        self.log_start = max(self.log_start, end)
        return end

    def state(self, partition: int) -> PartitionState:
        first = read_header(self.batches[0]).first_timestamp_ms if self.batches else -1
        last = read_header(self.batches[-1]).max_timestamp_ms if self.batches else -1
        return PartitionState(partition, self.log_start, self.next_offset, self.bytes, first, last)


class MemoryStore(Store):
    def __init__(
        self,
        *,
        max_partitions: int = 10_000,
        clock: Callable[[], int] = rules.wall_clock_ms,
        producer_id_expiration_ms: int = producers.DEFAULT_EXPIRATION_MS,
        validate_records: bool = True,
    ) -> None:
        self._max_partitions = max_partitions
        self._validate_records = validate_records
        self._clock = clock
        self._producer_expiration_ms = producer_id_expiration_ms
        self._producers: dict[tuple[str, int, int], producers.ProducerState] = {}  # (topic, partition, id)
        self._next_producer_id = 1
        self._cond = threading.Condition()
        self._topics: dict[str, tuple[TopicMeta, list[_Partition]]] = {}
        self._groups: dict[str, dict[tuple[str, int], tuple[int, str, int]]] = {}
        self._next_topic_id = 1
        self._acls: set[Acl] = set()
        self._quotas: dict[str, QuotaOverride] = {}
        self._closed = False
        self._data_listeners: list[Callable[[], None]] = []

    # -- topics -----------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, config: TopicConfig) -> TopicMeta:
        check_topic_name(name)
        check_partition_count(partitions, self._max_partitions)
        config.validate()
        with self._cond:
            self._check_open()
            if name in self._topics:
                raise rules.topic_exists(name)
            meta = TopicMeta(name, self._next_topic_id, partitions, config, self._clock())
            self._next_topic_id += 1
            self._topics[name] = (meta, [_Partition() for _ in range(partitions)])
            return meta

    def alter_topic(self, name: str, *, partitions: int | None = None, config: TopicConfig | None = None) -> TopicMeta:
        with self._cond:
            meta, parts = self._get(name)
            altered = rules.altered(meta, partitions, config, self._max_partitions)
            parts.extend(_Partition() for _ in range(meta.partitions, altered.partitions))
            self._topics[name] = (altered, parts)
            return altered

    def delete_topic(self, name: str) -> None:
        with self._cond:
            self._get(name)
            del self._topics[name]
            self._producers = {key: st for key, st in self._producers.items() if key[0] != name}
            for offsets in self._groups.values():
                for key in [key for key in offsets if key[0] == name]:
                    del offsets[key]
            self._groups = {group: offsets for group, offsets in self._groups.items() if offsets}
            self._wake()

    def list_topics(self) -> list[TopicMeta]:
        with self._cond:
            self._check_open()
            return [self._topics[name][0] for name in sorted(self._topics)]

    def topic(self, name: str) -> TopicMeta:
        with self._cond:
            return self._get(name)[0]

    def partition_states(self, topic: str) -> list[PartitionState]:
        with self._cond:
            _, parts = self._get(topic)
            return [part.state(p) for p, part in enumerate(parts)]

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
        producer, seqs = producers.request_fields(producer_id, producer_epoch, sequences, len(batches))
        with self._cond:
            meta, parts = self._get(topic)
            headers = [rules.check_batch(meta, partition, data, self._validate_records) for partition, data in batches]
            now = self._clock() if meta.config.log_append_time else -1
            duplicates: list[producers.BatchEntry | None] = [None] * len(batches)
            if producer is not None and seqs is not None and batches:
                duplicates = self._sequence(meta, parts, producer, seqs, batches, headers, now)
            out = []
            for (partition, data), header, duplicate in zip(batches, headers, duplicates, strict=True):
                if duplicate is not None:
                    out.append(Appended(partition, duplicate.base_offset, duplicate.log_append_time_ms, True))
                    continue
                if now >= 0:
                    data = with_log_append_time(data, now)
                part = parts[partition]
                out.append(Appended(partition, part.next_offset, now, False, header.record_count))
                part.bases.append(part.next_offset)
                part.batches.append(bytes(data))
                part.next_offset += header.record_count
                part.bytes += len(data)
            if out:
                self._wake()
            return out

    def _sequence(
        self,
        meta: TopicMeta,
        parts: list[_Partition],
        producer: tuple[int, int],
        seqs: list[int],
        batches: Sequence[tuple[int, bytes | memoryview]],
        headers: list[BatchHeader],
        append_time: int,
    ) -> list[producers.BatchEntry | None]:
        """Lock held: apply the sequence rules to every batch (all or nothing, as the LMDB store's
        Append.check); store the producer states; each batch's duplicate entry or None."""
        producer_id, epoch = producer
        producers.check_issued(producer_id, self._next_producer_id)
        now = self._clock()
        states: dict[tuple[str, int, int], producers.ProducerState] = {}
        next_offsets: dict[int, int] = {}
        out: list[producers.BatchEntry | None] = []
        for (partition, _), header, seq in zip(batches, headers, seqs, strict=True):
            key = (meta.name, partition, producer_id)
            state = states.get(key) or producers.live(self._producers.get(key), now, self._producer_expiration_ms)
            produced = producers.Produced(producer_id, epoch, seq)
            count = header.record_count
            duplicate = producers.decide(state, produced, count, f"{meta.name}/{partition}")
            out.append(duplicate)
            if duplicate is None:
                base = next_offsets.get(partition, parts[partition].next_offset)
                next_offsets[partition] = base + count
                states[key] = producers.appended(state, produced, count, (base, append_time), now)
        self._producers.update(states)
        return out

    def init_producer(self, producer_id: int = 0, producer_epoch: int = 0) -> tuple[int, int]:
        with self._cond:
            self._check_writable()
            if producer_id:
                bumped = producers.next_identity(producer_id, producer_epoch, self._next_producer_id)
                if bumped is not None:
                    return bumped
            producer_id = self._next_producer_id
            self._next_producer_id += 1
            return producer_id, 0

    def read(self, topic: str, partition: int, offset: int, max_bytes: int, max_records: int = 0) -> FetchedBatches:
        with self._cond:
            part = self._part(topic, partition)
            self._check_range(topic, partition, part, offset)
            out: list[tuple[int, bytes]] = []
            size = records = 0
            first = part.holding(offset) if offset < part.next_offset else len(part.batches)
            for base, data in zip(part.bases[first:], part.batches[first:], strict=True):
                count = read_header(data).record_count - max(0, offset - base)
                if out and (size + len(data) > max_bytes or 0 < max_records <= records):
                    break
                out.append((base, data))
                size += len(data)
                records += count
            return FetchedBatches(part.log_start, part.next_offset, out, records)

    def wait_for_data(self, positions: Sequence[tuple[str, int, int]], timeout_s: float) -> bool:
        return rules.wait_ready(self._cond, self._ready, positions, timeout_s, self._check_open)

    def offset_for_time(self, topic: str, partition: int, timestamp_ms: int) -> OffsetForTime:
        with self._cond:
            part = self._part(topic, partition)
            if part.log_start < part.next_offset:
                first = part.holding(part.log_start)
                for base, data in zip(part.bases[first:], part.batches[first:], strict=True):
                    found = rules.first_record_at(data, base, part.log_start, timestamp_ms)
                    if found is not None:
                        return OffsetForTime(*found)
            return OffsetForTime(part.next_offset, -1)

    def trim(self, topic: str, partition: int, before_offset: int) -> int:
        with self._cond:
            self._check_writable()
            part = self._part(topic, partition)
            if before_offset > part.next_offset:
                raise rules.out_of_range(topic, partition, before_offset, part.log_start, part.next_offset)
            if before_offset > part.log_start:
                while part.batches and part.bases[0] + read_header(part.batches[0]).record_count <= before_offset:
                    part.delete_head()
                part.log_start = before_offset
            self._wake()
            return part.log_start

    def apply_retention(self, now_ms: int) -> int:
        deleted = 0
        with self._cond:
            self._check_writable()
            for meta, parts in self._topics.values():
                if not rules.has_retention(meta.config):
                    continue
                for part in parts:
                    while part.batches and rules.expired(
                        meta.config, now_ms, read_header(part.batches[0]).max_timestamp_ms, part.bytes
                    ):
                        part.delete_head()
                        deleted += 1
            self._producers = {
                key: st
                for key, st in self._producers.items()
                if not producers.expired(st, now_ms, self._producer_expiration_ms)
            }
            return deleted

    # -- consumer-group offsets -------------------------------------------------------------------

    def commit_offsets(self, group: str, offsets: Sequence[tuple[str, int, int, str]], now_ms: int) -> None:
        with self._cond:
            self._check_writable()
            keys.group_prefix(group)
            for topic, partition, offset, _ in offsets:
                self._part(topic, partition)
                rules.check_commit_offset(topic, partition, offset)
            if offsets:
                stored = self._groups.setdefault(group, {})
                for topic, partition, offset, metadata in offsets:
                    stored[(topic, partition)] = (offset, metadata, now_ms)

    def committed_offsets(self, group: str) -> list[CommittedOffset]:
        with self._cond:
            self._check_open()
            stored = self._groups.get(group, {})
            return [CommittedOffset(t, p, *stored[(t, p)]) for t, p in sorted(stored)]

    def list_groups(self) -> list[str]:
        with self._cond:
            self._check_open()
            return sorted(self._groups)

    def delete_group_offsets(self, group: str) -> int:
        with self._cond:
            self._check_writable()
            try:
                keys.group_prefix(group)
            except InvalidRequest:
                return 0
            return len(self._groups.pop(group, {}))

    def expire_group_offsets(self, before_ms: int, keep: Collection[str] = ()) -> list[str]:
        with self._cond:
            self._check_writable()
            expired = sorted(
                group
                for group, stored in self._groups.items()
                if group not in keep and max(commit_ms for _, _, commit_ms in stored.values()) < before_ms
            )
            for group in expired:
                del self._groups[group]
            return expired

    # -- access control ---------------------------------------------------------------------------

    def acls(self) -> list[Acl]:
        with self._cond:
            self._check_open()
            return access.sorted_acls(self._acls)

    def add_acls(self, acls: Sequence[Acl]) -> int:
        checked = access.checked_acls(acls)
        with self._cond:
            self._check_writable()
            new = [acl for acl in checked if acl not in self._acls]
            self._acls.update(new)
            return len(new)

    def remove_acls(self, filters: Sequence[AclFilter]) -> list[Acl]:
        with self._cond:
            self._check_writable()
            gone = {acl for acl in self._acls if any(matches(f, acl) for f in filters)}
            self._acls -= gone
            return access.sorted_acls(gone)

    def quota_overrides(self) -> list[QuotaOverride]:
        with self._cond:
            self._check_open()
            return [self._quotas[p] for p in sorted(self._quotas, key=lambda p: p.encode())]

    def set_quota_overrides(self, items: Sequence[QuotaOverride]) -> None:
        checked = access.checked_quotas(items)
        with self._cond:
            self._check_writable()
            for item in checked:
                new = access.merged(self._quotas.get(item.principal), item)
                if new is None:
                    self._quotas.pop(item.principal, None)
                else:
                    self._quotas[item.principal] = new

    def remove_quota_overrides(self, principals: Sequence[str]) -> list[str]:
        with self._cond:
            self._check_writable()
            return sorted({p for p in principals if self._quotas.pop(p, None) is not None})

    # -- lifecycle --------------------------------------------------------------------------------

    def storage_bytes(self) -> int:
        self._check_open()
        return 0

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wake()

    # -- internals --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise rules.closed()

    _check_writable = _check_open

    def _get(self, name: str) -> tuple[TopicMeta, list[_Partition]]:
        self._check_open()
        found = self._topics.get(name)
        if found is None:
            raise rules.topic_not_found(name)
        return found

    def _part(self, topic: str, partition: int) -> _Partition:
        meta, parts = self._get(topic)
        rules.check_partition(meta, partition)
        return parts[partition]

    @staticmethod
    def _check_range(topic: str, partition: int, part: _Partition, offset: int) -> None:
        if not part.log_start <= offset <= part.next_offset:
            raise rules.out_of_range(topic, partition, offset, part.log_start, part.next_offset)

    def has_data(self, topic: str, partition: int, offset: int) -> bool:
        with self._cond:
            return self._closed or self._ready(topic, partition, offset)

    def add_data_listener(self, listener: Callable[[], None]) -> None:
        with self._cond:
            self._data_listeners.append(listener)

    def _wake(self) -> None:
        """Under ``self._cond``: wake every ``wait_for_data`` and tell the data listeners."""
        self._cond.notify_all()
        for listener in self._data_listeners:
            listener()

    def _ready(self, topic: str, partition: int, offset: int) -> bool:
        found = self._topics.get(topic)
        if found is None or not 0 <= partition < found[0].partitions:
            return True
        return offset != found[1][partition].next_offset
