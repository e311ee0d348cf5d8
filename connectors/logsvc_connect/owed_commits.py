"""The offsets a connector owes its consumer group: pure bookkeeping, clock-injected.

Two things leave a group's commits behind what the connector has made durable:

* an exactly-once sink's offsets, stored with its rows, found ahead of the group's on assignment
  (the process before was killed between its transaction and its group commit);
* a commit refused as :class:`~logsvc_client.errors.Unavailable` (the broker or cluster
  unreachable, after the client's own retries).

:class:`OwedCommits` keeps the highest such offset per partition and says when they are due: at
once for the first kind, after a capped, jittered backoff for a refused commit (growing with each
refusal in a row). A commit that goes through settles what it covers; a revoked partition is the
new owner's business and is dropped. The runtime does the committing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from logsvc_client import TopicPartition
from logsvc_client.transport.retry import Backoff


class OwedCommits:
    def __init__(self, backoff: Backoff, clock: Callable[[], float] = time.monotonic) -> None:
        self._backoff = backoff
        self._clock = clock
        self._owed: dict[TopicPartition, int] = {}
        self._refusals = 0  # commits refused in a row
        self._due_at = 0.0

    def __bool__(self) -> bool:
        return bool(self._owed)

    def owe(self, offsets: Mapping[TopicPartition, int]) -> None:
        """The group is owed ``offsets`` (due now, unless a refused commit's backoff runs)."""
        for tp, offset in offsets.items():
            self._owed[tp] = max(offset, self._owed.get(tp, 0))

    def refused(self, offsets: Mapping[TopicPartition, int]) -> float:
        """A commit of ``offsets`` was refused as Unavailable: owe them, due after the backoff
        (returned, in seconds)."""
        self.owe(offsets)
        delay = self._backoff.delay_s(self._refusals)
        self._refusals += 1
        self._due_at = self._clock() + delay
        return delay

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        """A commit of ``offsets`` went through: what it covers is settled."""
        for tp, offset in offsets.items():
            if self._owed.get(tp, offset) <= offset:
                self._owed.pop(tp, None)
        self._refusals = 0
        self._due_at = 0.0

    def due(self) -> dict[TopicPartition, int]:
        """What to commit now: everything owed, once any backoff has passed; else nothing."""
        if not self._owed or self._clock() < self._due_at:
            return {}
        return dict(self._owed)

    def all(self) -> dict[TopicPartition, int]:
        """Everything owed, backoff or not (a last try before leaving the group)."""
        return dict(self._owed)

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget ``partitions`` (revoked: their new owner reads from the group's commits)."""
        for tp in partitions:
            self._owed.pop(tp, None)
