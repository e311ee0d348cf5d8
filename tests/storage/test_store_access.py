"""The store's ACLs and quota overrides (contract tests, run against every store), and their
persistence in LMDB across a reopen and in data directories written before they existed."""

from __future__ import annotations

from pathlib import Path

import lmdb
import pytest

from logsvc.acl import Acl, AclFilter, QuotaOverride
from logsvc.errors import InvalidRequest
from logsvc.storage.base import Store
from logsvc.storage.lmdb_store import LmdbStore
from logsvc.storage.state import FORMAT, FORMAT_VERSION

READ_ORDERS = Acl("User:alice", "topic", "orders", "literal", "read", "allow")
WRITE_PREFIX = Acl("User:bob", "topic", "orders.", "prefixed", "write", "allow")
DENY_ALL = Acl("User:*", "group", "*", "literal", "all", "deny")
ALTER_CLUSTER = Acl("User:ops", "cluster", "logsvc-cluster", "literal", "alter", "allow")


def test_added_acls_are_listed_sorted_by_resource_then_principal(store: Store) -> None:
    # Given a store without ACLs
    assert store.acls() == []
    # When ACLs are added (the cluster's empty name and an empty pattern type normalised)
    created = store.add_acls(
        [WRITE_PREFIX, READ_ORDERS, DENY_ALL, Acl("User:ops", "cluster", "", "", "alter", "allow")]
    )
    # Then each counts once and they come back in DescribeAcls' order
    assert created == 4
    assert store.acls() == [ALTER_CLUSTER, DENY_ALL, READ_ORDERS, WRITE_PREFIX]


def test_an_acl_already_there_or_given_twice_is_kept_once(store: Store) -> None:
    store.add_acls([READ_ORDERS])
    assert store.add_acls([READ_ORDERS, WRITE_PREFIX, WRITE_PREFIX]) == 1
    assert store.acls() == [READ_ORDERS, WRITE_PREFIX]


def test_adding_acls_is_all_or_none(store: Store) -> None:
    # When one ACL of a call is invalid
    bad = Acl("alice", "topic", "t", "literal", "read", "allow")
    with pytest.raises(InvalidRequest, match="principal 'alice'"):
        store.add_acls([READ_ORDERS, bad])
    # Then none of them is stored
    assert store.acls() == []


def test_removing_deletes_what_any_filter_selects_and_returns_it(store: Store) -> None:
    store.add_acls([READ_ORDERS, WRITE_PREFIX, DENY_ALL, ALTER_CLUSTER])
    # When two filters are given (one selecting by "match": every ACL that applies to a topic)
    removed = store.remove_acls(
        [
            AclFilter(resource_type="topic", resource_name="orders.eu", pattern_type="match"),
            AclFilter(principal="User:ops"),
        ]
    )
    # Then what either selects is gone, and returned sorted
    assert removed == [ALTER_CLUSTER, WRITE_PREFIX]
    assert store.acls() == [DENY_ALL, READ_ORDERS]
    assert store.remove_acls([AclFilter(principal="User:nobody")]) == []
    assert store.remove_acls([]) == []
    assert store.remove_acls([AclFilter()]) == [DENY_ALL, READ_ORDERS]
    assert store.acls() == []


def test_quota_overrides_merge_keeping_what_a_call_leaves_unset(store: Store) -> None:
    # Given an override of alice's produce rate
    store.set_quota_overrides([QuotaOverride("User:alice", 1000, None)])
    assert store.quota_overrides() == [QuotaOverride("User:alice", 1000, None)]
    # When her fetch rate is set, and bob gets "no limit" (0) for produce
    store.set_quota_overrides([QuotaOverride("User:alice", None, 5000), QuotaOverride("User:bob", 0, None)])
    # Then alice keeps her produce rate, and the list is sorted by principal
    assert store.quota_overrides() == [QuotaOverride("User:alice", 1000, 5000), QuotaOverride("User:bob", 0, None)]
    # And setting nothing for someone with no override stores nothing
    store.set_quota_overrides([QuotaOverride("User:carol", None, None)])
    assert [q.principal for q in store.quota_overrides()] == ["User:alice", "User:bob"]


def test_removing_quota_overrides_returns_the_principals_that_had_one(store: Store) -> None:
    store.set_quota_overrides([QuotaOverride("User:alice", 1, 2), QuotaOverride("User:bob", 3, 4)])
    assert store.remove_quota_overrides(["User:bob", "User:carol", "User:bob"]) == ["User:bob"]
    assert store.quota_overrides() == [QuotaOverride("User:alice", 1, 2)]


@pytest.mark.parametrize(
    ("item", "in_message"),
    [
        (QuotaOverride("alice", 1, 1), "principal 'alice'"),
        (QuotaOverride("User:*", 1, 1), "name one principal"),
        (QuotaOverride("User:alice", -1, None), "produce_bytes_per_second -1"),
        (QuotaOverride("User:alice", None, 1 << 64), "fetch_bytes_per_second"),
    ],
)
def test_invalid_quota_overrides_store_nothing(store: Store, item: QuotaOverride, in_message: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        store.set_quota_overrides([QuotaOverride("User:ok", 1, 1), item])
    assert in_message in e.value.message
    assert store.quota_overrides() == []


def test_acls_and_quotas_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "data"
    with LmdbStore.open(path, retention_check_interval_ms=0) as store:
        store.add_acls([READ_ORDERS, WRITE_PREFIX])
        store.remove_acls([AclFilter(principal="User:bob")])
        store.set_quota_overrides([QuotaOverride("User:alice", 10, None)])
    with LmdbStore.open(path, retention_check_interval_ms=0) as store:
        assert store.acls() == [READ_ORDERS]
        assert store.quota_overrides() == [QuotaOverride("User:alice", 10, None)]
    with LmdbStore.open(path, readonly=True) as store:
        assert store.acls() == [READ_ORDERS]


def test_a_data_directory_from_before_acls_opens_read_only_and_writable(tmp_path: Path) -> None:
    # Given a data directory holding only the databases of the previous version
    path = tmp_path / "data"
    path.mkdir()
    env = lmdb.open(str(path), max_dbs=7)
    old = [env.open_db(name) for name in (b"meta", b"topics", b"batches", b"timeindex", b"partitions", b"groups")]
    with env.begin(write=True) as txn:
        txn.put(FORMAT, FORMAT_VERSION, db=old[0])
    env.close()
    # Then a read-only open sees no ACLs and no overrides
    with LmdbStore.open(path, readonly=True) as store:
        assert store.acls() == []
        assert store.quota_overrides() == []
    # And a writable open creates what is missing
    with LmdbStore.open(path, retention_check_interval_ms=0) as store:
        assert store.add_acls([READ_ORDERS]) == 1
        assert store.acls() == [READ_ORDERS]
