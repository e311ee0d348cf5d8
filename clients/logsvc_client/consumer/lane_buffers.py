"""Records buffered per lane, and each lane's backlog, for a consumer with priority lanes.

With priority lanes (a :class:`~logsvc_client.consumer.lanes.LanePolicy` over topics) a
:class:`~logsvc_client.consumer.fetcher.Fetcher` keeps its fetched records in :class:`LaneBuffers`: one
:class:`~logsvc_client.consumer.record_buffer.RecordBuffer` per lane, the assigned partitions of each lane,
and per partition the broker's next offset from the last Fetch answer (the log end). A lane's
*backlog* is its buffered records plus, per partition, that log end minus the fetch offset; each
poll takes from the lanes what the policy plans given the backlogs (:meth:`LaneBuffers.plan`).
A Fetch asks only for the lanes that hold fewer than one Fetch's worth of buffered records
(:func:`~logsvc_client.consumer.fetch_options.fetch_records`), the one that would run out first first
(:meth:`LaneBuffers.to_fetch`, :meth:`~logsvc_client.consumer.lanes.LanePolicy.fetch_order`), so a
lane that is not being taken from stops growing while the others keep being fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..records import Record, TopicPartition
from .lanes import LanePolicy
from .record_buffer import RecordBuffer


class LaneBuffers:
    """The buffers, partitions and log ends of the lanes of ``policy``; see the module docstring."""

    __slots__ = ("buffers", "ends", "policy", "tps")

    def __init__(
        self,
        policy: LanePolicy,
        check_crcs: bool,
        assigned: list[TopicPartition],
        skip_corrupt: bool = False,
        record_type: type[tuple[Any, ...]] = Record,
    ) -> None:
        self.policy = policy
        # in lane order
        self.buffers = {lane: RecordBuffer(check_crcs, skip_corrupt, record_type) for lane in policy.lanes}
        self.tps: dict[str, list[TopicPartition]] = {}  # the assigned partitions of each lane
        self.ends: dict[TopicPartition, int] = {}  # the log end, per the last Fetch answer
        self.assign(assigned)

    def assign(self, assigned: list[TopicPartition]) -> None:
        """Map the assigned partitions to their lanes (partitions of topics that are not lanes are
        left out) and forget the log ends of partitions no longer assigned."""
        keep = set(assigned)
        for tp in [tp for tp in self.ends if tp not in keep]:
            del self.ends[tp]
        self.tps = {lane: [tp for tp in assigned if tp.topic == lane] for lane in self.buffers}

    def plan(self, now_ms: int, limit: int, fetch_offsets: Mapping[TopicPartition, int]) -> dict[str, int]:
        """The policy's plan for a poll of ``limit`` records, given each lane's backlog: its buffered
        records plus, per partition, the log end from the last Fetch answer minus the fetch offset."""
        buffers, ends, offsets = self.buffers, self.ends, fetch_offsets
        ready: dict[str, int] = {}
        backlog: dict[str, int] = {}
        for lane, tps in self.tps.items():
            ready[lane] = n = buffers[lane].count
            for tp in tps:
                end, at = ends.get(tp), offsets.get(tp)
                if end is not None and at is not None and end > at:
                    n += end - at
            backlog[lane] = n
        return self.policy.plan(backlog, now_ms, limit, ready)

    def served(self, plan: Mapping[str, int], missing: Mapping[str, int], now_ms: int) -> None:
        """Tell the policy how many records each lane got of its part of ``plan``."""
        for lane, n in plan.items():
            self.policy.served(lane, n - missing.get(lane, 0), now_ms)

    def to_fetch(self, cap: int) -> tuple[list[TopicPartition], int]:
        """The partitions to fetch — those of lanes holding fewer than ``cap`` buffered records, the
        lane that would run out first first (the broker fills a Fetch in the order asked) — and how
        many records would fill those lanes."""
        counts = {lane: buffer.count for lane, buffer in self.buffers.items()}
        lanes = [lane for lane in self.policy.fetch_order(counts) if self.tps[lane] and counts[lane] < cap]
        return [tp for lane in lanes for tp in self.tps[lane]], sum(cap - counts[lane] for lane in lanes)
