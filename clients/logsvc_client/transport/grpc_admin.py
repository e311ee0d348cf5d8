"""The admin's calls over gRPC: :class:`~logsvc_client.transport.base.AdminTransport` as a mixin
of :class:`~logsvc_client.transport.grpc.GrpcTransport`.

Requests are built and answers read back into the client's value types here; which calls are
retried follows the admin's rule (reads, trims and dry-run resets are; creates, deletes,
executed resets and produce_records are not: a repeat could fail, duplicate, or shift twice).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire.fetch_response import decode_fetch_response

from ..acls import Acl, AclFilter, Quota, Quotas
from ..errors import InternalError, InvalidRequest
from ..group.descriptions import GroupDescription, GroupSummary, ResetResult, reset_from_pb
from ..group.descriptions import description_from_pb as group_description_from_pb
from ..group.descriptions import summary_from_pb as group_summary_from_pb
from ..records import ProducerRecord, RecordPosition, check_time_ms, to_bytes, to_headers
from ..topics import OffsetAndTimestamp, TopicDescription, TopicSummary, description_from_pb, summary_from_pb
from . import channel
from .base import FetchedPartition
from .messages import build
from .retry import RetryPolicy

_SPECS = {
    "earliest": pb.ListOffsetsRequest.EARLIEST,
    "latest": pb.ListOffsetsRequest.LATEST,
    "timestamp": pb.ListOffsetsRequest.TIMESTAMP,
}


def offsets_request(
    topic: str, spec: str, timestamp_ms: int | None = None, partitions: Iterable[int] | None = None
) -> pb.ListOffsetsRequest:
    """A ListOffsets request; InvalidRequest for an unknown spec or a missing timestamp."""
    check_offset_spec(spec, timestamp_ms)
    return build(
        pb.ListOffsetsRequest,
        topic=topic,
        spec=_SPECS[spec],
        timestamp_ms=timestamp_ms or 0,
        partitions=list(partitions or ()),
    )


def check_offset_spec(spec: str, timestamp_ms: int | None) -> None:
    """InvalidRequest for an unknown offset spec, or a timestamp missing or given where not used
    (the rule of every transport's list_offsets)."""
    if spec not in _SPECS:
        raise InvalidRequest(f"offset spec {spec!r} is not one of {', '.join(_SPECS)}")
    if spec == "timestamp":
        check_time_ms(timestamp_ms, "offset spec 'timestamp'")
    elif timestamp_ms is not None:
        raise InvalidRequest(f"timestamp_ms is only used with spec 'timestamp', not {spec!r}")


_RESET_SPECS = {
    "earliest": pb.ResetOffsetsRequest.EARLIEST,
    "latest": pb.ResetOffsetsRequest.LATEST,
    "offset": pb.ResetOffsetsRequest.OFFSET,
    "datetime": pb.ResetOffsetsRequest.DATETIME,
    "shift_by": pb.ResetOffsetsRequest.SHIFT_BY,
    "duration": pb.ResetOffsetsRequest.DURATION,
}


def fetched_partitions(answer: bytes) -> list[FetchedPartition]:
    """A Fetch answer's partitions, read from its bytes (a FetchResponse the broker sent), each
    batch a view into them."""
    try:
        response = decode_fetch_response(answer)
    except ValueError as e:
        raise InternalError(f"the broker's Fetch answer is not a valid FetchResponse: {e}") from None
    return [FetchedPartition(*pd) for pd in response.partitions]


class GrpcAdminCalls:
    """The admin part of the contract over ``self.stub`` (set by :class:`GrpcTransport`), and its
    ``_fetch`` (Fetch answering with its bytes)."""

    stub: Any
    _fetch: Any
    _timeout_s: float
    _retry: RetryPolicy

    # -- topics ---------------------------------------------------------------------------------

    def read_batches(self, topic: str, partition: int, offset: int, max_bytes: int) -> FetchedPartition:
        request = build(
            pb.FetchRequest,
            partitions=[build(pb.FetchPartition, topic=topic, partition=partition, offset=offset)],
            max_bytes=max_bytes,
        )
        pd = fetched_partitions(channel.call_with_retry(self._fetch, request, self._retry))[0]
        # bytes of their own: a tool may keep a batch long after the rest of the answer
        return pd._replace(batches=[(base, bytes(data)) for base, data in pd.batches])

    def create_topic(self, name: str, partitions: int, config: Mapping[str, str]) -> TopicDescription:
        request = build(pb.CreateTopicRequest, name=name, partitions=partitions, config=dict(config))
        return description_from_pb(channel.call(self.stub.CreateTopic, request, self._timeout_s))

    def alter_topic(
        self, name: str, partitions: int, set_config: Mapping[str, str], reset_config: Sequence[str]
    ) -> TopicDescription:
        request = build(
            pb.AlterTopicRequest,
            name=name,
            partitions=partitions,
            set_config=dict(set_config),
            reset_config=list(reset_config),
        )
        return description_from_pb(channel.call(self.stub.AlterTopic, request, self._timeout_s))

    def delete_topic(self, name: str) -> None:
        channel.call(self.stub.DeleteTopic, build(pb.DeleteTopicRequest, name=name), self._timeout_s)

    def list_topics(self) -> list[TopicSummary]:
        response = channel.call_with_retry(self.stub.ListTopics, pb.ListTopicsRequest(), self._retry)
        return [summary_from_pb(t) for t in response.topics]

    def describe_topic(self, name: str) -> TopicDescription:
        response = channel.call_with_retry(
            self.stub.DescribeTopic, build(pb.DescribeTopicRequest, name=name), self._retry
        )
        return description_from_pb(response)

    def offsets_for_time(
        self, topic: str, timestamp_ms: int, partitions: Iterable[int] | None = None
    ) -> dict[int, OffsetAndTimestamp]:
        request = offsets_request(topic, "timestamp", timestamp_ms, partitions)
        response = channel.call_with_retry(self.stub.ListOffsets, request, self._retry)
        return {
            o.partition: OffsetAndTimestamp(o.offset, o.timestamp_ms if o.timestamp_ms >= 0 else None)
            for o in response.offsets
        }

    def trim(self, topic: str, partition: int, before_offset: int) -> int:
        request = build(pb.TrimRequest, topic=topic, partition=partition, before_offset=before_offset)
        return int(channel.call_with_retry(self.stub.Trim, request, self._retry).log_start_offset)

    # -- groups ---------------------------------------------------------------------------------

    def list_groups(self) -> list[GroupSummary]:
        response = channel.call_with_retry(self.stub.ListGroups, pb.ListGroupsRequest(), self._retry)
        return [group_summary_from_pb(g) for g in response.groups]

    def describe_group(self, group: str) -> GroupDescription:
        request = build(pb.DescribeGroupRequest, group=group)
        return group_description_from_pb(channel.call_with_retry(self.stub.DescribeGroup, request, self._retry))

    def delete_group(self, group: str) -> None:
        channel.call(self.stub.DeleteGroup, build(pb.DeleteGroupRequest, group=group), self._timeout_s)

    def reset_offsets(
        self, group: str, topic: str, partitions: Sequence[int], spec: str, value: int, execute: bool
    ) -> ResetResult:
        code = _RESET_SPECS.get(spec)
        if code is None:
            raise InvalidRequest(f"reset spec {spec!r} is not one of {', '.join(_RESET_SPECS)}")
        request = build(
            pb.ResetOffsetsRequest,
            group=group,
            topic=topic,
            partitions=list(partitions),
            spec=code,
            value=value,
            execute=execute,
        )
        if execute:
            response = channel.call(self.stub.ResetOffsets, request, self._timeout_s)
        else:
            response = channel.call_with_retry(self.stub.ResetOffsets, request, self._retry)
        return reset_from_pb(group, response)

    # -- produce (convenience path) -------------------------------------------------------------

    def produce_records(self, topic: str, records: Iterable[ProducerRecord]) -> list[RecordPosition]:
        request = build(pb.ProduceRecordsRequest, topic=topic, records=[_record_to_pb(r) for r in records])
        if not request.records:
            return []
        response = channel.call(self.stub.ProduceRecords, request, self._timeout_s)
        return [RecordPosition(p.partition, p.offset) for p in response.positions]

    # -- access control -------------------------------------------------------------------------

    def create_acls(self, acls: Sequence[Acl]) -> int:
        request = build(pb.CreateAclsRequest, acls=[build(pb.Acl, **acl._asdict()) for acl in acls])
        return int(channel.call(self.stub.CreateAcls, request, self._timeout_s).created)

    def describe_acls(self, filter: AclFilter) -> list[Acl]:
        request = build(pb.DescribeAclsRequest, filter=build(pb.AclFilter, **filter._asdict()))
        response = channel.call_with_retry(self.stub.DescribeAcls, request, self._retry)
        return [_acl_from_pb(a) for a in response.acls]

    def delete_acls(self, filters: Sequence[AclFilter]) -> list[Acl]:
        request = build(pb.DeleteAclsRequest, filters=[build(pb.AclFilter, **f._asdict()) for f in filters])
        return [_acl_from_pb(a) for a in channel.call(self.stub.DeleteAcls, request, self._timeout_s).deleted]

    def alter_quotas(self, set: Sequence[Quota], remove: Sequence[str]) -> None:
        request = build(
            pb.AlterQuotasRequest,
            set=[
                build(
                    pb.Quota,
                    principal=q.principal,
                    produce_bytes_per_second=q.produce_bytes_per_second,
                    fetch_bytes_per_second=q.fetch_bytes_per_second,
                )
                for q in set
            ],
            remove=list(remove),
        )
        channel.call(self.stub.AlterQuotas, request, self._timeout_s)

    def describe_quotas(self, principal: str) -> Quotas:
        request = build(pb.DescribeQuotasRequest, principal=principal)
        response = channel.call_with_retry(self.stub.DescribeQuotas, request, self._retry)
        return Quotas(
            [_quota_from_pb(q) for q in response.quotas],
            int(response.default_produce_bytes_per_second),
            int(response.default_fetch_bytes_per_second),
        )

    def whoami(self) -> str:
        response = channel.call_with_retry(self.stub.WhoAmI, pb.WhoAmIRequest(), self._retry)
        return str(response.principal)


def _acl_from_pb(msg: pb.Acl) -> Acl:
    return Acl(msg.principal, msg.resource_type, msg.resource_name, msg.pattern_type, msg.operation, msg.permission)


def _opt(msg: Any, field: str) -> int | None:
    return int(getattr(msg, field)) if msg.HasField(field) else None


def _quota_from_pb(msg: pb.Quota) -> Quota:
    return Quota(msg.principal, _opt(msg, "produce_bytes_per_second"), _opt(msg, "fetch_bytes_per_second"))


def _record_to_pb(record: ProducerRecord) -> pb.Record:
    fields: dict[str, Any] = {"timestamp_ms": record.timestamp_ms or 0}
    key = to_bytes(record.key, "key")
    value = to_bytes(record.value, "value")
    if key is not None:
        fields["key"] = key
    if value is not None:
        fields["value"] = value
    if record.partition is not None:
        fields["partition"] = record.partition
    msg = build(pb.Record, **fields)
    for name, data in to_headers(record.headers) or ():
        msg.headers.add(name=name, value=data)
    return msg
