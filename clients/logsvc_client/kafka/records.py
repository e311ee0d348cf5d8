"""librdkafka's consumed messages as the client's :class:`~logsvc_client.records.Record` tuples.

One pass over a ``consume()`` batch: each message becomes a Record (topic, partition, offset,
timestamp in ms, key, value, headers as a tuple of ``(str, bytes)`` pairs or None, as the gRPC
transport hands them out); a message that carries an error instead of a record is set aside for
the consumer to act on. Nothing here talks to the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from logsvc_wire.types import record_padding

from ..records import Headers, Record

_new = tuple.__new__  # Record(...) without the NamedTuple's Python-level __new__


def headers_of(headers: list[tuple[str, bytes | None]]) -> Headers:
    """Kafka headers as the client's: a tuple of pairs, a null header value as ``b""`` (a logsvc
    header always has bytes)."""
    pairs = tuple(headers)
    if any(value is None for _, value in pairs):
        return tuple((name, value or b"") for name, value in pairs)
    return pairs  # type: ignore[return-value]


def to_records(messages: Sequence[Any], record_type: type[tuple[Any, ...]] = Record) -> tuple[list[Record], list[Any]]:
    """The records of ``messages`` in the order given, and the messages that carry an error
    instead of a record (their ``error()``, ``topic()`` and ``partition()`` say which).
    ``record_type``: as the consumer's (Record's seven fields first, any others None)."""
    more = record_padding(record_type)
    records: list[Any] = []  # record_type tuples
    failed: list[Any] = []
    append = records.append
    for m in messages:
        if m.error() is not None:
            failed.append(m)
            continue
        h = m.headers()
        fields = (
            m.topic(),
            m.partition(),
            m.offset(),
            m.timestamp()[1],
            m.key(),
            m.value(),
            headers_of(h) if h else None,
        )
        append(_new(record_type, fields + more))  # fields + () is fields itself
    return records, failed
