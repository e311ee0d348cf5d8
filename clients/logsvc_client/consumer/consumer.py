"""Consumer: read records from partitions, either assigned by hand or as a consumer-group member.

**Assigned**: :meth:`Consumer.assign` partitions (or a whole topic), optionally seek, then
:meth:`Consumer.poll` or iterate. Partitions never positioned start at the earliest offset (the
latest with ``auto_offset_reset="latest"``). When a position falls outside the log (trimmed away,
or past the end) the consumer moves it to the earliest or latest offset by ``auto_offset_reset``,
or raises :class:`~logsvc_client.errors.OffsetOutOfRange` under ``"none"``.

**Group mode** (``group_id=`` and :meth:`Consumer.subscribe`): the broker assigns the partitions
of the subscribed topics among the group's members; a background thread heartbeats (so how often
the application polls does not matter, up to ``max_poll_interval_ms``), and assignment changes are
applied inside :meth:`Consumer.poll` (see :mod:`logsvc_client.consumer.subscription`)::

    with Consumer(address, group_id="billing", on_revoke=flush) as consumer:
        consumer.subscribe(["orders"])
        while True:
            for record in consumer.poll(timeout_ms=1000):
                handle(record)       # positions are committed every auto_commit_interval_ms,
                                     # on revoke and on close

**Priority lanes** (``priority="strict"`` or ``"weighted"``): the subscribed topics, in the order
given, are lanes, highest first (with :meth:`Consumer.assign`: the topics in the order their
partitions are listed), and each poll takes its records from the lanes as
:mod:`logsvc_client.consumer.lanes` plans — the highest lane with a backlog first, or a share per
``lane_weights`` — while no lane with a backlog goes without records for longer than
``max_lane_wait_ms``::

    consumer = Consumer(address, group_id="orders-sink", priority="strict", max_lane_wait_ms=2_000)
    consumer.subscribe(["orders.critical", "orders.normal", "orders.bulk"])

**Corrupt stored batches** (written by an older broker that did not check every record, or
damaged on disk) never wedge a consumer. By default (``corrupt_batches="raise"``) a poll that
reaches one first returns the records before it, then raises
:class:`~logsvc_client.errors.CorruptBatch` — on every poll until the application moves on — with
the partition's position left at the batch's first offset. ``details`` name ``topic``,
``partition``, ``base_offset`` and ``last_offset`` (and hold the stored bytes in ``batch``), so
the application can keep them and seek past::

    try:
        records = consumer.poll()
    except CorruptBatch as e:
        d = e.details
        consumer.seek(TopicPartition(d["topic"], d["partition"]), d["last_offset"] + 1)

With ``corrupt_batches="skip"`` the consumer does that itself: one WARNING per skipped batch on
the ``logsvc_client.consumer`` logger (naming topic, partition and offset range; the log record's
``corrupt_batch`` attribute is the CorruptBatch), and the position moves past the batch's last
offset (so a group's next commit passes it too).

The fetch loop lives in :class:`~logsvc_client.consumer.fetcher.Fetcher`, shared by both modes.

Given a Kafka cluster's address (``kafka://b1:9092,b2:9092``), ``Consumer(...)`` returns a
:class:`~logsvc_client.kafka.consumer.KafkaConsumer` instead: the same API and behaviour on
librdkafka and Kafka's group protocol (see that module for how the options map).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..errors import FailedPrecondition, InvalidConfig, InvalidRequest
from ..group import offsets as group_offsets
from ..group.descriptions import GroupMetadata
from ..group.membership import Membership
from ..kafka.address import is_kafka
from ..records import Record, TopicPartition, check_partitions
from ..security import Security
from ..transport.base import MAX_MESSAGE_BYTES, ConsumeTransport, GroupTransport
from ..transport.grpc import GrpcTransport
from ..transport.retry import Backoff, RetryPolicy
from .fetch_options import CorruptBatches, check_corrupt_batches
from .fetcher import Fetcher
from .lanes import LanePolicy, Priority, check_options
from .offset_reset import OffsetReset
from .subscription import RebalanceCallback, Subscription

# The smallest value of each numeric consumer option.
_MINIMUMS = {
    "max_poll_records": 1,
    "fetch_max_bytes": 1,
    "fetch_max_wait_ms": 0,
    "request_timeout_ms": 1,
    "retries": 0,
    "retry_backoff_ms": 0,
    "session_timeout_ms": 1,
    "auto_commit_interval_ms": 1,
    "max_poll_interval_ms": 1,
}


def check_consumer_options(
    group_id: str | None,
    *,
    instance_id: str | None,
    on_assign: RebalanceCallback | None,
    on_revoke: RebalanceCallback | None,
    numbers: Mapping[str, int],
    priority: str,
    lane_weights: Sequence[float] | None,
    max_lane_wait_ms: int,
    corrupt_batches: str,
) -> None:
    """The checks every consumer's options go through, on any transport (InvalidConfig naming
    the key and the wrong value): the numeric options (``numbers``) ints at or above their
    minimum, ``fetch_max_bytes`` within a message, the lane options, a non-empty ``group_id``,
    and no group-only option without one."""
    check_corrupt_batches(corrupt_batches)
    for name, value in numbers.items():
        minimum = _MINIMUMS[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise InvalidConfig(f"consumer option {name}={value!r} must be an int >= {minimum}", key=name)
    if numbers["fetch_max_bytes"] > MAX_MESSAGE_BYTES:
        raise InvalidConfig(
            f"fetch_max_bytes={numbers['fetch_max_bytes']} is above the transport's {MAX_MESSAGE_BYTES}",
            key="fetch_max_bytes",
        )
    check_options(priority, lane_weights, max_lane_wait_ms)
    if group_id is not None and (not isinstance(group_id, str) or not group_id):
        raise InvalidConfig(f"consumer option group_id={group_id!r} must be a non-empty str", key="group_id")
    if group_id is None:
        group_only: tuple[tuple[str, object], ...] = (
            ("instance_id", instance_id),
            ("on_assign", on_assign),
            ("on_revoke", on_revoke),
        )
        for option, given in group_only:
            if given is not None:
                raise InvalidConfig(f"consumer option {option} needs a group_id", key=option)


class Consumer:
    """Reads partitions in offset order (per partition); see the module docstring.

    ``max_poll_records`` (500 by default, as in Kafka) bounds one poll, not one Fetch: a Fetch
    asks for ``max_poll_records`` records but never fewer than 10,000
    (``fetch_options.MIN_FETCH_RECORDS``), so a small poll costs no extra round trips, and the records
    of a poll are freed before the next is made (about a quarter less CPU per record than polls
    of 10,000 on the reference machine); ``fetch_max_bytes`` bounds one Fetch response;
    ``fetch_max_wait_ms`` how long the broker holds a Fetch open when there is no new data.
    ``security`` holds TLS and token settings (None: from the environment, see
    :mod:`logsvc_client.security`). ``check_crcs`` verifies each batch's CRC32 before decoding it.
    ``prefetch`` starts the next Fetch as soon as a poll returns, so the broker reads while the
    application works. ``corrupt_batches`` is "raise" (poll raises CorruptBatch for a stored batch
    that does not decode) or "skip" (log a WARNING and read on past it); see the module docstring.

    Group mode (with ``group_id``): ``instance_id`` makes the member static (a restart within
    ``session_timeout_ms`` gets its partitions back, and ``close`` does not leave the group; once
    another consumer joins with the same instance id, every poll raises FencedInstance);
    ``assignor`` is "sticky" or "range"; ``enable_auto_commit`` commits the positions every
    ``auto_commit_interval_ms`` (checked in poll), on revoke and on close; a member that does not
    poll for ``max_poll_interval_ms`` gives its partitions up (the next poll joins again);
    ``on_assign``/``on_revoke`` are called inside poll with the partitions (sorted) — on_assign
    after they were positioned at the committed offsets (it may seek), on_revoke before their
    positions are committed and they are released to their next owner.

    Lanes (see the module docstring): ``priority`` is "none" (records as they are fetched),
    "strict" or "weighted" (with ``lane_weights``, positive, one per topic, highest lane first);
    ``max_lane_wait_ms`` bounds how long a lane with a backlog goes without records.

    ``record_type`` is the tuple type poll's records are decoded into: :class:`Record`, or a
    NamedTuple whose first seven fields are Record's and whose others are None (a sink runtime's
    record, with room for what it adds, built in the decoding pass with no second tuple).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Consumer:
        """A :class:`~logsvc_client.kafka.consumer.KafkaConsumer` for a ``kafka://`` address
        (confluent-kafka is imported only then), else a consumer of a logsvc broker."""
        address = args[0] if args else kwargs.get("address")
        if cls is Consumer and is_kafka(address):
            from ..kafka.consumer import KafkaConsumer

            return object.__new__(KafkaConsumer)
        return object.__new__(cls)

    def __init__(
        self,
        address: str,
        group_id: str | None = None,
        *,
        instance_id: str | None = None,
        session_timeout_ms: int = 10_000,
        assignor: str = "sticky",
        enable_auto_commit: bool = True,
        auto_commit_interval_ms: int = 5_000,
        max_poll_interval_ms: int = 300_000,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        client_id: str = "",
        max_poll_records: int = 500,
        fetch_max_bytes: int = 16 * 1024 * 1024,
        fetch_max_wait_ms: int = 500,
        check_crcs: bool = True,
        auto_offset_reset: OffsetReset = "earliest",
        prefetch: bool = True,
        request_timeout_ms: int = 30_000,
        retries: int = 5,
        retry_backoff_ms: int = 100,
        priority: Priority = "none",
        lane_weights: Sequence[float] | None = None,
        max_lane_wait_ms: int = 1_000,
        security: Security | None = None,
        corrupt_batches: CorruptBatches = "raise",
        record_type: type[tuple[Any, ...]] = Record,
    ) -> None:
        check_consumer_options(
            group_id,
            instance_id=instance_id,
            on_assign=on_assign,
            on_revoke=on_revoke,
            numbers={
                "max_poll_records": max_poll_records,
                "fetch_max_bytes": fetch_max_bytes,
                "fetch_max_wait_ms": fetch_max_wait_ms,
                "request_timeout_ms": request_timeout_ms,
                "retries": retries,
                "retry_backoff_ms": retry_backoff_ms,
                "session_timeout_ms": session_timeout_ms,
                "auto_commit_interval_ms": auto_commit_interval_ms,
                "max_poll_interval_ms": max_poll_interval_ms,
            },
            priority=priority,
            lane_weights=lane_weights,
            max_lane_wait_ms=max_lane_wait_ms,
            corrupt_batches=corrupt_batches,
        )
        self.address = address
        self.group_id = group_id
        self._wake = threading.Event()  # set when the assignment changes: poll stops waiting
        security = Security.from_env() if security is None else security

        self._new_membership = functools.partial(
            Membership,
            on_change=self._wake.set,
            instance_id=instance_id or None,
            session_timeout_ms=session_timeout_ms,
            assignor=assignor,
            client_id=client_id,
            max_poll_interval_ms=max_poll_interval_ms,
            request_timeout_ms=request_timeout_ms,
        )
        self._auto_offset_reset: OffsetReset = auto_offset_reset
        self._enable_auto_commit = enable_auto_commit
        self._auto_commit_interval_ms = auto_commit_interval_ms
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._priority = priority
        self._lane_weights = None if lane_weights is None else list(lane_weights)
        self._max_lane_wait_ms = max_lane_wait_ms
        self._subscription: Subscription | None = None
        self._assigned_by_hand = False
        self._retry = RetryPolicy(
            retries=retries, backoff=Backoff(base_ms=retry_backoff_ms), timeout_ms=request_timeout_ms
        )
        self._transport: ConsumeTransport = GrpcTransport(
            address, request_timeout_ms=request_timeout_ms, retry=self._retry, security=security
        )
        # A group member's heartbeats go over a connection of their own (one per subscription).
        self._membership_transport: Callable[[], GroupTransport] = functools.partial(
            GrpcTransport,
            address,
            request_timeout_ms=request_timeout_ms,
            retry=self._retry,
            security=security,
            own_connection=True,
        )
        self._fetcher = Fetcher(
            self._transport,
            max_poll_records=max_poll_records,
            fetch_max_bytes=fetch_max_bytes,
            fetch_max_wait_ms=fetch_max_wait_ms,
            check_crcs=check_crcs,
            auto_offset_reset=auto_offset_reset,
            prefetch=prefetch,
            retry=self._retry,
            corrupt_batches=corrupt_batches,
            record_type=record_type,
        )
        self._closed = False

    # -- assignment -----------------------------------------------------------------------------

    def subscribe(self, topics: Iterable[str] | str) -> None:
        """Consume ``topics`` as a member of the consumer group ``group_id``: joins the group now;
        partitions arrive in the following polls. Called again, it changes the subscription. With
        ``priority``, the topics are the lanes, highest first.

        Parameters:
            topics: one topic name or several.

        Raises:
            InvalidConfig: the consumer has no ``group_id``.
            FailedPrecondition: it reads partitions given to ``assign()``.
            InvalidRequest: no topic names.
            TopicNotFound: a topic does not exist.
            GroupMaxSizeReached: the group already has the broker's most members.
        """
        if self.group_id is None:
            raise InvalidConfig("subscribe() needs a consumer created with a group_id", key="group_id")
        if self._assigned_by_hand:
            raise FailedPrecondition("this consumer reads partitions given to assign(); it cannot also subscribe")
        names = [topics] if isinstance(topics, str) else list(dict.fromkeys(topics))
        if not names or not all(isinstance(t, str) and t for t in names):
            raise InvalidRequest(f"subscribe() needs one or more topic names, got {topics!r}")
        lanes = self._lane_policy(names)
        if self._subscription is not None:
            self._subscription.membership.subscribe(names)
            self._fetcher.set_lanes(lanes)
            return
        membership = self._new_membership(self._membership_transport(), self.group_id, names)
        subscription = Subscription(
            membership,
            self._fetcher,
            self._wake,
            transport=self._transport,
            auto_offset_reset=self._auto_offset_reset,
            enable_auto_commit=self._enable_auto_commit,
            auto_commit_interval_ms=self._auto_commit_interval_ms,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
        )
        try:
            membership.start()
        except BaseException:
            membership.close(leave=False)
            raise
        self._fetcher.interrupt_on(self._wake)
        self._fetcher.set_lanes(lanes)
        self._subscription = subscription

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (replacing the assignment); positions of kept ones stay.
        With ``priority``, their topics are the lanes, highest first, in the order listed."""
        self._check_not_subscribed("assign()")
        tps = check_partitions(partitions)
        topics = list(dict.fromkeys(tp.topic for tp in tps))
        lanes = self._lane_policy(topics) if topics else None
        self._fetcher.assign(tps)
        self._fetcher.set_lanes(lanes)
        self._assigned_by_hand = bool(self._fetcher.assignment())

    def _lane_policy(self, topics: Sequence[str]) -> LanePolicy | None:
        """The lanes over ``topics`` (None without ``priority``); InvalidConfig for weights that
        do not match them."""
        if self._priority == "none":
            return None
        return LanePolicy(topics, self._priority, self._lane_weights, self._max_lane_wait_ms)

    def assign_topic(self, topic: str) -> list[TopicPartition]:
        """Assign every partition of ``topic`` (replacing the assignment); TopicNotFound."""
        self._check_not_subscribed("assign_topic()")
        tps = [TopicPartition(topic, p) for p in range(self._transport.partition_count(topic))]
        self.assign(tps)
        return tps

    def assignment(self) -> list[TopicPartition]:
        """The partitions this consumer reads (in group mode: those the group gave it, as of the
        last poll)."""
        if self._subscription is not None:
            return self._subscription.assignment()
        return self._fetcher.assignment()

    def _check_not_subscribed(self, what: str) -> None:
        if self._subscription is not None:
            raise FailedPrecondition(f"{what} is not allowed: this consumer's partitions come from its group")

    # -- positions ------------------------------------------------------------------------------

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """The next poll returns ``tp``'s records from ``offset`` on."""
        tp = TopicPartition(*tp)
        self._adopt([tp])
        self._fetcher.seek(tp, offset)

    def seek_to_beginning(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions (default: all assigned) to their log start offsets."""
        self._fetcher.seek_to("earliest", self._adopt(tps))

    def seek_to_end(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions (default: all assigned) past their last records."""
        self._fetcher.seek_to("latest", self._adopt(tps))

    def seek_to_time(self, timestamp_ms: int, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions to the first record with a timestamp at or after ``timestamp_ms``
        (past the last record when there is none)."""
        self._fetcher.seek_to("timestamp", self._adopt(tps), timestamp_ms)

    def _adopt(self, tps: Iterable[TopicPartition] | None) -> list[TopicPartition] | None:
        if self._subscription is None:
            return None if tps is None else list(tps)
        return self._subscription.adopt(tps)

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record poll returns for ``tp``."""
        return self._fetcher.position(TopicPartition(*tp))

    # -- commits (group mode) -------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``{partition: next offset to read}`` for the group, synchronously (durable when it
        returns); default: the current positions of the partitions this consumer reads.

        A member's commit is fenced: StaleGeneration, UnknownMember, or FailedPrecondition for a
        partition it does not own (all FailedPrecondition). A consumer that uses ``assign()`` with a
        ``group_id`` may commit only while the group has no live members (GroupNotEmpty).
        """
        if self._subscription is not None:
            self._subscription.commit(offsets)
            return
        group = self._require_group("commit()")
        if offsets is None:
            offsets = self._fetcher.positions()
        group_offsets.commit(self._transport, group, offsets)

    def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (the next offset to read); None when there is none."""
        group = self._require_group("committed()")
        tp = TopicPartition(*tp)
        found = self._transport.fetch_offsets(group, [tp]).get(tp)
        return None if found is None else found.offset

    def group_metadata(self) -> GroupMetadata:
        """The group id, member id and generation this consumer's commits carry right now."""
        group = self._require_group("group_metadata()")
        if self._subscription is None:
            return GroupMetadata(group, "", -1)
        member_id, generation, _ = self._subscription.membership.credentials()
        return GroupMetadata(group, member_id, generation)

    def _require_group(self, what: str) -> str:
        if self.group_id is None:
            raise InvalidConfig(f"{what} needs a consumer created with a group_id", key="group_id")
        return self.group_id

    # -- reading --------------------------------------------------------------------------------

    def poll(self, timeout_ms: float = 1_000, max_records: int | None = None) -> list[Record]:
        """Records from the assigned partitions, in offset order per partition, waiting up to
        ``timeout_ms`` for the first; an empty list when none arrived. In group mode, assignment
        changes, rebalance callbacks and auto-commits happen here, on the caller's thread.

        Parameters:
            timeout_ms: how long to wait for the first record.
            max_records: at most this many (default: the consumer's ``max_poll_records``).

        Raises:
            FailedPrecondition: the consumer is closed, or has no partitions (neither ``assign``
                nor ``subscribe`` was called).
            FencedInstance: another process joined with this consumer's ``instance_id``.
            CorruptBatch: a stored batch is off the specification (with ``corrupt_batches="raise"``).
            OffsetOutOfRange: the position left the log and ``auto_offset_reset`` is ``"none"``.
        """
        if self._closed:
            raise FailedPrecondition("the consumer is closed")
        if self._subscription is not None:
            return self._subscription.poll(timeout_ms / 1000, max_records)
        if not self._fetcher.assignment():
            raise FailedPrecondition(
                "no partitions are assigned: call assign() or assign_topic() first (or subscribe() with a group_id)"
            )
        return self._fetcher.fetch(timeout_ms / 1000, max_records)

    def __iter__(self) -> Iterator[Record]:
        """Every record, forever (until the consumer is closed)."""
        while not self._closed:
            yield from self.poll(timeout_ms=1_000)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop consuming. In group mode: the revoke callback, a commit (with auto-commit), then
        leave the group (a static member keeps its slot until its session times out)."""
        if not self._closed:
            self._closed = True
            try:
                if self._subscription is not None:
                    self._subscription.close()
            finally:
                self._fetcher.close()
                self._transport.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
