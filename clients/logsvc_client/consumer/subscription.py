"""A group consumer's subscription: the application-thread half of group mode.

The heartbeat thread (:class:`~logsvc_client.group.Membership`) only records the assignment the
broker hands out. Everything that touches the application happens here, inside ``poll()``:

* **revoke** — partitions that left the assignment: the ``on_revoke`` callback, then (with
  auto-commit) a commit of their positions, then the fetcher drops them (buffered records of a
  revoked partition are never returned), then the membership is told to report them released;
* **assign** — new partitions start from the group's committed offset, or by
  ``auto_offset_reset`` when there is none or it lies outside the log (``"none"``: an
  :class:`~logsvc_client.errors.OffsetOutOfRange` from every poll until the application seeks),
  then the ``on_assign`` callback (which may seek);
* **lost** — membership was lost (session expired, broker restarted, ``max_poll_interval_ms``
  exceeded): every partition is dropped without a commit (it would be refused), then ``on_revoke``;
* **auto-commit** — a timer check per poll; only positions that changed are sent.

Positions advance per batch in the fetcher, so none of this costs anything per record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from ..errors import LogsvcError, OffsetOutOfRange, UnknownMember
from ..group import offsets as group_offsets
from ..group.membership import Membership
from ..records import Record, TopicPartition
from ..transport.base import ConsumeTransport
from .fetcher import Fetcher
from .offset_reset import OffsetReset

log = logging.getLogger("logsvc_client.consumer")

RebalanceCallback = Callable[[Sequence[TopicPartition]], None]


class Subscription:
    """Applies a :class:`Membership`'s assignment to a :class:`Fetcher`; see the module docstring."""

    def __init__(
        self,
        membership: Membership,
        fetcher: Fetcher,
        wake: threading.Event,
        *,
        transport: ConsumeTransport,
        auto_offset_reset: OffsetReset,
        enable_auto_commit: bool,
        auto_commit_interval_ms: int,
        on_assign: RebalanceCallback | None,
        on_revoke: RebalanceCallback | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.membership = membership
        self.group_id = membership.group_id
        self._fetcher = fetcher
        self._wake = wake
        self._transport = transport
        self._reset = auto_offset_reset
        self._auto_commit = enable_auto_commit
        self._auto_commit_s = auto_commit_interval_ms / 1000
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._clock = clock
        self._owned: set[TopicPartition] = set()  # applied: the partitions this consumer reads
        self._unpositioned: set[TopicPartition] = set()  # owned, waiting for a starting offset
        self._fetching = False  # some owned partition is positioned
        self._epoch = 0
        self._version = -1
        self._committed: dict[TopicPartition, int] = {}  # last offset known committed, per owned partition
        self._next_commit = clock() + self._auto_commit_s

    # -- reading --------------------------------------------------------------------------------

    def poll(self, timeout_s: float, max_records: int | None) -> list[Record]:
        try:
            return self._poll(timeout_s, max_records)
        finally:
            self.membership.polling(False)

    def _poll(self, timeout_s: float, max_records: int | None) -> list[Record]:
        membership, fetcher = self.membership, self._fetcher
        deadline = self._clock() + timeout_s
        while True:
            membership.polling(True)  # again each round: a leave for max_poll_interval_ms may have raced
            self._wake.clear()
            membership.check()
            if membership.version != self._version:
                self._reconcile()
            if self._unpositioned:
                self._position(self._unpositioned)
            if self._auto_commit and self._clock() >= self._next_commit:
                self._next_commit = self._clock() + self._auto_commit_s
                self._commit_quietly(self._positions())
            left = deadline - self._clock()
            if self._fetching:
                records = fetcher.fetch(max(0.0, left), max_records)
                if records:
                    return records
            elif left > 0:
                self._wake.wait(left)
            if self._clock() >= deadline:
                return []

    def assignment(self) -> list[TopicPartition]:
        return sorted(self._owned)

    def adopt(self, tps: Iterable[TopicPartition] | None) -> list[TopicPartition]:
        """The application is about to seek ``tps`` (default: all owned): partitions still waiting
        for a starting offset get it from that seek."""
        targets = sorted(self._owned) if tps is None else [TopicPartition(*tp) for tp in tps]
        waiting = self._unpositioned.intersection(targets)
        if waiting:
            self._unpositioned -= waiting
            self._sync_fetcher()
        return targets

    # -- commits --------------------------------------------------------------------------------

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``offsets`` (default: the positions of the owned partitions), fenced by the
        member id and generation; UnknownMember when membership was lost meanwhile."""
        chosen = self._positions() if offsets is None else {TopicPartition(*tp): o for tp, o in offsets.items()}
        if not chosen:
            return
        member_id, generation, epoch = self.membership.credentials()
        if epoch != self._epoch or not member_id:
            raise UnknownMember(
                f"this consumer is not a member of group {self.group_id} right now (its session expired, the "
                f"broker restarted, or it left after max_poll_interval_ms): commit of "
                f"{', '.join(f'{tp.topic}/{tp.partition}' for tp in sorted(chosen))} refused; "
                "the group's partitions are assigned again in the next poll"
            )
        group_offsets.commit(self._transport, self.group_id, chosen, member_id, generation)
        self._committed.update(chosen)

    def _positions(self) -> dict[TopicPartition, int]:
        owned = self._owned
        return {tp: offset for tp, offset in self._fetcher.positions().items() if tp in owned}

    def _commit_quietly(self, offsets: Mapping[TopicPartition, int]) -> None:
        changed = {tp: o for tp, o in offsets.items() if self._committed.get(tp) != o}
        if not changed:
            return
        try:
            self.commit(changed)
        except LogsvcError as e:
            log.warning("group %s: commit of %d partition(s) failed: %s", self.group_id, len(changed), e)

    # -- rebalancing ----------------------------------------------------------------------------

    def _reconcile(self) -> None:
        snapshot = self.membership.take()
        if snapshot.epoch != self._epoch:
            self._epoch = snapshot.epoch
            lost = sorted(self._owned)
            if lost:
                log.warning("group %s: membership lost; dropping %d partition(s)", self.group_id, len(lost))
                self._drop(lost)
                if self._on_revoke is not None:
                    self._on_revoke(lost)
        revoked = self._owned - snapshot.assignment
        if revoked:
            self._revoke(sorted(revoked))
        added = snapshot.assignment - self._owned
        if added:
            self._assign(sorted(added))
        self._version = snapshot.version

    def _revoke(self, tps: list[TopicPartition]) -> None:
        try:
            if self._on_revoke is not None:
                self._on_revoke(tps)
            if self._auto_commit:
                positions = self._positions()
                self._commit_quietly({tp: positions[tp] for tp in tps if tp in positions})
        finally:
            self._drop(tps)
            self.membership.release(tps)

    def _assign(self, tps: list[TopicPartition]) -> None:
        self._owned.update(tps)
        self._unpositioned.update(tps)
        error: LogsvcError | None = None
        try:
            self._position(tps)
        except LogsvcError as e:
            error = e
        if self._on_assign is not None:
            self._on_assign(tps)
        if error is not None:
            raise error

    def _drop(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._owned.discard(tp)
            self._unpositioned.discard(tp)
            self._committed.pop(tp, None)
        self._sync_fetcher()

    def _sync_fetcher(self) -> None:
        readable = sorted(self._owned - self._unpositioned)
        self._fetcher.assign(readable)
        self._fetching = bool(readable)

    # -- starting offsets -----------------------------------------------------------------------

    def _position(self, tps: Iterable[TopicPartition]) -> None:
        """Start ``tps`` at the committed offset, or by ``auto_offset_reset`` when there is none or
        it is outside the log; OffsetOutOfRange (after placing the others) under ``"none"``."""
        targets = sorted(tps)
        committed = self._transport.fetch_offsets(self.group_id, targets)
        bounds = self._bounds(targets)
        placed: dict[TopicPartition, int] = {}
        problems: list[OffsetOutOfRange] = []
        for tp in targets:
            lo, hi = bounds[tp]
            c = committed.get(tp)
            if c is not None:
                self._committed[tp] = c.offset
                if lo <= c.offset <= hi:
                    placed[tp] = c.offset
                    continue
            if self._reset == "none":
                problems.append(self._no_offset(tp, None if c is None else c.offset, lo, hi))
                continue
            placed[tp] = lo if self._reset == "earliest" else hi
            if c is not None:
                log.info(
                    "group %s: committed offset %d of %s/%d is outside [%d, %d]: starting at %d (%s)",
                    *(self.group_id, c.offset, *tp, lo, hi, placed[tp], self._reset),
                )
        if placed:
            self._unpositioned.difference_update(placed)
            self._sync_fetcher()
            for tp, offset in placed.items():
                self._fetcher.seek(tp, offset)
        if problems:
            first = problems[0]
            if len(problems) > 1:
                first = OffsetOutOfRange(
                    f"{first.message} (and {len(problems) - 1} more partition(s))", **first.details
                )
            raise first

    def _bounds(self, tps: list[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        by_topic: dict[str, list[int]] = {}
        for tp in tps:
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        out: dict[TopicPartition, tuple[int, int]] = {}
        for topic, partitions in by_topic.items():
            starts = self._transport.list_offsets(topic, "earliest", None, partitions)
            ends = self._transport.list_offsets(topic, "latest", None, partitions)
            out.update({TopicPartition(topic, p): (offset, ends[p]) for p, offset in starts.items()})
        return out

    def _no_offset(self, tp: TopicPartition, committed: int | None, lo: int, hi: int) -> OffsetOutOfRange:
        if committed is None:
            what = f"group {self.group_id} has no committed offset for {tp.topic}/{tp.partition}"
        else:
            where = "below the log start offset" if committed < lo else "past the next offset"
            what = (
                f"the committed offset {committed} of group {self.group_id} for {tp.topic}/{tp.partition} "
                f"is {where} (the log holds [{lo}, {hi}])"
            )
        return OffsetOutOfRange(
            f"{what} and auto_offset_reset is 'none': seek to an offset to go on",
            topic=tp.topic,
            partition=tp.partition,
            offset=committed,
            log_start_offset=lo,
            next_offset=hi,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Revoke everything (callback, then the commit with auto-commit), then leave the group —
        except a static member, which keeps its slot until its session times out."""
        try:
            owned = sorted(self._owned)
            if owned:
                member = self.membership.credentials()
                try:
                    if self._on_revoke is not None:
                        self._on_revoke(owned)
                finally:
                    if self._auto_commit and member[2] == self._epoch:
                        self._commit_quietly(self._positions())
        finally:
            self.membership.close(leave=self.membership.instance_id is None)
