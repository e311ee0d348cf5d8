"""The transport contract: what the producer, the consumer and the group offsets need from a broker.

The client's logic (batching, sequence numbers, retries of whole batches, positions, offset
resets, lanes, commits) is written against these methods only, so it never sees a request
message, a stub or a channel. :class:`~logsvc_client.transport.grpc.GrpcTransport` is the
implementation over one gRPC channel; the producer tests use an in-memory one that honours the
same contract (``tests/client/fakes.py``); a Kafka cluster through librdkafka would be a third.

The contract speaks in the client's own values: topics and partitions as ``str``/``int`` and
:class:`~logsvc_client.records.TopicPartition`, record batches as the encoded bytes of
:mod:`logsvc_wire.batch`, offsets as ``int``, committed offsets as
:class:`~logsvc_client.group.descriptions.CommittedOffset`. Every failure is one of the
project's exceptions (:mod:`logsvc_client.errors`): an implementation translates its own
errors once, on the way out, and retries what is safe to repeat according to its retry policy.

The contract is split by who uses it, so a test double implements only its side:
:class:`ProduceTransport` (the producer), :class:`ConsumeTransport` (the consumer's fetches,
offset look-ups and the group's committed offsets), :class:`GroupTransport` (one member's
join / heartbeat / leave), :class:`AdminTransport` (topics, groups, access control);
:class:`Transport` is all four.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

from ..errors import LogsvcError
from ..records import TopicPartition

if TYPE_CHECKING:  # the value types of the admin's part (they do not import this module at run time)
    from ..acls import Acl, AclFilter, Quota, Quotas
    from ..group.descriptions import CommittedOffset, GroupDescription, GroupSummary, ResetResult
    from ..records import ProducerRecord, RecordPosition
    from ..topics import OffsetAndTimestamp, TopicDescription, TopicSummary

#: The largest request or answer a transport carries (the producer's and the fetch size limits
#: are checked against it).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

#: Called once per produce: (base offsets in request order, None) or (None, error).
ProduceCallback = Callable[[list[int] | None, LogsvcError | None], None]

#: Where :meth:`ConsumeTransport.list_offsets` looks: the first offset, the next one to be
#: written, or the first record at or after a timestamp.
OffsetSpec = Literal["earliest", "latest", "timestamp"]


class FetchedPartition(NamedTuple):
    """One partition's part of a fetch answer."""

    topic: str
    partition: int
    #: the partition's first offset still stored
    log_start_offset: int
    #: the offset the next record written to the partition gets
    next_offset: int
    #: ``(base offset, stored batch bytes)`` in offset order, the first possibly starting before
    #: the offset asked for (the caller skips what it has); over gRPC each batch is a view into the
    #: answer's bytes (:mod:`logsvc_wire.fetch_response`)
    batches: Sequence[tuple[int, bytes | memoryview]]


class GroupAnswer(NamedTuple):
    """The broker's answer to a join or a heartbeat: where the member stands now."""

    #: the member id (given by the broker on the first join)
    member_id: str
    generation: int
    #: how often the member should heartbeat
    heartbeat_interval_ms: int
    #: the group is reconciling (heartbeat sooner)
    rebalance_in_progress: bool
    #: the partitions the member may own now
    assignment: frozenset[TopicPartition]


class PendingFetch(Protocol):
    """A fetch on its way (:meth:`ConsumeTransport.start_fetch`); usable from one thread plus the
    transport's own callbacks."""

    def done(self) -> bool:
        """True once the answer (or the error) has arrived, or the fetch was cancelled."""
        ...

    def cancel(self) -> None:
        """Drop the fetch; its answer, if it comes, is not used."""
        ...

    def wait(self, timeout_s: float | None) -> bool:
        """Wait up to ``timeout_s`` seconds for the fetch to finish; True when it is done."""
        ...

    def add_done_callback(self, fn: Callable[[], object]) -> None:
        """Call ``fn()`` once the fetch is done (at once when it already is), on any thread."""
        ...

    def result(self) -> list[FetchedPartition]:
        """The answer of a finished fetch.

        Raises:
          OffsetOutOfRange: an offset asked for is outside its partition's log.
          Unavailable: the broker could not be reached, or the fetch was cancelled.
          LogsvcError: any other failure, as the project's exception.
        """
        ...


