"""Where ``logsvc consume`` reads: which topics (names, or patterns matched once at start), where
each partition starts (``--from``/``-o``), and where it ends (``-e``, kcat's ``-o e@TIME``).

The bounds are taken once, at start: ``-e`` stops each partition at the next offset it had then
(records produced later are not printed), ``--from -N`` starts N records before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import click

from logsvc.cli.output import note
from logsvc.cli.sources import out_of_range
from logsvc.cli.timespec import StartSpec
from logsvc_client import Admin, Consumer, TopicPartition
from logsvc_client.records import Record

#: per partition: (log start offset, next offset) when reading began
Bounds = dict[TopicPartition, tuple[int, int]]


def resolve_topics(admin: Admin, names: Sequence[str], pattern: bool) -> list[str]:
    """The topics to read, in the order given: each name as it is, or (with ``pattern``, or a
    name starting with ``^`` as in kcat/librdkafka) every topic whose whole name matches it as a
    regular expression, sorted. A pattern matching nothing is a usage error."""
    chosen: dict[str, None] = {}
    existing: list[str] | None = None
    for name in names:
        if not (pattern or name.startswith("^")):
            chosen[name] = None
            continue
        try:
            regex = re.compile(name)
        except re.error as e:
            raise click.BadParameter(f"{name!r} is not a regular expression: {e}", param_hint="'TOPICS'") from None
        if existing is None:
            existing = sorted(t.name for t in admin.list_topics())
        matched = [t for t in existing if regex.fullmatch(t)]
        if not matched:
            raise click.BadParameter(f"no topic matches {name!r}", param_hint="'TOPICS'")
        chosen.update(dict.fromkeys(matched))
    return list(chosen)


def bounds(admin: Admin, topics: Iterable[str], partition: int | None) -> Bounds:
    """Each partition's (log start, next offset) now: every partition of ``topics``, or only
    ``partition`` of each (through :meth:`Admin.list_offsets`, as ``logsvc offsets``);
    TopicNotFound, InvalidPartition."""
    found: Bounds = {}
    for topic in topics:
        only = None if partition is None else [partition]
        earliest = admin.list_offsets(topic, "earliest", partitions=only)
        latest = admin.list_offsets(topic, "latest", partitions=only)
        for p, start in sorted(earliest.items()):
            found[TopicPartition(topic, p)] = (start, latest[p])
    return found


def seek(consumer: Consumer, found: Bounds, start: StartSpec, partition: int | None) -> None:
    """Position every partition of ``found`` (all assigned to ``consumer``) at ``start``."""
    if start.kind == "earliest":
        consumer.seek_to_beginning()
    elif start.kind == "latest":
        consumer.seek_to_end()
    elif start.kind == "time":
        consumer.seek_to_time(start.value)
    elif start.kind == "last":
        for tp, (log_start, end) in found.items():
            consumer.seek(tp, max(log_start, end - start.value))
    elif start.kind == "offset":
        if partition is None and len(found) > 1:
            counts = {t: sum(tp.topic == t for tp in found) for t in dict.fromkeys(tp.topic for tp in found)}
            what = ", ".join(f"{t} has {n} partition{'s' if n > 1 else ''}" for t, n in counts.items())
            raise click.UsageError(f"--from OFFSET needs --partition: {what}")
        for tp, (log_start, end) in sorted(found.items()):
            if not log_start <= start.value <= end:
                raise out_of_range(tp.topic, tp.partition, start.value, log_start, end)
            consumer.seek(tp, start.value)
    else:
        raise click.UsageError("-o stored needs --group (it is the group's committed offset)")


class PartitionEnds:
    """Where each partition's reading ends: at the next offset it had at start (``-e``), and/or
    before its first record at or after ``stop_ms`` (kcat's ``-o e@TIME``). Records past the end
    are not printed; reading is over once every assigned partition has ended."""

    def __init__(self, ends: Bounds | None, stop_ms: int | None, quiet: bool) -> None:
        self.ends = None if ends is None else {tp: end for tp, (_, end) in ends.items()}
        self.stop_ms = stop_ms
        self.quiet = quiet
        self.ended: set[TopicPartition] = set()

    @property
    def active(self) -> bool:
        return self.ends is not None or self.stop_ms is not None

    def _end(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self.ended:
            self.ended.add(tp)
            if not self.quiet:
                note(f"reached the end of {tp.topic}/{tp.partition} at offset {offset}")

    def keep(self, records: Sequence[Record]) -> Sequence[Record]:
        """``records`` less those past their partition's end (which ends the partition)."""
        if not self.active:
            return records
        kept = []
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            if tp in self.ended:
                continue
            if self.ends is not None and r.offset >= self.ends.get(tp, 0):
                self._end(tp, self.ends.get(tp, 0))
            elif self.stop_ms is not None and r.timestamp_ms >= self.stop_ms:
                self._end(tp, r.offset)
            else:
                kept.append(r)
        return kept

    def finished(self, consumer: Consumer) -> bool:
        """Every assigned partition has ended (False while the group has assigned none yet)."""
        if not self.active:
            return False
        assigned = consumer.assignment()
        if not assigned:
            return False
        if self.ends is not None:
            for tp in assigned:
                if tp not in self.ended and consumer.position(tp) >= self.ends.get(tp, 0):
                    self._end(tp, self.ends.get(tp, 0))
        return all(tp in self.ended for tp in assigned)
