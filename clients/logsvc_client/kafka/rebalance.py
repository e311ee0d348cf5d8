"""A Kafka group member's rebalance callbacks: what librdkafka's group protocol calls inside
``consume`` (so inside the consumer's poll, on the application's thread) when partitions are
assigned, revoked or lost.

- **assigned**: the partitions are positioned at the group's committed offsets (else by
  ``auto_offset_reset``), then ``on_assign`` is called (it may seek them: a seek inside it sets
  the starting offset), then they are handed to librdkafka's fetcher at the offsets chosen;
- **revoked**: ``on_revoke``, then (with auto-commit) a commit of their positions, then they are
  forgotten (records of theirs already fetched are never returned) and released;
- **lost** (session expired, ``max_poll_interval_ms`` exceeded, fenced): forgotten without a
  commit (it would be refused), then ``on_revoke``.

:class:`GroupRebalance` is a base of :class:`~logsvc_client.kafka.consumer.KafkaConsumer`, whose
state (owned partitions, positions, starting offsets) it works on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, OFFSET_INVALID
from confluent_kafka import Consumer as RdConsumer
from confluent_kafka import TopicPartition as RdTopicPartition

from ..consumer.offset_reset import OffsetReset
from ..consumer.subscription import RebalanceCallback
from ..records import TopicPartition
from .errors import translate

log = logging.getLogger("logsvc_client.consumer")


def rd_partition(tp: tuple[str, int], offset: int = OFFSET_INVALID) -> RdTopicPartition:
    """librdkafka's TopicPartition of ``tp`` at ``offset``."""
    return RdTopicPartition(tp[0], tp[1], offset)


class GroupRebalance:
    """The rebalance callbacks; see the module docstring."""

    group_id: str | None
    _rd: RdConsumer
    _cooperative: bool  # cooperative-sticky: incremental (un)assign; else eager
    _closing: bool
    _changed: bool
    _reset: OffsetReset
    _auto_commit: bool
    _timeout_s: float
    _on_assign: RebalanceCallback | None
    _on_revoke: RebalanceCallback | None
    _owned: set[TopicPartition]
    _assigning: set[TopicPartition]
    _starts: dict[TopicPartition, int]
    _positions: dict[tuple[str, int], int]
    _committed: dict[TopicPartition, int]
    _forget: Callable[[Iterable[TopicPartition]], None]
    _owned_positions: Callable[[], dict[TopicPartition, int]]
    _commit_quietly: Callable[[Mapping[TopicPartition, int]], None]
    _call: Callable[..., Any]

    def _assigned_by_group(self, rd: RdConsumer, partitions: list[RdTopicPartition]) -> None:
        """librdkafka's on_assign: position the new partitions, call ``on_assign`` (its seeks set
        where they start), then hand them to the fetcher at those offsets (even when it raised)."""
        tps = sorted(TopicPartition(p.topic, p.partition) for p in partitions)
        try:
            if tps and not self._closing:
                self._changed = True
                self._owned.update(tps)
                self._position(tps)
                self._assigning = set(tps)
                if self._on_assign is not None:
                    self._on_assign(tps)
        finally:
            self._assigning = set()
            at = [rd_partition(tp, self._starts.get(tp, OFFSET_INVALID)) for tp in tps]
            (rd.incremental_assign if self._cooperative else rd.assign)(at)

    def _position(self, tps: list[TopicPartition]) -> None:
        """Start ``tps`` at the group's committed offsets, else by ``auto_offset_reset`` (librdkafka
        moves a committed offset outside the log by it too; under "none" it reports an error)."""
        what = f"committed offsets of group {self.group_id}"
        committed = self._call(what, self._rd.committed, [rd_partition(tp) for tp in tps], timeout=self._timeout_s)
        default = {"earliest": OFFSET_BEGINNING, "latest": OFFSET_END}.get(self._reset, OFFSET_INVALID)
        for tp, found in zip(tps, committed, strict=True):
            if found.error is not None:
                raise translate(found.error, what)
            if found.offset >= 0:
                self._committed[tp] = self._starts[tp] = self._positions[tp] = found.offset
            else:
                self._starts[tp] = default

    def _revoked_by_group(self, rd: RdConsumer, partitions: list[RdTopicPartition]) -> None:
        """librdkafka's on_revoke: ``on_revoke``, the commit of their positions (with auto-commit),
        then forget and release them. While closing only the last two (close did the rest)."""
        tps = sorted(TopicPartition(p.topic, p.partition) for p in partitions)
        try:
            if tps and not self._closing:
                self._changed = True
                if self._on_revoke is not None:
                    self._on_revoke(tps)
                if self._auto_commit:
                    positions = self._owned_positions()
                    self._commit_quietly({tp: positions[tp] for tp in tps if tp in positions})
        finally:
            self._forget(tps)
            self._release(rd, partitions)

    def _lost_by_group(self, rd: RdConsumer, partitions: list[RdTopicPartition]) -> None:
        """librdkafka's on_lost: forget them without a commit, then ``on_revoke``, then release."""
        tps = sorted(TopicPartition(p.topic, p.partition) for p in partitions)
        self._changed = True
        self._forget(tps)
        try:
            if tps and not self._closing:
                log.warning("group %s: membership lost; dropping %d partition(s)", self.group_id, len(tps))
                if self._on_revoke is not None:
                    self._on_revoke(tps)
        finally:
            self._release(rd, partitions)

    def _release(self, rd: RdConsumer, partitions: list[RdTopicPartition]) -> None:
        """Take ``partitions`` from librdkafka's fetcher (eager: the whole assignment goes)."""
        if self._cooperative:
            rd.incremental_unassign(partitions)
        else:
            rd.unassign()
