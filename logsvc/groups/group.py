"""One consumer group: membership, the target assignment and the hand-over of partitions.

A pure, single-threaded state machine over plain data. Every operation takes ``now_ms`` from the
caller (the clock is injected), first removes members whose session expired, then acts.

The protocol is cooperative and server-side, like Kafka's KIP-848:

* The **target** assignment is what the assignor computed for the current members. The
  **generation** (group epoch) is bumped whenever membership, a subscription or the target changes.
* A member is handed its target *minus* partitions still held by another member. A member holds
  (``Member.owned``) every partition it was handed until it heartbeats with an ``owned`` set without
  it, leaves or expires. So a partition is never held by two members at once, and it moves from A
  to B only after A has released it.
* A member heartbeats with the generation it last saw and the partitions it still owns; the reply
  carries the current generation, its assignment and whether the group is still reconciling.
* An empty group that gets a member waits ``initial_delay_ms`` before handing out anything
  (Kafka's ``group.initial.rebalance.delay.ms``), each member joining meanwhile extending the wait
  by that much again, up to the longest rebalance timeout among them: members started together
  then share the backlog, instead of the first taking every partition and draining it alone.
  Meanwhile the answers say the group is reconciling, so members heartbeat sooner.
* A static member (``instance_id``) that joins again while its predecessor is still in the group
  replaces it; the predecessor's member id is **fenced**: whatever it sends from then on is refused
  with FencedInstance, so a second process configured with the same instance id stops instead of
  taking the slot back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from logsvc.groups.assignors import ASSIGNORS
from logsvc.groups.member import (
    DEFAULT_ASSIGNOR,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_REBALANCE_TIMEOUT_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    Member,
    format_partitions,
    new_member_id,
    validate_timeouts,
)
from logsvc_wire.errors import (
    FailedPrecondition,
    FencedInstance,
    GroupMaxSizeReached,
    GroupNotEmpty,
    InvalidRequest,
    StaleGeneration,
    UnknownMember,
)
from logsvc_wire.types import TopicPartition

EMPTY = "Empty"
STABLE = "Stable"
RECONCILING = "Reconciling"
#: How many replaced static member ids a group remembers (oldest forgotten first).
MAX_FENCED_MEMBERS = 1_000


class JoinResult(NamedTuple):
    member_id: str
    generation: int
    assignment: frozenset[TopicPartition]
    heartbeat_interval_ms: int


class HeartbeatResult(NamedTuple):
    generation: int
    assignment: frozenset[TopicPartition]
    rebalance_in_progress: bool
    heartbeat_interval_ms: int


@dataclass
class Group:
    group_id: str
    assignor: str = DEFAULT_ASSIGNOR
    generation: int = 0
    members: dict[str, Member] = field(default_factory=dict)
    target: dict[str, frozenset[TopicPartition]] = field(default_factory=dict)
    partitions_by_topic: dict[str, int] = field(default_factory=dict)
    heartbeat_interval_ms: int = DEFAULT_HEARTBEAT_INTERVAL_MS
    fenced: dict[str, str] = field(default_factory=dict)  # replaced member id -> its instance id
    #: How long an empty group waits for more members before its first assignment (see the module
    #: docstring); 0: at once.
    initial_delay_ms: int = 0
    #: While the group forms (an initial delay runs): (when it started, until when it waits).
    forming: tuple[int, int] | None = None
    #: When the group last became empty (its creation, its last member's leave or last heartbeat
    #: before its session expired); None while it has members. See :meth:`idle_expired`.
    empty_since_ms: int | None = None
    #: No member can have expired at or before this time (a lower bound of every member's
    #: :meth:`~Member.alive_until_ms`): :meth:`expire` scans the members only past it, so a
    #: heartbeat costs O(1), not O(members). Lowered whenever a member's deadline may come earlier.
    _alive_until_ms: float = field(default=float("-inf"), repr=False, compare=False)
    #: Ids of the members that are not settled (see :attr:`state`); None = to be recomputed.
    #: Kept up to date member by member, so :attr:`state` in every heartbeat answer is O(1).
    _unsettled: set[str] | None = field(default=None, repr=False, compare=False)

    # -- membership ---------------------------------------------------------------------------------

    def join(
        self,
        *,
        topics: Iterable[str],
        partitions_by_topic: Mapping[str, int],
        now_ms: int,
        member_id: str | None = None,
        instance_id: str | None = None,
        session_timeout_ms: int = DEFAULT_SESSION_TIMEOUT_MS,
        rebalance_timeout_ms: int = DEFAULT_REBALANCE_TIMEOUT_MS,
        assignor: str = DEFAULT_ASSIGNOR,
        client_id: str = "",
        id_factory: Callable[[], str] = new_member_id,
        max_members: int | None = None,
    ) -> JoinResult:
        """Join (or re-join) the group and get the member id, generation and assignment.

        * ``member_id`` None: a new member (id from ``id_factory``) — unless ``instance_id`` names
          a static member still in the group (restarted within its session timeout): the newcomer
          replaces it, with the same target and generation; the other members see no change.
        * ``member_id`` of a current member: updates its subscription and timeouts.
        * ``member_id`` unknown (left or expired): UnknownMember, unless a static ``instance_id``
          matches a current member as above.
        * ``member_id`` of a static member that was replaced: FencedInstance.
        * a new member while the group already has ``max_members``: GroupMaxSizeReached (Kafka's
          GROUP_MAX_SIZE_REACHED); re-joins and static replacements do not add a member.
        """
        subscription = frozenset(topics)
        validate_timeouts(session_timeout_ms, rebalance_timeout_ms)
        if not subscription:
            raise InvalidRequest(f"member {member_id or '(new)'} of group {self.group_id} subscribes to no topic")
        if assignor not in ASSIGNORS:
            raise InvalidRequest(f"unknown assignor {assignor!r} (known: {', '.join(sorted(ASSIGNORS))})")
        self.expire(now_ms)
        current = self.members.get(member_id) if member_id is not None else None
        static = self._static_member(instance_id)
        if current is not None and current.instance_id != instance_id:
            raise InvalidRequest(
                f"member {member_id} of group {self.group_id} has instance id {current.instance_id!r}, "
                f"not {instance_id!r}"
            )
        if member_id is not None and current is None:
            if member_id in self.fenced:
                raise self._fenced(member_id)
            if static is None:
                raise self._unknown(member_id)
        if current is None and static is None and max_members is not None and len(self.members) >= max_members:
            raise GroupMaxSizeReached(
                f"group {self.group_id} already has {len(self.members)} members, its maximum "
                f"(max_members_per_group={max_members}); member not added",
                group=self.group_id,
                max_members=max_members,
            )
        if self.members and assignor != self.assignor:
            raise FailedPrecondition(
                f"group {self.group_id} uses assignor {self.assignor!r}; a member asked for {assignor!r}"
            )
        self.assignor = assignor
        self.partitions_by_topic = dict(partitions_by_topic)
        joining = Member(
            member_id="",
            instance_id=instance_id,
            client_id=client_id,
            topics=subscription,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            last_heartbeat_ms=now_ms,
            acked_generation=self.generation,
        )
        if current is not None:
            member = replace(joining, member_id=current.member_id, owned=current.owned, revoking=current.revoking)
            self.members[member.member_id] = member
            self._reassign(bump=current.topics != subscription)
        elif static is not None:
            # A restarted static member takes over its predecessor's target; the predecessor is
            # fenced (its id is gone), so what it still held is released with it.
            member = replace(joining, member_id=id_factory())
            del self.members[static.member_id]
            self._fence(static)
            self.members[member.member_id] = member
            self.target[member.member_id] = self.target.pop(static.member_id)
            self._reassign(bump=static.topics != subscription)
        else:
            member = replace(joining, member_id=id_factory())
            self._start_forming(member, now_ms)
            self.members[member.member_id] = member
            self._reassign(bump=True)
        member.acked_generation = self.generation
        self.empty_since_ms = None
        assignment = self._hand_over(member, now_ms)
        return JoinResult(member.member_id, self.generation, assignment, self.heartbeat_interval_ms)

    def heartbeat(
        self, member_id: str, generation: int, owned: Iterable[TopicPartition], now_ms: int
    ) -> HeartbeatResult:
        """Keep the member alive, record what it still owns, and hand it its current assignment.

        ``generation`` is the newest one the member was told; ``owned`` the partitions it still
        consumes (a partition left out is released to its next owner). StaleGeneration (and no
        change) when ``generation`` is older than one the member already acknowledged or newer than
        the group's.
        """
        self.expire(now_ms)
        member = self._member(member_id)
        self._check_generation(member, generation, "heartbeat")
        member.last_heartbeat_ms = now_ms
        member.acked_generation = generation
        member.owned = member.owned & frozenset(owned)
        assignment = self._hand_over(member, now_ms)
        return HeartbeatResult(self.generation, assignment, self.state == RECONCILING, self.heartbeat_interval_ms)

    def leave(self, member_id: str, now_ms: int) -> None:
        """Remove the member (its partitions are released at once) and start a new generation."""
        self.expire(now_ms)
        self._member(member_id)
        self._remove([member_id], now_ms)

    def expire(self, now_ms: int) -> list[str]:
        """Remove members that missed their session timeout (or kept a revoked partition past their
        rebalance timeout); return their ids, sorted. A new generation starts when any are removed."""
        if now_ms <= self._alive_until_ms:
            return []
        gone = sorted(m.member_id for m in self.members.values() if m.expired(now_ms))
        if gone:
            self._remove(gone, max(self.members[m].last_heartbeat_ms for m in gone))
        self._alive_until_ms = min((m.alive_until_ms() for m in self.members.values()), default=float("inf"))
        return gone

    def idle_expired(self, now_ms: int, retention_ms: int) -> bool:
        """Whether the group has had no live member for longer than ``retention_ms`` (Kafka's
        offsets.retention.minutes): then the coordinator forgets it. Expires dead members first."""
        self.expire(now_ms)
        return not self.members and self.empty_since_ms is not None and now_ms - self.empty_since_ms > retention_ms

    def update_topics(self, partitions_by_topic: Mapping[str, int], now_ms: int) -> None:
        """Topics were created, deleted or grew: recompute the target (new generation if it changes)."""
        self.expire(now_ms)
        self.partitions_by_topic = dict(partitions_by_topic)
        self._reassign(bump=False)

    # -- commits ------------------------------------------------------------------------------------

    def check_commit(self, member_id: str, generation: int, partitions: Iterable[TopicPartition], now_ms: int) -> None:
        """Allow a member's offset commit, or raise (and change nothing).

        UnknownMember when it is not a member; StaleGeneration when ``generation`` is older than one it
        acknowledged or newer than the group's; FailedPrecondition when it does not own a partition
        (neither holds it nor may take it now).
        """
        self.expire(now_ms)
        member = self._member(member_id)
        self._check_generation(member, generation, "commit")
        foreign = frozenset(partitions) - member.owned - self._assignable(member)
        if foreign:
            raise FailedPrecondition(
                f"member {member_id} of group {self.group_id} does not own {format_partitions(foreign)} "
                f"(generation {self.generation})"
            )

    def require_empty(self, now_ms: int, doing: str) -> None:
        """GroupNotEmpty unless the group has no live members (offset resets, deletion, and commits
        from simple consumers that use no membership, like Kafka's generation -1 commits)."""
        self.expire(now_ms)
        if self.members:
            raise GroupNotEmpty(
                f"cannot {doing}: group {self.group_id} has {len(self.members)} live member(s): "
                f"{', '.join(sorted(self.members))}"
            )

    # -- state --------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """Empty (no members), Reconciling (a member lags the generation or does not yet hold exactly
        its target), or Stable."""
        if not self.members:
            return EMPTY
        if self._unsettled is None:
            self._unsettled = {m.member_id for m in self.members.values() if not self._settled(m)}
        return RECONCILING if self._unsettled else STABLE

    def _settled(self, member: Member) -> bool:
        return member.acked_generation >= self.generation and member.owned == self.target[member.member_id]

    def assignment_of(self, member_id: str) -> frozenset[TopicPartition]:
        """What the member may consume now: its target minus partitions others still hold."""
        return self._assignable(self._member(member_id))

    # -- internals ----------------------------------------------------------------------------------

    def _member(self, member_id: str) -> Member:
        member = self.members.get(member_id)
        if member is None:
            raise self._fenced(member_id) if member_id in self.fenced else self._unknown(member_id)
        return member

    def _fence(self, replaced: Member) -> None:
        assert replaced.instance_id is not None
        self.fenced[replaced.member_id] = replaced.instance_id
        while len(self.fenced) > MAX_FENCED_MEMBERS:
            del self.fenced[next(iter(self.fenced))]

    def _fenced(self, member_id: str) -> FencedInstance:
        instance_id = self.fenced[member_id]
        return FencedInstance(
            f"member {member_id} of group {self.group_id} was fenced: a newer member joined with its "
            f"instance id {instance_id!r} and took its partitions (is a second process configured with "
            f"instance id {instance_id!r}?)",
            instance_id=instance_id,
        )

    def _unknown(self, member_id: str) -> UnknownMember:
        return UnknownMember(
            f"member {member_id} is not in group {self.group_id} (it left or its session expired); join again",
            group=self.group_id,
            member_id=member_id,
        )

    def _static_member(self, instance_id: str | None) -> Member | None:
        if instance_id is None:
            return None
        return next((m for m in self.members.values() if m.instance_id == instance_id), None)

    def _check_generation(self, member: Member, generation: int, what: str) -> None:
        if generation < member.acked_generation or generation > self.generation:
            raise StaleGeneration(
                f"{what} from member {member.member_id} of group {self.group_id} carries generation "
                f"{generation}; the member is at generation {member.acked_generation} and the group at "
                f"{self.generation}",
                group=self.group_id,
                member_id=member.member_id,
                generation=generation,
                member_generation=member.acked_generation,
                group_generation=self.generation,
            )

    def _assignable(self, member: Member) -> frozenset[TopicPartition]:
        target = self.target[member.member_id]
        if target <= member.owned:  # a partition never has two owners: none of these is another's
            return target
        held_by_others: set[TopicPartition] = set()
        for other in self.members.values():
            if other is not member:
                held_by_others |= other.owned
        return self.target[member.member_id] - held_by_others

    def _start_forming(self, newcomer: Member, now_ms: int) -> None:
        """A new member joins: an empty group starts its initial delay, a forming one extends it
        (by the delay again, up to the longest rebalance timeout of its members since it began)."""
        if self.initial_delay_ms <= 0:
            return
        if not self.members:
            self.forming = (now_ms, now_ms + self.initial_delay_ms)
        elif self.forming is not None:
            began, _ = self.forming
            longest = max(m.rebalance_timeout_ms for m in (*self.members.values(), newcomer))
            self.forming = (began, min(now_ms + self.initial_delay_ms, began + longest))

    def _forming(self, now_ms: int) -> bool:
        """Whether the initial delay still runs (ended: forgotten)."""
        if self.forming is not None and now_ms >= self.forming[1]:
            self.forming = None
        return self.forming is not None

    def _hand_over(self, member: Member, now_ms: int) -> frozenset[TopicPartition]:
        """The member's assignment now (nothing while the group forms); from here on the member
        holds it."""
        if self._forming(now_ms):
            if self._unsettled is not None:
                self._unsettled.add(member.member_id)
            self._alive_until_ms = min(self._alive_until_ms, member.alive_until_ms())
            return frozenset()
        assignment = self._assignable(member)
        member.owned |= assignment
        member.told(self.target[member.member_id], now_ms)
        self._alive_until_ms = min(self._alive_until_ms, member.alive_until_ms())
        if self._unsettled is not None:
            if self._settled(member):
                self._unsettled.discard(member.member_id)
            else:
                self._unsettled.add(member.member_id)
        return assignment

    def _remove(self, member_ids: list[str], last_activity_ms: int) -> None:
        for member_id in member_ids:
            del self.members[member_id]
            self.target.pop(member_id, None)
        if not self.members:
            self.empty_since_ms = last_activity_ms
        self._reassign(bump=True)

    def _reassign(self, *, bump: bool) -> None:
        """Recompute the target; bump the generation when told to or when the target changed."""
        keys = {m.member_id: _assignor_key(m) for m in self.members.values()}
        subscriptions = {keys[m.member_id]: m.topics for m in self.members.values()}
        current = {keys[m]: tps for m, tps in self.target.items() if m in keys}
        by_key = ASSIGNORS[self.assignor](subscriptions, self.partitions_by_topic, current)
        target = {member_id: by_key[key] for member_id, key in keys.items()}
        if bump or target != self.target:
            self.generation += 1
        self.target = target
        self._unsettled = None
        for member in self.members.values():
            member.retarget(target[member.member_id])


def _assignor_key(member: Member) -> str:
    """Static members first, ordered by instance id, then dynamic ones by member id (as Kafka sorts
    them), so a restarted static member (new member id) sorts where its predecessor did."""
    return f"0:{member.instance_id}" if member.instance_id is not None else f"1:{member.member_id}"
