"""Value types: the records a consumer receives, the positions a producer gets back; and the checks
and conversions a record's fields go through when it is sent.

:class:`Record`, :class:`TopicPartition` and ``Headers`` are the wire's (:mod:`logsvc_wire.types`),
re-exported here so ``from logsvc_client.records import Record`` keeps working."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple, TypeGuard

from logsvc_wire.record_check import MAX_TIMESTAMP_MS
from logsvc_wire.types import MAX_LONG, MAX_PARTITION_COUNT, Headers, Record, TopicPartition

from .errors import InvalidPartition, InvalidRequest

__all__ = [
    "Headers",
    "ProducerRecord",
    "Record",
    "RecordPosition",
    "TopicPartition",
    "check_timestamp",
    "to_bytes",
    "to_headers",
]


class RecordPosition(NamedTuple):
    """Where an acknowledged record was stored."""

    partition: int
    offset: int


class ProducerRecord(NamedTuple):
    """One record to send through :meth:`Admin.produce_records` (the broker partitions it).

    ``value``/``key`` are bytes, str (sent as UTF-8) or None; ``headers`` is a sequence of
    ``(name, value)`` pairs or a mapping; ``timestamp_ms`` None means now; ``partition`` wins.
    """

    value: bytes | str | None
    key: bytes | str | None = None
    headers: Sequence[tuple[str, bytes | str]] | Mapping[str, bytes | str] | None = None
    timestamp_ms: int | None = None
    partition: int | None = None


def to_bytes(data: object, what: str = "value") -> bytes | None:
    """``data`` as bytes: str is UTF-8 encoded, None stays None; anything else is InvalidRequest."""
    if data is None or data.__class__ is bytes:
        return data
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise InvalidRequest(f"record {what} must be bytes, str or None, not {type(data).__name__}")


def to_headers(headers: object) -> list[tuple[str, bytes]] | None:
    """Headers as a list of ``(str, bytes)`` pairs (None or empty: None)."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, bytes]] = []
    try:
        for name, value in items:  # type: ignore[attr-defined]
            if not isinstance(name, str):
                raise InvalidRequest(f"header name {name!r} must be str")
            data = to_bytes(value, f"header {name!r} value")
            if data is None:
                raise InvalidRequest(f"header {name!r} has no value (use b'' for an empty one)")
            out.append((name, data))
    except (TypeError, ValueError):
        raise InvalidRequest(f"headers must be (name, value) pairs or a mapping, not {headers!r}") from None
    return out


MAX_OFFSET = MAX_LONG
"""The largest offset a seek or a commit may name."""


def check_partition_count(partitions: object) -> None:
    """InvalidPartition unless ``partitions`` is an int from 1 to :data:`MAX_PARTITION_COUNT`,
    before any transport is asked (protobuf and librdkafka would raise their own errors)."""
    if isinstance(partitions, bool) or not isinstance(partitions, int) or not 1 <= partitions <= MAX_PARTITION_COUNT:
        raise InvalidPartition(
            f"partition count {partitions!r} is out of range: use 1 to {MAX_PARTITION_COUNT}", partitions=partitions
        )


def check_partitions(tps: Iterable[object]) -> list[TopicPartition]:
    """``tps`` as TopicPartitions; InvalidPartition for a partition number no topic can have
    (not an int from 0 to ``MAX_PARTITION_COUNT - 1``), before any transport is asked."""
    out = []
    for item in tps:
        tp = TopicPartition(*item)  # type: ignore[misc]
        p = tp.partition
        if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p < MAX_PARTITION_COUNT:
            raise InvalidPartition(
                f"partition {p!r} of {tp.topic} is out of range: use 0 to {MAX_PARTITION_COUNT - 1}",
                topic=tp.topic,
                partition=p,
            )
        out.append(tp)
    return out


def _is_long(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an int from 0 to :data:`MAX_LONG` (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_LONG


def check_offset(offset: object, doing: str) -> int:
    """``offset`` when it is an int from 0 to :data:`MAX_OFFSET`; else InvalidRequest saying what
    was being done (``doing``: "cannot seek t/0 to offset", "cannot commit ... offset")."""
    if not _is_long(offset):
        raise InvalidRequest(f"{doing} {offset!r}: use an int from 0 to {MAX_OFFSET}")
    return offset


def check_time_ms(timestamp_ms: object, needed_by: str) -> int:
    """``timestamp_ms`` when it is a time to look up (epoch milliseconds, 0 to :data:`MAX_LONG`, a
    Kafka long); else InvalidRequest naming what needs it (``needed_by``: "seek_to_time")."""
    if not _is_long(timestamp_ms):
        raise InvalidRequest(f"{needed_by} needs timestamp_ms (epoch ms) from 0 to {MAX_LONG}, not {timestamp_ms!r}")
    return timestamp_ms


def check_timestamp(timestamp_ms: object) -> None:
    """InvalidRequest unless ``timestamp_ms`` is an int the broker accepts (0 to MAX_TIMESTAMP_MS,
    9999-12-31): refused here, one record fails, rather than its whole batch at the broker."""
    if timestamp_ms.__class__ is not int or not 0 <= timestamp_ms <= MAX_TIMESTAMP_MS:
        raise InvalidRequest(
            f"timestamp_ms must be a non-negative int up to {MAX_TIMESTAMP_MS} (9999-12-31), not {timestamp_ms!r}"
        )
