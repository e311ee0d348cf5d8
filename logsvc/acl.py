"""The vocabulary of access control, shared by the broker, its store and the CLI: principals,
resources, operations and ACLs (Kafka's model, see the proto's ACCESS CONTROL section).

A principal is ``User:NAME``. An :class:`Acl` allows or denies one operation on one resource
pattern to one principal; :class:`Need` is what one call requires (an operation on one resource).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from logsvc_wire.errors import InvalidConfig, InvalidRequest

PRINCIPAL_TYPE = "User"
ANONYMOUS = "User:ANONYMOUS"
ANY_PRINCIPAL = "User:*"
CLUSTER_NAME = "logsvc-cluster"
WILDCARD = "*"

TOPIC = "topic"
GROUP = "group"
CLUSTER = "cluster"
RESOURCE_TYPES = (TOPIC, GROUP, CLUSTER)

LITERAL = "literal"
PREFIXED = "prefixed"
PATTERN_TYPES = (LITERAL, PREFIXED)

READ = "read"
WRITE = "write"
CREATE = "create"
DELETE = "delete"
ALTER = "alter"
DESCRIBE = "describe"
ALL = "all"
OPERATIONS = (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, ALL)
#: Operations that imply describe on the same resource (as in Kafka).
IMPLIES_DESCRIBE = (READ, WRITE, DELETE, ALTER)

ALLOW = "allow"
DENY = "deny"
PERMISSIONS = (ALLOW, DENY)


class Acl(NamedTuple):
    """One access-control entry, all fields lower-case strings as on the wire."""

    principal: str
    resource_type: str
    resource_name: str
    pattern_type: str
    operation: str
    permission: str


class Need(NamedTuple):
    """What one call requires: ``operation`` on the resource ``resource_type``/``name``."""

    operation: str
    resource_type: str
    name: str


class QuotaOverride(NamedTuple):
    """A principal's stored quota override, bytes per second; None = the broker's default applies,
    0 = no limit."""

    principal: str
    produce_bytes_per_second: int | None
    fetch_bytes_per_second: int | None


#: AclFilter.pattern_type "match": every ACL that applies to the filter's resource_name.
MATCH = "match"
FILTER_PATTERN_TYPES = ("", LITERAL, PREFIXED, MATCH)
#: Longest principal (UTF-8 bytes): an ACL must fit in one LMDB key (511 bytes) with a 249-byte name.
MAX_PRINCIPAL_BYTES = 200
_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


class AclFilter(NamedTuple):
    """Selects ACLs (DescribeAcls, DeleteAcls): an empty field matches any value; pattern_type
    "match" with a resource_name selects every ACL that applies to that resource (see
    :func:`matches`)."""

    principal: str = ""
    resource_type: str = ""
    resource_name: str = ""
    pattern_type: str = ""
    operation: str = ""
    permission: str = ""


class SomeResource(NamedTuple):
    """A requirement met by ``operation`` on at least one resource of ``resource_type`` (InitProducer:
    write on some topic)."""

    operation: str
    resource_type: str


class AnyOf(NamedTuple):
    """A requirement met by any one of its alternatives (CreateTopic: create on the topic, or on
    the cluster)."""

    alternatives: tuple[Need | SomeResource, ...]


#: What a call may require: one operation on one resource, on some resource, or any of several.
Requirement = Need | SomeResource | AnyOf


def _one_of(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise InvalidRequest(f"{field} {value!r} is not one of {shown}", field=field)
    return value


def check_principal(principal: str, field: str = "principal", wildcard: bool = True) -> str:
    """``principal`` when it is ``User:NAME`` (NAME non-empty, printable, at most
    :data:`MAX_PRINCIPAL_BYTES` bytes), or ``User:*`` when ``wildcard``; else InvalidRequest
    naming ``field`` and the value."""
    kind, sep, name = principal.partition(":")
    if kind != PRINCIPAL_TYPE or not sep or not name or name != name.strip() or not name.isprintable():
        raise InvalidRequest(
            f"{field} {principal!r} is not a principal: use User:NAME"
            + (" or User:* (every principal)" if wildcard else ""),
            field=field,
        )
    if name == WILDCARD and not wildcard:
        raise InvalidRequest(f"{field} {principal!r}: name one principal here, not every principal", field=field)
    if len(principal.encode()) > MAX_PRINCIPAL_BYTES:
        n = len(principal.encode())
        raise InvalidRequest(f"{field} is {n} bytes long: at most {MAX_PRINCIPAL_BYTES}", field=field)
    return principal


def _check_name(resource_type: str, name: str, pattern_type: str) -> str:
    """A topic or group name (or prefix), ``*`` for a literal wildcard; the cluster's name."""
    if resource_type == CLUSTER:
        if pattern_type == PREFIXED:
            raise InvalidRequest("pattern_type 'prefixed' is not allowed for the cluster", field="pattern_type")
        if name not in ("", CLUSTER_NAME):
            raise InvalidRequest(
                f"resource_name {name!r}: the cluster's name is {CLUSTER_NAME!r} (or empty)", field="resource_name"
            )
        return CLUSTER_NAME
    if name == WILDCARD:
        if pattern_type == PREFIXED:
            raise InvalidRequest(
                f"resource_name '*' with pattern_type 'prefixed': use '*' as a literal (every {resource_type})",
                field="resource_name",
            )
        return name
    if not _NAME.fullmatch(name) or (pattern_type != PREFIXED and name in (".", "..")):
        raise InvalidRequest(
            f"resource_name {name!r} is not a {resource_type} name: use 1 to 249 of [A-Za-z0-9._-] "
            f"(not '.' or '..'), or '*' for every {resource_type}",
            field="resource_name",
        )
    return name


