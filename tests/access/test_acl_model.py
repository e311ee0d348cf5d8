"""The ACL vocabulary: what an ACL, a filter and the super_users setting may be, and what a filter
selects (the proto's ACCESS CONTROL section)."""

from __future__ import annotations

import pytest

from logsvc.acl import Acl, AclFilter, matches, parse_acl, parse_filter, parse_super_users, sort_key
from logsvc.errors import InvalidConfig, InvalidRequest


def acl(principal: str = "User:alice", rtype: str = "topic", name: str = "orders", pattern: str = "literal",
        op: str = "read", perm: str = "allow") -> Acl:  # fmt: skip
    return Acl(principal, rtype, name, pattern, op, perm)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (("User:alice", "topic", "orders", "", "read", "allow"), acl()),
        (("User:*", "group", "*", "literal", "all", "deny"), acl("User:*", "group", "*", op="all", perm="deny")),
        (("User:bob", "topic", "orders.", "prefixed", "write", "allow"),
         acl("User:bob", name="orders.", pattern="prefixed", op="write")),
        (("User:ops", "cluster", "", "", "alter", "allow"), acl("User:ops", "cluster", "logsvc-cluster", op="alter")),
        (("User:CN=svc, O=Acme", "topic", "t", "literal", "describe", "allow"),
         acl("User:CN=svc, O=Acme", name="t", op="describe")),
    ],
)  # fmt: skip
def test_a_valid_acl_is_normalised(fields: tuple[str, ...], expected: Acl) -> None:
    assert parse_acl(*fields) == expected


@pytest.mark.parametrize(
    ("fields", "in_message"),
    [
        (("alice", "topic", "t", "", "read", "allow"), "principal 'alice' is not a principal"),
        (("User:", "topic", "t", "", "read", "allow"), "principal 'User:'"),
        (("Group:x", "topic", "t", "", "read", "allow"), "principal 'Group:x'"),
        (("User:a\x1b", "topic", "t", "", "read", "allow"), "principal"),
        (("User:a", "queue", "t", "", "read", "allow"), "resource_type 'queue'"),
        (("User:a", "topic", "a b", "", "read", "allow"), "resource_name 'a b' is not a topic name"),
        (("User:a", "topic", "", "", "read", "allow"), "resource_name ''"),
        (("User:a", "topic", "..", "", "read", "allow"), "resource_name '..'"),
        (("User:a", "topic", "*", "prefixed", "read", "allow"), "resource_name '*' with pattern_type 'prefixed'"),
        (("User:a", "cluster", "", "prefixed", "alter", "allow"), "'prefixed' is not allowed for the cluster"),
        (("User:a", "cluster", "other", "", "alter", "allow"), "resource_name 'other'"),
        (("User:a", "topic", "t", "regex", "read", "allow"), "pattern_type 'regex'"),
        (("User:a", "topic", "t", "", "READ", "allow"), "operation 'READ'"),
        (("User:a", "topic", "t", "", "read", "maybe"), "permission 'maybe'"),
    ],
)  # fmt: skip
def test_an_invalid_acl_is_refused_naming_the_field_and_the_value(fields: tuple[str, ...], in_message: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        parse_acl(*fields)
    assert in_message in e.value.message


def test_a_principal_too_long_for_storage_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="at most 200"):
        parse_acl("User:" + "x" * 200, "topic", "t", "", "read", "allow")


STORED = [
    acl("User:alice", name="orders"),
    acl("User:alice", name="orders", op="write"),
    acl("User:bob", name="orders", perm="deny"),
    acl("User:*", name="*"),
    acl("User:alice", name="ord", pattern="prefixed"),
    acl("User:alice", name="orders-eu", pattern="prefixed"),
    acl("User:alice", name="other"),
    acl("User:alice", "group", "orders"),
    acl("User:ops", "cluster", "logsvc-cluster", op="alter"),
]


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        (AclFilter(), STORED),
        (AclFilter(principal="User:bob"), [STORED[2]]),
        (AclFilter(principal="User:*"), [STORED[3]]),  # the wildcard principal selects itself only
        (AclFilter(resource_type="topic", resource_name="orders"), STORED[:3]),
        (AclFilter(resource_name="orders"), [*STORED[:3], STORED[7]]),
        (AclFilter(resource_type="topic", pattern_type="prefixed"), STORED[4:6]),
        (AclFilter(resource_type="topic", resource_name="ord", pattern_type="literal"), []),
        (AclFilter(resource_type="topic", resource_name="orders", pattern_type="match"), [*STORED[:5]]),
        (AclFilter(resource_type="topic", resource_name="orders-eu-1", pattern_type="match"), STORED[3:6]),
        (AclFilter(operation="write"), [STORED[1]]),
        (AclFilter(permission="deny"), [STORED[2]]),
        (AclFilter(resource_type="cluster"), [STORED[8]]),
    ],
)  # fmt: skip
def test_a_filter_selects_by_every_field_it_sets(selector: AclFilter, selected: list[Acl]) -> None:
    assert [a for a in STORED if matches(selector, a)] == selected


def test_a_filter_is_checked_like_an_acl_and_match_needs_a_name() -> None:
    assert parse_filter() == AclFilter()
    assert parse_filter(resource_type="cluster", resource_name="") == AclFilter(resource_type="cluster")
    for kwargs, in_message in [
        ({"principal": "bob"}, "principal 'bob'"),
        ({"pattern_type": "any"}, "pattern_type 'any'"),
        ({"pattern_type": "match"}, "pattern_type 'match' needs a resource_name"),
        ({"resource_type": "topic", "resource_name": "a b"}, "resource_name 'a b'"),
        ({"operation": "fly"}, "operation 'fly'"),
    ]:
        with pytest.raises(InvalidRequest) as e:
            parse_filter(**kwargs)
        assert in_message in e.value.message


def test_acls_sort_by_resource_then_principal() -> None:
    ordered = sorted(STORED, key=sort_key)
    assert ordered[0].resource_type == "cluster"
    assert [a.principal for a in ordered if a.resource_name == "orders" and a.resource_type == "topic"] == [
        "User:alice",
        "User:alice",
        "User:bob",
    ]


def test_super_users_are_separated_by_semicolons_as_kafkas_and_a_dn_keeps_its_commas() -> None:
    assert parse_super_users("") == frozenset()
    assert parse_super_users("User:admin; User:ops;User:ci ;") == {"User:admin", "User:ops", "User:ci"}
    assert parse_super_users("User:CN=alice,OU=payments,O=shop;User:ops") == {
        "User:CN=alice,OU=payments,O=shop",
        "User:ops",
    }
    for bad in ("admin", "User:*", "User:"):
        with pytest.raises(InvalidConfig) as e:
            parse_super_users(f"User:ok;{bad}")
        assert e.value.details["key"] == "super_users"
        assert repr(bad) in e.value.message
