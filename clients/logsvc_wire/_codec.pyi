"""Types of the C extension built from _codec.c (see that file and logsvc_wire.record_codec)."""

from collections.abc import Sequence
from typing import Any

def check(
    payload: Any, record_count: int, first_timestamp_ms: int, max_timestamp_ms: int, timestamps: bool, /
) -> str | None: ...
def decode(
    payload: Any,
    record_count: int,
    record_type: type,
    topic: str,
    partition: int,
    base_offset: int,
    skip: int,
    append_time_ms: int,
    /,
) -> list[Any] | str: ...
def append_record(
    buffer: bytearray, timestamp_ms: int, key: object, value: object, packed_headers: bytes, /
) -> bool: ...
def encode_bulk(
    keys: Sequence[object] | None,
    values: Sequence[object],
    timestamp_ms: int,
    packed_headers: bytes,
    overhead: int,
    partitions: int,
    partition: int,
    /,
) -> tuple[list[bytes | None], list[bytes | None], list[bytes | None], bytes, bytes] | None: ...
def payload(records: Any, record_count: int, /) -> tuple[bytes, int, int]: ...
def murmur2_positive(key: bytes, /) -> int: ...
def murmur2(key: bytes, /) -> int: ...

class FastAppend:
    """accumulator.append with the common record queued in C (see _codec.c)."""

    def __init__(self, accumulator: object, future_type: type, overhead: int, /) -> None: ...
    def __call__(self, topic: str, value: object, key: object = None, /, **kwargs: object) -> Any: ...
