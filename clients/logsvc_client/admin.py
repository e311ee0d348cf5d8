"""Admin: topics, offsets, trimming, consumer groups, access control (ACLs, quotas, whoami: see
:mod:`logsvc_client.access`), and the broker-partitioned produce path for simple clients.

Read-only and idempotent operations (describe, list, offsets, trim, commits, dry-run resets) are
retried while the broker is unavailable; create, delete, executed resets and produce_records are
not (a repeat could fail, duplicate, or shift twice). Every call goes through the admin's
transport (:class:`~logsvc_client.transport.base.AdminTransport`, one channel); this module
checks and normalises the arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

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
)
from .kafka.address import is_kafka
from .records import (
    ProducerRecord,
    RecordPosition,
    TopicPartition,
    check_offset,
    check_partition_count,
    check_partitions,
    to_bytes,
    to_headers,
)
from .security import Security
from .topics import OffsetAndTimestamp, TopicDescription, TopicSummary
from .transport.base import AdminTransport, FetchedPartition, OffsetSpec
from .transport.grpc import GrpcTransport, offsets_request
from .transport.retry import Backoff, RetryPolicy

_RESET_SPECS = ("earliest", "latest", "offset", "datetime", "shift_by", "duration")
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
        transport: AdminTransport | None = None,
    ) -> None:
        """``security``: TLS and token settings (None: from the environment, see
        :mod:`logsvc_client.security`). ``transport`` replaces the gRPC connection to ``address``
        with another implementation of the contract (:class:`~logsvc_client.transport.base.AdminTransport`).
        A ``kafka://`` address is a Kafka cluster (:mod:`logsvc_client.kafka.admin`)."""
        self.address = address
        self._timeout_s = request_timeout_ms / 1000
        self._retry = RetryPolicy(
            retries=retries, backoff=Backoff(base_ms=retry_backoff_ms), timeout_ms=request_timeout_ms
        )
        if transport is None and is_kafka(address):
            from .kafka.admin import KafkaAdminTransport  # confluent-kafka only when used

            transport = KafkaAdminTransport(address, request_timeout_ms=request_timeout_ms, security=security)
        self._transport: AdminTransport = transport or GrpcTransport(
            address, request_timeout_ms=request_timeout_ms, retry=self._retry, security=security
        )

    # -- topics ---------------------------------------------------------------------------------

    def read_batches(self, topic: str, partition: int, offset: int, max_bytes: int = 3 << 20) -> FetchedPartition:
        """The stored batches of one partition from the one holding ``offset`` on, up to about
        ``max_bytes`` (at least one), as the broker holds them, not decoded: for tools that
        inspect the log itself (``logsvc partitions dump|verify``). Applications read records
        with a :class:`~logsvc_client.Consumer`.

        Raises:
            TopicNotFound, InvalidPartition: no such topic or partition.
            OffsetOutOfRange: ``offset`` is outside the partition's stored range.
        """
        return self._transport.read_batches(topic, partition, offset, max_bytes)

    def create_topic(self, name: str, partitions: int, config: Mapping[str, str] | None = None) -> TopicDescription:
        """Create a topic; TopicAlreadyExists, InvalidTopicName, InvalidPartition, InvalidConfig."""
        check_partition_count(partitions)
        return self._transport.create_topic(name, partitions, {k: str(v) for k, v in (config or {}).items()})

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
        if partitions is not None:
            check_partition_count(partitions)
        return self._transport.alter_topic(
            name, partitions or 0, {k: str(v) for k, v in (config or {}).items()}, list(reset_config)
        )

    def delete_topic(self, name: str) -> None:
        """Delete a topic with its records; TopicNotFound when missing."""
        self._transport.delete_topic(name)

    def list_topics(self) -> list[TopicSummary]:
        return self._transport.list_topics()

    def describe_topic(self, name: str) -> TopicDescription:
        """Config and per-partition offsets, sizes and timestamps; TopicNotFound when missing."""
        return self._transport.describe_topic(name)

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
        return self._transport.offsets_for_time(topic, timestamp_ms, partitions)

    def trim(self, topic: str, partition: int, before_offset: int) -> int:
        """Delete the records of one partition before ``before_offset``; returns the new log start."""
        check_partitions([(topic, partition)])
        check_offset(before_offset, f"cannot trim {topic}/{partition} before offset")
        return self._transport.trim(topic, partition, before_offset)

    # -- consumer groups ------------------------------------------------------------------------

    def list_groups(self) -> list[GroupSummary]:
        """Every group the broker knows (live, or with committed offsets), sorted by id."""
        return self._transport.list_groups()

    def describe_group(self, group: str) -> GroupDescription:
        """State, generation, members, and per partition: committed offset, lag, lag in ms and owner;
        GroupNotFound when the broker knows no such group."""
        return self._transport.describe_group(group)

    def delete_group(self, group: str) -> None:
        """Delete a group and its committed offsets; GroupNotEmpty while it has live members,
        GroupNotFound when missing."""
        self._transport.delete_group(group)

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
        if spec not in _RESET_SPECS:
            raise InvalidRequest(f"reset spec {spec!r} is not one of {', '.join(_RESET_SPECS)}")
        if spec in _RESET_NEEDS_VALUE:
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidRequest(f"reset spec {spec!r} needs an int value, got {value!r}")
            if spec != "shift_by" and value < 0:
                raise InvalidRequest(f"reset spec {spec!r} needs a value >= 0, got {value}")
        elif value is not None:
            raise InvalidRequest(f"reset spec {spec!r} takes no value, got {value!r}")
        return self._transport.reset_offsets(group, topic, sorted(set(partitions or ())), spec, value or 0, execute)

    # -- produce (convenience path) -------------------------------------------------------------

    def produce_records(
        self, topic: str, records: Iterable[ProducerRecord | bytes | str | None]
    ) -> list[RecordPosition]:
        """Send records in one request, partitioned and batched by the broker; their positions in
        request order. For throughput use :class:`~logsvc_client.Producer` instead."""
        return self._transport.produce_records(topic, [_checked(r) for r in records])

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked(record: ProducerRecord | bytes | str | None) -> ProducerRecord:
    """``record`` as a ProducerRecord of bytes and header pairs; InvalidRequest for what the
    broker would refuse (a negative partition or timestamp)."""
    if not isinstance(record, ProducerRecord):
        record = ProducerRecord(record)
    key = to_bytes(record.key, "key")
    value = to_bytes(record.value, "value")
    if record.partition is not None and record.partition < 0:
        raise InvalidRequest(f"partition {record.partition} is negative")
    if record.timestamp_ms is not None and record.timestamp_ms < 0:
        raise InvalidRequest(f"timestamp_ms {record.timestamp_ms} is negative")
    return ProducerRecord(value, key, to_headers(record.headers), record.timestamp_ms, record.partition)


__all__ = [
    "Admin",
    "OffsetAndTimestamp",
    "OffsetSpec",
    "ResetSpec",
    "TopicDescription",
    "TopicSummary",
    "offsets_request",
]
