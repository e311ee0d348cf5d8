"""A group member as the coordinator sees it, and the timing defaults of group membership.

Times are milliseconds from one caller-chosen clock (the broker uses a monotonic clock); nothing
here reads the time itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from logsvc_wire.errors import InvalidRequest
from logsvc_wire.types import TopicPartition

DEFAULT_SESSION_TIMEOUT_MS = 10_000
"""A member not heard from for longer than this is removed and its partitions move."""

MIN_SESSION_TIMEOUT_MS = 1_000
MAX_SESSION_TIMEOUT_MS = 300_000

DEFAULT_HEARTBEAT_INTERVAL_MS = 250
"""How often members are told to heartbeat: a rebalance completes within a few of these."""

DEFAULT_REBALANCE_TIMEOUT_MS = 60_000
"""How long a member may keep a partition after being told to release it before it is removed."""

MIN_REBALANCE_TIMEOUT_MS = 1_000
MAX_REBALANCE_TIMEOUT_MS = 600_000

DEFAULT_ASSIGNOR = "sticky"

MAX_ID_BYTES = 255
"""Longest client id or instance id (UTF-8 bytes) a member may join with."""


def new_member_id() -> str:
    """A fresh member id (uuid4, hex)."""
    return uuid.uuid4().hex


def validate_timeouts(session_timeout_ms: int, rebalance_timeout_ms: int) -> None:
    """InvalidRequest naming the value when a timeout is outside its allowed range."""
    if not MIN_SESSION_TIMEOUT_MS <= session_timeout_ms <= MAX_SESSION_TIMEOUT_MS:
        raise InvalidRequest(
            f"session_timeout_ms={session_timeout_ms} is outside [{MIN_SESSION_TIMEOUT_MS}, {MAX_SESSION_TIMEOUT_MS}]"
        )
    if not MIN_REBALANCE_TIMEOUT_MS <= rebalance_timeout_ms <= MAX_REBALANCE_TIMEOUT_MS:
        raise InvalidRequest(
            f"rebalance_timeout_ms={rebalance_timeout_ms} is outside "
            f"[{MIN_REBALANCE_TIMEOUT_MS}, {MAX_REBALANCE_TIMEOUT_MS}]"
        )


def check_id_length(field: str, value: str | None) -> None:
    """InvalidRequest naming ``field`` (and not echoing all of it) when ``value`` exceeds MAX_ID_BYTES."""
    if value is not None and len(value) > MAX_ID_BYTES // 4 and len(value.encode("utf-8")) > MAX_ID_BYTES:
        raise InvalidRequest(
            f"{field} is {len(value.encode('utf-8'))} bytes ({value[:32]!r}...); the limit is {MAX_ID_BYTES}"
        )


def format_partitions(tps: frozenset[TopicPartition] | set[TopicPartition]) -> str:
    """``t-0, t-1`` (Kafka's spelling), sorted, for error messages."""
    return ", ".join(f"{tp.topic}-{tp.partition}" for tp in sorted(tps))


@dataclass
class Member:
    """One live member of a group.

    ``owned`` is what the coordinator must assume the member may be consuming: every partition it
    was handed, until it heartbeats with an ``owned`` set that no longer includes it (or leaves, or
    expires). ``acked_generation`` is the newest generation the member has acknowledged (joined at
    or heartbeated with). ``revoking`` maps each partition the member was told to release but still
    holds to when it was first told (the start of its rebalance timeout).
    """

    member_id: str
    instance_id: str | None
    client_id: str
    topics: frozenset[str]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    last_heartbeat_ms: int
    acked_generation: int
    owned: frozenset[TopicPartition] = frozenset()
    revoking: dict[TopicPartition, int] = field(default_factory=dict)

    def expired(self, now_ms: int) -> bool:
        """Missed its session timeout, or kept a revoked partition past its rebalance timeout."""
        return now_ms > self.alive_until_ms()

    def alive_until_ms(self) -> int:
        """The last time at which the member is not yet :meth:`expired` (unless it heartbeats)."""
        until = self.last_heartbeat_ms + self.session_timeout_ms
        if self.revoking:
            until = min(until, min(self.revoking.values()) + self.rebalance_timeout_ms)
        return until

    def told(self, target: frozenset[TopicPartition], now_ms: int) -> None:
        """The member was just sent its assignment (a subset of ``target``): start the rebalance
        timeout of every partition it holds outside ``target`` and was not already told about."""
        self.revoking = {tp: self.revoking.get(tp, now_ms) for tp in sorted(self.owned - target)}

    def retarget(self, target: frozenset[TopicPartition]) -> None:
        """The target changed: forget revocations of partitions it owns again or no longer holds."""
        self.revoking = {tp: told_ms for tp, told_ms in self.revoking.items() if tp in self.owned - target}
