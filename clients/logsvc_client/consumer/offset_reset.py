"""``auto_offset_reset``: where a consumer starts, and where it goes when its offset left the log.

One policy, :data:`OffsetReset`, decides both. A partition never positioned (no committed offset,
no seek) starts at the latest offset under "latest", else at the earliest (:func:`start_spec`).
A fetch offset the broker reports out of range (trimmed away, or past the end) moves to the log
start under "earliest" or to the log end under "latest"; under "none" it stays, and
:class:`~logsvc_client.errors.OffsetOutOfRange` is raised (:func:`reset_targets`). The log start
and end come from ListOffsets (:func:`list_offsets`). Used by
:class:`~logsvc_client.consumer.fetcher.Fetcher`, which positions its partitions with them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Literal

from ..errors import InvalidConfig, OffsetOutOfRange
from ..records import TopicPartition
from ..transport.base import ConsumeTransport

log = logging.getLogger("logsvc_client.consumer")

OffsetReset = Literal["earliest", "latest", "none"]


def check_offset_reset(auto_offset_reset: str) -> None:
    """InvalidConfig naming the key unless ``auto_offset_reset`` is 'earliest', 'latest' or 'none'."""
    if auto_offset_reset not in ("earliest", "latest", "none"):
        raise InvalidConfig(
            f"auto_offset_reset={auto_offset_reset!r} must be 'earliest', 'latest' or 'none'",
            key="auto_offset_reset",
        )


def start_spec(reset: OffsetReset) -> str:
    """The offset spec a partition never positioned starts at: 'latest' under 'latest', else 'earliest'."""
    return "latest" if reset == "latest" else "earliest"


def list_offsets(
    transport: ConsumeTransport,
    tps: Iterable[TopicPartition],
    spec: str,
    timestamp_ms: int | None = None,
) -> dict[TopicPartition, int]:
    """The offsets of ``tps`` by ``spec`` (earliest, latest, timestamp): one ListOffsets per topic."""
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    out: dict[TopicPartition, int] = {}
    for topic, parts in by_topic.items():
        found = transport.list_offsets(topic, spec, timestamp_ms, parts)
        out.update({TopicPartition(topic, p): offset for p, offset in found.items()})
    return out


def reset_targets(
    reset: OffsetReset,
    tps: Iterable[TopicPartition],
    fetch_offsets: Mapping[TopicPartition, int],
    earliest: Mapping[TopicPartition, int],
    latest: Mapping[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Where ``reset`` moves each of ``tps`` whose fetch offset is outside [earliest, latest]
    (partitions without a fetch offset are left out); OffsetOutOfRange under 'none'."""
    targets: dict[TopicPartition, int] = {}
    for tp in tps:
        offset = fetch_offsets.get(tp)
        lo, hi = earliest.get(tp, 0), latest.get(tp, 0)
        if offset is None or lo <= offset <= hi:
            continue
        if reset == "none":
            raise OffsetOutOfRange(
                f"offset {offset} of {tp.topic}/{tp.partition} is out of range [{lo}, {hi}] "
                "and auto_offset_reset is 'none'",
                topic=tp.topic,
                partition=tp.partition,
                offset=offset,
                log_start_offset=lo,
                next_offset=hi,
            )
        target = lo if reset == "earliest" else hi
        log.info("offset %d of %s/%d out of range [%d, %d]: reset to %d", offset, *tp, lo, hi, target)
        targets[tp] = target
    return targets
