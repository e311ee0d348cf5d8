"""``logsvc produce TOPIC [FILE]...``: input records (lines, or split at ``-D``; whole FILEs;
JSON objects with ``--jsonl``) become records, sent and acknowledged as they arrive.

Input is a stream, not a file read to the end: each record is handed to the Producer as soon as
it is read (:class:`~logsvc.cli.record_reader.RecordReader`); whenever stdin has nothing more
ready, the Producer is flushed, so a line typed (or written by another program) is acknowledged
right away. Acknowledgements are printed in input
order (``-o json``: one ``{"partition": P, "offset": O}`` line per record, flushed at once).
"""

from __future__ import annotations

import collections
import os
import sys
from collections.abc import Iterator

import click

from logsvc.cli import numbers
from logsvc.cli.client_overrides import PRODUCER, overrides, x_option
from logsvc.cli.escapes import option_bytes
from logsvc.cli.json_records import parse_json_record
from logsvc.cli.output import Progress, echo_json, note, output_option
from logsvc.cli.record_reader import RecordReader
from logsvc.cli.state import get_state, server_option
from logsvc_client import Producer, RecordFuture
from logsvc_client.errors import InvalidRequest
from logsvc_wire.batch import COMPRESSIONS

ACK_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 10.0


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
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True), metavar="[FILE]...")
@click.option(
    "-D",
    "--delimiter",
    "delimiter_text",
    metavar="DELIM",
    default="\\n",
    show_default=True,
    help="Split the input into records at DELIM, any byte string with escapes \\n \\r \\t \\0 \\\\ \\xHH "
    "(-D '\\0': NUL-separated binary values). -D '' (empty): the whole input is one record.",
)
@click.option(
    "--whole-file",
    is_flag=True,
    help="Stdin (and each FILE) is one record, whatever it holds (as -D '').",
)
@click.option(
    "-l",
    "--lines",
    "split_files",
    is_flag=True,
    help="Split each FILE at the delimiter like stdin, instead of sending it as one record (kcat's -l).",
)
@click.option(
    "-k",
    "-K",
    "--key-separator",
    "--key-delimiter",
    metavar="SEP",
    default=None,
    help="Split each record at the first SEP into KEY and VALUE (a record without SEP is an error); escapes as in -D.",
)
@click.option("-p", "--partition", type=numbers.PARTITION, default=None, help="Send every record to this partition.")
@click.option(
    "-H",
    "--header",
    "header_pairs",
    metavar="NAME=VALUE",
    multiple=True,
    help="Add a header to every record (repeatable; with --jsonl, before the record's own).",
)
@click.option(
    "--jsonl",
    is_flag=True,
    help='Each record is a JSON object: {"key": ..., "value": ..., "headers": {...} or [[name, value], ...], '
    '"partition": P, "timestamp": MS}, every field optional; text, null, or {"base64": "..."} for bytes '
    "(what consume -o json prints, so that output can be produced again).",
)
@click.option("-Z", "--null-value", is_flag=True, help="Send an empty value as null (a tombstone), as kcat -Z.")
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default="none",
    show_default=True,
    help="Compress each batch's payload (stored compressed; consumers inflate it).",
)
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr at the end.")
@x_option(PRODUCER, "producer")
@server_option
@output_option(as_table="a summary on stderr at the end", as_json='one {"partition": P, "offset": O} line per record')
def produce(
    topic: str,
    files: tuple[str, ...],
    delimiter_text: str,
    whole_file: bool,
    split_files: bool,
    key_separator: str | None,
    partition: int | None,
    header_pairs: tuple[str, ...],
    jsonl: bool,
    null_value: bool,
    compression: str,
    quiet: bool,
    x_pairs: tuple[str, ...],
    output: str,
) -> None:
    """Send each line of stdin (or each FILE) to TOPIC as one record.

    Records are sent while input is still arriving. The input is split at the delimiter (-D, a
    newline by default) and nowhere else: the delimiter is dropped, everything between is the
    value, byte for byte, so binary values survive with -D '\\0'. Each FILE is one record, as in
    kcat (-l splits it like stdin; - is stdin). Keyed records go to Kafka's partition for their
    key. With -o json, one {"partition": P, "offset": O} line is printed per record, in input
    order, as soon as it is acknowledged; otherwise a summary goes to stderr at the end.

    \b
    Examples:
      echo hello | logsvc produce greetings
      printf 'user-1:{"n": 1}\\n' | logsvc produce users --key-separator :
      tail -f app.log | logsvc produce logs -H source=app -o json
      find . -print0 | logsvc produce paths -D '\\0'
      logsvc produce images photo1.jpg photo2.jpg      # one record per file
      logsvc consume orders -e -o json | logsvc produce orders-copy --jsonl
    """
    delim = option_bytes(delimiter_text, "--delimiter")
    if whole_file:
        delim = b""
    separator = None
    if key_separator is not None:
        separator = option_bytes(key_separator, "--key-separator")
        if not separator:
            raise click.BadParameter("must not be empty", param_hint="'--key-separator'")
    if jsonl and separator is not None:
        raise click.UsageError("--key-separator cannot be used with --jsonl (the key is a field of each object)")
    if split_files and not files:
        raise click.UsageError("--lines splits FILE arguments: give one or more FILEs")
    headers = parse_headers(header_pairs)
    as_json = output == "json"
    word = "line" if delim == b"\n" else "record"
    progress = Progress(enabled=False) if quiet else Progress()
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

    settings = {"linger_ms": 5, "compression": compression, **overrides(x_pairs, PRODUCER)}
    producer = Producer(get_state().address(), **settings)
    try:
        number = 0
        for reader in readers(files, delim, split_files):
            while True:
                report(block=False)
                if not reader.ready():
                    producer.flush()
                    report(block=True)
                data = reader.read()
                if data is None:
                    break
                number += 1
                if jsonl:
                    try:
                        doc = parse_json_record(data)
                    except ValueError as e:
                        raise InvalidRequest(f"{word} {number}: {e}") from None
                    value = None if null_value and doc.value == b"" else doc.value
                    pending.append(
                        producer.send(
                            topic,
                            value,
                            doc.key,
                            partition=partition if doc.partition is None else doc.partition,
                            headers=[*(headers or ()), *doc.headers] or None,
                            timestamp_ms=doc.timestamp_ms,
                        )
                    )
                    continue
                key: bytes | None = None
                if separator is not None:
                    key, sep, data = data.partition(separator)
                    if not sep:
                        raise InvalidRequest(f"{word} {number} has no key separator {key_separator!r}")
                value = None if null_value and not data else data
                pending.append(producer.send(topic, value, key, partition=partition, headers=headers))
        producer.flush()
        report(block=True)
    finally:
        producer.close(timeout=CLOSE_TIMEOUT_S)
    progress.clear()
    if not as_json and not quiet:
        note(f"{acked} record(s) produced to {topic}")


def readers(files: tuple[str, ...], delim: bytes, split_files: bool) -> Iterator[RecordReader]:
    """The input: stdin, or each FILE in turn (``-`` is stdin), one record per file unless
    ``split_files``."""
    if not files:
        yield RecordReader(sys.stdin.buffer, delim)
        return
    for name in files:
        if name == "-":
            yield RecordReader(sys.stdin.buffer, delim if split_files else b"")
            continue
        with open(name, "rb") as stream:
            yield RecordReader(stream, delim if split_files else b"")
