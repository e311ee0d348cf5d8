"""A heartbeat costs O(1) in the group's size, not O(members): the group keeps a lower bound of
its members' deadlines and the set of unsettled members. These tests hold that bookkeeping to the
brute-force definitions over long random runs (joins, heartbeats that keep or drop partitions,
leaves, silence past timeouts, static restarts, topic growth)."""

from __future__ import annotations

import random

import pytest

from logsvc.groups import EMPTY, RECONCILING, STABLE, Group
from logsvc_client.errors import LogsvcError
from tests.groups.members import T, join


def brute_state(group: Group) -> str:
    if not group.members:
        return EMPTY
    for m in group.members.values():
        if m.acked_generation < group.generation or m.owned != group.target[m.member_id]:
            return RECONCILING
    return STABLE


@pytest.mark.parametrize("seed", range(20))
def test_state_and_expiry_agree_with_their_definitions_over_random_runs(seed: int) -> None:
    rng = random.Random(seed)
    group = Group("g")
    now = 0
    partitions = 8
    for _ in range(600):
        now += rng.choice((0, 1, 50, 500, 3_000, 12_000))
        # Given whatever happened so far, no member the definition calls expired survives expire()
        expected_gone = sorted(m.member_id for m in group.members.values() if m.expired(now))
        assert group.expire(now) == expected_gone
        # And the state is the definition's
        assert group.state == brute_state(group)
        op = rng.random()
        ids = sorted(group.members)
        try:
            if op < 0.15 or not ids:
                instance = rng.choice((None, None, "static-a", "static-b"))
                join(group, now, instance_id=instance, session_timeout_ms=rng.choice((6_000, 10_000, 30_000)),
                     partitions_by_topic={T: partitions})  # fmt: skip
            elif op < 0.75:
                member = rng.choice(ids)
                given = group.assignment_of(member) | group.members[member].owned
                owned = [tp for tp in given if rng.random() < 0.8]  # sometimes keeps too little
                group.heartbeat(member, group.generation, owned, now)
            elif op < 0.85:
                group.leave(rng.choice(ids), now)
            elif op < 0.9:
                partitions += 1
                group.update_topics({T: partitions}, now)
            else:
                member = rng.choice(ids)  # a re-join of a current member
                join(group, now, member_id=member, instance_id=group.members[member].instance_id,
                     partitions_by_topic={T: partitions})  # fmt: skip
        except LogsvcError:
            pass
        assert group.state == brute_state(group)
