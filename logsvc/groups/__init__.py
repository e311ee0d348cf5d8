"""Consumer groups: the broker's coordinator, as pure code over plain data with an injected clock.

* :mod:`logsvc.groups.assignors` — ``range`` and ``sticky``: subscriptions + partition counts
  (+ current assignment) → assignment.
* :mod:`logsvc.groups.member` — a member as the coordinator sees it; the timing defaults and limits.
* :mod:`logsvc.groups.group` — one group: join, heartbeat, leave, expiry, commit fencing, the
  cooperative hand-over of partitions (never two owners at once).
* :mod:`logsvc.groups.coordinator` — every group by id, a lock per group, for the gRPC service;
  groups idle past the offsets retention are forgotten (:meth:`Coordinator.expire_groups`).
"""

from logsvc.groups.assignors import ASSIGNORS, range_assign, sticky_assign
from logsvc.groups.coordinator import Coordinator, GroupDescription, GroupSummary, MemberDescription
from logsvc.groups.group import EMPTY, RECONCILING, STABLE, Group, HeartbeatResult, JoinResult
from logsvc.groups.member import (
    DEFAULT_ASSIGNOR,
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    DEFAULT_REBALANCE_TIMEOUT_MS,
    DEFAULT_SESSION_TIMEOUT_MS,
    MAX_REBALANCE_TIMEOUT_MS,
    MAX_SESSION_TIMEOUT_MS,
    MIN_REBALANCE_TIMEOUT_MS,
    MIN_SESSION_TIMEOUT_MS,
    Member,
)

__all__ = [
    "ASSIGNORS",
    "DEFAULT_ASSIGNOR",
    "DEFAULT_HEARTBEAT_INTERVAL_MS",
    "DEFAULT_REBALANCE_TIMEOUT_MS",
    "DEFAULT_SESSION_TIMEOUT_MS",
    "EMPTY",
    "MAX_REBALANCE_TIMEOUT_MS",
    "MAX_SESSION_TIMEOUT_MS",
    "MIN_REBALANCE_TIMEOUT_MS",
    "MIN_SESSION_TIMEOUT_MS",
    "RECONCILING",
    "STABLE",
    "Coordinator",
    "Group",
    "GroupDescription",
    "GroupSummary",
    "HeartbeatResult",
    "JoinResult",
    "Member",
    "MemberDescription",
    "range_assign",
    "sticky_assign",
]
