"""Access control from the client: ACLs, quota overrides and "who am I" — the
:class:`AccessAdmin` methods :class:`~logsvc_client.Admin` inherits, and the value types of
:mod:`logsvc_client.acls`, re-exported here.

The model is Kafka's (see the proto's ACCESS CONTROL section): a principal is ``User:NAME``
(``User:*`` in an ACL = every principal); an ACL allows or denies one operation (read, write,
create, delete, alter, describe, all) on one resource (a topic or group by literal name, ``*``, or
prefix; or the cluster) to one principal. Every value is a lower-case string, checked by the
broker (InvalidRequest naming the field). Changing ACLs or quotas needs alter on the cluster,
reading them describe on the cluster (PermissionDenied otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable

from .acls import Acl, AclFilter, Quota, Quotas
from .transport.base import AdminTransport


class AccessAdmin:
    """ACL, quota and identity methods of :class:`~logsvc_client.Admin` (a mixin over its transport).

    Reads are retried while the broker is unavailable; changes are not (deleting twice could
    remove ACLs added in between)."""

    _transport: AdminTransport

    def create_acls(self, acls: Iterable[Acl]) -> int:
        """Add ``acls`` in one request, all or none; an ACL already there is kept once. Returns
        how many were not there before. InvalidRequest names the field and value that is wrong."""
        return self._transport.create_acls([Acl(*acl) for acl in acls])

    def describe_acls(self, filter: AclFilter | None = None) -> list[Acl]:
        """The ACLs ``filter`` selects (default: all), sorted by resource, then principal."""
        return self._transport.describe_acls(filter or AclFilter())

    def delete_acls(self, filters: Iterable[AclFilter]) -> list[Acl]:
        """Delete every ACL any of ``filters`` selects (at least one filter; ``AclFilter()``
        selects every ACL); returns those deleted."""
        return self._transport.delete_acls([AclFilter(*f) for f in filters])

    def alter_quotas(self, set: Iterable[Quota] = (), remove: Iterable[str] = ()) -> None:
        """Set quota overrides (a None rate keeps what is stored, 0 = no limit) and remove those
        of the ``remove`` principals, in one request. A principal both set and removed is an
        InvalidRequest."""
        self._transport.alter_quotas(list(set), list(remove))

    def describe_quotas(self, principal: str | None = None) -> Quotas:
        """The stored overrides (of one ``principal``, default all) and the broker's defaults."""
        return self._transport.describe_quotas(principal or "")

    def whoami(self) -> str:
        """The principal the broker sees for this client's calls (``User:NAME``)."""
        return self._transport.whoami()


__all__ = ["AccessAdmin", "Acl", "AclFilter", "Quota", "Quotas"]
