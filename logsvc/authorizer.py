"""The access decision: may this principal do this operation on this resource?

An :class:`Authorizer` is built from every ACL the broker holds, its super users and
``allow_if_no_acl``, and never changes: the broker builds a new one whenever the ACLs change.
It is pure (no I/O) and sits on every call's path, so it indexes the ACLs by resource type (a
dict of literal names, ``*`` included, and a dict of prefixes probed only at the prefix lengths
that exist) and remembers its decisions (bounded LRU, per principal and requirement).

The rules (the proto's ACCESS CONTROL section, Kafka's model):

1. a super user may do anything;
2. while there is no ACL at all, anyone may do anything when ``allow_if_no_acl`` (else no one);
3. an ACL applies to a call when its principal is the caller's or ``User:*`` and its resource
   pattern covers the resource (the literal name, the ``*`` literal, or a prefix of the name);
4. a deny that applies, for the operation or ``all``, refuses the call, whatever allows it;
5. else an allow that applies, for the operation or ``all`` (or, when the call needs describe,
   for read, write, delete or alter, which imply describe), lets it through;
6. else it is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from logsvc.acl import (
    ALL,
    ALLOW,
    ANY_PRINCIPAL,
    CLUSTER,
    DENY,
    DESCRIBE,
    IMPLIES_DESCRIBE,
    LITERAL,
    PREFIXED,
    WILDCARD,
    Acl,
    AnyOf,
    Need,
    Requirement,
    SomeResource,
)
from logsvc_wire.errors import PermissionDenied

#: Decisions remembered per Authorizer (principal x requirement); a new Authorizer starts empty.
DECISION_CACHE_SIZE = 10_000


class _Index:
    """The ACLs of one resource type, by literal name and by prefix."""

    def __init__(self) -> None:
        self.literal: dict[str, list[Acl]] = {}
        self.prefixed: dict[str, list[Acl]] = {}
        self.prefix_lengths: list[int] = []

    def add(self, acl: Acl) -> None:
        by = self.prefixed if acl.pattern_type == PREFIXED else self.literal
        by.setdefault(acl.resource_name, []).append(acl)

    def freeze(self) -> None:
        self.prefix_lengths = sorted({len(p) for p in self.prefixed})

    def covering(self, name: str) -> list[Acl]:
        """Every ACL whose pattern covers resource ``name``."""
        out = list(self.literal.get(name, ()))
        if name != WILDCARD:
            out.extend(self.literal.get(WILDCARD, ()))
        for n in self.prefix_lengths:
            if n > len(name):
                break
            out.extend(self.prefixed.get(name[:n], ()))
        return out


def _grants(acl_operation: str, operation: str) -> bool:
    """Whether an allow for ``acl_operation`` lets ``operation`` through."""
    return acl_operation in (operation, ALL) or (operation == DESCRIBE and acl_operation in IMPLIES_DESCRIBE)


class Authorizer:
    """Immutable access decisions over one set of ACLs (see the module's rules)."""

    def __init__(
        self,
        acls: Iterable[Acl] = (),
        super_users: Iterable[str] = (),
        allow_if_no_acl: bool = True,
        cache_size: int = DECISION_CACHE_SIZE,
    ) -> None:
        self.acls = tuple(acls)
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self._index: dict[str, _Index] = {}
        for acl in self.acls:
            self._index.setdefault(acl.resource_type, _Index()).add(acl)
        for index in self._index.values():
            index.freeze()
        # Thread-safe and bounded; per instance, so it goes with the ACLs it was computed from.
        self._allowed = functools.lru_cache(maxsize=cache_size)(self._decide)
        self._any_allowed = functools.lru_cache(maxsize=cache_size)(self._decide_some)

    def allowed(self, principal: str, need: Need) -> bool:
        """Whether ``principal`` may do ``need.operation`` on ``need``'s resource."""
        return self._allowed(principal, need)

    def any_allowed(self, principal: str, operation: str, resource_type: str) -> bool:
        """Whether there is some resource of ``resource_type`` on which ``principal`` may do
        ``operation`` (InitProducer: "write on some topic")."""
        return self._any_allowed(principal, operation, resource_type)

    def satisfied(self, principal: str, requirement: Requirement) -> bool:
        """Whether ``principal`` meets ``requirement`` (a Need, a SomeResource or an AnyOf)."""
        if isinstance(requirement, AnyOf):
            return any(self.satisfied(principal, alt) for alt in requirement.alternatives)
        if isinstance(requirement, SomeResource):
            return self.any_allowed(principal, requirement.operation, requirement.resource_type)
        return self.allowed(principal, requirement)

    def check(self, principal: str, requirements: Iterable[Requirement]) -> None:
        """Return when ``principal`` meets every requirement; else PermissionDenied naming the
        principal, the operation and the resource of the first one it does not meet."""
        for requirement in requirements:
            if not self.satisfied(principal, requirement):
                raise denied(principal, requirement)

    # -- decisions ------------------------------------------------------------------------------

    def _applying(self, principal: str, need: Need) -> list[Acl]:
        index = self._index.get(need.resource_type)
        if index is None:
            return []
        return [acl for acl in index.covering(need.name) if acl.principal in (principal, ANY_PRINCIPAL)]

    def _decide(self, principal: str, need: Need) -> bool:
        if principal in self.super_users:
            return True
        if not self.acls:
            return self.allow_if_no_acl
        applying = self._applying(principal, need)
        if any(acl.permission == DENY and acl.operation in (need.operation, ALL) for acl in applying):
            return False
        return any(acl.permission == ALLOW and _grants(acl.operation, need.operation) for acl in applying)

    def _decide_some(self, principal: str, operation: str, resource_type: str) -> bool:
        if principal in self.super_users:
            return True
        if not self.acls:
            return self.allow_if_no_acl
        index = self._index.get(resource_type)
        if index is None:
            return False
        mine = [
            acl
            for acls in (*index.literal.values(), *index.prefixed.values())
            for acl in acls
            if acl.principal in (principal, ANY_PRINCIPAL)
        ]
        denies = [acl for acl in mine if acl.permission == DENY and acl.operation in (operation, ALL)]
        if any(acl.pattern_type == LITERAL and acl.resource_name == WILDCARD for acl in denies):
            return False
        deny_prefixes = [acl.resource_name for acl in denies if acl.pattern_type == PREFIXED]
        deny_names = {acl.resource_name for acl in denies if acl.pattern_type == LITERAL}
        for acl in mine:
            if acl.permission != ALLOW or not _grants(acl.operation, operation):
                continue
            if any(acl.resource_name.startswith(p) for p in deny_prefixes):
                continue  # every resource this allow covers is denied
            if acl.pattern_type == LITERAL and acl.resource_name in deny_names:
                continue
            return True
        return False


def denied(principal: str, requirement: Requirement) -> PermissionDenied:
    """The error for a requirement not met: ``principal User:bob may not write topic 'orders'``."""
    if isinstance(requirement, AnyOf):
        shown = " or ".join(_what(alt) for alt in requirement.alternatives)
        first = requirement.alternatives[0]
    else:
        shown, first = _what(requirement), requirement
    details = {"principal": principal, "operation": first.operation, "resource_type": first.resource_type}
    if isinstance(first, Need):
        details["resource_name"] = first.name
    return PermissionDenied(f"principal {principal} may not {shown}", **details)


def _what(requirement: Need | SomeResource) -> str:
    if isinstance(requirement, SomeResource):
        return f"{requirement.operation} any {requirement.resource_type}"
    if requirement.resource_type == CLUSTER:
        return f"{requirement.operation} the cluster"
    return f"{requirement.operation} {requirement.resource_type} {requirement.name!r}"
