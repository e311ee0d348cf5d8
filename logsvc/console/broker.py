"""The console's one door to the broker: what each page reads and each action changes, through
the public client API (:class:`~logsvc_client.Admin` over one channel) and the dead-letter review
the CLI's ``logsvc dlq`` uses (:mod:`logsvc_connect.dead_letters.review`).

Every method blocks (gRPC): the app calls them with ``run_in_threadpool`` so the event loop never
waits on the broker. Errors are the client library's (:class:`~logsvc_client.errors.LogsvcError`),
shown by the app as an error page; nothing here catches them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from logsvc.cli.sources import ServerSource
from logsvc_client import GroupDescription, GroupSummary, Record, ResetResult, TopicDescription
from logsvc_client.admin import ResetSpec
from logsvc_client.errors import GroupNotFound, InvalidRequest, TopicNotFound
from logsvc_connect.dead_letters import review
from logsvc_connect.dead_letters.format import dlq_topic

from . import connectors
from .sampler import Facts, dead_series, group_ms_series, group_series, topic_series, written_series

DLQ_SUFFIX = dlq_topic("")


@dataclass(frozen=True)
class Overview:
    topics: list[TopicDescription]
    groups: list[tuple[GroupSummary, GroupDescription | None]]  # None: deleted while reading
    connectors: list[connectors.ConnectorSeen]


@dataclass(frozen=True)
class Page:
    """Records of one partition from ``start``; ``next_offset`` is where the next page starts:
    after the last record read (with a key filter, how far it looked), or the partition's end."""

    topic: str
    partition: int
    start: int
    records: list[Record]
    next_offset: int
    log_start_offset: int
    end_offset: int
    filtered: bool


class BrokerView:
    """One broker, one channel; thread-safe (gRPC channels are), used from the thread pool."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._source = ServerSource(address)
        self.admin = self._source.admin
        # one replay at a time: two clicks at once must not both pass review.plan's "replayed
        # before?" check before either remembered its replay
        self._replay_lock = threading.Lock()

    def close(self) -> None:
        self._source.close()

    # -- reading --------------------------------------------------------------------------------

    def topics(self) -> list[TopicDescription]:
        out = []
        for summary in self.admin.list_topics():
            try:
                out.append(self.admin.describe_topic(summary.name))
            except TopicNotFound:
                continue  # deleted meanwhile
        return sorted(out, key=lambda t: t.name)

    def groups(self) -> list[tuple[GroupSummary, GroupDescription | None]]:
        out: list[tuple[GroupSummary, GroupDescription | None]] = []
        for summary in self.admin.list_groups():
            try:
                out.append((summary, self.admin.describe_group(summary.group)))
            except GroupNotFound:
                out.append((summary, None))
        return out

    def overview(self) -> Overview:
        groups = self.groups()
        seen = connectors.connectors_in([d for _, d in groups if d is not None])
        return Overview(self.topics(), groups, seen)

    def topic(self, name: str) -> TopicDescription:
        return self.admin.describe_topic(name)

    def group(self, name: str) -> GroupDescription:
        return self.admin.describe_group(name)

    def offset_at(self, topic: str, partition: int, timestamp_ms: int) -> int:
        """The first offset at or after ``timestamp_ms`` (the partition's end when none is)."""
        return self.admin.offsets_for_time(topic, timestamp_ms, [partition])[partition].offset

    def page(self, topic: str, partition: int, start: int, limit: int, key: bytes | None, scan_limit: int) -> Page:
        """Up to ``limit`` records of ``topic/partition`` from ``start`` (clamped into the
        partition), only those whose key is ``key`` when given, reading at most ``scan_limit``."""
        if limit < 1:
            raise InvalidRequest(f"page size {limit} must be >= 1")
        part = self.topic(topic).partition(partition)
        start = min(max(start, part.log_start_offset), part.next_offset)
        found: list[Record] = []
        position = start
        end = min(part.next_offset, start + scan_limit) if key is not None else part.next_offset
        for record in review.read_records(self._source, topic, partition, start, end, skip_corrupt=True, warn=_ignore):
            position = record.offset + 1
            if key is None or record.key == key:
                found.append(record)
                if len(found) >= limit:
                    break
        else:
            position = end
        return Page(topic, partition, start, found, position, part.log_start_offset, part.next_offset, key is not None)

    def record(self, topic: str, partition: int, offset: int) -> Record:
        """The record at ``offset``; OffsetOutOfRange naming the offsets the partition holds."""
        return review.record_at(self._source, topic, self.topic(topic).partition(partition), offset)

    # -- dead letters ---------------------------------------------------------------------------

    def dlq_connectors(self) -> list[str]:
        """The connectors with a dead-letter topic (``<connector>.dlq``), sorted."""
        names = (t.name for t in self.admin.list_topics())
        return sorted(n[: -len(DLQ_SUFFIX)] for n in names if n.endswith(DLQ_SUFFIX) and len(n) > len(DLQ_SUFFIX))

    def dead_letters(self, connector: str) -> review.DeadLetterTopic:
        return review.open_dlq(self._source, connector, None, _ignore)

    def replay(self, connector: str, offset: int) -> review.Replayed:
        """Replay one dead letter as ``logsvc dlq replay CONNECTOR --offset N`` does (no --to, no
        --force): refused with FailedPrecondition when it was replayed before, through any copy,
        or when its source topic is not one the connector consumes."""
        with self._replay_lock:
            found = self.dead_letters(connector)
            planned = review.plan(found, [offset], False, None, False, _ignore)
            planned = review.own_sources(self.admin, connector, found, planned, False, _ignore)
            review.check_targets(self._source, planned)
            (replayed,) = review.replay(self.admin, found, planned)
            return replayed

    # -- changing offsets -----------------------------------------------------------------------

    def reset(self, group: str, topic: str, spec: ResetSpec, value: int | None, execute: bool) -> ResetResult:
        """The plan (``execute`` False) or the result of moving ``group``'s offsets of ``topic``;
        GroupNotEmpty while the group has live members."""
        return self.admin.reset_offsets(group, topic, None, spec, value, execute)

    # -- what the sampler records ---------------------------------------------------------------

    def facts(self, metrics_urls: tuple[str, ...], scrape: Callable[[str], dict[str, tuple[float, float]]]) -> Facts:
        """One sample: each topic's summed next offsets, each group's total lag and largest lag in
        ms, and the connectors' counters from ``metrics_urls`` (those unreadable named)."""
        facts = Facts()
        for t in self.topics():
            facts.values[topic_series(t.name)] = sum(p.next_offset for p in t.partitions)
        for summary, desc in self.groups():
            if desc is not None:
                facts.values[group_series(summary.group)] = sum(p.lag for p in desc.partitions)
                facts.values[group_ms_series(summary.group)] = max((p.lag_ms for p in desc.partitions), default=0)
        for url in metrics_urls:
            try:
                counters = scrape(url)
            except OSError:
                facts.unreachable.add(url)
                continue
            for name, (written, dead) in counters.items():
                facts.values[written_series(name)] = written
                facts.values[dead_series(name)] = dead
        return facts


def _ignore(message: str) -> None:
    """Warnings of the review (a corrupt DLQ batch left out): the page lists what it could read."""
