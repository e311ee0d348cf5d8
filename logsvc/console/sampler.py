"""Lag and rate over time, sampled by the console and kept in memory.

The broker knows each partition's next offset and each group's lag *now*; the charts need them
over the last hour. :class:`History` keeps timestamped samples per series for ``keep_ms`` (at
least an hour) and derives rates from counters; :class:`Sampler` takes one sample of everything
through a ``read`` function and an injected clock. Both are plain synchronous code: the tests
drive them with a fake clock and fake facts, and the app runs :meth:`Sampler.sample` in a thread
every ``sample_interval_ms`` (:meth:`Sampler.run`).

Series are named by strings: ``topic:<name>`` (the sum of the topic's next offsets: a counter,
so its rate is the produce rate whatever retention deletes), ``group:<name>`` (total lag in
records), ``group_ms:<name>`` (the largest lag in ms of its partitions), ``written:<connector>``
and ``dead:<connector>`` (a connector's counters from its ``/metrics``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

log = logging.getLogger("logsvc.console")

Point = tuple[int, float]  # (ms since the epoch, value)


def topic_series(topic: str) -> str:
    return f"topic:{topic}"


def group_series(group: str) -> str:
    return f"group:{group}"


def group_ms_series(group: str) -> str:
    return f"group_ms:{group}"


def written_series(connector: str) -> str:
    return f"written:{connector}"


def dead_series(connector: str) -> str:
    return f"dead:{connector}"


class History:
    """Samples per series, each kept for ``keep_ms`` after it was taken."""

    def __init__(self, keep_ms: int) -> None:
        self.keep_ms = keep_ms
        self._series: dict[str, deque[Point]] = {}

    def add(self, now_ms: int, values: Mapping[str, float]) -> None:
        """Record ``values`` as sampled at ``now_ms`` and forget samples older than ``keep_ms``
        (a series with none left is dropped: a deleted topic's line ends)."""
        for name, value in values.items():
            points = self._series.setdefault(name, deque())
            if points and points[-1][0] >= now_ms:  # a clock step back: keep the series ordered
                continue
            points.append((now_ms, float(value)))
        horizon = now_ms - self.keep_ms
        for name in list(self._series):
            points = self._series[name]
            while points and points[0][0] < horizon:
                points.popleft()
            if not points:
                del self._series[name]

    def names(self) -> list[str]:
        return sorted(self._series)

    def points(self, name: str) -> list[Point]:
        """The samples of ``name``, oldest first (empty for an unknown series)."""
        return list(self._series.get(name, ()))

    def latest(self, name: str) -> float | None:
        points = self._series.get(name)
        return points[-1][1] if points else None

    def rates(self, name: str) -> list[Point]:
        """Per-second rates of the counter ``name`` between consecutive samples, each at the later
        sample's time. A counter that went down (a connector restarted, a topic recreated) gives
        no rate for that step rather than a negative one."""
        out: list[Point] = []
        prev: Point | None = None
        for point in self._series.get(name, ()):
            if prev is not None and point[1] >= prev[1]:
                out.append((point[0], (point[1] - prev[1]) * 1000 / (point[0] - prev[0])))
            prev = point
        return out

    def rate(self, name: str) -> float | None:
        """The counter's latest per-second rate; None until it has two samples."""
        rates = self.rates(name)
        return rates[-1][1] if rates else None


@dataclass
class Facts:
    """One reading of everything sampled: counter and gauge values by series name, and the
    connectors whose metrics could not be read (named, for the overview)."""

    values: dict[str, float] = field(default_factory=dict)
    unreachable: set[str] = field(default_factory=set)


class Sampler:
    """Takes one sample per call of :meth:`sample`: ``read()`` gives the values, ``clock()`` the
    time in ms. Errors reading (the broker down) skip that sample, logged once per outage."""

    def __init__(self, history: History, read: Callable[[], Facts], clock: Callable[[], int]) -> None:
        self.history = history
        self._read = read
        self._clock = clock
        self.failing: str | None = None  # why the last sample failed; None when it worked
        self.unreachable: set[str] = set()
        self.samples = 0

    def sample(self) -> bool:
        """Read and record one sample; whether it worked."""
        try:
            facts = self._read()
        except Exception as e:  # the boundary of a background task: say why, keep sampling
            reason = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
            if self.failing is None:
                log.warning("console sampler: cannot read the broker (%s); retrying", reason)
            self.failing = reason
            return False
        self.failing = None
        self.unreachable = facts.unreachable
        self.history.add(self._clock(), facts.values)
        self.samples += 1
        return True

    async def run(self, interval_ms: int) -> None:
        """Sample every ``interval_ms`` until cancelled, off the event loop."""
        while True:
            await run_in_threadpool(self.sample)
            await asyncio.sleep(interval_ms / 1000)


def chart_data(history: History, series: Iterable[tuple[str, bool]]) -> dict[str, list[float | None]]:
    """uPlot's columns for some series on one time axis: ``{"t": [seconds...], name: [...]}``;
    each ``(name, as_rate)`` is charted as its values or as its per-second rate. A series without
    a point at a time gets None there (a gap)."""
    columns: dict[str, dict[int, float]] = {}
    for name, as_rate in series:
        columns[name] = dict(history.rates(name) if as_rate else history.points(name))
    times = sorted({t for by_time in columns.values() for t in by_time})
    out: dict[str, list[float | None]] = {"t": [t / 1000 for t in times]}
    for name, by_time in columns.items():
        out[name] = [by_time.get(t) for t in times]
    return out
