"""The broker's consumer-group coordinator: every group by id, behind one lock.

Membership lives in memory; committed offsets live in the store, and this module only decides
whether a commit is allowed (:meth:`Coordinator.check_commit`). The clock is the caller's: every
operation takes ``now_ms`` (the broker passes a monotonic clock), and expired members are removed
lazily whenever a group is touched, so a surviving member's next heartbeat — at most one heartbeat
interval after a session timeout — already carries the dead member's partitions. The broker may
also call :meth:`Coordinator.expire` periodically to keep ``describe``/metrics fresh.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple

from logsvc.groups.group import Group, HeartbeatResult, JoinResult
from logsvc.groups.member import (
    DEFAULT_ASSIGNOR,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_REBALANCE_TIMEOUT_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    new_member_id,
)
from logsvc_client.errors import GroupNotFound, InvalidRequest, UnknownMember
from logsvc_client.records import TopicPartition


class MemberDescription(NamedTuple):
    member_id: str
    instance_id: str | None
    client_id: str
    topics: tuple[str, ...]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    last_heartbeat_ms: int
    acked_generation: int
    assignment: tuple[TopicPartition, ...]  # the member's target, sorted
    owned: tuple[TopicPartition, ...]  # what it may still be consuming, sorted


class GroupDescription(NamedTuple):
    group_id: str
    state: str  # Empty | Stable | Reconciling
    generation: int
    assignor: str
    members: tuple[MemberDescription, ...]  # sorted by member id


class GroupSummary(NamedTuple):
    group_id: str
    state: str
    generation: int
    member_count: int


def describe_group(group: Group) -> GroupDescription:
    members = tuple(
        MemberDescription(
            member_id=m.member_id,
            instance_id=m.instance_id,
            client_id=m.client_id,
            topics=tuple(sorted(m.topics)),
            session_timeout_ms=m.session_timeout_ms,
            rebalance_timeout_ms=m.rebalance_timeout_ms,
            last_heartbeat_ms=m.last_heartbeat_ms,
            acked_generation=m.acked_generation,
            assignment=tuple(sorted(group.target[m.member_id])),
            owned=tuple(sorted(m.owned)),
        )
        for m in sorted(group.members.values(), key=lambda m: m.member_id)
    )
    return GroupDescription(group.group_id, group.state, group.generation, group.assignor, members)


class Coordinator:
    """Every consumer group of the broker. Thread-safe (one lock); :class:`Group` does the work.

    ``partitions_of(topic)`` is the topic's partition count, or None when it does not exist.
    """

    def __init__(
        self,
        partitions_of: Callable[[str], int | None],
        *,
        id_factory: Callable[[], str] = new_member_id,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
    ) -> None:
        self._partitions_of = partitions_of
        self._id_factory = id_factory
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._lock = threading.Lock()
        self.groups: dict[str, Group] = {}

    def join(
        self,
        group_id: str,
        *,
        topics: Iterable[str],
        now_ms: int,
        member_id: str | None = None,
        instance_id: str | None = None,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        rebalance_timeout_ms: int = DEFAULT_REBALANCE_TIMEOUT_MS,
        assignor: str = DEFAULT_ASSIGNOR,
        client_id: str = "",
    ) -> JoinResult:
        """Join ``group_id`` (created on first join); see :meth:`Group.join`."""
        if not group_id:
            raise InvalidRequest("group id must not be empty")
        topics = frozenset(topics)
        with self._lock:
            group = self.groups.get(group_id) or Group(group_id, heartbeat_interval_ms=self._heartbeat_interval_ms)
            subscribed = topics.union(*(m.topics for m in group.members.values()))
            result = group.join(
                topics=topics,
                partitions_by_topic=self._partitions(subscribed),
                now_ms=now_ms,
                member_id=member_id,
                instance_id=instance_id,
                session_timeout_ms=session_timeout_ms,
                rebalance_timeout_ms=rebalance_timeout_ms,
                assignor=assignor,
                client_id=client_id,
                id_factory=self._id_factory,
            )
            self.groups[group_id] = group
            return result

    def heartbeat(
        self, group_id: str, member_id: str, generation: int, owned: Iterable[TopicPartition], now_ms: int
    ) -> HeartbeatResult:
        with self._lock:
            return self._group_of(group_id, member_id).heartbeat(member_id, generation, owned, now_ms)

    def leave(self, group_id: str, member_id: str, now_ms: int) -> None:
        with self._lock:
            self._group_of(group_id, member_id).leave(member_id, now_ms)

    def check_commit(
        self,
        group_id: str,
        member_id: str | None,
        generation: int,
        partitions: Iterable[TopicPartition],
        now_ms: int,
    ) -> None:
        """Allow an offset commit or raise. With a member id: see :meth:`Group.check_commit`.
        Without one (None or "", Kafka's generation -1 commit of a consumer using ``assign()``): allowed
        only while the group has no live members (GroupNotEmpty otherwise)."""
        with self._lock:
            if not member_id:
                group = self.groups.get(group_id)
                if group is not None:
                    group.require_empty(now_ms, "commit without a member id")
                return
            self._group_of(group_id, member_id).check_commit(member_id, generation, partitions, now_ms)

    def expire(self, now_ms: int) -> dict[str, list[str]]:
        """Remove expired members from every group: {group id: removed member ids} (only non-empty)."""
        with self._lock:
            removed = {group_id: group.expire(now_ms) for group_id, group in self.groups.items()}
        return {group_id: ids for group_id, ids in removed.items() if ids}

    def topics_changed(self, now_ms: int) -> None:
        """A topic was created, deleted or grew: every group recomputes its target if it changes."""
        with self._lock:
            for group in self.groups.values():
                subscribed = frozenset().union(*(m.topics for m in group.members.values()))
                group.update_topics(self._partitions(subscribed), now_ms)

    def list_groups(self, now_ms: int) -> list[GroupSummary]:
        """The groups the coordinator knows (joined at least once since start-up), sorted by id.
        Groups known only from committed offsets are the store's to add."""
        with self._lock:
            out = []
            for group_id in sorted(self.groups):
                group = self.groups[group_id]
                group.expire(now_ms)
                out.append(GroupSummary(group_id, group.state, group.generation, len(group.members)))
            return out

    def describe(self, group_id: str, now_ms: int) -> GroupDescription:
        """GroupNotFound when the coordinator does not know the group."""
        with self._lock:
            group = self.groups.get(group_id)
            if group is None:
                raise GroupNotFound(f"group {group_id} not found")
            group.expire(now_ms)
            return describe_group(group)

    def require_empty(self, group_id: str, now_ms: int) -> None:
        """GroupNotEmpty while the group has live members (offset resets); unknown groups are empty."""
        with self._lock:
            group = self.groups.get(group_id)
            if group is not None:
                group.require_empty(now_ms, "reset offsets")

    def delete(self, group_id: str, now_ms: int) -> bool:
        """Forget an empty group; GroupNotEmpty while it has live members. Returns whether the
        coordinator knew it (the caller deletes the committed offsets and decides on GroupNotFound)."""
        with self._lock:
            group = self.groups.get(group_id)
            if group is None:
                return False
            group.require_empty(now_ms, "delete the group")
            del self.groups[group_id]
            return True

    def _group_of(self, group_id: str, member_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            raise UnknownMember(f"member {member_id} is not in group {group_id} (no such group); join again")
        return group

    def _partitions(self, topics: Iterable[str]) -> dict[str, int]:
        counts = {topic: self._partitions_of(topic) for topic in topics}
        return {topic: n for topic, n in counts.items() if n is not None}
