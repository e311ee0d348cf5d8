"""A group's committed offsets on the wire: the CommitOffsets and FetchOffsets calls that
:class:`~logsvc_client.Admin`, :class:`~logsvc_client.Consumer` and the group membership share.

Both are safe to repeat (a commit writes the same offsets again), so both are retried while the
broker is unavailable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._proto import logsvc_pb2 as pb
from ..errors import InvalidRequest
from ..records import TopicPartition
from ..transport import channel
from .descriptions import CommittedOffset, committed_from_pb


def partitions_to_pb(tps: Iterable[TopicPartition]) -> list[pb.TopicPartitions]:
    """``[TopicPartitions(topic, [p, ...]), ...]``, topics and partitions sorted."""
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(tps):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return [pb.TopicPartitions(topic=t, partitions=ps) for t, ps in by_topic.items()]


def partitions_from_pb(items: Iterable[Any]) -> frozenset[TopicPartition]:
    return frozenset(TopicPartition(tp.topic, p) for tp in items for p in tp.partitions)


def commit(
    stub: Any,
    retry: channel.RetryPolicy,
    group: str,
    offsets: Mapping[TopicPartition, int],
    member_id: str = "",
    generation: int = -1,
) -> None:
    """Commit ``{partition: next offset to consume}`` for ``group``.

    With ``member_id``/``generation`` of a member: fenced (StaleGeneration, UnknownMember, or
    FailedPrecondition for a partition the member does not own). Without them: allowed only while
    the group has no live members (GroupNotEmpty otherwise).
    """
    commits = []
    for tp, offset in sorted(offsets.items()):
        topic, partition = TopicPartition(*tp)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise InvalidRequest(f"cannot commit offset {offset!r} for {topic}/{partition}: use an int >= 0")
        commits.append(pb.OffsetCommit(topic=topic, partition=partition, offset=offset))
    if not commits:
        return
    request = pb.CommitOffsetsRequest(group=group, member_id=member_id, generation=generation, offsets=commits)
    channel.call_with_retry(stub.CommitOffsets, request, retry)


def fetch(
    stub: Any, retry: channel.RetryPolicy, group: str, tps: Iterable[TopicPartition] | None = None
) -> dict[TopicPartition, CommittedOffset]:
    """The committed offsets of ``group`` (of ``tps``, default every one it has); partitions with
    nothing committed are left out."""
    request = pb.FetchOffsetsRequest(group=group, partitions=partitions_to_pb(tps or ()))
    if tps is not None and not request.partitions:
        return {}
    response = channel.call_with_retry(stub.FetchOffsets, request, retry)
    out: dict[TopicPartition, CommittedOffset] = {}
    for msg in response.offsets:
        committed = committed_from_pb(msg)
        if committed is not None:
            out[TopicPartition(committed.topic, committed.partition)] = committed
    return out
