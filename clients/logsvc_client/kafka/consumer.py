"""The consumer on a Kafka cluster: :class:`KafkaConsumer`, what ``Consumer("kafka://...")`` is.

Same API and behaviour as the logsvc :class:`~logsvc_client.Consumer`, built on librdkafka's
consumer (``confluent_kafka.Consumer``):

- **Group mode** uses Kafka's group protocol (librdkafka's ``subscribe`` with rebalance
  callbacks, served inside :meth:`KafkaConsumer.poll` on the caller's thread). New partitions are
  positioned at the group's committed offsets (or by ``auto_offset_reset``) *before*
  ``on_assign`` is called, so the callback may :meth:`~KafkaConsumer.seek` them (an exactly-once
  sink seeks to the offsets it stored itself); the partitions are handed to librdkafka's fetcher
  at the offsets chosen once the callback returns. On a revoke, ``on_revoke`` is called first,
  then (with auto-commit) the positions of the revoked partitions are committed, then records
  of theirs already fetched are dropped, never returned. Partitions *lost* (session expired,
  ``max_poll_interval_ms`` exceeded, fenced) are dropped without a commit, then ``on_revoke``.
- **Commits** are librdkafka's synchronous commits of the positions (the offset after the last
  record a poll returned) or of explicit offsets; librdkafka's own auto-commit is off, so a
  record not yet returned is never committed. ``enable_auto_commit`` commits every
  ``auto_commit_interval_ms`` (checked in poll), on revoke and on close.
- **Positions** are kept here, per partition, as poll returns records; seeks go to librdkafka's
  fetcher (which drops what it had prefetched of the partition).
- **Lanes** buffer records per lane and pause librdkafka's fetching of a lane that holds two
  polls' worth (``2 * max_poll_records``, at least 1,000) until it has less
  (:mod:`logsvc_client.kafka.lanes`).

Options map onto librdkafka's: ``assignor="sticky"`` is ``cooperative-sticky`` (incremental
rebalances: partitions that stay are never revoked), ``"range"`` is ``range`` (eager: every
partition is revoked, then assigned again); ``instance_id`` is ``group.instance.id`` (a static
member: close does not leave the group, and a member fenced by a newer one with the same
instance id raises FencedInstance from every poll); ``auto_offset_reset="none"`` is librdkafka's
``error`` (OffsetOutOfRange from every poll until the partition is seeked);
``max_poll_interval_ms`` is raised to ``session_timeout_ms`` when below it (librdkafka requires
it). librdkafka always fetches ahead and retries by itself: ``prefetch``, ``retries`` and
``retry_backoff_ms`` do not apply (``retry_backoff_ms`` is its ``retry.backoff.ms``); its prefetch
queue holds about ``fetch_max_bytes``. ``corrupt_batches`` is accepted and has no effect:
librdkafka checks each batch's CRC (``check_crcs``) and never hands out a record it cannot
decode.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID, KafkaError, KafkaException
from confluent_kafka import Consumer as RdConsumer

from ..consumer.consumer import Consumer, check_consumer_options
from ..consumer.fetch_options import CorruptBatches
from ..consumer.lanes import Priority
from ..consumer.offset_reset import OffsetReset, check_offset_reset
from ..consumer.subscription import RebalanceCallback
from ..errors import FailedPrecondition, InvalidConfig, InvalidRequest, LogsvcError, OffsetOutOfRange
from ..group.descriptions import GroupMetadata
from ..records import Record, TopicPartition, check_offset, check_partitions, check_time_ms
from ..security import Security
from .consumer_config import ASSIGNORS, consumer_config
from .consumer_errors import confirmed_missing, judge
from .errors import translate
from .lanes import KafkaLanes
from .rebalance import GroupRebalance, rd_partition
from .records import to_records

_topic_partition_of, _offset_of = itemgetter(0, 1), itemgetter(2)

log = logging.getLogger("logsvc_client.consumer")

# how long a poll with lanes waits for a lane's planned records still being fetched
_LANE_FILL_S = 0.1


_rd = rd_partition


class KafkaConsumer(GroupRebalance, Consumer):
    """A :class:`~logsvc_client.Consumer` on a Kafka cluster; see the module docstring."""

    def __init__(
        self,
        address: str,
        group_id: str | None = None,
        *,
        instance_id: str | None = None,
        session_timeout_ms: int = 10_000,
        assignor: str = "sticky",
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5_000,
        max_poll_interval_ms: int = 300_000,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        client_id: str = "",
        max_poll_records: int = 500,
        fetch_max_bytes: int = 16 * 1024 * 1024,
        fetch_max_wait_ms: int = 500,
        check_crcs: bool = True,
        auto_offset_reset: OffsetReset = "earliest",
        prefetch: bool = True,
        request_timeout_ms: int = 30_000,
        retries: int = 5,
        retry_backoff_ms: int = 100,
        priority: Priority = "none",
        lane_weights: Sequence[float] | None = None,
        max_lane_wait_ms: int = 1_000,
        security: Security | None = None,
        corrupt_batches: CorruptBatches = "raise",
        record_type: type[tuple[Any, ...]] = Record,
    ) -> None:
        check_consumer_options(
            group_id,
            instance_id=instance_id,
            on_assign=on_assign,
            on_revoke=on_revoke,
            numbers={
                "max_poll_records": max_poll_records,
                "fetch_max_bytes": fetch_max_bytes,
                "fetch_max_wait_ms": fetch_max_wait_ms,
                "request_timeout_ms": request_timeout_ms,
                "retries": retries,
                "retry_backoff_ms": retry_backoff_ms,
                "session_timeout_ms": session_timeout_ms,
                "auto_commit_interval_ms": auto_commit_interval_ms,
                "max_poll_interval_ms": max_poll_interval_ms,
            },
            priority=priority,
            lane_weights=lane_weights,
            max_lane_wait_ms=max_lane_wait_ms,
            corrupt_batches=corrupt_batches,
        )
        check_offset_reset(auto_offset_reset)
        self._record_type = record_type
        self.address = address
        self.group_id = group_id
        config = consumer_config(
            address,
            security,
            group_id=group_id,
            instance_id=instance_id,
            client_id=client_id,
            assignor=assignor,
            auto_offset_reset=auto_offset_reset,
            session_timeout_ms=session_timeout_ms,
            max_poll_interval_ms=max_poll_interval_ms,
            fetch_max_bytes=fetch_max_bytes,
            fetch_max_wait_ms=fetch_max_wait_ms,
            check_crcs=check_crcs,
            request_timeout_ms=request_timeout_ms,
            retry_backoff_ms=retry_backoff_ms,
        )
        try:
            self._rd = RdConsumer(config)
        except KafkaException as e:
            raise translate(e, f"consumer of {address}") from None
        except (ValueError, TypeError) as e:  # a property librdkafka does not know or cannot take
            raise InvalidConfig(f"consumer of {address}: {e}", key="server") from None
        self._instance_id = instance_id or None
        self._cooperative = ASSIGNORS[assignor].startswith("cooperative")
        self._reset: OffsetReset = auto_offset_reset
        self._auto_commit = enable_auto_commit
        self._auto_commit_s = auto_commit_interval_ms / 1000
        self._next_commit = time.monotonic() + self._auto_commit_s
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._priority = priority
        self._lane_weights = None if lane_weights is None else list(lane_weights)
        self._max_lane_wait_ms = max_lane_wait_ms
        self._max_poll_records = max_poll_records
        # a lane's partitions are paused once it buffers this many records: room for two polls
        # (and at least 1,000), so a lane being taken from is not paused and resumed every poll
        self._lane_cap = max(2 * max_poll_records, 1_000)
        self._timeout_s = request_timeout_ms / 1000
        self._lanes: KafkaLanes | None = None
        self._subscribed = False
        self._assigned: list[TopicPartition] = []  # by hand, in the order given
        self._owned: set[TopicPartition] = set()  # the partitions read (by hand or from the group)
        self._positions: dict[tuple[str, int], int] = {}  # next offset poll returns, once known
        self._starts: dict[TopicPartition, int] = {}  # the offset (maybe logical) fetching started at
        self._committed: dict[TopicPartition, int] = {}  # last known committed, per owned partition
        self._assigning: set[TopicPartition] = set()  # in on_assign: seeks set the starting offset
        self._unchecked_topics: set[str] = set()  # assigned by hand, not yet known to exist
        self._out_of_range: dict[TopicPartition, LogsvcError] = {}
        self._fatal: LogsvcError | None = None
        self._changed = False  # the assignment changed: drop consumed records of partitions not owned
        self._closing = False
        self._closed = False

    # -- assignment -----------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] | str) -> None:
        """Consume ``topics`` as a member of the group ``group_id`` (Kafka's group protocol);
        partitions arrive in the following polls. See :meth:`Consumer.subscribe`."""
        if self.group_id is None:
            raise InvalidConfig("subscribe() needs a consumer created with a group_id", key="group_id")
        if self._assigned:
            raise FailedPrecondition("this consumer reads partitions given to assign(); it cannot also subscribe")
        names = [topics] if isinstance(topics, str) else list(dict.fromkeys(topics))
        if not names or not all(isinstance(t, str) and t for t in names):
            raise InvalidRequest(f"subscribe() needs one or more topic names, got {topics!r}")
        policy = self._lane_policy(names)
        for name in names:
            self._check_topic(name)
        if policy is not None and (self._lanes is None or not self._lanes.policy.same_as(policy)):
            if self._lanes is not None:  # buffered records are fetched again from the positions
                self._lanes = None
                self._reassign(sorted(self._owned))
            self._lanes = KafkaLanes(policy, self._lane_cap)
        elif policy is None and self._lanes is not None:
            self._lanes = None
            self._reassign(sorted(self._owned))
        self._call(
            f"subscribe group {self.group_id} to {names}",
            self._rd.subscribe,
            names,
            on_assign=self._assigned_by_group,
            on_revoke=self._revoked_by_group,
            on_lost=self._lost_by_group,
        )
        self._subscribed = True

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (replacing the assignment); positions of kept ones stay.
        With ``priority``, their topics are the lanes, highest first, in the order listed."""
        self._check_not_subscribed("assign()")
        tps = list(dict.fromkeys(check_partitions(partitions)))
        topics = list(dict.fromkeys(tp.topic for tp in tps))
        policy = self._lane_policy(topics) if topics else None
        keep = set(tps)
        self._forget([tp for tp in self._owned if tp not in keep])
        default = OFFSET_END if self._reset == "latest" else OFFSET_BEGINNING
        for tp in tps:
            self._starts[tp] = self._positions.get(tp, self._starts.get(tp, default))
        self._assigned, self._owned = tps, keep
        self._lanes = None if policy is None else KafkaLanes(policy, self._lane_cap)
        self._unchecked_topics = set(topics)
        self._changed = True
        if tps:
            self._call("assign partitions", self._rd.assign, [_rd(tp, self._starts[tp]) for tp in tps])
        else:
            self._call("unassign partitions", self._rd.unassign)

    def assign_topic(self, topic: str) -> list[TopicPartition]:
        """Assign every partition of ``topic`` (replacing the assignment); TopicNotFound."""
        self._check_not_subscribed("assign_topic()")
        tps = [TopicPartition(topic, p) for p in range(self._check_topic(topic))]
        self.assign(tps)
        return tps

    def assignment(self) -> list[TopicPartition]:
        """The partitions this consumer reads (in group mode: those the group gave it, as of the
        last poll)."""
        return sorted(self._owned) if self._subscribed else list(self._assigned)

    def _check_not_subscribed(self, what: str) -> None:
        if self._subscribed:
            raise FailedPrecondition(f"{what} is not allowed: this consumer's partitions come from its group")

    def _check_topic(self, topic: str) -> int:
        """The partition count of ``topic``; TopicNotFound naming it."""
        metadata = self._call(f"look up topic {topic!r}", self._rd.list_topics, topic, timeout=self._timeout_s)
        found = metadata.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            error = found.error if found is not None and found.error is not None else None
            raise translate(error or KafkaError(KafkaError._UNKNOWN_TOPIC), f"topic {topic!r}", topic=topic)
        return len(found.partitions)

    # -- positions ------------------------------------------------------------------------------

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """The next poll returns ``tp``'s records from ``offset`` on."""
        tp = TopicPartition(*tp)
        if tp not in self._assigning:
            self._check_owned(tp)
        check_offset(offset, f"cannot seek {tp.topic}/{tp.partition} to offset")
        self._positions[tp] = self._starts[tp] = offset
        if tp in self._assigning:
            return  # handed to the fetcher at this offset when on_assign returns
        self._out_of_range.pop(tp, None)
        if self._lanes is not None:
            self._lanes.seek(tp, offset)
        try:
            self._rd.seek(_rd(tp, offset))
        except KafkaException:  # not fetching (yet, or since an out-of-range error): start it there
            self._reassign([tp])

    def seek_to_beginning(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions (default: all assigned) to their log start offsets."""
        for tp in self._targets(tps):
            self.seek(tp, self._watermarks(tp)[0])

    def seek_to_end(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions (default: all assigned) past their last records."""
        for tp in self._targets(tps):
            self.seek(tp, self._watermarks(tp)[1])

    def seek_to_time(self, timestamp_ms: int, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions to the first record with a timestamp at or after ``timestamp_ms``
        (past the last record when there is none)."""
        check_time_ms(timestamp_ms, "seek_to_time")
        targets = self._targets(tps)
        if not targets:
            return
        found = self._call(
            f"look up offsets at {timestamp_ms}",
            self._rd.offsets_for_times,
            [_rd(tp, timestamp_ms) for tp in targets],
            timeout=self._timeout_s,
        )
        for tp, at in zip(targets, found, strict=True):
            if at.error is not None:
                raise translate(at.error, f"offsets of {tp.topic}/{tp.partition} at {timestamp_ms}")
            self.seek(tp, at.offset if at.offset >= 0 else self._watermarks(tp)[1])

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record poll returns for ``tp``."""
        tp = TopicPartition(*tp)
        self._check_owned(tp)
        if tp not in self._positions:
            start = self._starts.get(tp, OFFSET_BEGINNING)
            low, high = self._watermarks(tp)
            self._positions[tp] = start if start >= 0 else high if start == OFFSET_END else low
        return self._positions[tp]

    def _targets(self, tps: Iterable[TopicPartition] | None) -> list[TopicPartition]:
        targets = self.assignment() if tps is None else [TopicPartition(*tp) for tp in tps]
        for tp in targets:
            if tp not in self._assigning:
                self._check_owned(tp)
        return targets

    def _check_owned(self, tp: TopicPartition) -> None:
        if tp not in self._owned:
            raise FailedPrecondition(f"partition {tp.topic}/{tp.partition} is not assigned to this consumer")

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        """The log start and end of ``tp``, asked of the cluster."""
        low, high = self._call(
            f"list offsets of {tp.topic}/{tp.partition}",
            self._rd.get_watermark_offsets,
            _rd(tp),
            timeout=self._timeout_s,
            cached=False,
        )
        return int(low), int(high)

    def _reassign(self, tps: Sequence[TopicPartition]) -> None:
        """Hand ``tps`` to librdkafka's fetcher again at their positions (or starting offsets)."""
        owned = [tp for tp in tps if tp in self._owned]
        if not owned:
            return
        at = [_rd(tp, self._positions.get(tp, self._starts.get(tp, OFFSET_INVALID))) for tp in owned]
        if self._subscribed and self._cooperative:
            self._call("unassign partitions", self._rd.incremental_unassign, at)
            self._call("assign partitions", self._rd.incremental_assign, at)
            return
        everything = self._assigned if not self._subscribed else sorted(self._owned)
        if self._lanes is not None:
            self._lanes.discard(lambda _: True)
        self._call(
            "assign partitions",
            self._rd.assign,
            [_rd(tp, self._positions.get(tp, self._starts.get(tp, OFFSET_INVALID))) for tp in everything],
        )

    # -- commits --------------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``{partition: next offset to read}`` for the group, synchronously; default: the
        positions of the partitions this consumer reads. StaleGeneration or UnknownMember when the
        group moved on (the cluster refuses the commit)."""
        group = self._require_group("commit()")
        if offsets is None:
            chosen = self._owned_positions()
        else:
            chosen = {}
            for tp, offset in offsets.items():
                chosen[TopicPartition(*tp)] = check_offset(offset, f"cannot commit for {tp[0]}/{tp[1]} the offset")
        if not chosen:
            return
        what = f"commit offsets of group {group}"
        done = self._call(what, self._rd.commit, offsets=[_rd(tp, o) for tp, o in chosen.items()], asynchronous=False)
        for tp in done or ():
            if tp.error is not None:
                raise translate(tp.error, what, topic=tp.topic, partition=tp.partition)
        self._committed.update(chosen)

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (the next offset to read); None when there is none."""
        group = self._require_group("committed()")
        tp = TopicPartition(*tp)
        what = f"committed offset of {tp.topic}/{tp.partition} in group {group}"
        (found,) = self._call(what, self._rd.committed, [_rd(tp)], timeout=self._timeout_s)
        if found.error is not None:
            raise translate(found.error, what)
        return int(found.offset) if found.offset >= 0 else None

    def group_metadata(self) -> GroupMetadata:
        """The group id, member id and generation this consumer's commits carry right now (the
        generation read from librdkafka's group metadata; -1 while not a member)."""
        group = self._require_group("group_metadata()")
        member_id = self._rd.memberid() if self._subscribed and not self._closed else None
        if not member_id:
            return GroupMetadata(group, "", -1)
        generation = -1
        blob = self._rd.consumer_group_metadata()
        if isinstance(blob, bytes) and blob.startswith(b"CGMDv2:") and len(blob) >= 11:
            generation = int.from_bytes(blob[7:11], sys.byteorder, signed=True)
        return GroupMetadata(group, member_id, generation)

    def _owned_positions(self) -> dict[TopicPartition, int]:
        owned = self._owned
        return {TopicPartition(*tp): offset for tp, offset in self._positions.items() if tp in owned}

    def _commit_quietly(self, offsets: Mapping[TopicPartition, int]) -> None:
        changed = {tp: o for tp, o in offsets.items() if self._committed.get(tp) != o}
        if changed:
            try:
                self.commit(changed)
            except LogsvcError as e:
                log.warning("group %s: commit of %d partition(s) failed: %s", self.group_id, len(changed), e)

    def _forget(self, tps: Iterable[TopicPartition]) -> None:
        gone = set(tps)
        if not gone:
            return
        self._owned -= gone
        for tp in gone:
            self._positions.pop(tp, None)
            self._starts.pop(tp, None)
            self._committed.pop(tp, None)
            self._out_of_range.pop(tp, None)
        if self._lanes is not None:
            self._lanes.discard(gone.__contains__)

    # -- reading --------------------------------------------------------------------------------

    def poll(self, timeout_ms: float = 1_000, max_records: int | None = None) -> list[Record]:
        """Records from the assigned partitions, in offset order per partition, waiting up to
        ``timeout_ms`` for the first; an empty list when none arrived. Rebalance callbacks and
        auto-commits happen here, on the caller's thread. See :meth:`Consumer.poll`."""
        if self._closed:
            raise FailedPrecondition("the consumer is closed")
        if not self._subscribed and not self._owned:
            raise FailedPrecondition(
                "no partitions are assigned: call assign() or assign_topic() first (or subscribe() with a group_id)"
            )
        limit = self._max_poll_records if max_records is None else max_records
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidRequest(f"max_records={max_records!r} must be an int >= 1")
        for topic in list(self._unchecked_topics):
            self._check_topic(topic)
            self._unchecked_topics.discard(topic)
        deadline = time.monotonic() + max(0.0, timeout_ms / 1000)
        while True:
            self._raise_stored()
            if self._auto_commit and self._subscribed and time.monotonic() >= self._next_commit:
                self._next_commit = time.monotonic() + self._auto_commit_s
                self._commit_quietly(self._owned_positions())
            records = self._take(limit, deadline)
            if records:
                return records
            self._raise_stored()
            if time.monotonic() >= deadline:
                return []

    def _take(self, limit: int, deadline: float) -> list[Record]:
        """One round of poll: without lanes the records librdkafka has (waiting until the deadline
        for the first); with lanes what the lanes' plan gives, waiting up to ``_LANE_FILL_S`` (and
        the deadline) for a lane whose part is not buffered yet before returning fewer records."""
        lanes = self._lanes
        if lanes is None:
            records = self._consume(limit, deadline - time.monotonic())
            # each partition's position is past its last record (records come in offset order):
            # the last offset per partition found at C speed, +1 once per partition
            last = dict(zip(map(_topic_partition_of, records), map(_offset_of, records), strict=True))
            positions = self._positions
            for tp, offset in last.items():
                positions[tp] = offset + 1
            return records
        patience = min(deadline, time.monotonic() + _LANE_FILL_S)
        while True:
            lanes.add(self._consume(limit * len(lanes.buffers), 0))
            now = time.monotonic()
            whole = now < patience
            taken = lanes.take(limit, int(now * 1000), self._owned, self._cached_watermarks, self._positions, whole)
            self._pause_full_lanes(lanes)
            if taken:
                return taken
            if now >= deadline:
                return []
            lanes.add(self._consume(1, min(deadline - now, 0.02 if taken is None else 0.05)))
            if taken is not None:
                return []

    def _pause_full_lanes(self, lanes: KafkaLanes) -> None:
        pause, resume = lanes.pauses(self._owned, self._cached_watermarks)
        try:
            if pause:
                self._rd.pause([_rd(tp) for tp in pause])
            if resume:
                self._rd.resume([_rd(tp) for tp in resume])
        except KafkaException as e:
            log.debug("pause/resume of lane partitions: %s", e)

    def _consume(self, limit: int, timeout_s: float) -> list[Record]:
        """Up to ``limit`` records from librdkafka's queue: what it holds now, else the first to
        arrive within ``timeout_s`` and what came with it (librdkafka's batch call would wait the
        whole timeout for ``limit`` records)."""
        rd = self._rd
        try:
            messages = rd.consume(limit, 0)
            if not messages and timeout_s > 0:
                messages = rd.consume(1, timeout_s)
                if messages and limit > 1:
                    messages += rd.consume(limit - 1, 0)
        except KafkaException as e:
            raise translate(e, "poll") from None
        records, failed = to_records(messages, self._record_type)
        for m in failed:
            self._consumer_error(m)
        if self._changed:
            self._changed = False
            owned = self._owned
            records = [r for r in records if (r.topic, r.partition) in owned]
        return records

    def _cached_watermarks(self, tp: TopicPartition) -> tuple[int, int] | None:
        """librdkafka's log start and end of ``tp`` from its last Fetch answer (None: none yet)."""
        try:
            low, high = self._rd.get_watermark_offsets(_rd(tp), cached=True)
        except KafkaException:
            return None
        return (max(0, int(low)), int(high)) if high >= 0 else None

    def _consumer_error(self, message: Any) -> None:
        """Act on an error librdkafka handed out in place of a record (see :func:`judge`)."""
        action, error = judge(message, self.group_id, self._instance_id)
        if action == "stop":
            self._fatal = error
        elif action == "until_seek" and error is not None:
            self._out_of_range[TopicPartition(message.topic(), message.partition())] = error
        elif action == "raise" and error is not None and confirmed_missing(self._rd, message, self._timeout_s):
            raise error

    def _raise_stored(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._out_of_range:
            first = self._out_of_range[min(self._out_of_range)]
            raise OffsetOutOfRange(first.message, **first.details)

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with librdkafka's errors as the project's (``what`` names it)."""
        try:
            return fn(*args, **kwargs)
        except KafkaException as e:
            raise translate(e, what) from None

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop consuming. In group mode: the revoke callback, a commit (with auto-commit), then
        leave the group (a static member keeps its slot until its session times out)."""
        if self._closed:
            return
        self._closed = True
        try:
            owned = sorted(self._owned)
            if self._subscribed and owned and self._fatal is None:
                try:
                    if self._on_revoke is not None:
                        self._on_revoke(owned)
                finally:
                    if self._auto_commit:
                        self._commit_quietly(self._owned_positions())
        finally:
            self._closing = True
            try:
                self._rd.close()
            except (KafkaException, RuntimeError) as e:
                log.warning("closing the consumer of %s: %s", self.address, e)
