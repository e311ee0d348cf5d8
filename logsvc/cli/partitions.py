"""``logsvc partitions describe|dump|verify|trim``: look at (and trim) the stored log itself.

``describe``, ``dump`` and ``verify`` read from the broker or, with ``--data-dir``, straight from a
data directory (read-only, safe while a broker runs on it). ``dump`` shows batch boundaries and
checks every batch's CRC32 against its payload; ``verify`` checks every stored batch against the
specification (:mod:`logsvc.cli.batch_check`) and lists the bad ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from logsvc.cli import numbers
from logsvc.cli.batch_check import BadBatch, PartitionCheck, check_partition, uncompressed_bound
from logsvc.cli.output import (
    Progress,
    echo_json,
    echo_line,
    echo_table,
    iso_ms,
    note,
    output_option,
    preview,
    record_json,
)
from logsvc.cli.sources import Source, open_source, out_of_range
from logsvc.cli.state import get_state, server_option
from logsvc.cli.topics import echo_partition_table, topic_json
from logsvc_client import Admin
from logsvc_client.errors import CorruptBatch, InvalidBatch
from logsvc_client.records import Record
from logsvc_wire.batch import HEADER_SIZE, BatchHeader, decode_records, read_header
from logsvc_wire.checksum import crc32

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(fn: F) -> F:
    return click.option(
        "--data-dir",
        type=click.Path(exists=True, file_okay=False),
        default=None,
        help="Read this broker data directory directly (read-only) instead of asking the broker.",
    )(fn)


def _source(data_dir: str | None) -> Source:
    state = get_state()
    if data_dir is not None and state.server_explicit:
        raise click.UsageError("give --server or --data-dir, not both")
    return open_source(data_dir, None if data_dir is not None else state.address())


@click.group()
def partitions() -> None:
    """Inspect partitions, batches and records; trim old records.

    \b
    Examples:
      logsvc partitions describe orders
      logsvc partitions dump orders --partition 0 --from 100 --max-records 20
      logsvc partitions dump orders --partition 0 --data-dir ./data    # no broker needed
      logsvc partitions verify orders                                  # every stored batch checked
      logsvc partitions trim orders --partition 0 --before 1000
    """


@partitions.command()
@click.argument("topic")
@click.option("-p", "--partition", type=numbers.PARTITION, default=None, help="Only this partition.")
@data_dir_option
@server_option
@output_option
def describe(topic: str, partition: int | None, data_dir: str | None, output: str) -> None:
    """Show each partition's log start, next offset, record count, size and timestamps."""
    with _source(data_dir) as source:
        view = source.describe(topic)
    if partition is not None:
        view = dataclasses.replace(view, partitions=[view.partition(partition)])
    if output == "json":
        echo_json(topic_json(view))
    else:
        echo_partition_table(view)


# -- dump ---------------------------------------------------------------------------------------


def _batch_json(
    base: int, data: bytes, header: BatchHeader, crc: int, records: list[Record] | None, problem: str = ""
) -> dict[str, Any]:
    return {
        "base_offset": base,
        "record_count": header.record_count,
        "bytes": len(data),
        "first_timestamp": header.first_timestamp_ms,
        "max_timestamp": header.max_timestamp_ms,
        "timestamp_type": "LogAppendTime" if header.log_append_time else "CreateTime",
        "compression": _compression(header),
        "crc32": f"{header.crc32:#010x}",
        "crc_ok": crc == header.crc32,
        "records": None if records is None else [_record_json(r) for r in records],
        "problem": problem or None,
    }


def _compression(header: BatchHeader) -> str:
    try:
        return header.compression
    except InvalidBatch:
        return f"unknown (attributes {header.attributes:#04x})"


def _record_json(record: Record) -> dict[str, Any]:
    out = record_json(record)
    del out["topic"], out["partition"]
    return out