class ProduceTransport(Protocol):
    """What the producer needs: partition counts, the producer id, and sending batches."""

    def partition_count(self, topic: str, *, auto_create: bool = False) -> int:
        """The topic's partition count (blocking; retried while the broker is unavailable).

        ``auto_create``: a missing topic is created when the broker creates topics on first
        produce (its ``auto_create_topics``), as the produce itself would create it.

        Raises:
          TopicNotFound: the topic does not exist (and is not created).
        """
        ...

    def produce(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes]],
        done: ProduceCallback,
        *,
        producer_id: int = 0,
        producer_epoch: int = 0,
        sequences: Sequence[int] | None = None,
        wait: bool = False,
    ) -> None:
        """Send batches of one topic as one request, without blocking (but see ``wait``).

        Parameters:
          topic: the topic every batch goes to.
          batches: ``(partition, encoded batch)`` pairs, at most one per partition.
          done: called exactly once, from any thread, with the base offset of each batch in
            request order, or with the error (the project's exception) that failed them all.
          producer_id: with ``sequences``, the idempotent producer's id (0: not idempotent).
          producer_epoch: the epoch of ``producer_id``.
          sequences: each batch's base sequence; a retried duplicate is answered with the
            offsets of its first write.
          wait: a hint that the caller would rather wait here: the transport may make the call on
            the calling thread and call ``done`` before returning (gRPC: over its ProduceStream
            call, else a blocking Produce call; the answer reaches the caller with no hand-off
            from another thread). The producer sets
            it when a thread waiting for a record sends that record's batch itself.

        Not retried here: the producer's sender decides what to send again.
        """
        ...

    def init_producer(self, producer_id: int, producer_epoch: int) -> tuple[int, int]:
        """A new ``(producer_id, producer_epoch)`` (``producer_id`` 0), or the next epoch of the
        one given (blocking).

        Raises:
          InvalidRequest: the broker cannot give producer ids (too old for idempotence).
          LogsvcError: any other failure, as the project's exception.
        """
        ...

    def close(self) -> None:
        """Release the connection; calls still in flight complete with Unavailable."""
        ...


