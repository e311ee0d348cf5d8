"""``logsvc mirror --from HOST:PORT --to kafka://... --topics a,b [--groups g1,g2]``: copy topics
from logsvc onto a Kafka cluster and keep tailing them; ``logsvc mirror status``: how far it got.

The engine is :mod:`logsvc_connect.mirror`; this module parses the options, runs it until SIGTERM
or Ctrl-C (records in flight delivered, checkpoint written, exit 0) and prints the status.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from logsvc.cli.output import echo_json, echo_table, output_option
from logsvc.cli.serve import LOG_FORMAT
from logsvc.cli.state import get_state

DEFAULT_STATE_DIR = ".logsvc-mirror"
KAFKA_EXTRA = "logsvc mirror needs confluent-kafka: pip install 'logsvc[kafka]'"


def _names(value: str | None, what: str) -> list[str]:
    if not value:
        return []
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise click.BadParameter(f"{value!r} names no {what}")
    return list(dict.fromkeys(names))


def _engine() -> Any:
    try:
        from logsvc_connect.mirror import copier, options, status  # confluent_kafka comes with them
    except ImportError as e:
        if "confluent_kafka" in str(e):
            raise click.ClickException(KAFKA_EXTRA) from None
        raise
    return copier, options, status


def _common(fn: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--from",
                "source",
                metavar="HOST:PORT",
                help="The logsvc broker to copy from [default: --server / $LOGSVC_SERVER / 127.0.0.1:50051].",
            ),
            click.option("--to", "target", metavar="kafka://HOST:PORT,...", help="The Kafka cluster to copy to."),
            click.option(
                "--state-dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=DEFAULT_STATE_DIR,
                show_default=True,
                help="Where the mirror keeps its checkpoint (one directory per Kafka cluster).",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def _required(source: str | None, target: str | None) -> tuple[str, str]:
    """The addresses: ``--from`` (default: the logsvc CLI's ``--server``) and ``--to``."""
    if not target:
        raise click.UsageError("--to kafka://HOST:PORT is needed: the Kafka cluster to copy to")
    return source or get_state().server, target


def _interval(flag: str, default_ms: int, help_text: str) -> Any:
    """A ``--X-interval-ms`` option: milliseconds, at least 1."""
    return click.option(flag, type=click.IntRange(min=1), default=default_ms, show_default=True, help=help_text)


@click.group(invoke_without_command=True)
@_common
@click.option("--topics", metavar="T1,T2", help="The logsvc topics to copy (comma-separated).")
@click.option("--groups", metavar="G1,G2", help="Consumer groups whose committed offsets follow (comma-separated).")
@_interval(
    "--checkpoint-interval-ms",
    1_000,
    "How often the checkpoint is written (a restart reads less of Kafka's tail when it is often).",
)
@_interval("--group-interval-ms", 5_000, "How often the --groups are translated again.")
@_interval(
    "--refresh-interval-ms",
    5_000,
    "How often logsvc is asked whether the --topics gained partitions (copied from then on, no restart).",
)
@click.option(
    "--max-records-per-second",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Copy at most this many records per second (0: as fast as Kafka takes them).",
)
@click.option(
    "--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False), default="INFO"
)
@click.pass_context
def mirror(
    ctx: click.Context,
    source: str | None,
    target: str | None,
    state_dir: Path,
    topics: str | None,
    groups: str | None,
    checkpoint_interval_ms: int,
    group_interval_ms: int,
    refresh_interval_ms: int,
    max_records_per_second: int,
    log_level: str,
) -> None:
    """Copy topics from logsvc onto a Kafka cluster, live: each record to the same partition, in
    order, with key, value, headers and timestamp; then keep tailing until SIGTERM or Ctrl-C.
    Missing Kafka topics are created with the same partition count, and grown when logsvc's gain
    partitions (copied from then on, no restart needed). A restart (even after kill -9)
    resumes from the checkpoint in --state-dir with nothing lost or copied twice. With --groups,
    those groups' committed offsets are translated to Kafka offsets and committed to the same
    groups on Kafka while they have no members there.

    \b
    Examples:
      logsvc mirror --from 127.0.0.1:50051 --to kafka://k1:9092 --topics orders,payments
      logsvc mirror --from 127.0.0.1:50051 --to kafka://k1:9092 --topics orders --groups audit
      logsvc mirror status --from 127.0.0.1:50051 --to kafka://k1:9092
    """
    if ctx.invoked_subcommand is not None:
        return
    source, target = _required(source, target)
    copier, options_module, _ = _engine()
    options = options_module.MirrorOptions(
        source=source,
        target=target,
        topics=_names(topics, "topic"),
        groups=_names(groups, "group"),
        state_dir=state_dir,
        checkpoint_interval_ms=checkpoint_interval_ms,
        group_interval_ms=group_interval_ms,
        refresh_interval_ms=refresh_interval_ms,
        max_records_per_second=max_records_per_second,
    )
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    engine = copier.Mirror(options)
    log = logging.getLogger("logsvc_connect.mirror")

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received %s: finishing the records in flight", signal.Signals(signum).name)
        engine.stop()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        engine.run()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@mirror.command(name="status")
@_common
@click.option("--topics", metavar="T1,T2", help="Only these topics (default: every mirrored one).")
@output_option
def status_command(source: str | None, target: str | None, state_dir: Path, topics: str | None, output: str) -> None:
    """Per partition: logsvc's next offset, how far the copy got (a source offset), Kafka's next
    offset and the records not copied yet."""
    source, target = _required(source, target)
    _, _, status = _engine()
    rows = status.status(source, target, state_dir, _names(topics, "topic"))
    if output == "json":
        echo_json([dataclasses.asdict(row) for row in rows])
        return
    echo_table(
        ["TOPIC", "PARTITION", "SOURCE-NEXT", "COPIED-TO", "KAFKA-NEXT", "BEHIND"],
        [(r.topic, r.partition, r.source_next, r.copied_to, r.kafka_next, r.behind) for r in rows],
    )
