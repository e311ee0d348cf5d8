"""Admin: topics, offsets, trimming, and the broker-partitioned produce path for simple clients.

Read-only and idempotent operations (describe, list, offsets, trim) are retried while the broker
is unavailable; create, delete and produce_records are not (a repeat could fail or duplicate).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from . import channel
from ._proto import logsvc_pb2 as pb
from ._proto import logsvc_pb2_grpc as pb_grpc
from .errors import InvalidRequest
from .records import ProducerRecord, RecordPosition, to_bytes, to_headers
from .topics import (
    OffsetAndTimestamp,
    TopicDescription,
    TopicSummary,
    description_from_pb,
    summary_from_pb,
)

OffsetSpec = Literal["earliest", "latest", "timestamp"]

_SPECS = {
    "earliest": pb.ListOffsetsRequest.EARLIEST,
    "latest": pb.ListOffsetsRequest.LATEST,
    "timestamp": pb.ListOffsetsRequest.TIMESTAMP,
}


def offsets_request(
    topic: str, spec: str, timestamp_ms: int | None = None, partitions: Iterable[int] | None = None
) -> pb.ListOffsetsRequest:
    """A ListOffsets request; InvalidRequest for an unknown spec or a missing timestamp."""
    code = _SPECS.get(spec)
    if code is None:
        raise InvalidRequest(f"offset spec {spec!r} is not one of {', '.join(_SPECS)}")
    if spec == "timestamp":
        if timestamp_ms is None or timestamp_ms < 0:
            raise InvalidRequest(f"offset spec 'timestamp' needs timestamp_ms >= 0, got {timestamp_ms!r}")
    elif timestamp_ms is not None:
        raise InvalidRequest(f"timestamp_ms is only used with spec 'timestamp', not {spec!r}")
    return pb.ListOffsetsRequest(
        topic=topic, spec=code, timestamp_ms=timestamp_ms or 0, partitions=list(partitions or ())
    )


class Admin:
    """Topic and offset administration over one channel. Use as a context manager or ``close()``."""

    def __init__(
        self,
        address: str,
        *,
        request_timeout_ms: int = 30_000,
        retries: int = 5,
        retry_backoff_ms: int = 100,
    ) -> None:
        self.address = address
        self._channel = channel.connect(address)
        self._stub = pb_grpc.BrokerStub(self._channel)
        self._timeout_s = request_timeout_ms / 1000
        self._retry = channel.RetryPolicy(
            retries=retries, backoff=channel.Backoff(base_ms=retry_backoff_ms), timeout_ms=request_timeout_ms
        )

    # -- topics ---------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, config: Mapping[str, str] | None = None) -> TopicDescription:
        """Create a topic; TopicAlreadyExists, InvalidTopicName, InvalidPartition, InvalidConfig."""
        request = pb.CreateTopicRequest(
            name=name, partitions=partitions, config={k: str(v) for k, v in (config or {}).items()}
        )
        return description_from_pb(channel.call(self._stub.CreateTopic, request, self._timeout_s))

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
        request = offsets_request(topic, spec, timestamp_ms, partitions)
        response = channel.call_with_retry(self._stub.ListOffsets, request, self._retry)
        return {o.partition: o.offset for o in response.offsets}

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
        self._channel.close()

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


__all__ = ["Admin", "OffsetAndTimestamp", "OffsetSpec", "TopicDescription", "TopicSummary", "offsets_request"]
