"""The admin's consumer-group calls on a Kafka cluster: a mixin of
:class:`~logsvc_client.kafka.admin.KafkaAdminTransport` over librdkafka's ``AdminClient``.

Kafka's group states are shown as logsvc's: ``Stable``, ``Empty`` (Kafka's Empty and Dead) and
``Reconciling`` (a rebalance in progress). What Kafka's DescribeGroups does not tell: the
generation (0) and a member's last heartbeat (0). ``lag`` is the next offset minus the committed
one (or minus the log start when nothing is); ``lag_ms``, the lag in time, is read from Kafka as
logsvc's broker works it out: now minus the timestamp of the first record not consumed yet (0 when
caught up).

Offset resets keep logsvc's rules (:meth:`KafkaGroupCalls.reset_offsets`): refused with
GroupNotEmpty while the group has members (also as a dry run), targets clamped to each
partition's [log start, next offset], written only with ``execute``. A commit without a member
is refused the same way; a member's fenced commit is its own Consumer's on Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from confluent_kafka import ConsumerGroupState, ConsumerGroupTopicPartitions
from confluent_kafka import TopicPartition as RdTopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from ..errors import FailedPrecondition, GroupNotEmpty, GroupNotFound, InvalidRequest
from ..group.descriptions import (
    CommittedOffset,
    GroupDescription,
    GroupSummary,
    MemberInfo,
    PartitionLag,
    PartitionReset,
    ResetResult,
)
from ..records import TopicPartition
from .errors import translate, wait
from .log_reader import first_timestamps

if TYPE_CHECKING:
    from ..topics import OffsetAndTimestamp

_STATES = {
    ConsumerGroupState.STABLE: "Stable",
    ConsumerGroupState.EMPTY: "Empty",
    ConsumerGroupState.DEAD: "Empty",
    ConsumerGroupState.PREPARING_REBALANCING: "Reconciling",
    ConsumerGroupState.COMPLETING_REBALANCING: "Reconciling",
}
#: states of a group with live members
_LIVE = (
    ConsumerGroupState.STABLE,
    ConsumerGroupState.PREPARING_REBALANCING,
    ConsumerGroupState.COMPLETING_REBALANCING,
)


class KafkaGroupCalls:
    """The group part of the admin contract over ``self._admin`` (set by the transport)."""

    _admin: AdminClient
    _timeout_s: float
    _config: dict[str, Any]  # the librdkafka settings a reading consumer starts from

    if TYPE_CHECKING:  # provided by KafkaAdminTransport

        def _partitions(self, topic: str, partitions: Iterable[int] | None) -> list[int]: ...

        def _offsets(self, topic: str, spec: OffsetSpec, partitions: Iterable[int]) -> dict[int, tuple[int, int]]: ...

        def offsets_for_time(
            self, topic: str, timestamp_ms: int, partitions: Iterable[int] | None = None
        ) -> dict[int, OffsetAndTimestamp]: ...

    def _wait(self, future: Any, what: str) -> Any:
        return wait(future, what, self._timeout_s)

    def _describe(self, group: str) -> Any:
        futures = self._admin.describe_consumer_groups([group], request_timeout=self._timeout_s)
        return self._wait(futures[group], f"describe group {group!r}")

    def _committed(self, group: str) -> dict[TopicPartition, CommittedOffset]:
        request = [ConsumerGroupTopicPartitions(group)]
        futures = self._admin.list_consumer_group_offsets(request, request_timeout=self._timeout_s)
        answer = self._wait(futures[group], f"fetch committed offsets of group {group!r}")
        return {
            TopicPartition(tp.topic, tp.partition): CommittedOffset(
                tp.topic, tp.partition, tp.offset, tp.metadata or "", -1
            )
            for tp in answer.topic_partitions or ()
            if tp.offset >= 0 and tp.error is None
        }

    def _require_empty(self, group: str, what: str) -> Any:
        """The group's description; GroupNotEmpty while it has live members (by its members, or
        by its state: a Stable or rebalancing group has members even where a cluster does not
        list them)."""
        described = self._describe(group)
        if described.members or described.state in _LIVE:
            raise GroupNotEmpty(
                f"{what}: group {group} has live members ({_STATES.get(described.state, described.state)}, "
                f"{len(described.members)} listed); stop them first",
                group=group,
            )
        return described

    # -- the contract ---------------------------------------------------------------------------

    def list_groups(self) -> list[GroupSummary]:
        listed = self._wait(self._admin.list_consumer_groups(request_timeout=self._timeout_s), "list groups")
        ids = sorted(g.group_id for g in listed.valid)
        if not ids:
            return []
        futures = self._admin.describe_consumer_groups(ids, request_timeout=self._timeout_s)
        out = []
        for group in ids:
            d = self._wait(futures[group], f"describe group {group!r}")
            out.append(GroupSummary(group, _STATES.get(d.state, "Empty"), len(d.members)))
        return out

    def describe_group(self, group: str) -> GroupDescription:
        """State, members and per-partition lag (see the module docstring for what Kafka does not tell)."""
        d = self._describe(group)
        committed = self._committed(group)
        if not d.members and not committed:
            self._require_known(group, d)
        members = []
        owners: dict[TopicPartition, str] = {}
        for m in d.members:
            assigned = tuple(
                sorted(TopicPartition(tp.topic, tp.partition) for tp in (m.assignment.topic_partitions or ()))
            )
            owners.update((tp, m.member_id) for tp in assigned)
            members.append(MemberInfo(m.member_id, m.group_instance_id or None, m.client_id, assigned, 0))
        topics = sorted({tp.topic for tp in committed} | {tp.topic for tp in owners})
        rows: list[tuple[TopicPartition, int | None, int, int, int]] = []
        for topic in topics:
            wanted = sorted(
                {tp.partition for tp in committed if tp.topic == topic}
                | {tp.partition for tp in owners if tp.topic == topic}
            )
            starts = self._offsets(topic, OffsetSpec.earliest(), wanted)
            ends = self._offsets(topic, OffsetSpec.latest(), wanted)
            for p in wanted:
                tp = TopicPartition(topic, p)
                c = committed.get(tp)
                start, end = starts[p][0], ends[p][0]
                lag = max(0, end - (c.offset if c else start))
                rows.append((tp, c.offset if c else None, start, end, lag))
        # lag in time: now - the timestamp of the first record not consumed yet (read from Kafka)
        first = first_timestamps(
            self._config,
            [(tp.topic, tp.partition, c if c is not None else s) for tp, c, s, _, lag in rows if lag > 0],
            self._timeout_s,
        )
        now_ms = int(time.time() * 1000)
        partitions = [
            PartitionLag(
                tp.topic, tp.partition, c, start, end, lag,
                max(0, now_ms - first[(tp.topic, tp.partition)]) if (tp.topic, tp.partition) in first else 0,
                owners.get(tp),
            )
            for tp, c, start, end, lag in rows
        ]  # fmt: skip
        state = _STATES.get(d.state, "Empty")
        return GroupDescription(group, state, 0, d.partition_assignor or "", tuple(members), tuple(partitions))

    def _require_known(self, group: str, described: Any) -> None:
        """GroupNotFound unless the cluster knows ``group``, which has no members or committed
        offsets (Kafka describes an unknown group as Dead; a live one is listed or has a live state)."""
        if described.state in _LIVE:
            return
        if described.state != ConsumerGroupState.DEAD:
            listed = self._wait(self._admin.list_consumer_groups(request_timeout=self._timeout_s), "list groups")
            if any(g.group_id == group for g in listed.valid):
                return
        raise GroupNotFound(f"group {group} not found", group=group)

    def delete_group(self, group: str) -> None:
        """GroupNotFound for a group the cluster does not know, GroupNotEmpty while it has members."""
        described = self._require_empty(group, f"delete group {group!r}")
        if not self._committed(group):
            self._require_known(group, described)
        futures = self._admin.delete_consumer_groups([group], request_timeout=self._timeout_s)
        self._wait(futures[group], f"delete group {group!r}")

    def fetch_offsets(
        self, group: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        committed = self._committed(group)
        if partitions is None:
            return committed
        return {tp: committed[tp] for tp in map(lambda t: TopicPartition(*t), partitions) if tp in committed}

    def commit_offsets(
        self,
        group: str,
        offsets: Sequence[tuple[TopicPartition, int]],
        *,
        member_id: str = "",
        generation: int = -1,
    ) -> None:
        """Without a member only (GroupNotEmpty while the group has members); a member commits
        through its own Consumer on Kafka (FailedPrecondition here)."""
        if member_id:
            raise FailedPrecondition(
                f"commit for member {member_id} of group {group}: on Kafka a member commits through its own "
                "Consumer (Consumer.commit); the admin commits only for a group without members",
                group=group,
            )
        if not offsets:
            return
        self._require_empty(group, f"commit offsets of group {group!r}")
        self._alter(group, [(tp.topic, tp.partition, offset) for tp, offset in offsets])

    def _alter(self, group: str, offsets: Sequence[tuple[str, int, int]]) -> None:
        request = [ConsumerGroupTopicPartitions(group, [RdTopicPartition(t, p, o) for t, p, o in offsets])]
        futures = self._admin.alter_consumer_group_offsets(request, request_timeout=self._timeout_s)
        answer = self._wait(futures[group], f"commit offsets of group {group!r}")
        for tp in answer.topic_partitions or ():
            if tp.error is not None:
                raise translate(tp.error, f"commit offset of {tp.topic}/{tp.partition} for group {group!r}")

    def reset_offsets(
        self, group: str, topic: str, partitions: Sequence[int], spec: str, value: int, execute: bool
    ) -> ResetResult:
        wanted = self._partitions(topic, partitions)
        self._require_empty(group, f"reset offsets of group {group!r}")
        committed = self._committed(group)
        starts = self._offsets(topic, OffsetSpec.earliest(), wanted)
        ends = self._offsets(topic, OffsetSpec.latest(), wanted)
        if spec in ("datetime", "duration"):
            at = value if spec == "datetime" else int(time.time() * 1000) - value
            by_time = {p: found.offset for p, found in self.offsets_for_time(topic, at, wanted).items()}
        resets = []
        for p in wanted:
            before = committed.get(TopicPartition(topic, p))
            start, end = starts[p][0], ends[p][0]
            if spec == "earliest":
                target = start
            elif spec == "latest":
                target = end
            elif spec == "offset":
                target = value
            elif spec in ("datetime", "duration"):
                target = by_time[p]
            elif spec == "shift_by":
                target = (before.offset if before else start) + value
            else:
                raise InvalidRequest(
                    f"reset spec {spec!r} is not one of earliest, latest, offset, datetime, shift_by, duration"
                )
            after = min(max(target, start), end)
            resets.append(PartitionReset(topic, p, before.offset if before else None, after))
        if execute:
            self._require_empty(group, f"reset offsets of group {group!r}")
            self._alter(group, [(r.topic, r.partition, r.after) for r in resets])
        return ResetResult(group, execute, tuple(resets))
