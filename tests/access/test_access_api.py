"""ACL and quota RPCs through the real client against a real broker: what is stored, what comes
back, what is refused, and that the broker's decision and quotas follow every change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logsvc.acl import Need
from logsvc.server.app import Broker, create_server
from logsvc_client import Acl, AclFilter, Admin, Quota, Quotas
from logsvc_client.errors import InvalidConfig, InvalidRequest
from tests.conftest import broker_settings

READ_ORDERS = Acl("User:alice", "topic", "orders", "literal", "read", "allow")
WRITE_PREFIX = Acl("User:bob", "topic", "orders.", "prefixed", "write", "allow")
DENY_SECRET = Acl("User:*", "topic", "secret", "literal", "all", "deny")


@pytest.fixture
def admin(broker: Broker) -> Iterator[Admin]:
    with Admin(broker.address, retries=0) as a:
        yield a


def test_created_acls_are_described_sorted_and_counted_once(admin: Admin) -> None:
    # When ACLs are created, one of them twice
    assert admin.create_acls([WRITE_PREFIX, READ_ORDERS, DENY_SECRET]) == 3
    assert admin.create_acls([READ_ORDERS]) == 0
    # Then all come back sorted by resource, then principal
    assert admin.describe_acls() == [READ_ORDERS, WRITE_PREFIX, DENY_SECRET]
    # And a filter selects, "match" by what applies to one topic
    assert admin.describe_acls(AclFilter(principal="User:bob")) == [WRITE_PREFIX]
    matching = AclFilter(resource_type="topic", resource_name="orders.eu", pattern_type="match")
    assert admin.describe_acls(matching) == [WRITE_PREFIX]


def test_a_bad_acl_is_refused_naming_the_field_and_nothing_is_created(admin: Admin) -> None:
    with pytest.raises(InvalidRequest, match="operation 'fly'"):
        admin.create_acls([READ_ORDERS, Acl("User:alice", "topic", "t", "literal", "fly")])
    with pytest.raises(InvalidRequest, match="principal 'alice'"):
        admin.create_acls([Acl("alice", "topic", "t", "literal", "read")])
    assert admin.describe_acls() == []


def test_deleting_needs_a_filter_and_returns_what_it_deleted(admin: Admin) -> None:
    admin.create_acls([READ_ORDERS, WRITE_PREFIX, DENY_SECRET])
    with pytest.raises(InvalidRequest, match="at least one filter"):
        admin.delete_acls([])
    with pytest.raises(InvalidRequest, match="pattern_type 'any'"):
        admin.delete_acls([AclFilter(pattern_type="any")])
    assert admin.delete_acls([AclFilter(principal="User:alice"), AclFilter(permission="deny")]) == [
        READ_ORDERS,
        DENY_SECRET,
    ]
    assert admin.describe_acls() == [WRITE_PREFIX]


def test_the_broker_decides_with_the_acls_of_the_last_change(broker: Broker, admin: Admin) -> None:
    # Given a hook and a broker without ACLs (allow_if_no_acl: anyone may do anything)
    service = broker.service
    changes: list[int] = []
    service.on_access_change.append(lambda: changes.append(len(service.authorizer.acls)))
    assert service.authorizer.allowed("User:bob", Need("read", "topic", "orders"))
    # When an ACL is created
    admin.create_acls([READ_ORDERS])
    # Then the new authorizer refuses what it does not allow, and the hook saw the change
    assert not service.authorizer.allowed("User:bob", Need("read", "topic", "orders"))
    assert service.authorizer.allowed("User:alice", Need("describe", "topic", "orders"))
    assert changes == [1]
    # And deleting it brings back the state without ACLs
    admin.delete_acls([AclFilter()])
    assert service.authorizer.allowed("User:bob", Need("read", "topic", "orders"))
    assert changes == [1, 0]


def test_quota_overrides_are_set_merged_removed_and_described_with_the_defaults(broker: Broker, admin: Admin) -> None:
    # When alice gets a produce override, then a fetch one, and bob "no limit"
    admin.alter_quotas(set=[Quota("User:alice", produce_bytes_per_second=1000)])
    admin.alter_quotas(set=[Quota("User:alice", fetch_bytes_per_second=2000), Quota("User:bob", 0, 0)])
    # Then both rates of alice are kept, and the defaults come from the settings
    assert admin.describe_quotas() == Quotas([Quota("User:alice", 1000, 2000), Quota("User:bob", 0, 0)], 0, 0)
    assert admin.describe_quotas("User:bob").overrides == [Quota("User:bob", 0, 0)]
    assert broker.service.quota_overrides["User:alice"].fetch_bytes_per_second == 2000
    # When bob's override is removed
    admin.alter_quotas(remove=["User:bob"])
    assert [q.principal for q in admin.describe_quotas().overrides] == ["User:alice"]
    assert "User:bob" not in broker.service.quota_overrides


def test_bad_quota_changes_are_refused(admin: Admin) -> None:
    with pytest.raises(InvalidRequest, match="'User:alice' is both set and removed"):
        admin.alter_quotas(set=[Quota("User:alice", 1)], remove=["User:alice"])
    with pytest.raises(InvalidRequest, match="principal 'alice'"):
        admin.alter_quotas(set=[Quota("alice", 1)])
    with pytest.raises(InvalidRequest, match="remove 'User:\\*'"):
        admin.alter_quotas(remove=["User:*"])
    with pytest.raises(InvalidRequest, match="principal 'bob'"):
        admin.describe_quotas("bob")
    assert admin.describe_quotas().overrides == []


def test_default_quotas_and_stored_acls_are_read_at_start(tmp_path: Path) -> None:
    # Given a broker with default quotas and ACLs stored by an earlier run
    settings = broker_settings(
        tmp_path / "data",
        quota_produce_bytes_per_second=100,
        quota_fetch_bytes_per_second=200,
        super_users="User:root;User:ANONYMOUS",
    )
    first = create_server(settings)
    try:
        with Admin(first.address) as admin:
            admin.create_acls([READ_ORDERS])
            admin.alter_quotas(set=[Quota("User:alice", 5)])
    finally:
        first.stop(grace_s=0)
    # When the broker starts again
    again = create_server(settings)
    try:
        with Admin(again.address) as admin:
            # Then it holds them, and describes its defaults
            assert admin.describe_quotas() == Quotas([Quota("User:alice", 5, None)], 100, 200)
        assert again.service.authorizer.acls == (READ_ORDERS,)
        assert again.service.authorizer.allowed("User:root", Need("delete", "topic", "orders"))
        assert not again.service.authorizer.allowed("User:bob", Need("read", "topic", "orders"))
        assert again.service.quota_overrides == {"User:alice": again.service.store.quota_overrides()[0]}
    finally:
        again.stop(grace_s=0)


def test_a_broker_with_a_bad_super_users_setting_does_not_start(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="super_users: entry 'admin' is not a principal"):
        create_server(broker_settings(tmp_path / "data", super_users="User:ok;admin"))
