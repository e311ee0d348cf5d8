"""How the CLI prints: aligned tables for people, JSON for programs, progress only on a terminal.

Data goes to stdout, everything else (summaries, progress, errors) to stderr, so a pipe receives
exactly the data. Bytes are shown as text when they are UTF-8 and as ``{"base64": "..."}`` in
JSON (or an escaped preview in tables) when they are not.

Every string a table, a ``key: value`` field, a note or an error line shows goes through
:func:`printable`: a client id, a header name or a DLQ message holding ESC, CR or LF is shown as
``\\x1b``, ``\\r``, ``\\n``, never sent to the terminal raw (no forged rows, no terminal escapes).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from logsvc_client.records import Record

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "json")


def output_option(
    fn: F | None = None,
    *,
    as_table: str = "text and aligned columns for people",
    as_json: str = "JSON for programs",
    short: bool = True,
    extra_help: str = "",
) -> Any:
    """The ``-o/--output table|json`` option every data-printing command takes (``@output_option``
    or ``@output_option(as_table=..., as_json=...)`` saying what each format prints). Without
    ``short``, ``--output`` alone (the command gives ``-o`` a wider meaning itself)."""

    def decorate(f: F) -> F:
        return click.option(
            *(("-o",) if short else ()),
            "--output",
            type=click.Choice(FORMATS),
            default="table",
            show_default=True,
            envvar="LOGSVC_OUTPUT",
            help=f"table: {as_table}; json: {as_json}.{extra_help}",
        )(f)

    return decorate(fn) if fn is not None else decorate


# -- values -------------------------------------------------------------------------------------

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class Escaped(str):
    """Text already made printable by the caller (kept as it is by the table and field writers:
    e.g. a multi-line message whose continuation lines were escaped and indented on purpose)."""


def _escape_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` safe to show on a terminal: control characters (C0, DEL, C1), line and paragraph
    separators and invisible format characters (bidi overrides, ...) as escapes like ``\\x1b``,
    ``\\r``, ``\\n``, ``\\u202e``; everything else, other scripts included, as it is."""
    if text.isprintable() or isinstance(text, Escaped):
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _escape_char(ch) for ch in text)


def json_bytes(data: bytes | None) -> str | dict[str, str] | None:
    """Bytes for JSON: the text when UTF-8, ``{"base64": ...}`` otherwise, None stays None."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def preview(data: bytes | None, width: int = 60) -> str:
    """A one-line, printable preview of bytes for tables (``null`` for None)."""
    if data is None:
        return "null"
    try:
        shown = printable(data.decode("utf-8"))
    except UnicodeDecodeError:
        shown = "0x" + data[: width // 2].hex()
    if len(shown) > width:
        shown = shown[: width - 1] + "…"
    return shown


def iso_ms(timestamp_ms: int | None) -> str:
    """A millisecond timestamp as ISO-8601 UTC, ``-`` for none (-1)."""
    if timestamp_ms is None or timestamp_ms < 0:
        return "-"
    moment = dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def record_json(record: Record) -> dict[str, Any]:
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp_ms,
        "key": json_bytes(record.key),
        "value": json_bytes(record.value),
        "headers": [[name, json_bytes(value)] for name, value in record.headers or ()],
    }


# -- writers ------------------------------------------------------------------------------------


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def echo_json(obj: Any) -> None:
    """One JSON document on one line of stdout, flushed (so a pipe sees it at once)."""
    sys.stdout.write(dumps(obj) + "\n")
    sys.stdout.flush()


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Aligned columns; numbers right-aligned, text left-aligned; None shows as ``-``; control
    characters in any cell escaped (:func:`printable`)."""
    cells = [[printable(str(h)) for h in headers]]
    numeric = [True] * len(headers)
    for row in rows:
        cells.append(["-" if v is None else printable(str(v)) for v in row])
        for i, v in enumerate(row):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool)):
                numeric[i] = False  # None ("-") goes with either alignment
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    click.echo(format_table(headers, rows))


def echo_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """``key: value`` lines with the values aligned, control characters escaped (an
    :class:`Escaped` value is shown as the caller made it)."""
    width = max(len(k) for k, _ in pairs) + 1
    for key, value in pairs:
        click.echo(f"{key + ':':<{width}} {printable(str(value)) if not isinstance(value, Escaped) else value}")


def echo_line(text: str) -> None:
    """One line of human-readable output on stdout, control characters escaped."""
    click.echo(printable(text))


def note(message: str) -> None:
    """A message for the person at the terminal (stderr), never mixed into the data; control
    characters escaped."""
    click.echo(printable(message), err=True)


# -- progress -----------------------------------------------------------------------------------


class Progress:
    """A one-line status on stderr, redrawn at most every ``interval_s``, shown only when both
    stdout and stderr are terminals (nothing extra when the output is piped)."""

    def __init__(self, interval_s: float = 0.5, enabled: bool | None = None) -> None:
        if enabled is None:
            enabled = sys.stdout.isatty() and sys.stderr.isatty()
        self.enabled = enabled
        self._interval_s = interval_s
        self._last = time.monotonic()  # short runs finish before the first update
        self._shown = False

    def update(self, text: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self._interval_s:
            return
        self._last = now
        sys.stdout.flush()
        sys.stderr.write("\r\x1b[2K" + printable(text))
        sys.stderr.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the status line (before printing data to the same terminal)."""
        if self._shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self._shown = False
