"""ACLs and quota overrides in LMDB: key layout, (de)serialisation, and the writer's ops.

* ``acls``:   one key per ACL, its fields joined by NUL in the order
  ``resource_type, pattern_type, resource_name, principal, operation, permission`` -> empty value.
  A checked ACL holds no NUL (names are ``[A-Za-z0-9._-]``, principals printable) and fits in
  LMDB's 511-byte key (:data:`logsvc.acl.MAX_PRINCIPAL_BYTES`).
* ``quotas``: principal (UTF-8) -> msgpack ``[produce_bytes_per_second, fetch_bytes_per_second]``,
  each an int or nil (nil = the broker's default applies; 0 = no limit).

Both databases are created when a data directory written before them is opened writable; a
read-only open of such a directory sees no ACLs and no overrides.

The ops run on the writer thread like every write (one transaction, fsync'd before the caller
returns); each ACL or quota call is all or none. The checks common to both stores live here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import lmdb
import msgpack

from logsvc.acl import Acl, AclFilter, QuotaOverride, check_principal, matches, parse_acl, sort_key
from logsvc.storage.ops import Op, TxnContext
from logsvc_wire.errors import InvalidRequest

_SEP = "\x00"
#: The largest rate a quota may have (msgpack's and the proto's unsigned 64 bits).
MAX_RATE = (1 << 64) - 1


def acl_key(acl: Acl) -> bytes:
    fields = (acl.resource_type, acl.pattern_type, acl.resource_name, acl.principal, acl.operation, acl.permission)
    return _SEP.join(fields).encode("utf-8")


def decode_acl(key: bytes | memoryview) -> Acl:
    rtype, pattern, name, principal, operation, permission = bytes(key).decode("utf-8").split(_SEP)
    return Acl(principal, rtype, name, pattern, operation, permission)


def encode_quota(item: QuotaOverride) -> bytes:
    return bytes(msgpack.packb([item.produce_bytes_per_second, item.fetch_bytes_per_second]))


def decode_quota(principal: bytes | memoryview, raw: bytes | memoryview) -> QuotaOverride:
    produce, fetch = msgpack.unpackb(raw)
    return QuotaOverride(bytes(principal).decode("utf-8"), produce, fetch)


# -- checks shared by the stores ------------------------------------------------------------------


def checked_acls(acls: Iterable[Acl]) -> list[Acl]:
    """Every ACL checked and normalised (:func:`logsvc.acl.parse_acl`), duplicates once, in order."""
    return list(dict.fromkeys(parse_acl(*acl) for acl in acls))


def checked_quotas(items: Iterable[QuotaOverride]) -> list[QuotaOverride]:
    """Overrides for single principals with rates in [0, 2^64 - 1] or None; InvalidRequest."""
    out = []
    for item in items:
        check_principal(item.principal, wildcard=False)
        for field, rate in (
            ("produce_bytes_per_second", item.produce_bytes_per_second),
            ("fetch_bytes_per_second", item.fetch_bytes_per_second),
        ):
            if rate is not None and (isinstance(rate, bool) or not 0 <= rate <= MAX_RATE):
                raise InvalidRequest(f"{field} {rate!r} of {item.principal} must be 0 (no limit) or more", field=field)
        out.append(QuotaOverride(*item))
    return out


def merged(stored: QuotaOverride | None, item: QuotaOverride) -> QuotaOverride | None:
    """``item`` over ``stored`` (a None rate keeps the stored one); None when neither rate is set."""
    produce, fetch = item.produce_bytes_per_second, item.fetch_bytes_per_second
    if stored is not None:
        produce = stored.produce_bytes_per_second if produce is None else produce
        fetch = stored.fetch_bytes_per_second if fetch is None else fetch
    if produce is None and fetch is None:
        return None
    return QuotaOverride(item.principal, produce, fetch)


def sorted_acls(acls: Iterable[Acl]) -> list[Acl]:
    return sorted(acls, key=sort_key)


# -- reading --------------------------------------------------------------------------------------


def read_acls(txn: lmdb.Transaction[Any], db: Any) -> list[Acl]:
    if db is None:
        return []
    return sorted_acls(decode_acl(key) for key, _ in txn.cursor(db=db))


def read_quotas(txn: lmdb.Transaction[Any], db: Any) -> list[QuotaOverride]:
    if db is None:
        return []
    return [decode_quota(key, value) for key, value in txn.cursor(db=db)]  # keys sort by principal


# -- the writer's ops -----------------------------------------------------------------------------


class AddAcls(Op):
    """Store checked ACLs; the result is how many were not there before."""

    def __init__(self, acls: Sequence[Acl]) -> None:
        super().__init__()
        self.acls = acls

    def write(self, ctx: TxnContext, plan: None) -> int:
        db = ctx.dbs.acls
        return sum(1 for acl in self.acls if ctx.txn.put(acl_key(acl), b"", db=db, overwrite=False))


class RemoveAcls(Op):
    """Delete every ACL any filter selects; the result is the deleted ACLs, sorted."""

    def __init__(self, filters: Sequence[AclFilter]) -> None:
        super().__init__()
        self.filters = filters

    def write(self, ctx: TxnContext, plan: None) -> list[Acl]:
        db = ctx.dbs.acls
        gone = [acl for acl in read_acls(ctx.txn, db) if any(matches(f, acl) for f in self.filters)]
        for acl in gone:
            ctx.txn.delete(acl_key(acl), db=db)
        return gone


class SetQuotas(Op):
    """Merge checked overrides into the stored ones (a None rate keeps the stored rate)."""

    def __init__(self, items: Sequence[QuotaOverride]) -> None:
        super().__init__()
        self.items = items

    def write(self, ctx: TxnContext, plan: None) -> None:
        db = ctx.dbs.quotas
        for item in self.items:
            key = item.principal.encode("utf-8")
            raw = ctx.txn.get(key, db=db)
            new = merged(decode_quota(key, raw) if raw is not None else None, item)
            if new is None:
                ctx.txn.delete(key, db=db)
            else:
                ctx.txn.put(key, encode_quota(new), db=db)


class RemoveQuotas(Op):
    """Delete the overrides of some principals; the result is those that had one, sorted."""

    def __init__(self, principals: Sequence[str]) -> None:
        super().__init__()
        self.principals = principals

    def write(self, ctx: TxnContext, plan: None) -> list[str]:
        db = ctx.dbs.quotas
        return sorted({p for p in self.principals if ctx.txn.delete(p.encode("utf-8"), db=db)})
