"""Partition assignors: pure functions from subscriptions and partition counts to an assignment.

Every assignor has the same shape (:data:`Assignor`)::

    assign(members, partitions, current) -> {member_id: frozenset[TopicPartition]}

* ``members`` maps each member id to the topics it subscribes to;
* ``partitions`` maps each existing topic to its partition count (a subscribed topic missing from
  it does not exist and is simply not assigned);
* ``current`` is the assignment in force (ignored by :func:`range_assign`).

The result has an entry for every member (an empty set when it gets nothing), every partition of
a subscribed, existing topic is assigned to exactly one member subscribed to that topic, and the
result depends only on the arguments (no randomness, no dict-order dependence).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Set

from logsvc_wire.types import TopicPartition

Assignment = dict[str, frozenset[TopicPartition]]
Assignor = Callable[[Mapping[str, Set[str]], Mapping[str, int], Mapping[str, frozenset[TopicPartition]]], Assignment]


def range_assign(
    members: Mapping[str, Set[str]],
    partitions: Mapping[str, int],
    current: Mapping[str, frozenset[TopicPartition]] | None = None,
) -> Assignment:
    """Kafka's RangeAssignor: per topic, the subscribed members sorted by id each get a contiguous
    range of partitions; when they do not divide evenly the first members get one extra.

    ``current`` is accepted for the common :data:`Assignor` shape and ignored (range is stateless).
    """
    out: dict[str, set[TopicPartition]] = {m: set() for m in members}
    for topic in sorted(_subscribed_topics(members, partitions)):
        subscribers = sorted(m for m, topics in members.items() if topic in topics)
        per_member, extra = divmod(partitions[topic], len(subscribers))
        start = 0
        for i, member in enumerate(subscribers):
            count = per_member + (1 if i < extra else 0)
            out[member].update(TopicPartition(topic, p) for p in range(start, start + count))
            start += count
    return {m: frozenset(tps) for m, tps in out.items()}


def sticky_assign(
    members: Mapping[str, Set[str]],
    partitions: Mapping[str, int],
    current: Mapping[str, frozenset[TopicPartition]],
) -> Assignment:
    """A balanced assignment that keeps as much of ``current`` as balance allows.

    Balanced: the partition counts of members with the same subscription differ by at most one.
    Steps: keep every still-valid current ownership (the topic exists, has that partition, and the
    owner still subscribes to it); give each unowned partition to the least-loaded subscriber
    (partitions with the fewest possible owners first); then, while some member holds at least two
    more partitions than another member that could take one of them, move one — a partition it was
    given in this round if it has one (else its highest), so owned partitions move only for balance.
    Every move lowers the sum of squared counts, so the loop ends.
    """
    valid = {
        TopicPartition(topic, p) for topic in _subscribed_topics(members, partitions) for p in range(partitions[topic])
    }
    owner: dict[TopicPartition, str] = {}
    out: dict[str, set[TopicPartition]] = {m: set() for m in members}
    for member in sorted(members):
        for tp in sorted(current.get(member, frozenset())):
            if tp in valid and tp not in owner and tp.topic in members[member]:
                owner[tp] = member
                out[member].add(tp)

    def eligible(tp: TopicPartition) -> list[str]:
        return [m for m in sorted(members) if tp.topic in members[m]]

    unowned = sorted((tp for tp in valid if tp not in owner), key=lambda tp: (len(eligible(tp)), tp))
    for tp in unowned:
        member = min(eligible(tp), key=lambda m: (len(out[m]), m))
        out[member].add(tp)

    while (move := _next_move(members, out, current)) is not None:
        donor, receiver, tp = move
        out[donor].remove(tp)
        out[receiver].add(tp)
    return {m: frozenset(tps) for m, tps in out.items()}


ASSIGNORS: dict[str, Assignor] = {"range": range_assign, "sticky": sticky_assign}


def _subscribed_topics(members: Mapping[str, Set[str]], partitions: Mapping[str, int]) -> set[str]:
    """Topics that some member subscribes to and that exist with at least one partition."""
    return {t for topics in members.values() for t in topics if partitions.get(t, 0) > 0}


def _next_move(
    members: Mapping[str, Set[str]],
    out: Mapping[str, set[TopicPartition]],
    current: Mapping[str, frozenset[TopicPartition]],
) -> tuple[str, str, TopicPartition] | None:
    """The first (donor, receiver, partition) move that reduces imbalance, or None when balanced."""
    donors = sorted(out, key=lambda m: (-len(out[m]), m))
    receivers = sorted(out, key=lambda m: (len(out[m]), m))
    for donor in donors:
        for receiver in receivers:
            if len(out[donor]) - len(out[receiver]) < 2:
                break
            movable = [tp for tp in out[donor] if tp.topic in members[receiver]]
            if movable:
                kept = current.get(donor, frozenset())
                return donor, receiver, max(movable, key=lambda tp: (tp not in kept, tp))
    return None
