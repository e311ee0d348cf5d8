"""One consumer group as a pure state machine: no partition ever has two owners, over seeded random
joins, static restarts, heartbeats, leaves, crashes, clock jumps, expiries and topic changes.

The clock is a plain int (milliseconds); nothing sleeps.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pytest

from logsvc.groups import STABLE, Group
from logsvc_client.records import TopicPartition as TP


@dataclass
class Client:
    """A consumer process as the group sees it from outside: what it actually consumes."""

    member_id: str
    instance_id: str | None
    generation: int
    assigned: frozenset[TP]
    last_ok_ms: int
    holding: set[TP] = field(default_factory=set)
    revoked_seen_ms: dict[TP, int] = field(default_factory=dict)

    def received(self, generation: int, assignment: frozenset[TP], now_ms: int) -> None:
        self.generation, self.assigned, self.last_ok_ms = generation, assignment, now_ms
        self.holding |= assignment
        self.revoked_seen_ms = {tp: self.revoked_seen_ms.get(tp, now_ms) for tp in self.holding - assignment}

    def release_revoked(self) -> None:
        self.holding &= self.assigned
        self.revoked_seen_ms.clear()


SESSION_MS = 3_000
REBALANCE_MS = 4_000


def simulate(seed: int, assignor: str, steps: int = 250) -> None:
    rng = random.Random(seed)
    counter = itertools.count()
    group = Group("g", assignor=assignor)
    partitions = {"t0": 6, "t1": 3}
    clients: dict[str, Client] = {}
    now = 0

    def new_id() -> str:
        return f"m{next(counter):03d}"

    def join_client(instance_id: str | None) -> None:
        topics = rng.choice([{"t0"}, {"t0", "t1"}, {"t1", "t2"}])
        r = group.join(
            topics=topics,
            partitions_by_topic=partitions,
            now_ms=now,
            instance_id=instance_id,
            session_timeout_ms=SESSION_MS,
            rebalance_timeout_ms=REBALANCE_MS,
            assignor=assignor,
            id_factory=new_id,
        )
        client = Client(r.member_id, instance_id, r.generation, frozenset(), now)
        client.received(r.generation, r.assignment, now)
        clients[r.member_id] = client

    def check() -> None:
        # No partition is consumed by two live processes, nor held by two members on the broker
        seen: dict[TP, str] = {}
        for client in clients.values():
            for tp in client.holding:
                assert tp not in seen, f"step at {now} ms: {tp} consumed by {seen[tp]} and {client.member_id}"
                seen[tp] = client.member_id
            # and what a process consumes is what the broker believes it may hold
            assert client.holding <= group.members[client.member_id].owned
        held: dict[TP, str] = {}
        for member in group.members.values():
            for tp in member.owned:
                assert tp not in held, f"{tp} owned by {held[tp]} and {member.member_id}"
                held[tp] = member.member_id

    def client_side_timeouts() -> None:
        # As in Kafka, a client gives up all its partitions (and will join again) when its session
        # may have expired or a revoked partition outlived its rebalance timeout.
        for member_id, client in list(clients.items()):
            if now - client.last_ok_ms >= SESSION_MS or any(
                now - seen_ms >= REBALANCE_MS for seen_ms in client.revoked_seen_ms.values()
            ):
                del clients[member_id]

    for _ in range(steps):
        action = rng.choices(
            ["join", "restart", "heartbeat", "slow", "leave", "crash", "tick", "topics"],
            weights=[3, 1, 12, 3, 1, 1, 4, 1],
        )[0]
        live = sorted(clients)
        if action == "join" or not live:
            static = rng.random() < 0.3 and f"conn-{rng.randrange(4)}"
            if static and any(c.instance_id == static for c in clients.values()):
                static = False
            join_client(static or None)
        elif action == "restart":
            statics = [m for m in live if clients[m].instance_id]
            if statics:
                old = clients.pop(rng.choice(statics))  # the process dies; it consumes nothing any more
                join_client(old.instance_id)
        elif action in ("heartbeat", "slow"):
            client = clients[rng.choice(live)]
            if action == "heartbeat":
                client.release_revoked()
            r = group.heartbeat(client.member_id, client.generation, client.holding, now)
            client.received(r.generation, r.assignment, now)
        elif action == "leave":
            client = clients.pop(rng.choice(live))
            group.leave(client.member_id, now)
        elif action == "crash":
            del clients[rng.choice(live)]  # stops consuming at once; the broker notices on expiry
        elif action == "tick":
            now += rng.randint(1, SESSION_MS)
            client_side_timeouts()
            if rng.random() < 0.5:
                group.expire(now)
        elif action == "topics":
            partitions = {t: n for t, n in {"t0": rng.randint(4, 8), "t1": 3, "t2": 2}.items() if rng.random() < 0.8}
            group.update_topics(partitions, now)
        check()

    # Finally, with every live client heartbeating well, the group settles with everything owned
    # (crashed members expire meanwhile)
    for _ in range(SESSION_MS // 100 + 5):
        now += 100
        client_side_timeouts()
        for client in clients.values():
            client.release_revoked()
            r = group.heartbeat(client.member_id, client.generation, client.holding, now)
            client.received(r.generation, r.assignment, now)
        check()
    if not clients:
        return
    assert group.state == STABLE
    subscribed = {t for m in group.members.values() for t in m.topics}
    expected = {TP(t, p) for t in subscribed for p in range(partitions.get(t, 0))}
    assert set().union(*(c.holding for c in clients.values())) == expected


@pytest.mark.parametrize("assignor", ["range", "sticky"])
@pytest.mark.parametrize("seed", range(25))
def test_no_partition_ever_has_two_owners_over_random_joins_leaves_expiries_and_heartbeats(
    seed: int, assignor: str
) -> None:
    # Given a group and a seeded random sequence of joins, static restarts, heartbeats (prompt and
    # slow to release), leaves, crashes, clock jumps, expiries and topic changes
    # When each step is applied
    # Then (checked after every step) no partition is consumed by two processes or owned by two
    # members, and at the end the group settles with every subscribed partition owned
    simulate(seed, assignor)
