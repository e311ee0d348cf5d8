"""Admin: topics, offsets, trimming, consumer groups, access control (ACLs, quotas, whoami: see
:mod:`logsvc_client.access`), and the broker-partitioned produce path for simple clients.

Read-only and idempotent operations (describe, list, offsets, trim, commits, dry-run resets) are
retried while the broker is unavailable; create, delete, executed resets and produce_records are
not (a repeat could fail, duplicate, or shift twice).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ._proto import logsvc_pb2 as pb
from .access import AccessAdmin
from .errors import InvalidRequest
from .group import offsets as group_offsets
from .group.descriptions import (
    CommittedOffset,
    GroupDescription,
    GroupMetadata,
    GroupSummary,
    ResetResult,
    ResetSpec,
    reset_from_pb,
)
from .group.descriptions import description_from_pb as group_description_from_pb
from .group.descriptions import summary_from_pb as group_summary_from_pb
from .records import ProducerRecord, RecordPosition, TopicPartition, to_bytes, to_headers
from .security import Security
from .topics import (
    OffsetAndTimestamp,
    TopicDescription,
    TopicSummary,
    description_from_pb,
    summary_from_pb,
)
from .transport import channel
from .transport.base import OffsetSpec
from .transport.grpc import GrpcTransport, offsets_request
from .transport.retry import Backoff, RetryPolicy

_RESET_SPECS = {
    "earliest": pb.ResetOffsetsRequest.EARLIEST,
    "latest": pb.ResetOffsetsRequest.LATEST,
    "offset": pb.ResetOffsetsRequest.OFFSET,
    "datetime": pb.ResetOffsetsRequest.DATETIME,
    "shift_by": pb.ResetOffsetsRequest.SHIFT_BY,
    "duration": pb.ResetOffsetsRequest.DURATION,
}
_RESET_NEEDS_VALUE = ("offset", "datetime", "shift_by", "duration")


class Admin(AccessAdmin):
    """Topic, offset, group and access administration over one channel. Use as a context manager
    or ``close()``."""

    def __init__(
        self,
        address: str,
        *,
        request_timeout_ms: int = 30_000,
        retries: int = 5,
        retry_backoff_ms: int = 100,
        security: Security | None = None,
    ) -> None:
        """``security``: TLS and token settings (None: from the environment, see
        :mod:`logsvc_client.security`)."""
        self.address = address
        self._timeout_s = request_timeout_ms / 1000
        self._retry = RetryPolicy(
            retries=retries, backoff=Backoff(base_ms=retry_backoff_ms), timeout_ms=request_timeout_ms
        )
        # One channel: offsets and group offsets go through the transport's contract; the other
        # admin calls use its stub until the contract covers them.
        self._transport = GrpcTransport(
            address, request_timeout_ms=request_timeout_ms, retry=self._retry, security=security
        )
        self._stub = self._transport.stub

    # -- topics ---------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, config: Mapping[str, str] | None = None) -> TopicDescription:
        """Create a topic; TopicAlreadyExists, InvalidTopicName, InvalidPartition, InvalidConfig."""
        request = pb.CreateTopicRequest(
            name=name, partitions=partitions, config={k: str(v) for k, v in (config or {}).items()}
        )
        return description_from_pb(channel.call(self._stub.CreateTopic, request, self._timeout_s))

    def alter_topic(
        self,
        name: str,
        *,
        partitions: int | None = None,
        config: Mapping[str, str] | None = None,
        reset_config: Iterable[str] = (),
    ) -> TopicDescription:
        """Grow a topic to ``partitions`` and/or set ``config`` keys and reset ``reset_config`` keys
        to their defaults; the new description. TopicNotFound; InvalidPartition for fewer partitions
        than it has; InvalidConfig for an unknown key, a bad value or a changed partitioner.

        As in Kafka, keyed records produced after a partition count change hash over the new count;
        running producers see it within ``metadata_max_age_ms``, group consumers at once."""
        request = pb.AlterTopicRequest(
            name=name,
            partitions=partitions or 0,
            set_config={k: str(v) for k, v in (config or {}).items()},
            reset_config=list(reset_config),
        )
        return description_from_pb(channel.call(self._stub.AlterTopic, request, self._timeout_s))

    def delete_topic(self, name: str) -> None:
        """Delete a topic with its records; TopicNotFound when missing."""
        channel.call(self._stub.DeleteTopic, pb.DeleteTopicRequest(name=name), self._timeout_s)

    def list_topics(self) -> list[TopicSummary]:
        response = channel.call_with_retry(self._stub.ListTopics, pb.ListTopicsRequest(), self._retry)
        return [summary_from_pb(t) for t in response.topics]

    def describe_topic(self, name: str) -> TopicDescription:
        """Config and per-partition offsets, sizes and timestamps; TopicNotFound when missing."""
        response = channel.call_with_retry(self._stub.DescribeTopic, pb.DescribeTopicRequest(name=name), self._retry)
        return description_from_pb(response)

    # -- offsets --------------------------------------------------------------------------------

    def list_offsets(
        self,
        topic: str,
        spec: OffsetSpec = "latest",
        timestamp_ms: int | None = None,
        partitions: Iterable[int] | None = None,
    ) -> dict[int, int]:
        """``{partition: offset}``: the log start (earliest), the next offset (latest), or the first
        offset whose timestamp is at or after ``timestamp_ms`` (the next offset when none is)."""
        return self._transport.list_offsets(topic, spec, timestamp_ms, partitions)

    def offsets_for_time(
        self, topic: str, timestamp_ms: int, partitions: Iterable[int] | None = None
    ) -> dict[int, OffsetAndTimestamp]:
        """Like ``list_offsets(topic, "timestamp", ...)``, with the timestamp of the record found."""
        request = offsets_request(topic, "timestamp", timestamp_ms, partitions)
        response = channel.call_with_retry(self._stub.ListOffsets, request, self._retry)
        return {
            o.partition: OffsetAndTimestamp(o.offset, o.timestamp_ms if o.timestamp_ms >= 0 else None)
            for o in response.offsets
        }

    def trim(self, topic: str, partition: int, before_offset: int) -> int:
        """Delete the records of one partition before ``before_offset``; returns the new log start."""
        request = pb.TrimRequest(topic=topic, partition=partition, before_offset=before_offset)
        return int(channel.call_with_retry(self._stub.Trim, request, self._retry).log_start_offset)

    # -- consumer groups ------------------------------------------------------------------------

    def list_groups(self) -> list[GroupSummary]:
        """Every group the broker knows (live, or with committed offsets), sorted by id."""
        response = channel.call_with_retry(self._stub.ListGroups, pb.ListGroupsRequest(), self._retry)
        return [group_summary_from_pb(g) for g in response.groups]

    def describe_group(self, group: str) -> GroupDescription:
        """State, generation, members, and per partition: committed offset, lag, lag in ms and owner;
        GroupNotFound when the broker knows no such group."""
        request = pb.DescribeGroupRequest(group=group)
        return group_description_from_pb(channel.call_with_retry(self._stub.DescribeGroup, request, self._retry))

    def delete_group(self, group: str) -> None:
        """Delete a group and its committed offsets; GroupNotEmpty while it has live members,
        GroupNotFound when missing."""
        channel.call(self._stub.DeleteGroup, pb.DeleteGroupRequest(group=group), self._timeout_s)

    def committed_offsets(
        self, group: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        """The group's committed offsets (of ``partitions``, default all); partitions with nothing
        committed are left out."""
        return self._transport.fetch_offsets(group, partitions)

    def commit_offsets(
        self, group: str, offsets: Mapping[TopicPartition, int], member: GroupMetadata | None = None
    ) -> None:
        """Commit ``{partition: next offset to consume}`` for ``group``.

        Without ``member``: allowed only while the group has no live members (GroupNotEmpty).
        With a member's :meth:`Consumer.group_metadata`: fenced like the member's own commits
        (StaleGeneration, UnknownMember, FailedPrecondition for a partition it does not own).
        """
        if member is None:
            group_offsets.commit(self._transport, group, offsets)
        else:
            group_offsets.commit(self._transport, group, offsets, member.member_id, member.generation)

    def reset_offsets(
        self,
        group: str,
        topic: str,
        partitions: Iterable[int] | None = None,
        spec: ResetSpec = "earliest",
        value: int | None = None,
        execute: bool = False,
    ) -> ResetResult:
        """Move the group's offsets of ``topic`` (``partitions``, default all) by ``spec``.

        ``value`` is the offset ("offset"), epoch ms ("datetime"), records to move, negative =
        back ("shift_by"), or ms before now ("duration"). Results are clamped to each partition's
        [log start, next offset]. A dry run (changes nothing) unless ``execute``. Refused with
        GroupNotEmpty while the group has live members.
        """
        code = _RESET_SPECS.get(spec)
        if code is None:
            raise InvalidRequest(f"reset spec {spec!r} is not one of {', '.join(_RESET_SPECS)}")
        if spec in _RESET_NEEDS_VALUE:
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidRequest(f"reset spec {spec!r} needs an int value, got {value!r}")
            if spec != "shift_by" and value < 0:
                raise InvalidRequest(f"reset spec {spec!r} needs a value >= 0, got {value}")
        elif value is not None:
            raise InvalidRequest(f"reset spec {spec!r} takes no value, got {value!r}")
        request = pb.ResetOffsetsRequest(
            group=group,
            topic=topic,
            partitions=sorted(set(partitions or ())),
            spec=code,
            value=value or 0,
            execute=execute,
        )
        if execute:
            response = channel.call(self._stub.ResetOffsets, request, self._timeout_s)
        else:
            response = channel.call_with_retry(self._stub.ResetOffsets, request, self._retry)
        return reset_from_pb(group, response)

    # -- produce (convenience path) -------------------------------------------------------------

    def produce_records(
        self, topic: str, records: Iterable[ProducerRecord | bytes | str | None]
    ) -> list[RecordPosition]:
        """Send records in one request, partitioned and batched by the broker; their positions in
        request order. For throughput use :class:`~logsvc_client.Producer` instead."""
        request = pb.ProduceRecordsRequest(topic=topic, records=[_record_to_pb(r) for r in records])
        if not request.records:
            return []
        response = channel.call(self._stub.ProduceRecords, request, self._timeout_s)
        return [RecordPosition(p.partition, p.offset) for p in response.positions]

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record_to_pb(record: ProducerRecord | bytes | str | None) -> pb.Record:
    if not isinstance(record, ProducerRecord):
        record = ProducerRecord(record)
    msg = pb.Record(timestamp_ms=record.timestamp_ms or 0)
    key = to_bytes(record.key, "key")
    value = to_bytes(record.value, "value")
    if key is not None:
        msg.key = key
    if value is not None:
        msg.value = value
    if record.partition is not None:
        if record.partition < 0:
            raise InvalidRequest(f"partition {record.partition} is negative")
        msg.partition = record.partition
    if record.timestamp_ms is not None and record.timestamp_ms < 0:
        raise InvalidRequest(f"timestamp_ms {record.timestamp_ms} is negative")
    for name, data in to_headers(record.headers) or ():
        msg.headers.add(name=name, value=data)
    return msg


__all__ = [
    "Admin",
    "OffsetAndTimestamp",
    "OffsetSpec",
    "ResetSpec",
    "TopicDescription",
    "TopicSummary",
    "offsets_request",
]
