"""Access-control RPCs of the Broker servicer: ACLs and quota overrides, stored by the store
(:mod:`logsvc.storage.access`), decided by an :class:`~logsvc.authorizer.Authorizer`.

The servicer keeps the current decision and quotas as attributes the gRPC layer reads on every
call: ``authorizer`` (replaced, never mutated, after each successful CreateAcls / DeleteAcls),
``quotas`` (the throttle, :class:`~logsvc.server.quotas.Quotas`, whose overrides are replaced
after AlterQuotas; ``quota_overrides`` reads them), and ``on_access_change`` (callables run after
each change). These handlers do not check the caller's permission
themselves: enforcement (ALTER / DESCRIBE on the cluster, see
:mod:`logsvc.server.authorization`) happens once, in front of every handler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from logsvc.acl import Acl, AclFilter, QuotaOverride, check_principal, matches, parse_filter, parse_super_users
from logsvc.authorizer import Authorizer
from logsvc.errors import InvalidRequest
from logsvc.server.calls import Call
from logsvc.server.quotas import Quotas
from logsvc.settings import Settings
from logsvc.storage.base import Store
from logsvc_wire._proto import logsvc_pb2 as pb

log = logging.getLogger("logsvc.access")


def acl_from_pb(msg: pb.Acl) -> Acl:
    """Unchecked: the store checks and normalises (:func:`logsvc.acl.parse_acl`)."""
    return Acl(msg.principal, msg.resource_type, msg.resource_name, msg.pattern_type, msg.operation, msg.permission)


def acl_to_pb(acl: Acl) -> pb.Acl:
    return pb.Acl(**acl._asdict())


def filter_from_pb(msg: pb.AclFilter) -> AclFilter:
    return parse_filter(
        msg.principal, msg.resource_type, msg.resource_name, msg.pattern_type, msg.operation, msg.permission
    )


def quota_from_pb(msg: pb.Quota) -> QuotaOverride:
    return QuotaOverride(
        msg.principal,
        msg.produce_bytes_per_second if msg.HasField("produce_bytes_per_second") else None,
        msg.fetch_bytes_per_second if msg.HasField("fetch_bytes_per_second") else None,
    )


def quota_to_pb(item: QuotaOverride) -> pb.Quota:
    return pb.Quota(
        principal=item.principal,
        produce_bytes_per_second=item.produce_bytes_per_second,
        fetch_bytes_per_second=item.fetch_bytes_per_second,
    )


def build_authorizer(acls: Iterable[Acl], settings: Settings) -> Authorizer:
    """The decision over ``acls`` with the broker's super_users and allow_if_no_acl."""
    return Authorizer(acls, parse_super_users(settings.super_users), settings.allow_if_no_acl)


class AccessRpcs:
    """Mixin for the Broker servicer (see :class:`logsvc.server.service.BrokerService`)."""

    store: Store
    settings: Settings
    authorizer: Authorizer
    quotas: Quotas
    on_access_change: list[Callable[[], None]]

    def init_access(self) -> None:
        """Build the authorizer and the quota overrides from the store (at start-up);
        InvalidConfig for a bad super_users setting."""
        self.on_access_change = []
        # Orders "read the store, publish": the last view published is the newest one read, so
        # two concurrent changes cannot leave the older view in place.
        self._access_lock = threading.Lock()
        self.authorizer = build_authorizer(self.store.acls(), self.settings)
        self.quotas = Quotas.from_settings(self.settings)
        self.quotas.set_overrides(self.store.quota_overrides())

    @property
    def quota_overrides(self) -> Mapping[str, QuotaOverride]:
        """The quota overrides in force, by principal (as stored)."""
        return self.quotas.overrides

    def _acls_changed(self) -> None:
        with self._access_lock:
            self.authorizer = build_authorizer(self.store.acls(), self.settings)
        self._changed()

    def _quotas_changed(self) -> None:
        with self._access_lock:
            self.quotas.set_overrides(self.store.quota_overrides())
        self._changed()

    def _changed(self) -> None:
        for hook in list(self.on_access_change):
            try:
                hook()
            except Exception:
                log.exception("access-change hook %r failed", hook)

    def CreateAcls(self, request: pb.CreateAclsRequest, call: Call) -> pb.CreateAclsResponse:
        created = self.store.add_acls([acl_from_pb(a) for a in request.acls])
        if created:
            self._acls_changed()
            log.info("%d ACL(s) created", created)
        return pb.CreateAclsResponse(created=created)

    def DescribeAcls(self, request: pb.DescribeAclsRequest, call: Call) -> pb.DescribeAclsResponse:
        selector = filter_from_pb(request.filter)
        return pb.DescribeAclsResponse(acls=[acl_to_pb(a) for a in self.store.acls() if matches(selector, a)])

    def DeleteAcls(self, request: pb.DeleteAclsRequest, call: Call) -> pb.DeleteAclsResponse:
        if not request.filters:
            raise InvalidRequest("DeleteAcls needs at least one filter (an empty filter selects every ACL)")
        deleted = self.store.remove_acls([filter_from_pb(f) for f in request.filters])
        if deleted:
            self._acls_changed()
            log.info("%d ACL(s) deleted", len(deleted))
        return pb.DeleteAclsResponse(deleted=[acl_to_pb(a) for a in deleted])

    def AlterQuotas(self, request: pb.AlterQuotasRequest, call: Call) -> pb.AlterQuotasResponse:
        items = [quota_from_pb(q) for q in request.set]
        remove = [check_principal(p, "remove", wildcard=False) for p in request.remove]
        both = sorted({q.principal for q in items} & set(remove))
        if both:
            raise InvalidRequest(f"principal {both[0]!r} is both set and removed", field="remove")
        if items:
            self.store.set_quota_overrides(items)
        if remove:
            self.store.remove_quota_overrides(remove)
        if items or remove:
            self._quotas_changed()
        return pb.AlterQuotasResponse()

    def DescribeQuotas(self, request: pb.DescribeQuotasRequest, call: Call) -> pb.DescribeQuotasResponse:
        wanted = check_principal(request.principal, wildcard=False) if request.principal else None
        quotas = [q for q in self.store.quota_overrides() if wanted is None or q.principal == wanted]
        return pb.DescribeQuotasResponse(
            quotas=[quota_to_pb(q) for q in quotas],
            default_produce_bytes_per_second=self.settings.quota_produce_bytes_per_second,
            default_fetch_bytes_per_second=self.settings.quota_fetch_bytes_per_second,
        )
