"""Consumer-group RPCs of the Broker servicer: membership goes to the coordinator
(:mod:`logsvc.groups`), committed offsets to the store, lag is computed from both.

Membership uses a monotonic clock (session expiry must not jump with the wall clock); committed
offsets, lag in seconds and last-heartbeat times use the wall clock. Groups empty for longer than
``offsets_retention_minutes`` are expired by :meth:`GroupRpcs.expire_groups`, which the broker
calls every ``retention_check_interval_ms``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from logsvc.errors import GroupNotFound, InvalidRequest, OffsetOutOfRange
from logsvc.groups import Coordinator
from logsvc.groups.member import DEFAULT_SESSION_TIMEOUT_MS
from logsvc.server.calls import Call
from logsvc.server.lag import partition_lag
from logsvc.server.limits import MAX_ID_BYTES, MAX_METADATA_BYTES, check_length
from logsvc.settings import Settings
from logsvc.storage.base import CommittedOffset, PartitionState, Store
from logsvc.topic_config import check_partition, check_topic_name
from logsvc_client._proto import logsvc_pb2 as pb
from logsvc_client.group.descriptions import RESET_METADATA
from logsvc_client.records import TopicPartition

Spec = pb.ResetOffsetsRequest
log = logging.getLogger("logsvc.groups")


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def check_group_id(group: str) -> str:
    """Group ids follow the topic-name rules, so they are safe in metrics labels and file names."""
    try:
        return check_topic_name(group)
    except InvalidRequest:
        raise InvalidRequest(f"invalid group id {group!r}: use 1 to 249 of [A-Za-z0-9._-], not '.' or '..'") from None


def to_pb(tps: Iterable[TopicPartition]) -> list[pb.TopicPartitions]:
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(tps):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return [pb.TopicPartitions(topic=t, partitions=ps) for t, ps in by_topic.items()]


def from_pb(items: Iterable[pb.TopicPartitions]) -> set[TopicPartition]:
    return {TopicPartition(tp.topic, p) for tp in items for p in tp.partitions}


class GroupRpcs:
    """Mixin for the Broker servicer (see :class:`logsvc.server.service.BrokerService`)."""

    store: Store
    settings: Settings
    coordinator: Coordinator
    clock_ms: Callable[[], int]
    mono_ms: Callable[[], int]

    def expire_groups(self) -> list[str]:
        """Forget every group with no live member and no activity for ``offsets_retention_minutes``:
        its membership state (monotonic clock) and its committed offsets (commit times are wall
        clock). Return the groups removed, sorted.

        A group still known to the coordinator keeps its offsets; the dict of groups is not locked,
        so a group first joined while this runs may lose offsets committed before the retention —
        as a group that was gone for that long would have."""
        retention_ms = self.settings.offsets_retention_minutes * 60_000
        forgotten = self.coordinator.expire_groups(self.mono_ms(), retention_ms)
        known = self.coordinator.groups.keys()
        expired = self.store.expire_group_offsets(self.clock_ms() - retention_ms, keep=known)
        gone = sorted((set(forgotten) - set(self.store.list_groups())) | set(expired))
        if gone:
            log.info(
                "expired %d consumer group(s) idle for over %d minutes: %s%s",
                len(gone),
                self.settings.offsets_retention_minutes,
                ", ".join(gone[:10]),
                f" and {len(gone) - 10} more" if len(gone) > 10 else "",
            )
        return gone

    def _partitions_of(self, topic: str) -> int:
        return self.store.topic(check_topic_name(topic)).partitions

    def JoinGroup(self, request: pb.JoinGroupRequest, call: Call) -> pb.JoinGroupResponse:
        group = check_group_id(request.group)
        if not request.topics:
            raise InvalidRequest(f"join of group {group} subscribes to no topics")
        for topic in request.topics:
            self._partitions_of(topic)  # TopicNotFound names an unknown topic at once
        session_timeout_ms = request.session_timeout_ms or DEFAULT_SESSION_TIMEOUT_MS
        result = self.coordinator.join(
            group,
            topics=list(request.topics),
            now_ms=self.mono_ms(),
            member_id=check_length("member_id", request.member_id, MAX_ID_BYTES) or None,
            instance_id=check_length("instance_id", request.instance_id, MAX_ID_BYTES) or None,
            session_timeout_ms=session_timeout_ms,
            assignor=check_length("assignor", request.assignor, MAX_ID_BYTES) or "sticky",
            client_id=check_length("client_id", request.client_id, MAX_ID_BYTES),
        )
        return pb.JoinGroupResponse(
            member_id=result.member_id,
            generation=result.generation,
            assignment=to_pb(result.assignment),
            heartbeat_interval_ms=result.heartbeat_interval_ms,
            session_timeout_ms=session_timeout_ms,
        )

    def Heartbeat(self, request: pb.HeartbeatRequest, call: Call) -> pb.HeartbeatResponse:
        result = self.coordinator.heartbeat(
            check_group_id(request.group),
            check_length("member_id", request.member_id, MAX_ID_BYTES),
            request.generation,
            from_pb(request.owned),
            self.mono_ms(),
        )
        return pb.HeartbeatResponse(
            generation=result.generation,
            assignment=to_pb(result.assignment),
            rebalance_in_progress=result.rebalance_in_progress,
            heartbeat_interval_ms=result.heartbeat_interval_ms,
        )

    def LeaveGroup(self, request: pb.LeaveGroupRequest, call: Call) -> pb.LeaveGroupResponse:
        self.coordinator.leave(
            check_group_id(request.group), check_length("member_id", request.member_id, MAX_ID_BYTES), self.mono_ms()
        )
        return pb.LeaveGroupResponse()

    def _check_offsets(self, commits: Sequence[pb.OffsetCommit]) -> None:
        states: dict[str, list[PartitionState]] = {}
        for c in commits:
            if c.topic not in states:
                states[c.topic] = self.store.partition_states(check_topic_name(c.topic))
            st = states[c.topic]
            check_partition(c.topic, c.partition, len(st))
            nxt = st[c.partition].next_offset
            if c.offset > nxt:
                raise OffsetOutOfRange(
                    f"commit of offset {c.offset} for {c.topic}/{c.partition} is past its next offset {nxt}"
                )

    def CommitOffsets(self, request: pb.CommitOffsetsRequest, call: Call) -> pb.CommitOffsetsResponse:
        group = check_group_id(request.group)
        if not request.offsets:
            return pb.CommitOffsetsResponse()
        check_length("member_id", request.member_id, MAX_ID_BYTES)
        for i, c in enumerate(request.offsets):
            check_length(f"offsets[{i}].metadata", c.metadata, MAX_METADATA_BYTES)
        self._check_offsets(request.offsets)
        tps = [TopicPartition(c.topic, c.partition) for c in request.offsets]
        self.coordinator.check_commit(group, request.member_id or None, request.generation, tps, self.mono_ms())
        self.store.commit_offsets(
            group, [(c.topic, c.partition, c.offset, c.metadata) for c in request.offsets], self.clock_ms()
        )
        return pb.CommitOffsetsResponse()

    def FetchOffsets(self, request: pb.FetchOffsetsRequest, call: Call) -> pb.FetchOffsetsResponse:
        group = check_group_id(request.group)
        committed = {(c.topic, c.partition): c for c in self.store.committed_offsets(group)}
        wanted = sorted(from_pb(request.partitions)) if request.partitions else sorted(committed)
        out = pb.FetchOffsetsResponse()
        for topic, partition in wanted:
            c = committed.get((topic, partition))
            if c is None:
                out.offsets.add(topic=topic, partition=partition, offset=-1, commit_time_ms=-1)
            else:
                out.offsets.add(topic=topic, partition=partition, offset=c.offset, metadata=c.metadata)
                out.offsets[-1].commit_time_ms = c.commit_time_ms
        return out

    def ListGroups(self, request: pb.ListGroupsRequest, call: Call) -> pb.ListGroupsResponse:
        live = {g.group_id: g for g in self.coordinator.list_groups(self.mono_ms())}
        out = pb.ListGroupsResponse()
        for group in sorted(set(live) | set(self.store.list_groups())):
            g = live.get(group)
            out.groups.add(group=group, state=g.state if g else "Empty", members=g.member_count if g else 0)
        return out

    def DescribeGroup(self, request: pb.DescribeGroupRequest, call: Call) -> pb.GroupDescription:
        group = check_group_id(request.group)
        mono, wall = self.mono_ms(), self.clock_ms()
        try:
            desc = self.coordinator.describe(group, mono)
        except GroupNotFound:
            if group not in self.store.list_groups():
                raise GroupNotFound(f"group {group} not found") from None
            desc = None
        out = pb.GroupDescription(group=group, state="Empty", generation=0, assignor="")
        owners: dict[TopicPartition, str] = {}
        topics: set[str] = set()
        if desc is not None:
            out.state, out.generation, out.assignor = desc.state, desc.generation, desc.assignor
            for m in desc.members:
                out.members.add(
                    member_id=m.member_id,
                    instance_id=m.instance_id or "",
                    client_id=m.client_id,
                    assignment=to_pb(m.assignment),
                    last_heartbeat_ms=wall - (mono - m.last_heartbeat_ms),
                )
                topics.update(m.topics)
                for tp in m.owned or m.assignment:
                    owners[tp] = m.member_id
        for lag in partition_lag(self.store, group, wall, topics):
            out.partitions.add(
                topic=lag.topic,
                partition=lag.partition,
                committed_offset=lag.committed,
                log_start_offset=lag.log_start,
                next_offset=lag.next_offset,
                lag=lag.lag,
                lag_ms=lag.lag_ms,
                owner=owners.get(TopicPartition(lag.topic, lag.partition), ""),
            )
        return out

    def _reset_target(self, spec: int, value: int, topic: str, partition: int, before: CommittedOffset | None) -> int:
        st = self.store.partition_states(topic)[partition]
        if spec == Spec.EARLIEST:
            target = st.log_start_offset
        elif spec == Spec.LATEST:
            target = st.next_offset
        elif spec == Spec.OFFSET:
            target = value
        elif spec == Spec.DATETIME:
            target = self.store.offset_for_time(topic, partition, value).offset
        elif spec == Spec.DURATION:
            target = self.store.offset_for_time(topic, partition, self.clock_ms() - value).offset
        elif spec == Spec.SHIFT_BY:
            target = (before.offset if before else st.log_start_offset) + value
        else:
            raise InvalidRequest(f"unknown reset spec {spec}")
        return min(max(target, st.log_start_offset), st.next_offset)

    def ResetOffsets(self, request: pb.ResetOffsetsRequest, call: Call) -> pb.ResetOffsetsResponse:
        group = check_group_id(request.group)
        meta = self.store.topic(check_topic_name(request.topic))
        partitions = sorted(set(request.partitions)) or list(range(meta.partitions))
        for p in partitions:
            check_partition(meta.name, p, meta.partitions)
        self.coordinator.require_empty(group, self.mono_ms())
        committed = {(c.topic, c.partition): c for c in self.store.committed_offsets(group)}
        out = pb.ResetOffsetsResponse(executed=request.execute)
        changes = []
        for p in partitions:
            before = committed.get((meta.name, p))
            after = self._reset_target(request.spec, request.value, meta.name, p, before)
            out.resets.add(topic=meta.name, partition=p, before=before.offset if before else -1, after=after)
            changes.append((meta.name, p, after, RESET_METADATA))
        if request.execute:
            self.coordinator.require_empty(group, self.mono_ms())
            self.store.commit_offsets(group, changes, self.clock_ms())
        return out

    def DeleteGroup(self, request: pb.DeleteGroupRequest, call: Call) -> pb.DeleteGroupResponse:
        group = check_group_id(request.group)
        known = self.coordinator.delete(group, self.mono_ms())
        deleted = self.store.delete_group_offsets(group)
        if not known and not deleted:
            raise GroupNotFound(f"group {group} not found")
        return pb.DeleteGroupResponse()
