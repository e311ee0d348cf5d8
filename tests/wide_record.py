"""A record type wider than :class:`~logsvc_wire.types.Record`, as a sink runtime's SinkRecord is,
for the tests that decode into one (the C and Python decoders, the consumers of both transports)."""

from __future__ import annotations

from typing import Any, NamedTuple


class WideRecord(NamedTuple):
    """Record's seven fields, then two more that a decoder leaves None."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Any
    doc: Any
    note: Any
