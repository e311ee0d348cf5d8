"""Where a source record landed on Kafka: one partition's offset mapping, pure data and arithmetic.

The mirror copies a logsvc partition to the same Kafka partition in order, so within a run of
records without a gap a source offset and its Kafka offset advance together. They part only where
the source skips offsets (records trimmed before the mirror copied them, or while it was down):
each such place starts a new **sync** ``(source, kafka)``, like MirrorMaker 2's offset syncs.
A record at source offset ``o`` of a segment starting at sync ``s`` is at Kafka offset
``s.kafka + (o - s.source)``.

:class:`PartitionMap` also holds how far the copy has got (``source_next`` / ``kafka_next``: the
next source record to copy and the Kafka offset it will get), so one value is all the checkpoint
keeps per partition and all the group translation needs.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, order=True)
class Sync:
    """Source offset ``source`` was copied to Kafka offset ``kafka`` (and the records after it, up
    to the next sync, follow one for one)."""

    source: int
    kafka: int


@dataclass(frozen=True)
class PartitionMap:
    """One partition's copy progress and offset mapping (see the module docstring).

    ``syncs`` are sorted by both offsets; every record copied so far lies in one of their segments.
    """

    source_next: int
    kafka_next: int
    syncs: tuple[Sync, ...] = field(default=())

    # -- the copy advancing ---------------------------------------------------------------------

    def start_segment(self, source_offset: int) -> PartitionMap:
        """The next record copied is ``source_offset`` (after a gap, or the first record ever) and
        gets Kafka offset ``kafka_next``. A previous sync that no record followed is dropped."""
        if source_offset < self.source_next and self.syncs:
            raise ValueError(f"source offset {source_offset} goes back before {self.source_next}")
        syncs = self.syncs
        if syncs and syncs[-1].kafka == self.kafka_next:
            syncs = syncs[:-1]
        return PartitionMap(source_offset, self.kafka_next, (*syncs, Sync(source_offset, self.kafka_next)))

    def acknowledged(self, source_offset: int, kafka_offset: int, count: int = 1) -> PartitionMap:
        """Kafka stored ``count`` consecutive source records from ``source_offset`` at consecutive
        offsets from ``kafka_offset``. The expected case (the next of both) only moves the
        positions; anything else starts a segment of its own, so the mapping stays true whatever
        happened."""
        if self.syncs and source_offset == self.source_next and kafka_offset == self.kafka_next:
            return PartitionMap(source_offset + count, kafka_offset + count, self.syncs)
        syncs = self.syncs
        if syncs and syncs[-1].kafka >= kafka_offset:
            syncs = tuple(s for s in syncs if s.kafka < kafka_offset)
        return PartitionMap(source_offset + count, kafka_offset + count, (*syncs, Sync(source_offset, kafka_offset)))

    def resumed(self, kafka_high_watermark: int) -> PartitionMap:
        """The map after a restart, when Kafka holds ``kafka_high_watermark - kafka_next`` records
        more than this checkpoint says: copied after it, in order and without a gap (a gap always
        writes a checkpoint before its first record is sent), so they are the next source records.

        Raises:
          ValueError: Kafka holds fewer records than the checkpoint says it acknowledged.
        """
        extra = kafka_high_watermark - self.kafka_next
        if extra < 0:
            raise ValueError(f"Kafka ends at offset {kafka_high_watermark}, before the checkpoint's {self.kafka_next}")
        return replace(self, source_next=self.source_next + extra, kafka_next=kafka_high_watermark)

    # -- translation ----------------------------------------------------------------------------

    def to_kafka(self, source_offset: int) -> int | None:
        """The Kafka offset a consumer positioned at ``source_offset`` (the next record to read)
        resumes at; None when that record has not been copied yet.

        An offset before the first copied record (trimmed before the copy) maps to the first one;
        an offset in a gap maps to the first record after the gap: what the source itself would
        give that consumer next.
        """
        if source_offset > self.source_next:
            return None
        if not self.syncs:
            return self.kafka_next
        i = bisect.bisect_right([s.source for s in self.syncs], source_offset) - 1
        if i < 0:
            return self.syncs[0].kafka
        sync = self.syncs[i]
        end = self.syncs[i + 1].kafka if i + 1 < len(self.syncs) else self.kafka_next
        return min(sync.kafka + (source_offset - sync.source), end)

    def to_source(self, kafka_offset: int) -> int | None:
        """The source offset of the record at ``kafka_offset`` (``source_next`` for
        ``kafka_next``); None for an offset this mirror did not write."""
        if kafka_offset == self.kafka_next:
            return self.source_next
        i = bisect.bisect_right([s.kafka for s in self.syncs], kafka_offset) - 1
        if i < 0 or kafka_offset > self.kafka_next:
            return None
        sync = self.syncs[i]
        return sync.source + (kafka_offset - sync.kafka)

    # -- persistence ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "source_next": self.source_next,
            "kafka_next": self.kafka_next,
            "syncs": [[s.source, s.kafka] for s in self.syncs],
        }

    @classmethod
    def from_json(cls, data: Any) -> PartitionMap:
        """Raises KeyError, TypeError or ValueError for data that is not a map's JSON."""
        syncs = tuple(Sync(int(s), int(k)) for s, k in data["syncs"])
        pmap = cls(int(data["source_next"]), int(data["kafka_next"]), syncs)
        if list(syncs) != sorted(syncs) or any(a.kafka >= b.kafka for a, b in itertools.pairwise(syncs)):
            raise ValueError("syncs are not in offset order")
        return pmap
