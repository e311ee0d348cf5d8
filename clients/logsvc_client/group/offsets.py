"""A group's committed offsets: what the consumer and the admin check before committing.

The calls themselves are the transport's (:meth:`~logsvc_client.transport.base.ConsumeTransport.commit_offsets`
and :meth:`~logsvc_client.transport.base.ConsumeTransport.fetch_offsets`); both are safe to
repeat (a commit writes the same offsets again), so the transport retries them while the broker
is unavailable.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..records import TopicPartition, check_offset
from ..transport.base import AdminTransport, ConsumeTransport


def commit(
    transport: ConsumeTransport | AdminTransport,
    group: str,
    offsets: Mapping[TopicPartition, int],
    member_id: str = "",
    generation: int = -1,
) -> None:
    """Commit ``{partition: next offset to consume}`` for ``group``.

    With ``member_id``/``generation`` of a member: fenced (StaleGeneration, UnknownMember, or
    FailedPrecondition for a partition the member does not own). Without them: allowed only while
    the group has no live members (GroupNotEmpty otherwise). InvalidRequest for an offset that is
    not an int from 0 to 2^63 - 1 (:data:`~logsvc_client.records.MAX_OFFSET`), before anything is sent.
    """
    commits: list[tuple[TopicPartition, int]] = []
    for tp, offset in sorted(offsets.items()):
        tp = TopicPartition(*tp)
        commits.append((tp, check_offset(offset, f"cannot commit for {tp.topic}/{tp.partition} the offset")))
    if commits:
        transport.commit_offsets(group, commits, member_id=member_id, generation=generation)
