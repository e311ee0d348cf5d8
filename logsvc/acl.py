"""The vocabulary of access control, shared by the broker, its store and the CLI: principals,
resources, operations and ACLs (Kafka's model, see the proto's ACCESS CONTROL section).

A principal is ``User:NAME``. An :class:`Acl` allows or denies one operation on one resource
pattern to one principal; :class:`Need` is what one call requires (an operation on one resource).
"""

from __future__ import annotations

from typing import NamedTuple

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
