"""Members of one consumer group as the group tests drive them: joins, heartbeats, partitions, ids."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from logsvc.groups import Group, HeartbeatResult, JoinResult
from logsvc_client.records import TopicPartition as TP

T = "orders"


def tps(*partitions: int, topic: str = T) -> frozenset[TP]:
    return frozenset(TP(topic, p) for p in partitions)


def ids(*names: str) -> Callable[[], str]:
    """A member-id factory handing out ``names`` in order."""
    it = iter(names)
    return lambda: next(it)


def join(group: Group, now_ms: int, member_id: str | None = None, **kwargs: object) -> JoinResult:
    kwargs.setdefault("topics", {T})
    kwargs.setdefault("partitions_by_topic", {T: 4})
    return group.join(now_ms=now_ms, member_id=member_id, **kwargs)  # type: ignore[arg-type]


def beat(group: Group, member_id: str, now_ms: int, owned: Iterable[TP] | None = None) -> HeartbeatResult:
    """A well-behaved member's heartbeat: the group's generation, and it owns exactly what it was given
    (it releases revoked partitions at once)."""
    if owned is None:
        owned = group.assignment_of(member_id)
    return group.heartbeat(member_id, group.generation, owned, now_ms)
