"""Length limits on the free-form strings a request may carry, checked where each enters the
broker, so that no caller can make it keep (in memory, in LMDB, in /metrics) more than a few KiB
per id or value. Each refusal is INVALID_ARGUMENT naming the field, its length and the limit —
never echoing the value itself.

Group names and topic names are already bounded by their character rules (1 to 249 of
``[A-Za-z0-9._-]``); gRPC request metadata (headers) by gRPC itself: above 8 KiB some calls
and above 16 KiB every call is refused with RESOURCE_EXHAUSTED before a handler runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from logsvc.errors import InvalidConfig, InvalidRequest
from logsvc.groups.member import MAX_ID_BYTES  # client, instance and member ids: the coordinator's bound

__all__ = ["MAX_ID_BYTES", "MAX_METADATA_BYTES", "check_config", "check_length"]

#: OffsetCommit.metadata (Kafka's offset.metadata.max.bytes is 4096).
MAX_METADATA_BYTES = 4096
#: A topic config key (the known ones are short; anything longer is a mistake or an attack).
MAX_CONFIG_KEY_BYTES = 255
#: A topic config value (the known ones are numbers and short names).
MAX_CONFIG_VALUE_BYTES = 4096


def check_length(what: str, value: str, limit: int) -> str:
    """``value`` when its UTF-8 encoding is at most ``limit`` bytes, else InvalidRequest."""
    if len(value) * 4 > limit:  # cheap: 4 bytes per character is the most UTF-8 takes
        n = len(value.encode())
        if n > limit:
            raise InvalidRequest(f"{what} is {n} bytes long: at most {limit} bytes")
    return value


def check_config(config: Mapping[str, str]) -> Mapping[str, str]:
    """A topic config map whose keys and values are within their limits."""
    for key, value in config.items():
        if len(key.encode()) > MAX_CONFIG_KEY_BYTES:
            raise InvalidConfig(
                f"a topic config key is {len(key.encode())} bytes long: at most {MAX_CONFIG_KEY_BYTES} bytes",
                key=key[:40],
            )
        if len(value.encode()) > MAX_CONFIG_VALUE_BYTES:
            raise InvalidConfig(
                f"topic config {key}: the value is {len(value.encode())} bytes long: "
                f"at most {MAX_CONFIG_VALUE_BYTES} bytes",
                key=key,
            )
    return config
