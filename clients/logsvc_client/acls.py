"""The value types of access control, as the client hands them out and takes them: ACLs and
quota overrides (Kafka's model, see the proto's ACCESS CONTROL section). Every value is a
lower-case string or a number, checked by the broker. :mod:`logsvc_client.access` holds the
:class:`~logsvc_client.access.AccessAdmin` methods that use them.
"""

from __future__ import annotations

from typing import NamedTuple


class Acl(NamedTuple):
    """One ACL. ``resource_type``: topic | group | cluster; ``resource_name``: a name, ``*`` (every
    one, literal only) or a prefix, ``""`` for the cluster; ``pattern_type``: literal (``""`` is
    taken as literal) | prefixed; ``permission``: allow | deny."""

    principal: str
    resource_type: str
    resource_name: str
    pattern_type: str
    operation: str
    permission: str = "allow"


class AclFilter(NamedTuple):
    """Selects ACLs; an empty field matches any value. ``pattern_type`` ``"match"`` (with a
    ``resource_name``) selects every ACL that applies to that resource: its literal, ``*`` and the
    prefixes of the name."""

    principal: str = ""
    resource_type: str = ""
    resource_name: str = ""
    pattern_type: str = ""  # "" (any) | literal | prefixed | match
    operation: str = ""
    permission: str = ""


class Quota(NamedTuple):
    """A principal's quota override in bytes per second: None = the broker's default applies
    (when setting: keep what is stored), 0 = no limit."""

    principal: str
    produce_bytes_per_second: int | None = None
    fetch_bytes_per_second: int | None = None


class Quotas(NamedTuple):
    """:meth:`AccessAdmin.describe_quotas`' answer: the stored overrides, sorted by principal, and
    the broker's defaults (0 = no limit)."""

    overrides: list[Quota]
    default_produce_bytes_per_second: int
    default_fetch_bytes_per_second: int
