"""The audit log: one line for every refused call and every change to the broker's state.

Lines go to the ``logsvc.audit`` logger (the broker's log by default; route that logger elsewhere
to keep them apart), each naming the principal, the client's address, the method and what it
touched::

    audit: DENIED User:bob from 10.0.0.7: DeleteTopic: principal User:bob may not delete topic 'orders'
    audit: User:alice from 10.0.0.5: DeleteTopic topic=orders

Changes are logged after they succeeded: creating, altering and deleting topics, trims, offset
resets that were executed, group deletions, and ACL and quota changes. Reads and produce are not
changes of state in this sense and are not logged (the metrics count them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from logsvc.server.refusals import peer_host

log = logging.getLogger("logsvc.audit")


def _acl(acl: Any) -> str:
    return (
        f"{acl.permission} {acl.principal} {acl.operation} {acl.resource_type}:"
        f"{acl.resource_name or '-'}({acl.pattern_type or 'literal'})"
    )


def _filter(f: Any) -> str:
    fields = ("principal", "resource_type", "resource_name", "pattern_type", "operation", "permission")
    shown = [f"{name}={getattr(f, name)}" for name in fields if getattr(f, name)]
    return "{" + " ".join(shown) + "}" if shown else "{any}"


def _quotas(request: Any) -> str:
    parts = []
    for q in request.set:
        rates = [
            f"{field}={getattr(q, field)}"
            for field in ("produce_bytes_per_second", "fetch_bytes_per_second")
            if q.HasField(field)
        ]
        parts.append(f"set {q.principal} " + " ".join(rates))
    parts += [f"remove {principal}" for principal in request.remove]
    return "; ".join(parts)


#: Method -> what its request changed, for the methods whose success changes the broker's state.
#: A method mapped to None changes nothing for this request (a dry-run reset).
CHANGES: dict[str, Callable[[Any], str | None]] = {
    "CreateTopic": lambda r: f"topic={r.name} partitions={r.partitions} config={dict(sorted(r.config.items()))}",
    "AlterTopic": lambda r: (
        f"topic={r.name} partitions={r.partitions or '-'} set={dict(sorted(r.set_config.items()))} "
        f"reset={sorted(r.reset_config)}"
    ),
    "DeleteTopic": lambda r: f"topic={r.name}",
    "Trim": lambda r: f"topic={r.topic} partition={r.partition} before_offset={r.before_offset}",
    "ResetOffsets": lambda r: (
        f"group={r.group} topic={r.topic} partitions={list(r.partitions) or 'all'} "
        f"to={r.Spec.Name(r.spec).lower()}:{r.value}"
        if r.execute
        else None
    ),
    "DeleteGroup": lambda r: f"group={r.group}",
    "CreateAcls": lambda r: "; ".join(_acl(a) for a in r.acls),
    "DeleteAcls": lambda r: "; ".join(_filter(f) for f in r.filters),
    "AlterQuotas": _quotas,
}


def denied(principal: str, peer: str, method: str, reason: str) -> None:
    """A call refused by the ACLs."""
    log.warning("audit: DENIED %s from %s: %s: %s", principal, peer_host(peer), method, reason)


def changed(principal: str, peer: str, method: str, request: Any) -> None:
    """``method`` succeeded with ``request``: log it when it changed the broker's state."""
    describe = CHANGES.get(method)
    if describe is None:
        return
    what = describe(request)
    if what is not None:
        log.info("audit: %s from %s: %s %s", principal, peer_host(peer), method, what)
