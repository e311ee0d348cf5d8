"""Where to start reading: the ``--from`` value of ``consume`` (and later of group resets).

Accepted forms::

    earliest              the log start of each partition
    latest                the end: only records produced from now on
    42                    that offset
    @2026-01-02T03:04:05Z an ISO-8601 time (naive = UTC); the first record at or after it
    @2026-01-02           midnight UTC of that day
    @1767323045000        milliseconds since the Unix epoch
    @-15m                 a duration before now: ms, s, m, h, d, w, combinable (@-1h30m)

``consume`` also takes kcat's ``-o`` forms (:func:`parse_position`)::

    beginning / end       earliest / latest
    -100                  the last 100 records of each partition (kcat -o -100)
    stored                the group's committed offset (needs --group)
    s@1767323045000       a time, as @TIME (any @TIME form after s@)
    e@1767323045000       not a start: stop each partition at its first record at or after it
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from collections.abc import Callable
from typing import Any, Literal

import click

from logsvc_client.records import MAX_LONG

Kind = Literal["earliest", "latest", "offset", "time", "last", "stored"]

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")


@dataclasses.dataclass(frozen=True)
class StartSpec:
    """A parsed ``--from``: ``value`` is the offset for "offset", epoch ms for "time", a record
    count for "last" (the last N of each partition); "stored" is a group's committed offset."""

    kind: Kind
    value: int = 0

    def describe(self) -> str:
        if self.kind == "offset":
            return f"offset {self.value}"
        if self.kind == "time":
            return f"time {self.value} ms"
        if self.kind == "last":
            return f"the last {self.value} records"
        return self.kind


@dataclasses.dataclass(frozen=True)
class StopSpec:
    """kcat's ``-o e@TIME``: a partition ends before its first record at or after ``timestamp_ms``."""

    timestamp_ms: int


def parse_duration_ms(text: str) -> int:
    """``15m`` → 900000; ``1h30m`` → 5400000. ValueError when not a duration."""
    pos = 0
    total = 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 2h, 1d or 1h30m")
    return total


def parse_time_ms(text: str, now_ms: Callable[[], int]) -> int:
    """The instant after ``@``: ``-DURATION`` before now, epoch milliseconds, or ISO-8601."""
    if text.startswith("-"):
        return max(0, now_ms() - parse_duration_ms(text[1:]))
    if text.isdigit():
        if int(text) > MAX_LONG:
            raise ValueError(f"{text!r} is out of range: epoch milliseconds go from 0 to {MAX_LONG}")
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 time like 2026-01-02T03:04:05Z, epoch milliseconds, or -DURATION"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0, int(moment.timestamp() * 1000))


def parse_start(text: str, now_ms: Callable[[], int] | None = None) -> StartSpec:
    """Parse a ``--from`` value; ValueError naming the form expected."""
    clock = now_ms or (lambda: time.time_ns() // 1_000_000)
    value = text.strip()
    if value.lower() in ("earliest", "beginning"):
        return StartSpec("earliest")
    if value.lower() in ("latest", "end"):
        return StartSpec("latest")
    if value.isdigit():
        if int(value) > MAX_LONG:
            raise ValueError(f"{text!r} is out of range: an offset goes from 0 to {MAX_LONG}")
        return StartSpec("offset", int(value))
    if value.startswith("@"):
        return StartSpec("time", parse_time_ms(value[1:], clock))
    raise ValueError(f"{text!r} is not earliest, latest, an offset, @TIME or @-DURATION")


KCAT_FORMS = "beginning, end, stored, OFFSET, -N, s@TIME or e@TIME"


def parse_position(text: str, now_ms: Callable[[], int] | None = None) -> StartSpec | StopSpec:
    """A ``--from`` value or one of kcat's ``-o`` offset forms (``-100``, ``stored``, ``s@TIME``,
    ``e@TIME``); ValueError naming the forms expected."""
    clock = now_ms or (lambda: time.time_ns() // 1_000_000)
    value = text.strip()
    if value.startswith("-") and value[1:].isdigit():
        return StartSpec("last", int(value[1:]))
    if value.lower() == "stored":
        return StartSpec("stored")
    if value[:2].lower() in ("s@", "e@"):
        try:
            moment = parse_time_ms(value[2:], clock)
        except ValueError as e:
            raise ValueError(f"{text!r}: {e}") from None
        return StartSpec("time", moment) if value[0].lower() == "s" else StopSpec(moment)
    try:
        return parse_start(value, clock)
    except ValueError:
        if value.startswith("@") or value.isdigit():
            raise  # its message names what is wrong with the time or the offset
        raise ValueError(
            f"{text!r} is not earliest, latest, an offset, -N, @TIME, @-DURATION, stored, s@TIME or e@TIME"
        ) from None


class StartType(click.ParamType):
    """``--from`` as a click parameter: bad values are usage errors (exit 2). With ``kcat``, also
    kcat's ``-o`` forms (:func:`parse_position`), which may give a :class:`StopSpec`."""

    def __init__(self, kcat: bool = False) -> None:
        self.kcat = kcat
        self.name = "earliest|latest|OFFSET|-N|@TIME|@-DURATION" if kcat else "earliest|latest|OFFSET|@TIME|@-DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, StartSpec | StopSpec):
            return value
        try:
            return parse_position(str(value)) if self.kcat else parse_start(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


class KcatOffsetOrOutput(click.ParamType):
    """``consume -o``: ``json``/``table`` (the output format, as before) or one of kcat's offset
    forms (:func:`parse_position`): the two sets of values do not overlap."""

    name = "json|table|" + KCAT_FORMS.replace(", ", "|").replace(" or ", "|")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, StartSpec | StopSpec) or value in ("json", "table"):
            return value
        try:
            return parse_position(str(value))
        except ValueError as e:
            self.fail(f"{e} (-o takes json, table, or a kcat offset: {KCAT_FORMS})", param, ctx)
