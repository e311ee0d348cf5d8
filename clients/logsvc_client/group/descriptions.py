"""Value types describing consumer groups, built from the broker's answers.

Like :mod:`logsvc_client.topics`: the client never hands out a protobuf; ``*_from_pb`` turn the
broker's messages into these frozen dataclasses once, at the edge. "Nothing committed" is None
(the wire's -1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ..records import TopicPartition

ResetSpec = Literal["earliest", "latest", "offset", "datetime", "shift_by", "duration"]
"""How :meth:`Admin.reset_offsets` moves offsets; ``value`` is the offset (offset), epoch ms
(datetime), records to move, negative = back (shift_by), or ms before now (duration)."""


@dataclass(frozen=True)
class GroupMetadata:
    """Who a group consumer is right now: what its commits carry (fenced by the broker)."""

    group_id: str
    member_id: str  # "" while not a member
    generation: int  # -1 while not a member


@dataclass(frozen=True)
class GroupSummary:
    group: str
    state: str  # Empty | Stable | Reconciling
    members: int


@dataclass(frozen=True)
class MemberInfo:
    member_id: str
    instance_id: str | None  # the static membership id, None for a dynamic member
    client_id: str
    assignment: tuple[TopicPartition, ...]  # the member's target, sorted
    last_heartbeat_ms: int  # wall clock, ms since the epoch


@dataclass(frozen=True)
class PartitionLag:
    """One partition of a group: committed offset, the log's bounds, the lag and its owner."""

    topic: str
    partition: int
    committed_offset: int | None
    log_start_offset: int
    next_offset: int
    lag: int  # records between the committed offset (or the log start) and the end
    lag_ms: int  # now - timestamp of the first unconsumed record; 0 when caught up
    owner: str | None  # member id; None when no member holds it


@dataclass(frozen=True)
class GroupDescription:
    group: str
    state: str
    generation: int
    assignor: str
    members: tuple[MemberInfo, ...]
    partitions: tuple[PartitionLag, ...]


@dataclass(frozen=True)
class CommittedOffset:
    topic: str
    partition: int
    offset: int  # the next offset to consume
    metadata: str
    commit_time_ms: int


@dataclass(frozen=True)
class PartitionReset:
    topic: str
    partition: int
    before: int | None  # None: nothing was committed
    after: int  # clamped to [log start, next offset]


@dataclass(frozen=True)
class ResetResult:
    """The before/after of every partition; ``executed`` False for a dry run (nothing changed)."""

    group: str
    executed: bool
    resets: tuple[PartitionReset, ...]


def _offset(value: int) -> int | None:
    return None if value < 0 else int(value)


def _partitions(items: Iterable[Any]) -> tuple[TopicPartition, ...]:
    return tuple(sorted(TopicPartition(tp.topic, p) for tp in items for p in tp.partitions))


def summary_from_pb(msg: Any) -> GroupSummary:
    return GroupSummary(group=msg.group, state=msg.state, members=msg.members)


def description_from_pb(msg: Any) -> GroupDescription:
    members = tuple(
        MemberInfo(
            member_id=m.member_id,
            instance_id=m.instance_id or None,
            client_id=m.client_id,
            assignment=_partitions(m.assignment),
            last_heartbeat_ms=m.last_heartbeat_ms,
        )
        for m in msg.members
    )
    partitions = tuple(
        sorted(
            (
                PartitionLag(
                    topic=p.topic,
                    partition=p.partition,
                    committed_offset=_offset(p.committed_offset),
                    log_start_offset=p.log_start_offset,
                    next_offset=p.next_offset,
                    lag=p.lag,
                    lag_ms=p.lag_ms,
                    owner=p.owner or None,
                )
                for p in msg.partitions
            ),
            key=lambda p: (p.topic, p.partition),
        )
    )
    return GroupDescription(msg.group, msg.state, msg.generation, msg.assignor, members, partitions)


def committed_from_pb(msg: Any) -> CommittedOffset | None:
    if msg.offset < 0:
        return None
    return CommittedOffset(msg.topic, msg.partition, msg.offset, msg.metadata, msg.commit_time_ms)


def reset_from_pb(group: str, msg: Any) -> ResetResult:
    resets = tuple(PartitionReset(r.topic, r.partition, _offset(r.before), r.after) for r in msg.resets)
    return ResetResult(group=group, executed=msg.executed, resets=resets)