def parse_acl(
    principal: str, resource_type: str, resource_name: str, pattern_type: str, operation: str, permission: str
) -> Acl:
    """A checked :class:`Acl` from wire values (empty pattern_type = literal; the cluster's empty
    name = ``logsvc-cluster``); InvalidRequest naming the field and the wrong value."""
    check_principal(principal)
    _one_of("resource_type", resource_type, RESOURCE_TYPES)
    pattern_type = _one_of("pattern_type", pattern_type or LITERAL, PATTERN_TYPES)
    name = _check_name(resource_type, resource_name, pattern_type)
    _one_of("operation", operation, OPERATIONS)
    _one_of("permission", permission, PERMISSIONS)
    return Acl(principal, resource_type, name, pattern_type, operation, permission)


def parse_filter(
    principal: str = "",
    resource_type: str = "",
    resource_name: str = "",
    pattern_type: str = "",
    operation: str = "",
    permission: str = "",
) -> AclFilter:
    """A checked :class:`AclFilter` (empty fields match anything); InvalidRequest naming the field."""
    if principal:
        check_principal(principal)
    if resource_type:
        _one_of("resource_type", resource_type, RESOURCE_TYPES)
    _one_of("pattern_type", pattern_type, FILTER_PATTERN_TYPES)
    if pattern_type == MATCH and not resource_name:
        raise InvalidRequest("pattern_type 'match' needs a resource_name", field="resource_name")
    if resource_name:
        if resource_type:
            resource_name = _check_name(resource_type, resource_name, pattern_type)
        elif resource_name != WILDCARD and not _NAME.fullmatch(resource_name):
            raise InvalidRequest(f"resource_name {resource_name!r} is not a resource name", field="resource_name")
    if operation:
        _one_of("operation", operation, OPERATIONS)
    if permission:
        _one_of("permission", permission, PERMISSIONS)
    return AclFilter(principal, resource_type, resource_name, pattern_type, operation, permission)


def applies_to(acl: Acl, name: str) -> bool:
    """Whether ``acl``'s resource pattern covers the resource ``name`` (of the ACL's type)."""
    if acl.pattern_type == PREFIXED:
        return name.startswith(acl.resource_name)
    return acl.resource_name in (name, WILDCARD)


def matches(selector: AclFilter, acl: Acl) -> bool:
    """Whether ``selector`` selects ``acl`` (the proto's AclFilter semantics)."""
    for want, have in (
        (selector.principal, acl.principal),
        (selector.resource_type, acl.resource_type),
        (selector.operation, acl.operation),
        (selector.permission, acl.permission),
    ):
        if want and want != have:
            return False
    if selector.pattern_type == MATCH:
        return applies_to(acl, selector.resource_name)
    if selector.pattern_type and selector.pattern_type != acl.pattern_type:
        return False
    return not selector.resource_name or selector.resource_name == acl.resource_name


def sort_key(acl: Acl) -> tuple[str, ...]:
    """DescribeAcls' order: by resource (type, name, pattern), then principal, operation, permission."""
    return (acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, acl.operation, acl.permission)


def parse_super_users(text: str) -> frozenset[str]:
    """The ``super_users`` setting: principals separated by ``;`` (as Kafka's super.users: a
    certificate's DN principal holds commas); InvalidConfig naming the one that is not ``User:NAME``."""
    users = set()
    for part in text.split(";"):
        principal = part.strip()
        if not principal:
            continue
        try:
            users.add(check_principal(principal, "entry", wildcard=False))
        except InvalidRequest as e:
            raise InvalidConfig(f"super_users: {e.message}", key="super_users") from None
    return frozenset(users)