def _batch_line(base: int, data: bytes, header: BatchHeader, crc: int) -> str:
    count = header.record_count
    span = f"offsets {base}-{base + count - 1}" if count > 1 else f"offset {base}"
    check = "ok" if crc == header.crc32 else f"MISMATCH (payload has {crc:#010x})"
    kind = ", LogAppendTime" if header.log_append_time else ""
    compression = _compression(header)
    stored = f"{len(data)} bytes" + ("" if compression == "none" else f" ({compression})")
    return (
        f"batch {span}: {count} record(s), {stored}, "
        f"timestamps {iso_ms(header.first_timestamp_ms)} .. {iso_ms(header.max_timestamp_ms)}{kind}, "
        f"crc32 {header.crc32:#010x} {check}"
    )


def _record_line(record: Record) -> str:
    key, value = preview(record.key, 24), preview(record.value, 80)
    line = f"  {record.offset:>10}  {iso_ms(record.timestamp_ms)}  key={key}  {value}"
    if record.headers:
        line += "  headers: " + ", ".join(f"{k}={preview(v, 24)}" for k, v in record.headers)
    return line


@partitions.command()
@click.argument("topic")
@click.option("-p", "--partition", type=numbers.PARTITION, required=True, help="The partition to dump.")
@click.option("--from", "from_offset", type=numbers.OFFSET, default=None, help="First offset [default: the log start].")
@click.option("-n", "--max-records", type=click.IntRange(min=1), default=None, help="Stop after this many records.")
@data_dir_option
@server_option
@output_option(as_table="a line per batch, then a line per record", as_json="one object per batch, records inside")
def dump(
    topic: str, partition: int, from_offset: int | None, max_records: int | None, data_dir: str | None, output: str
) -> None:
    """Print a partition's stored batches and records, checking each batch's CRC32.

    Each batch shows its offsets, record count, size, timestamps and checksum; each record its
    offset, timestamp, key and a value preview. With -o json: one object per batch, records
    inside. A checksum mismatch, an unreadable header or records that do not decode are shown at
    their batch and make the command exit 1 at the end (`partitions verify` checks every batch).
    """
    progress = Progress()
    corrupt: list[int] = []
    unreadable: list[int] = []
    undecodable: list[int] = []
    shown = 0
    with _source(data_dir) as source:
        part = source.describe(topic).partition(partition)
        start = part.log_start_offset if from_offset is None else from_offset
        end = part.next_offset
        if not part.log_start_offset <= start <= end:
            raise out_of_range(topic, partition, start, part.log_start_offset, end)
        for base, data in source.batches(topic, partition, start, end):
            try:
                header = read_header(data)
            except InvalidBatch as e:
                unreadable.append(base)
                progress.clear()
                if output == "json":
                    echo_json({"base_offset": base, "bytes": len(data), "header_error": e.message, "records": None})
                else:
                    echo_line(f"batch at offset {base}: {len(data)} bytes, unreadable header: {e.message}")
                continue
            crc = crc32(memoryview(data)[HEADER_SIZE:])
            if crc != header.crc32:
                corrupt.append(base)
            records: list[Record] | None
            problem = ""
            try:
                records = decode_records(topic, partition, base, data, start_offset=start, check_crc=False)
            except CorruptBatch as e:
                records, problem = None, str(e)
            if problem:
                records = None
                undecodable.append(base)
            if records is not None and max_records is not None:
                records = records[: max_records - shown]
            progress.clear()
            if output == "json":
                echo_json(_batch_json(base, data, header, crc, records, problem))
            else:
                click.echo(_batch_line(base, data, header, crc))
                for record in records or ():
                    echo_line(_record_line(record))
                if problem:
                    echo_line(f"  (records cannot be decoded: {problem}; see `logsvc partitions verify`)")
            shown += len(records or ())
            progress.update(f"{shown} records, at offset {base + header.record_count} of {end}")
            if max_records is not None and shown >= max_records:
                break
    progress.clear()
    problems = []
    if corrupt:
        where = ", ".join(str(b) for b in corrupt[:10])
        problems.append(f"{len(corrupt)} batch(es) of {topic}/{partition} failed the CRC32 check (at offset {where})")
    if unreadable:
        where = ", ".join(str(b) for b in unreadable[:10])
        problems.append(
            f"{len(unreadable)} batch(es) of {topic}/{partition} have an unreadable header (at offset {where})"
        )
    if undecodable:
        where = ", ".join(str(b) for b in undecodable[:10])
        problems.append(
            f"{len(undecodable)} batch(es) of {topic}/{partition} hold records that do not decode (at offset {where})"
        )
    if problems:
        raise InvalidBatch("; ".join(problems))


