"""``logsvc topics create|list|describe|alter|delete``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import click

from logsvc.cli import numbers
from logsvc.cli.output import echo_fields, echo_json, echo_line, echo_table, iso_ms, note, output_option
from logsvc.cli.state import get_state, server_option
from logsvc.topic_config import KAFKA_NAMES
from logsvc_client import Admin, TopicDescription
from logsvc_client.errors import TopicAlreadyExists

KAFKA_NAMES_HELP = (
    "Kafka's names work too: "
    + ", ".join(f"{kafka} ({ours})" for kafka, ours in KAFKA_NAMES.items())
    + "; one logsvc has no equivalent for (segment.ms, cleanup.policy, ...) is refused."
)
PARTITION_HEADERS = ("PARTITION", "LOG START", "NEXT OFFSET", "RECORDS", "BYTES", "FIRST TIMESTAMP", "LAST TIMESTAMP")


def topic_json(topic: TopicDescription) -> dict[str, Any]:
    return {
        "name": topic.name,
        "topic_id": topic.topic_id,
        "created_ms": topic.created_ms,
        "config": dict(sorted(topic.config.items())),
        "partitions": [dataclasses.asdict(p) for p in topic.partitions],
    }


def echo_partition_table(topic: TopicDescription) -> None:
    echo_table(
        PARTITION_HEADERS,
        [
            (
                p.partition,
                p.log_start_offset,
                p.next_offset,
                p.record_count,
                "-" if p.known_bytes is None else p.known_bytes,
                iso_ms(p.first_timestamp_ms),
                iso_ms(p.last_timestamp_ms),
            )
            for p in topic.partitions
        ],
    )


def echo_topic(topic: TopicDescription) -> None:
    """The topic's fields, its config, then one row per partition."""
    echo_fields(
        [
            ("topic", topic.name),
            ("topic id", topic.topic_id),
            ("created", iso_ms(topic.created_ms)),
            ("partitions", len(topic.partitions)),
            ("records", sum(p.record_count for p in topic.partitions)),
            ("bytes", "-" if topic.known_bytes is None else topic.known_bytes),
            ("config", ", ".join(f"{k}={v}" for k, v in sorted(topic.config.items())) or "-"),
        ]
    )
    click.echo()
    echo_partition_table(topic)


def parse_config(pairs: Sequence[str]) -> dict[str, str]:
    config: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="'--config'")
        config[key.strip()] = value.strip()
    return config


@click.group()
def topics() -> None:
    """Create, list, describe, alter and delete topics.

    \b
    Examples:
      logsvc topics create orders --partitions 3 --config retention_ms=604800000
      logsvc topics create orders --partitions 3 --if-not-exists   # scripts, compose
      logsvc topics list -o json
      logsvc topics describe orders
      logsvc topics alter orders --partitions 6 --config retention.ms=86400000   # Kafka's name
      logsvc topics delete orders
    """


@topics.command()
@click.argument("name")
@click.option("-p", "--partitions", type=numbers.PARTITION_COUNT, required=True, help="Number of partitions.")
@click.option(
    "-c",
    "--config",
    "config_pairs",
    metavar="KEY=VALUE",
    multiple=True,
    help="Topic config, repeatable: retention_ms, retention_bytes, timestamp_type (CreateTime|LogAppendTime), "
    f"max_batch_bytes, partitioner, max_uncompressed_batch_bytes. {KAFKA_NAMES_HELP}",
)
@click.option(
    "--if-not-exists",
    is_flag=True,
    help="Succeed when the topic already exists (as kafka-topics --if-not-exists), leaving it as it is: "
    "its partitions and config are not changed (a note on stderr says when its partition count differs).",
)
@server_option
@output_option
def create(name: str, partitions: int, config_pairs: tuple[str, ...], if_not_exists: bool, output: str) -> None:
    """Create topic NAME with --partitions partitions.

    NAME is 1 to 249 of the characters A-Z a-z 0-9 . _ -
    """
    config = parse_config(config_pairs)
    with Admin(get_state().address()) as admin:
        try:
            topic = admin.create_topic(name, partitions, config or None)
            verb = "created"
        except TopicAlreadyExists:
            if not if_not_exists:
                raise
            topic = admin.describe_topic(name)
            verb = "kept existing"
            if len(topic.partitions) != partitions:
                note(f"note: topic {name} already exists with {len(topic.partitions)} partition(s), not {partitions}")
    if output == "json":
        echo_json(topic_json(topic))
    else:
        echo_line(f"{verb} topic {topic.name} with {len(topic.partitions)} partition(s)")


@topics.command("list")
@server_option
@output_option
def list_(output: str) -> None:
    """List the topics and their partition counts."""
    with Admin(get_state().address()) as admin:
        summaries = admin.list_topics()
    rows = sorted((s.name, s.partitions) for s in summaries)
    if output == "json":
        echo_json([{"name": n, "partitions": p} for n, p in rows])
    elif rows:
        echo_table(("TOPIC", "PARTITIONS"), rows)
    else:
        note("no topics")


@topics.command()
@click.argument("name")
@server_option
@output_option
def describe(name: str, output: str) -> None:
    """Show a topic's config and its partitions' offsets, sizes and timestamps."""
    with Admin(get_state().address()) as admin:
        topic = admin.describe_topic(name)
    if output == "json":
        echo_json(topic_json(topic))
    else:
        echo_topic(topic)


@topics.command()
@click.argument("name")
@click.option(
    "-p",
    "--partitions",
    type=numbers.PARTITION_COUNT,
    default=None,
    help="Grow the topic to this many partitions (never fewer than it has).",
)
@click.option(
    "-c",
    "--config",
    "config_pairs",
    metavar="KEY=VALUE",
    multiple=True,
    help=f"Set a topic config key, repeatable. {KAFKA_NAMES_HELP}",
)
@click.option(
    "--reset-config", "reset_keys", metavar="KEY", multiple=True, help="Set a key back to its default, repeatable."
)
@server_option
@output_option
def alter(
    name: str, partitions: int | None, config_pairs: tuple[str, ...], reset_keys: tuple[str, ...], output: str
) -> None:
    """Add partitions to topic NAME and/or change its config; then show it.

    New partitions start empty. As in Kafka, keyed records produced after the change hash over the
    new partition count, so a key's later records may land on another partition than its earlier
    ones; group consumers get the new partitions at once, running producers within their
    metadata_max_age_ms. A config change applies to the whole topic (retention at the next check).
    """
    config = parse_config(config_pairs)
    if partitions is None and not config and not reset_keys:
        raise click.UsageError("give --partitions, --config or --reset-config")
    with Admin(get_state().address()) as admin:
        altered = admin.alter_topic(name, partitions=partitions, config=config or None, reset_config=reset_keys)
    if output == "json":
        echo_json(topic_json(altered))
    else:
        echo_topic(altered)


@topics.command()
@click.argument("name")
@server_option
@output_option
def delete(name: str, output: str) -> None:
    """Delete a topic with all its records."""
    with Admin(get_state().address()) as admin:
        admin.delete_topic(name)
    if output == "json":
        echo_json({"deleted": name})
    else:
        echo_line(f"deleted topic {name}")
