"""Access control from the client: ACLs, quota overrides and "who am I", as value types and the
:class:`AccessAdmin` methods :class:`~logsvc_client.Admin` inherits.

The model is Kafka's (see the proto's ACCESS CONTROL section): a principal is ``User:NAME``
(``User:*`` in an ACL = every principal); an ACL allows or denies one operation (read, write,
create, delete, alter, describe, all) on one resource (a topic or group by literal name, ``*``, or
prefix; or the cluster) to one principal. Every value is a lower-case string, checked by the
broker (InvalidRequest naming the field). Changing ACLs or quotas needs alter on the cluster,
reading them describe on the cluster (PermissionDenied otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from ._proto import logsvc_pb2 as pb
from .transport import channel


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


def acl_from_pb(msg: pb.Acl) -> Acl:
    return Acl(msg.principal, msg.resource_type, msg.resource_name, msg.pattern_type, msg.operation, msg.permission)


def _opt(msg: Any, field: str) -> int | None:
    return int(getattr(msg, field)) if msg.HasField(field) else None


def quota_from_pb(msg: pb.Quota) -> Quota:
    return Quota(msg.principal, _opt(msg, "produce_bytes_per_second"), _opt(msg, "fetch_bytes_per_second"))


class AccessAdmin:
    """ACL, quota and identity methods of :class:`~logsvc_client.Admin` (a mixin over its stub).

    Reads are retried while the broker is unavailable; changes are not (deleting twice could
    remove ACLs added in between)."""

    _stub: Any
    _timeout_s: float
    _retry: channel.RetryPolicy

    def create_acls(self, acls: Iterable[Acl]) -> int:
        """Add ``acls`` in one request, all or none; an ACL already there is kept once. Returns
        how many were not there before. InvalidRequest names the field and value that is wrong."""
        request = pb.CreateAclsRequest(acls=[pb.Acl(**Acl(*acl)._asdict()) for acl in acls])
        return int(channel.call(self._stub.CreateAcls, request, self._timeout_s).created)

    def describe_acls(self, filter: AclFilter | None = None) -> list[Acl]:
        """The ACLs ``filter`` selects (default: all), sorted by resource, then principal."""
        request = pb.DescribeAclsRequest(filter=pb.AclFilter(**(filter or AclFilter())._asdict()))
        response = channel.call_with_retry(self._stub.DescribeAcls, request, self._retry)
        return [acl_from_pb(a) for a in response.acls]

    def delete_acls(self, filters: Iterable[AclFilter]) -> list[Acl]:
        """Delete every ACL any of ``filters`` selects (at least one filter; ``AclFilter()``
        selects every ACL); returns those deleted."""
        request = pb.DeleteAclsRequest(filters=[pb.AclFilter(**AclFilter(*f)._asdict()) for f in filters])
        return [acl_from_pb(a) for a in channel.call(self._stub.DeleteAcls, request, self._timeout_s).deleted]

    def alter_quotas(self, set: Iterable[Quota] = (), remove: Iterable[str] = ()) -> None:
        """Set quota overrides (a None rate keeps what is stored, 0 = no limit) and remove those
        of the ``remove`` principals, in one request. A principal both set and removed is an
        InvalidRequest."""
        request = pb.AlterQuotasRequest(
            set=[
                pb.Quota(
                    principal=q.principal,
                    produce_bytes_per_second=q.produce_bytes_per_second,
                    fetch_bytes_per_second=q.fetch_bytes_per_second,
                )
                for q in set
            ],
            remove=list(remove),
        )
        channel.call(self._stub.AlterQuotas, request, self._timeout_s)

    def describe_quotas(self, principal: str | None = None) -> Quotas:
        """The stored overrides (of one ``principal``, default all) and the broker's defaults."""
        request = pb.DescribeQuotasRequest(principal=principal or "")
        response = channel.call_with_retry(self._stub.DescribeQuotas, request, self._retry)
        return Quotas(
            [quota_from_pb(q) for q in response.quotas],
            int(response.default_produce_bytes_per_second),
            int(response.default_fetch_bytes_per_second),
        )

    def whoami(self) -> str:
        """The principal the broker sees for this client's calls (``User:NAME``)."""
        response = channel.call_with_retry(self._stub.WhoAmI, pb.WhoAmIRequest(), self._retry)
        return str(response.principal)


__all__ = ["AccessAdmin", "Acl", "AclFilter", "Quota", "Quotas"]
