"""Priority lanes: which of several topics a poll takes its records from.

A consumer of several topics can treat them as *lanes*, highest first (``["orders.critical",
"orders.normal", "orders.bulk"]``). Each poll asks :meth:`LanePolicy.plan` how many records to
take from each lane, given each lane's backlog (records buffered plus records not yet fetched)
and how much of it is ready (buffered)::

    strict    the highest lane with a backlog gets the whole poll; the next one only once it is
              drained, and so on down
    weighted  the poll is split by ``lane_weights`` among the lanes with a backlog; a lane that
              needs less than its share leaves the rest to the others

A lane's part of a poll that it cannot fill because its records are not fetched yet is not
given to the other lanes (the consumer waits a little for them, or returns fewer records), so a
lower lane never gets ahead of a higher one just because the higher one's next Fetch is still on
its way.

Either way no lane with a backlog waits longer than ``max_lane_wait_ms``: a lane that has had
a backlog and no records taken for that long is *overdue*, and gets its share of the next poll
before the rest is planned — an equal share of the poll among the lanes with a backlog under
"strict", its weighted share under "weighted", at least one record. Its wait starts again once it
is served (:meth:`LanePolicy.served`). So a consumer that polls less often than
``max_lane_wait_ms`` serves every lane with a backlog in every poll.

Pure and clock-injected: the caller passes ``now_ms``; no threads, no sleeps, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Literal

from ..errors import InvalidConfig, InvalidRequest

Priority = Literal["none", "strict", "weighted"]
PRIORITIES: tuple[str, ...] = ("none", "strict", "weighted")


def check_options(priority: str, weights: Sequence[float] | None, max_lane_wait_ms: int) -> None:
    """Validate the lane options that do not depend on the lanes themselves (InvalidConfig naming
    the key): ``priority`` known, ``lane_weights`` only (and always) with "weighted" and all
    positive, ``max_lane_wait_ms`` an int >= 1."""
    if priority not in PRIORITIES:
        raise InvalidConfig(f"priority={priority!r} must be 'none', 'strict' or 'weighted'", key="priority")
    if isinstance(max_lane_wait_ms, bool) or not isinstance(max_lane_wait_ms, int) or max_lane_wait_ms < 1:
        raise InvalidConfig(f"max_lane_wait_ms={max_lane_wait_ms!r} must be an int >= 1", key="max_lane_wait_ms")
    if priority != "weighted":
        if weights:
            raise InvalidConfig(
                f"lane_weights={list(weights)!r} are only for priority='weighted' (priority is {priority!r})",
                key="lane_weights",
            )
        return
    if not weights:
        raise InvalidConfig("priority='weighted' needs lane_weights, one per topic", key="lane_weights")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, int | float) or not w > 0 or w == float("inf"):
            raise InvalidConfig(
                f"lane_weights={list(weights)!r}: every weight must be a positive finite number, not {w!r}",
                key="lane_weights",
            )


class LanePolicy:
    """Plans each poll over ``lanes`` (topics, highest first); see the module docstring."""

    def __init__(
        self,
        lanes: Sequence[str],
        mode: str,
        weights: Sequence[float] | None = None,
        max_lane_wait_ms: int = 1_000,
    ) -> None:
        names = list(lanes)
        if not names or not all(isinstance(lane, str) and lane for lane in names):
            raise InvalidConfig(f"lanes need one or more topic names, got {lanes!r}", key="topics")
        if len(set(names)) != len(names):
            raise InvalidConfig(f"lanes {names!r} name a topic twice", key="topics")
        if mode not in ("strict", "weighted"):
            raise InvalidConfig(f"lane priority {mode!r} must be 'strict' or 'weighted'", key="priority")
        check_options(mode, weights, max_lane_wait_ms)
        if weights is not None and len(weights) != len(names):
            raise InvalidConfig(
                f"lane_weights has {len(weights)} weight(s) for {len(names)} lane(s) {names!r}: give one per topic",
                key="lane_weights",
            )
        self.lanes: tuple[str, ...] = tuple(names)
        self.mode = mode
        self.weights: tuple[Fraction, ...] | None = None if weights is None else tuple(Fraction(w) for w in weights)
        self.max_lane_wait_ms = max_lane_wait_ms
        self._rank = {lane: i for i, lane in enumerate(names)}
        self._waiting_since: dict[str, int] = {}  # lanes with a backlog -> since when unserved

    def same_as(self, other: LanePolicy) -> bool:
        """True when ``other`` plans exactly like this policy (same lanes, mode, weights, wait)."""
        return (self.lanes, self.mode, self.weights, self.max_lane_wait_ms) == (
            other.lanes,
            other.mode,
            other.weights,
            other.max_lane_wait_ms,
        )

    def waiting_since(self, lane: str) -> int | None:
        """Since when (ms) ``lane`` has had a backlog and no records taken; None when it has none."""
        return self._waiting_since.get(lane)

    def plan(
        self, backlog: Mapping[str, int], now_ms: int, budget: int, ready: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """How many records to take from each lane in this poll (lanes with none are left out;
        in lane order; the counts add up to at most ``budget`` and never exceed a lane's backlog).

        ``ready`` is how much of each lane's backlog can be taken now (default: all of it). The
        caller takes at most that, so a count may be more than is ready: the rest of it is not
        given to other lanes (see the module docstring), and under "strict" the lanes below such
        a lane get nothing (but what they get for being overdue). Also starts the wait clock of
        lanes that got a backlog, and stops it for lanes whose backlog is gone. Lanes not in
        ``backlog`` have none; names that are not lanes are ignored.
        """
        active = [lane for lane in self.lanes if backlog.get(lane, 0) > 0]
        waiting = self._waiting_since
        for lane in self.lanes:
            if backlog.get(lane, 0) > 0:
                waiting.setdefault(lane, now_ms)
            else:
                waiting.pop(lane, None)
        if not active or budget <= 0:
            return {}
        left = {lane: backlog[lane] for lane in active}
        can = {lane: left[lane] if ready is None else ready.get(lane, 0) for lane in active}
        taken = dict.fromkeys(active, 0)

        def give(lane: str, n: int) -> None:
            taken[lane] += n
            left[lane] -= n
            can[lane] -= n

        remaining = budget
        # Overdue lanes first, the longest-waiting first, each up to its share.
        overdue = sorted(
            (lane for lane in active if now_ms - waiting[lane] >= self.max_lane_wait_ms),
            key=lambda lane: (waiting[lane], self._rank[lane]),
        )
        for lane in overdue:
            n = min(self._share(lane, active, budget), left[lane], remaining)
            give(lane, n)
            remaining -= n
            if not remaining:
                break
        if remaining:
            if self.weights is None:
                for lane in active:  # the highest lane first; one that is not ready holds up the rest
                    n = min(left[lane], remaining)
                    give(lane, n)
                    remaining -= n
                    if can[lane] < 0 or not remaining:
                        break
            else:
                for lane, n in self._weighted(left, remaining).items():
                    give(lane, n)
        return {lane: n for lane, n in taken.items() if n}

    def fetch_order(self, buffered: Mapping[str, int]) -> list[str]:
        """The lanes, the one whose ``buffered`` records would run out first at its rate of being
        taken (its weight; all equal under "strict") first; ties in lane order."""
        if self.weights is None:
            return sorted(self.lanes, key=lambda lane: (buffered.get(lane, 0), self._rank[lane]))
        weights = self.weights
        return sorted(
            self.lanes, key=lambda lane: (buffered.get(lane, 0) / weights[self._rank[lane]], self._rank[lane])
        )

    def served(self, lane: str, records: int, now_ms: int) -> None:
        """``records`` were taken from ``lane`` at ``now_ms``: when any were, its wait starts again."""
        if lane not in self._rank:
            raise InvalidRequest(f"{lane!r} is not one of the lanes {list(self.lanes)!r}")
        if records > 0:
            self._waiting_since[lane] = now_ms

    # -- the two modes ------------------------------------------------------------------------------

    def _share(self, lane: str, active: Sequence[str], budget: int) -> int:
        """An overdue lane's guaranteed part of a poll of ``budget`` records (at least one)."""
        if self.weights is None:
            return max(1, budget // len(active))
        total = sum(self.weights[self._rank[a]] for a in active)
        return max(1, int(budget * self.weights[self._rank[lane]] / total))

    def _weighted(self, left: dict[str, int], budget: int) -> dict[str, int]:
        """Split ``budget`` by weight among lanes with a backlog; a lane whose share is more than
        its backlog gets its backlog, and the rest is split again among the others. Fractions are
        rounded by the largest remainder (ties: the higher lane), so the counts add up exactly."""
        assert self.weights is not None
        weight = {lane: self.weights[self._rank[lane]] for lane in left}
        out = dict.fromkeys(left, 0)
        open_lanes = [lane for lane, n in left.items() if n > 0]
        while budget and open_lanes:
            total = sum(weight[lane] for lane in open_lanes)
            share = {lane: budget * weight[lane] / total for lane in open_lanes}
            full = [lane for lane in open_lanes if share[lane] >= left[lane]]
            if full:
                for lane in full:
                    out[lane] += left[lane]
                    budget -= left[lane]
                open_lanes = [lane for lane in open_lanes if lane not in full]
                continue
            whole = {lane: int(share[lane]) for lane in open_lanes}
            spare = budget - sum(whole.values())
            by_remainder = sorted(open_lanes, key=lambda lane: (whole[lane] - share[lane], self._rank[lane]))
            for lane in by_remainder[:spare]:
                whole[lane] += 1
            for lane, n in whole.items():
                out[lane] += n
            budget = 0
        return {lane: n for lane, n in out.items() if n}