class ConsumeTransport(Protocol):
    """What the consumer needs: fetching, offset look-ups, and the group's committed offsets."""

    def partition_count(self, topic: str) -> int:
        """See :meth:`ProduceTransport.partition_count`."""
        ...

    def start_fetch(
        self,
        positions: Sequence[tuple[TopicPartition, int]],
        *,
        max_records: int,
        max_bytes: int,
        max_wait_ms: int,
        timeout_s: float,
    ) -> PendingFetch:
        """Start fetching records without blocking.

        Parameters:
          positions: ``(partition, offset to read from)`` pairs.
          max_records: about how many records to answer with at most, over all partitions.
          max_bytes: about how many bytes of batches to answer with at most.
          max_wait_ms: how long the broker may hold the answer while it has no records.
          timeout_s: the deadline of the whole call.

        Raises:
          LogsvcError: when the fetch cannot even be started.
        """
        ...

    def list_offsets(
        self,
        topic: str,
        spec: str,
        timestamp_ms: int | None = None,
        partitions: Iterable[int] | None = None,
    ) -> dict[int, int]:
        """``{partition: offset}`` of ``topic``'s ``partitions`` (default: all) by ``spec``
        (blocking; retried while the broker is unavailable).

        Parameters:
          spec: ``"earliest"``, ``"latest"`` (the next offset to be written) or ``"timestamp"``
            (the first record at or after ``timestamp_ms``; the latest offset when none is).
          timestamp_ms: only with ``"timestamp"``, and then required.

        Raises:
          InvalidRequest: an unknown ``spec`` or a missing or stray ``timestamp_ms``.
          TopicNotFound: the topic does not exist.
        """
        ...

    def commit_offsets(
        self,
        group: str,
        offsets: Sequence[tuple[TopicPartition, int]],
        *,
        member_id: str = "",
        generation: int = -1,
    ) -> None:
        """Store ``(partition, next offset to consume)`` pairs as ``group``'s committed offsets
        (blocking; retried while the broker is unavailable).

        Parameters:
          member_id: with ``generation``, the committing member (fenced); empty: allowed only
            while the group has no live members.

        Raises:
          StaleGeneration, UnknownMember: the member is no longer the group's.
          FailedPrecondition: a partition the member does not own.
          GroupNotEmpty: without a member, the group has live members.
        """
        ...

    def fetch_offsets(
        self, group: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        """``group``'s committed offsets of ``partitions`` (default: every one it has), leaving
        out partitions with nothing committed (blocking; retried while the broker is unavailable)."""
        ...

    def close(self) -> None:
        """See :meth:`ProduceTransport.close`."""
        ...


class GroupTransport(Protocol):
    """What one member of a consumer group needs (the broker assigns the partitions): the calls
    of :class:`~logsvc_client.group.membership.Membership`'s heartbeat thread. None is retried
    here: the membership decides what to do after a failure."""

    def join_group(
        self,
        group: str,
        member_id: str,
        topics: Sequence[str],
        *,
        instance_id: str,
        session_timeout_ms: int,
        assignor: str,
        client_id: str,
        timeout_s: float,
    ) -> GroupAnswer:
        """Join ``group`` (``member_id`` "": as a new member) subscribed to ``topics``.

        Parameters:
          instance_id: a static member's id ("" for a dynamic member).
          session_timeout_ms: how long the broker keeps the member without a heartbeat.
          assignor: the assignor's name, as the broker knows it.
          client_id: shown in group descriptions.
          timeout_s: the call's deadline.

        Raises:
          UnknownMember: ``member_id`` is no longer the group's.
          FencedInstance: another process joined with the same ``instance_id``.
          TopicNotFound: a subscribed topic does not exist.
        """
        ...

    def heartbeat(
        self, group: str, member_id: str, generation: int, owned: Iterable[TopicPartition], *, timeout_s: float
    ) -> GroupAnswer:
        """Tell the broker the member is alive and which partitions it still ``owns``; the answer
        is its current generation and assignment (``member_id`` as given).

        Raises:
          UnknownMember, StaleGeneration: the membership is lost (join again).
          FencedInstance: a static member was replaced.
        """
        ...

    def leave_group(self, group: str, member_id: str, *, timeout_s: float) -> None:
        """Leave ``group`` at once, so its partitions go to the other members."""
        ...

    def close(self) -> None:
        """See :meth:`ProduceTransport.close`."""
        ...


class AdminTransport(Protocol):
    """What :class:`~logsvc_client.Admin` needs. Each method is the admin method of the same name
    with its arguments checked and normalised (see there for the meaning and the errors);
    reads, trims and dry-run resets are retried while the broker is unavailable, creates,
    deletes, executed resets and produce_records are not."""

    def list_offsets(
        self, topic: str, spec: str, timestamp_ms: int | None = None, partitions: Iterable[int] | None = None
    ) -> dict[int, int]:
        """See :meth:`ConsumeTransport.list_offsets`."""
        ...

    def offsets_for_time(
        self, topic: str, timestamp_ms: int, partitions: Iterable[int] | None = None
    ) -> dict[int, OffsetAndTimestamp]:
        """The first offset at or after ``timestamp_ms`` per partition, with that record's timestamp."""
        ...

    def commit_offsets(
        self,
        group: str,
        offsets: Sequence[tuple[TopicPartition, int]],
        *,
        member_id: str = "",
        generation: int = -1,
    ) -> None:
        """See :meth:`ConsumeTransport.commit_offsets`."""
        ...

    def fetch_offsets(
        self, group: str, partitions: Iterable[TopicPartition] | None = None
    ) -> dict[TopicPartition, CommittedOffset]:
        """See :meth:`ConsumeTransport.fetch_offsets`."""
        ...

    def create_topic(self, name: str, partitions: int, config: Mapping[str, str]) -> TopicDescription:
        """Raises TopicAlreadyExists, InvalidTopicName, InvalidPartition, InvalidConfig."""
        ...

    def alter_topic(
        self, name: str, partitions: int, set_config: Mapping[str, str], reset_config: Sequence[str]
    ) -> TopicDescription:
        """``partitions`` 0: unchanged. Raises TopicNotFound, InvalidPartition, InvalidConfig."""
        ...

    def delete_topic(self, name: str) -> None:
        """Raises TopicNotFound."""
        ...

    def list_topics(self) -> list[TopicSummary]: ...

    def describe_topic(self, name: str) -> TopicDescription:
        """Raises TopicNotFound."""
        ...

    def trim(self, topic: str, partition: int, before_offset: int) -> int:
        """Delete records before ``before_offset``; the new log start offset."""
        ...

    def list_groups(self) -> list[GroupSummary]: ...

    def describe_group(self, group: str) -> GroupDescription:
        """Raises GroupNotFound."""
        ...

    def delete_group(self, group: str) -> None:
        """Raises GroupNotEmpty, GroupNotFound."""
        ...

    def reset_offsets(
        self, group: str, topic: str, partitions: Sequence[int], spec: str, value: int, execute: bool
    ) -> ResetResult:
        """``partitions`` empty: all. Raises GroupNotEmpty while the group has live members."""
        ...

    def produce_records(self, topic: str, records: Iterable[ProducerRecord]) -> list[RecordPosition]:
        """Records partitioned and batched by the broker; their positions in request order."""
        ...

    def create_acls(self, acls: Sequence[Acl]) -> int:
        """All or none; how many were new. Raises InvalidRequest naming the bad field."""
        ...

    def describe_acls(self, filter: AclFilter) -> list[Acl]: ...

    def delete_acls(self, filters: Sequence[AclFilter]) -> list[Acl]:
        """The ACLs deleted."""
        ...

    def alter_quotas(self, set: Sequence[Quota], remove: Sequence[str]) -> None:
        """Raises InvalidRequest for a principal both set and removed."""
        ...

    def describe_quotas(self, principal: str) -> Quotas:
        """``principal`` "": every override."""
        ...

    def whoami(self) -> str: ...

    def read_batches(self, topic: str, partition: int, offset: int, max_bytes: int) -> FetchedPartition:
        """The stored batches from the one holding ``offset`` on, up to about ``max_bytes``, as the
        broker holds them (not decoded); retried while the broker is unavailable.

        Raises:
            TopicNotFound, InvalidPartition, OffsetOutOfRange: as Fetch does.
        """
        ...

    def close(self) -> None:
        """See :meth:`ProduceTransport.close`."""
        ...


class Transport(ProduceTransport, ConsumeTransport, GroupTransport, AdminTransport, Protocol):
    """The whole contract: what a client object (producer, consumer or admin) talks through."""
