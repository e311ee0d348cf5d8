"""The broker's consumer-group coordinator: every group by id, each behind its own lock.

Membership lives in memory; committed offsets live in the store, and this module only decides
whether a commit is allowed (:meth:`Coordinator.check_commit`). The clock is the caller's: every
operation takes ``now_ms`` (the broker passes a monotonic clock), and expired members are removed
lazily whenever a group is touched, so a surviving member's next heartbeat — at most one heartbeat
interval after a session timeout — already carries the dead member's partitions. The broker may
also call :meth:`Coordinator.expire` periodically to keep ``describe``/metrics fresh, and calls
:meth:`Coordinator.expire_groups` to forget groups empty for longer than the offsets retention.

Locking: each group has its own lock, so joins and heartbeats of different groups never wait for
each other; a short lock guards only the dict of groups. A group's lock may be held while taking
the dict lock, never the other way round. A group removed (deleted or expired) is marked so under
its own lock, and an operation that got hold of it just before retries with the dict's current one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

from logsvc.groups.group import Group, HeartbeatResult, JoinResult
from logsvc.groups.member import (
    DEFAULT_ASSIGNOR,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_REBALANCE_TIMEOUT_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    check_id_length,
    new_member_id,
)
from logsvc_wire.errors import GroupNotFound, InvalidRequest, UnknownMember
from logsvc_wire.types import TopicPartition


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


class _Slot:
    """A group and the lock that guards it; ``removed`` once it left the coordinator's dict."""

    __slots__ = ("group", "lock", "removed")

    def __init__(self, group: Group) -> None:
        self.group = group
        self.lock = threading.Lock()
        self.removed = False


