"""``logsvc partitions describe|dump|trim``: look at (and trim) the stored log itself.

``describe`` and ``dump`` read from the broker or, with ``--data-dir``, straight from a data
directory (read-only, safe while a broker runs on it). ``dump`` shows batch boundaries and checks
every batch's CRC32 against its payload.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import click

from logsvc.cli.output import Progress, echo_json, iso_ms, output_option, preview, record_json
from logsvc.cli.sources import Source, open_source, out_of_range
from logsvc.cli.state import get_state, server_option
from logsvc.cli.topics import echo_partition_table, topic_json
from logsvc_client import Admin
from logsvc_client.batch import HEADER_SIZE, BatchHeader, decode_records, read_header
from logsvc_client.errors import CorruptBatch, InvalidBatch
from logsvc_client.records import Record

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
      logsvc partitions trim orders --partition 0 --before 1000
    """


@partitions.command()
@click.argument("topic")
@click.option("-p", "--partition", type=click.IntRange(min=0), default=None, help="Only this partition.")
@data_dir_option
@server_option
@output_option
def describe(topic: str, partition: int | None, data_dir: str | None, output: str) -> None:
    """Show each partition's log start, next offset, record count, size and timestamps."""
    with _source(data_dir) as source:
        view = source.describe(topic)
    if partition is not None:
        view = view._replace(partitions=[view.partition(partition)])
    if output == "json":
        echo_json(topic_json(view))
    else:
        echo_partition_table(view)


# -- dump ---------------------------------------------------------------------------------------


def _batch_json(base: int, data: bytes, header: BatchHeader, crc: int, records: list[Record] | None) -> dict[str, Any]:
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
@click.option("-p", "--partition", type=click.IntRange(min=0), required=True, help="The partition to dump.")
@click.option(
    "--from", "from_offset", type=click.IntRange(min=0), default=None, help="First offset [default: the log start]."
)
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
    inside. A checksum mismatch is shown at its batch and makes the command exit 1 at the end.
    """
    progress = Progress()
    corrupt: list[int] = []
    shown = 0
    with _source(data_dir) as source:
        part = source.describe(topic).partition(partition)
        start = part.log_start_offset if from_offset is None else from_offset
        end = part.next_offset
        if not part.log_start_offset <= start <= end:
            raise out_of_range(topic, partition, start, part.log_start_offset, end)
        for base, data in source.batches(topic, partition, start, end):
            header = read_header(data)
            crc = zlib.crc32(memoryview(data)[HEADER_SIZE:])
            if crc != header.crc32:
                corrupt.append(base)
            records: list[Record] | None
            problem = ""
            try:
                records = decode_records(topic, partition, base, data, start_offset=start, check_crc=False)
            except CorruptBatch as e:
                records, problem = None, str(e)
            if records is not None and max_records is not None:
                records = records[: max_records - shown]
            progress.clear()
            if output == "json":
                echo_json(_batch_json(base, data, header, crc, records))
            else:
                click.echo(_batch_line(base, data, header, crc))
                for record in records or ():
                    click.echo(_record_line(record))
                if problem:
                    click.echo(f"  (records cannot be decoded: {problem})")
            shown += len(records or ())
            progress.update(f"{shown} records, at offset {base + header.record_count} of {end}")
            if max_records is not None and shown >= max_records:
                break
    progress.clear()
    if corrupt:
        where = ", ".join(str(b) for b in corrupt[:10])
        raise InvalidBatch(
            f"{len(corrupt)} batch(es) of {topic}/{partition} failed the CRC32 check (at offset {where})"
        )


# -- trim ---------------------------------------------------------------------------------------


@partitions.command()
@click.argument("topic")
@click.option("-p", "--partition", type=click.IntRange(min=0), required=True, help="The partition to trim.")
@click.option(
    "--before", "before_offset", type=click.IntRange(min=0), required=True, help="Delete the records below this offset."
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
        click.echo(f"trimmed {topic}/{partition}: log start offset is now {log_start}")
