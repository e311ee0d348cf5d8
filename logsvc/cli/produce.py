"""``logsvc produce TOPIC``: stdin lines become records, sent and acknowledged as they arrive.

Input is a stream, not a file read to the end: each line is handed to the Producer as soon as it
is read; whenever stdin has nothing more ready, the Producer is flushed, so a line typed (or
written by another program) is acknowledged right away. Acknowledgements are printed in input
order (``-o json``: one ``{"partition": P, "offset": O}`` line per record, flushed at once).
"""

from __future__ import annotations

import collections
import os
import select
import sys
from typing import IO

import click

from logsvc.cli.output import Progress, echo_json, note, output_option
from logsvc.cli.state import get_state, server_option
from logsvc_client import Producer, RecordFuture
from logsvc_client.errors import InvalidRequest
from logsvc_wire.batch import COMPRESSIONS

READ_CHUNK_BYTES = 64 * 1024
ACK_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 10.0


class LineReader:
    """Lines from a stream as they arrive, and whether one can be had without waiting.

    Reads the file descriptor directly (a buffered reader cannot say whether it holds a whole
    line). Streams without a descriptor are read with ``readline`` and always count as ready.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        self._buf = b""
        self._pos = 0  # start of the unread part of _buf
        self._scan = 0  # no newline in _buf[_pos:_scan]
        self._eof = False

    def _newline(self) -> int:
        i = self._buf.find(b"\n", max(self._pos, self._scan))
        self._scan = len(self._buf) if i < 0 else i
        return i

    def _fill(self) -> None:
        chunk = os.read(self._fd, READ_CHUNK_BYTES) if self._fd is not None else b""
        if not chunk:
            self._eof = True
            return
        self._buf = self._buf[self._pos :] + chunk
        self._scan -= self._pos
        self._pos = 0

    def ready(self) -> bool:
        """True when :meth:`readline` would return (a line, or the end) without waiting."""
        if self._fd is None or self._eof:
            return True
        while self._newline() < 0:
            readable, _, _ = select.select([self._fd], [], [], 0)
            if not readable:
                return False
            self._fill()
            if self._eof:
                return True
        return True

    def readline(self) -> bytes | None:
        """The next line, newline included (the last one may lack it); None at the end."""
        if self._fd is None:
            return self._stream.readline() or None
        while True:
            i = self._newline()
            if i >= 0:
                line = self._buf[self._pos : i + 1]
                self._pos = i + 1
                return line
            if self._eof:
                line = self._buf[self._pos :]
                self._buf, self._pos, self._scan = b"", 0, 0
                return line or None
            self._fill()


def parse_headers(pairs: tuple[str, ...]) -> list[tuple[str, bytes]] | None:
    headers = []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not name=value", param_hint="'--header'")
        headers.append((name, os.fsencode(value)))
    return headers or None


@click.command()
@click.argument("topic")
@click.option(
    "-k",
    "--key-separator",
    metavar="SEP",
    default=None,
    help="Split each line at the first SEP into KEY and VALUE (a line without SEP is an error).",
)
@click.option(
    "-p", "--partition", type=click.IntRange(min=0), default=None, help="Send every record to this partition."
)
@click.option(
    "-H",
    "--header",
    "header_pairs",
    metavar="NAME=VALUE",
    multiple=True,
    help="Add a header to every record (repeatable).",
)
@click.option("--null-value", is_flag=True, help="Send an empty value as null (a tombstone).")
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default="none",
    show_default=True,
    help="Compress each batch's payload (stored compressed; consumers inflate it).",
)
@server_option
@output_option(as_table="a summary on stderr at the end", as_json='one {"partition": P, "offset": O} line per record')
def produce(
    topic: str,
    key_separator: str | None,
    partition: int | None,
    header_pairs: tuple[str, ...],
    null_value: bool,
    compression: str,
    output: str,
) -> None:
    """Send each line of stdin to TOPIC as one record.

    Records are sent while input is still arriving; only the trailing newline is stripped, the
    rest of the line is the value, byte for byte. Keyed records go to Kafka's partition for
    their key. With -o json, one {"partition": P, "offset": O} line is printed per record, in
    input order, as soon as it is acknowledged; otherwise a summary goes to stderr at the end.

    \b
    Examples:
      echo hello | logsvc produce greetings
      printf 'user-1:{"n": 1}\\n' | logsvc produce users --key-separator :
      tail -f app.log | logsvc produce logs -H source=app -o json
    """
    if key_separator == "":
        raise click.BadParameter("must not be empty", param_hint="'--key-separator'")
    separator = os.fsencode(key_separator) if key_separator is not None else None
    headers = parse_headers(header_pairs)
    as_json = output == "json"
    reader = LineReader(sys.stdin.buffer)
    progress = Progress()
    pending: collections.deque[RecordFuture] = collections.deque()
    acked = 0

    def report(block: bool) -> None:
        """Print the acknowledgements at the head of the queue (all of them when ``block``)."""
        nonlocal acked
        while pending and (block or pending[0].done()):
            position = pending.popleft().result(ACK_TIMEOUT_S)
            acked += 1
            if as_json:
                echo_json({"partition": position.partition, "offset": position.offset})
        progress.update(f"{acked} records produced to {topic}")

    producer = Producer(get_state().address(), linger_ms=5, compression=compression)
    try:
        line_no = 0
        while True:
            report(block=False)
            if not reader.ready():
                producer.flush()
                report(block=True)
            line = reader.readline()
            if line is None:
                break
            line_no += 1
            if line.endswith(b"\n"):
                line = line[:-1]
            key: bytes | None = None
            if separator is not None:
                key, sep, line = line.partition(separator)
                if not sep:
                    raise InvalidRequest(f"line {line_no} has no key separator {key_separator!r}")
            value: bytes | None = None if null_value and not line else line
            pending.append(producer.send(topic, value, key, partition=partition, headers=headers))
        producer.flush()
        report(block=True)
    finally:
        producer.close(timeout=CLOSE_TIMEOUT_S)
    progress.clear()
    if not as_json:
        note(f"{acked} record(s) produced to {topic}")