class Coordinator:
    """Every consumer group of the broker. Thread-safe (a lock per group); :class:`Group` does the work.

    ``partitions_of(topic)`` is the topic's partition count, or None when it does not exist.
    ``max_members_per_group`` caps each group's members (GroupMaxSizeReached beyond it); the broker
    passes its setting of that name, None means no cap.
    """

    def __init__(
        self,
        partitions_of: Callable[[str], int | None],
        *,
        id_factory: Callable[[], str] = new_member_id,
        heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS,
        max_members_per_group: int | None = None,
        initial_rebalance_delay_ms: int = 0,
    ) -> None:
        self._partitions_of = partitions_of
        self._id_factory = id_factory
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._max_members = max_members_per_group
        self._initial_delay_ms = initial_rebalance_delay_ms
        self._lock = threading.Lock()  # guards self._slots only; never held while taking a group's lock
        self._slots: dict[str, _Slot] = {}

    @property
    def groups(self) -> dict[str, Group]:
        """A snapshot of the groups by id (read their state through the coordinator's methods)."""
        with self._lock:
            return {group_id: slot.group for group_id, slot in self._slots.items()}

    @contextmanager
    def _locked(self, group_id: str, *, create_at_ms: int | None = None) -> Iterator[Group | None]:
        """Hold ``group_id``'s lock and yield its group (None when unknown, unless ``create_at_ms``
        says to create it, empty since then). Retries when the group was removed meanwhile."""
        while True:
            with self._lock:
                slot = self._slots.get(group_id)
                if slot is None and create_at_ms is not None:
                    group = Group(
                        group_id,
                        heartbeat_interval_ms=self._heartbeat_interval_ms,
                        initial_delay_ms=self._initial_delay_ms,
                    )
                    group.empty_since_ms = create_at_ms
                    slot = self._slots[group_id] = _Slot(group)
            if slot is None:
                yield None
                return
            with slot.lock:
                if slot.removed:
                    continue
                yield slot.group
                return

    def _remove_locked(self, group_id: str, group: Group) -> None:
        """Forget ``group`` (its lock held by the caller)."""
        with self._lock:
            slot = self._slots.get(group_id)
            if slot is not None and slot.group is group:
                slot.removed = True
                del self._slots[group_id]

    def _snapshot(self) -> list[tuple[str, _Slot]]:
        with self._lock:
            return sorted(self._slots.items(), key=lambda item: item[0])

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
        """Join ``group_id`` (created on first join); see :meth:`Group.join`. InvalidRequest for a
        client or instance id longer than MAX_ID_BYTES; GroupMaxSizeReached when the group is full."""
        if not group_id:
            raise InvalidRequest("group id must not be empty")
        check_id_length("client_id", client_id)
        check_id_length("instance_id", instance_id)
        topics = frozenset(topics)
        with self._locked(group_id, create_at_ms=now_ms) as group:
            assert group is not None
            subscribed = topics.union(*(m.topics for m in group.members.values()))
            try:
                return group.join(
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
                    max_members=self._max_members,
                )
            except BaseException:
                if group.generation == 0:  # a failed first join leaves no group behind
                    self._remove_locked(group_id, group)
                raise

    def heartbeat(
        self, group_id: str, member_id: str, generation: int, owned: Iterable[TopicPartition], now_ms: int
    ) -> HeartbeatResult:
        with self._locked(group_id) as group:
            return self._known(group, group_id, member_id).heartbeat(member_id, generation, owned, now_ms)

    def leave(self, group_id: str, member_id: str, now_ms: int) -> None:
        with self._locked(group_id) as group:
            self._known(group, group_id, member_id).leave(member_id, now_ms)

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
        with self._locked(group_id) as group:
            if not member_id:
                if group is not None:
                    group.require_empty(now_ms, "commit without a member id")
                return
            self._known(group, group_id, member_id).check_commit(member_id, generation, partitions, now_ms)

    def expire(self, now_ms: int) -> dict[str, list[str]]:
        """Remove expired members from every group: {group id: removed member ids} (only non-empty)."""
        removed = {}
        for group_id, slot in self._snapshot():
            with slot.lock:
                if not slot.removed:
                    removed[group_id] = slot.group.expire(now_ms)
        return {group_id: ids for group_id, ids in removed.items() if ids}

    def expire_groups(self, now_ms: int, retention_ms: int) -> list[str]:
        """Forget every group that has had no live member for longer than ``retention_ms`` (see
        :meth:`Group.idle_expired`); return their ids, sorted. Their committed offsets are the
        caller's to expire (:meth:`logsvc.storage.base.Store.expire_group_offsets`)."""
        gone = []
        for group_id, slot in self._snapshot():
            with slot.lock:
                if not slot.removed and slot.group.idle_expired(now_ms, retention_ms):
                    self._remove_locked(group_id, slot.group)
                    gone.append(group_id)
        return gone

    def topics_changed(self, now_ms: int) -> None:
        """A topic was created, deleted or grew: every group recomputes its target if it changes."""
        for _, slot in self._snapshot():
            with slot.lock:
                if not slot.removed:
                    group = slot.group
                    subscribed = frozenset().union(*(m.topics for m in group.members.values()))
                    group.update_topics(self._partitions(subscribed), now_ms)

    def list_groups(self, now_ms: int) -> list[GroupSummary]:
        """The groups the coordinator knows (joined since start-up and not expired), sorted by id.
        Groups known only from committed offsets are the store's to add."""
        out = []
        for group_id, slot in self._snapshot():
            with slot.lock:
                if not slot.removed:
                    group = slot.group
                    group.expire(now_ms)
                    out.append(GroupSummary(group_id, group.state, group.generation, len(group.members)))
        return out

    def describe(self, group_id: str, now_ms: int) -> GroupDescription:
        """GroupNotFound when the coordinator does not know the group."""
        with self._locked(group_id) as group:
            if group is None:
                raise GroupNotFound(f"group {group_id} not found")
            group.expire(now_ms)
            return describe_group(group)

    def require_empty(self, group_id: str, now_ms: int) -> None:
        """GroupNotEmpty while the group has live members (offset resets); unknown groups are empty."""
        with self._locked(group_id) as group:
            if group is not None:
                group.require_empty(now_ms, "reset offsets")

    def delete(self, group_id: str, now_ms: int) -> bool:
        """Forget an empty group; GroupNotEmpty while it has live members. Returns whether the
        coordinator knew it (the caller deletes the committed offsets and decides on GroupNotFound)."""
        with self._locked(group_id) as group:
            if group is None:
                return False
            group.require_empty(now_ms, "delete the group")
            self._remove_locked(group_id, group)
            return True

    def _known(self, group: Group | None, group_id: str, member_id: str) -> Group:
        if group is None:
            raise UnknownMember(f"member {member_id} is not in group {group_id} (no such group); join again")
        return group

    def _partitions(self, topics: Iterable[str]) -> dict[str, int]:
        counts = {topic: self._partitions_of(topic) for topic in topics}
        return {topic: n for topic, n in counts.items() if n is not None}
