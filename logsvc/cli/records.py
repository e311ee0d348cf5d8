"""``logsvc records status TOPIC --partition P --offset O``: where one record stands with each group.

For every consumer group with the topic in view (committed offsets on it, or members subscribed
to it) the record is *processed* when the group's committed offset is past it, otherwise
*pending*, with the records that stand before it and how long the first of them has waited. A
group with nothing committed on the partition starts at the log start. A record that a connector
dead-lettered (found in any topic named ``*.dlq``) counts as processed by that connector, whose
consumer group is the connector's name.

A record inside a stored batch that does not decode (older or damaged data) is reported as such,
with each group's status all the same (a connector that dead-lettered the whole batch counts as
having processed it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from logsvc.cli import numbers
from logsvc.cli.output import echo_fields, echo_json, echo_table, iso_ms, note, output_option
from logsvc.cli.sources import ServerSource
from logsvc.cli.state import get_state, server_option
from logsvc_client import Admin, PartitionLag
from logsvc_client.errors import CorruptBatch, GroupNotFound
from logsvc_client.records import Record
from logsvc_connect.dead_letters import DeadLetter, review


@dataclass(frozen=True)
class GroupStatus:
    """Where one group stands with the record."""

    group: str
    committed_offset: int | None  # None: nothing committed on the partition
    processed: bool
    records_before: int | None  # pending only: records ahead of it, not counting itself
    waiting_ms: int | None  # pending only: age of the first record the group has not processed
    dead_letter: DeadLetter | None  # this group's connector dead-lettered the record

    @property
    def status(self) -> str:
        return "processed" if self.processed else "pending"

    def as_json(self) -> dict[str, Any]:
        d = self.dead_letter
        return {
            "group": self.group,
            "status": self.status,
            "committed_offset": self.committed_offset,
            "records_before": self.records_before,
            "waiting_s": None if self.waiting_ms is None else self.waiting_ms / 1000,
            "dead_lettered": None if d is None else dead_letter_json(d),
        }


def dead_letter_json(d: DeadLetter) -> dict[str, Any]:
    return {
        "connector": d.connector,
        "dlq_topic": d.record.topic,
        "dlq_partition": d.record.partition,
        "dlq_offset": d.offset,
        "error": {"class": d.error_class, "message": d.error_message},
        "attempts": d.attempts,
        # when it was dead-lettered (the dead letter's own timestamp)
        "time": iso_ms(d.record.timestamp_ms),
    }


def dlq_position(d: DeadLetter) -> str:
    return f"{d.record.topic}/{d.record.partition}@{d.offset}"


def group_status(group: str, lag: PartitionLag, offset: int, dead_letter: DeadLetter | None) -> GroupStatus:
    """The record at ``offset`` as seen by ``group``, from the group's row for its partition."""
    committed = lag.committed_offset
    if (committed is not None and committed > offset) or dead_letter is not None:
        return GroupStatus(group, committed, True, None, None, dead_letter)
    position = lag.log_start_offset if committed is None else max(committed, lag.log_start_offset)
    return GroupStatus(group, committed, False, offset - position, lag.lag_ms, None)


def group_statuses(admin: Admin, record: Record, letters: list[DeadLetter]) -> list[GroupStatus]:
    """Every group with the record's topic in view, and every connector that dead-lettered it."""
    by_connector = {d.connector: d for d in letters if d.connector}
    out: list[GroupStatus] = []
    for summary in admin.list_groups():
        try:
            desc = admin.describe_group(summary.group)
        except GroupNotFound:
            continue  # deleted meanwhile
        for lag in desc.partitions:
            if (lag.topic, lag.partition) == (record.topic, record.partition):
                out.append(group_status(summary.group, lag, record.offset, by_connector.get(summary.group)))
    seen = {s.group for s in out}
    for connector, d in sorted(by_connector.items()):
        if connector not in seen:  # its group is gone (or never committed): it still handled it
            out.append(GroupStatus(connector, None, True, None, None, d))
    return sorted(out, key=lambda s: s.group)


def echo_status(
    record: Record, statuses: list[GroupStatus], letters: list[DeadLetter], corrupt: CorruptBatch | None = None
) -> None:
    echo_fields(
        [
            ("record", f"{record.topic}/{record.partition}@{record.offset}"),
            ("time", iso_ms(record.timestamp_ms)),
            *([("stored batch", f"corrupt: {corrupt.message}")] if corrupt is not None else []),
            (
                "dead-lettered",
                ", ".join(f"by {d.connector or '?'} to {dlq_position(d)}" for d in letters) or "no",
            ),
        ]
    )
    if not statuses:
        note(f"no consumer group has read {record.topic}/{record.partition}")
        return
    click.echo()
    echo_table(
        ("GROUP", "STATUS", "COMMITTED", "RECORDS BEFORE", "WAITING (S)", "DEAD LETTER"),
        [
            (
                s.group,
                s.status,
                s.committed_offset,
                s.records_before,
                None if s.waiting_ms is None else f"{s.waiting_ms / 1000:.1f}",
                None if s.dead_letter is None else dlq_position(s.dead_letter),
            )
            for s in statuses
        ],
    )


@click.group()
def records() -> None:
    """Look up single records: where one stands with each consumer group.

    \b
    Examples:
      logsvc records status orders --partition 0 --offset 1200
      logsvc records status orders -p 0 --offset 1200 -o json
    """


@records.command()
@click.argument("topic")
@click.option("-p", "--partition", type=numbers.PARTITION, required=True, help="The record's partition.")
@click.option("--offset", type=numbers.OFFSET, required=True, help="The record's offset.")
@server_option
@output_option(as_table="the record, then a row per group", as_json="an object with record and groups")
def status(topic: str, partition: int, offset: int, output: str) -> None:
    """Say, for each consumer group, whether the record is processed (the committed offset is past
    it) or pending (how many records stand before it, how long the first has waited), and
    whether a connector dead-lettered it (which counts as processed by that connector)."""
    with ServerSource(get_state().address()) as source:
        admin = source.admin
        part = source.describe(topic).partition(partition)
        corrupt: CorruptBatch | None = None
        try:
            record = review.record_at(source, topic, part, offset)
        except CorruptBatch as e:  # where groups stand with it still makes sense
            record, corrupt = Record(topic, partition, offset, -1, None, None, None), e
        letters = review.dead_letters_of(source, admin, topic, partition, offset, note)
        statuses = group_statuses(admin, record, letters)
    if output == "json":
        echo_json(
            {
                "record": {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "timestamp": record.timestamp_ms,
                    # the record is in a stored batch that does not decode: why (no timestamp)
                    **({} if corrupt is None else {"timestamp": None, "corrupt_batch": corrupt.message}),
                },
                "groups": [s.as_json() for s in statuses],
                "dead_letters": [dead_letter_json(d) for d in letters],
            }
        )
    else:
        echo_status(record, statuses, letters, corrupt)