# -- verify -------------------------------------------------------------------------------------


@partitions.command()
@click.argument("topic")
@click.option("-p", "--partition", type=numbers.PARTITION, default=None, help="Only this partition.")
@data_dir_option
@server_option
@output_option(as_table="a row per bad batch", as_json="one object: partitions checked and bad batches")
def verify(topic: str, partition: int | None, data_dir: str | None, output: str) -> None:
    """Check every stored batch of TOPIC and list the bad ones.

    Each batch's header, CRC32, payload and records (each record's types) are checked against the
    specification, and the batches must be dense (each base offset is the previous base plus the
    previous record count). Bad batches are listed with their partition, offset range and reason;
    the exit is 0 when every batch is good, 1 otherwise. Data written by an older version, or
    damaged on disk, is what this finds (consumers skip such a batch with corrupt_batches="skip",
    `logsvc consume --skip-corrupt`; connectors dead-letter it).
    """
    progress = Progress()
    checked: list[PartitionCheck] = []
    bad: list[BadBatch] = []
    with _source(data_dir) as source:
        view = source.describe(topic)
        parts = view.partitions if partition is None else [view.partition(partition)]
        for part in parts:
            p = part.partition

            def report(offset: int, p: int = p, end: int = part.next_offset) -> None:
                progress.update(f"{topic}/{p}: at offset {offset} of {end}")

            found, found_bad = check_partition(
                source, topic, p, part.log_start_offset, part.next_offset, report, uncompressed_bound(view.config)
            )
            checked.append(found)
            bad.extend(found_bad)
    progress.clear()
    batches = sum(c.batches for c in checked)
    if output == "json":
        echo_json(
            {
                "topic": topic,
                "ok": not bad,
                "partitions": [c.as_json(bad) for c in checked],
                "bad_batches": [b.as_json() for b in bad],
            }
        )
    elif bad:
        echo_table(
            ("PARTITION", "OFFSETS", "BYTES", "REASON"), [(b.partition, b.offsets, b.bytes, b.reason) for b in bad]
        )
    if bad:
        where = ", ".join(f"{b.partition}@{b.offsets}" for b in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise CorruptBatch(
            f"{len(bad)} of {batches} stored batch(es) of {topic} are bad (partition@offsets: {where})",
            topic=topic,
        )
    note(f"{topic}: {batches} stored batch(es) in {len(checked)} partition(s) checked, all good")


# -- trim ---------------------------------------------------------------------------------------


@partitions.command()
@click.argument("topic")
@click.option("-p", "--partition", type=numbers.PARTITION, required=True, help="The partition to trim.")
@click.option(
    "--before", "before_offset", type=numbers.OFFSET, required=True, help="Delete the records below this offset."
)
@server_option
@output_option
def trim(topic: str, partition: int, before_offset: int, output: str) -> None:
    """Delete a partition's records below --before (moves its log start offset forward)."""
    with Admin(get_state().address()) as admin:
        log_start = admin.trim(topic, partition, before_offset)
    if output == "json":
        echo_json({"topic": topic, "partition": partition, "log_start_offset": log_start})
    else:
        echo_line(f"trimmed {topic}/{partition}: log start offset is now {log_start}")
