"""The access decision, as a table: given these ACLs, may this principal do this?"""

from __future__ import annotations

import pytest

from logsvc.acl import Acl, AnyOf, Need, SomeResource
from logsvc.authorizer import Authorizer
from logsvc.errors import PermissionDenied


def allow(principal: str, op: str, rtype: str, name: str, pattern: str = "literal") -> Acl:
    return Acl(principal, rtype, name, pattern, op, "allow")


def deny(principal: str, op: str, rtype: str, name: str, pattern: str = "literal") -> Acl:
    return Acl(principal, rtype, name, pattern, op, "deny")


def need(op: str, rtype: str, name: str) -> Need:
    return Need(op, rtype, name)


CASES = [
    # (why, acls, principal, need, allowed)
    ("a literal allow lets its principal in", [allow("User:alice", "read", "topic", "orders")],
     "User:alice", need("read", "topic", "orders"), True),
    ("...not another principal", [allow("User:alice", "read", "topic", "orders")],
     "User:bob", need("read", "topic", "orders"), False),
    ("...not another operation", [allow("User:alice", "read", "topic", "orders")],
     "User:alice", need("write", "topic", "orders"), False),
    ("...not another topic", [allow("User:alice", "read", "topic", "orders")],
     "User:alice", need("read", "topic", "orders2"), False),
    ("...not a group of the same name", [allow("User:alice", "read", "topic", "orders")],
     "User:alice", need("read", "group", "orders"), False),
    ("a prefix covers every name starting with it", [allow("User:alice", "write", "topic", "orders.", "prefixed")],
     "User:alice", need("write", "topic", "orders.eu"), True),
    ("a prefix covers the name equal to it", [allow("User:alice", "write", "topic", "orders.", "prefixed")],
     "User:alice", need("write", "topic", "orders."), True),
    ("a prefix does not cover a shorter name", [allow("User:alice", "write", "topic", "orders.", "prefixed")],
     "User:alice", need("write", "topic", "orders"), False),
    ("a literal is not a prefix", [allow("User:alice", "write", "topic", "orders")],
     "User:alice", need("write", "topic", "orders.eu"), False),
    ("the * literal covers every topic", [allow("User:alice", "read", "topic", "*")],
     "User:alice", need("read", "topic", "anything"), True),
    ("User:* is every principal", [allow("User:*", "read", "topic", "public")],
     "User:ANONYMOUS", need("read", "topic", "public"), True),
    ("all grants every operation", [allow("User:alice", "all", "group", "g")],
     "User:alice", need("delete", "group", "g"), True),
    ("read implies describe", [allow("User:alice", "read", "topic", "t")],
     "User:alice", need("describe", "topic", "t"), True),
    ("write implies describe", [allow("User:alice", "write", "topic", "t")],
     "User:alice", need("describe", "topic", "t"), True),
    ("delete implies describe", [allow("User:alice", "delete", "topic", "t")],
     "User:alice", need("describe", "topic", "t"), True),
    ("alter implies describe", [allow("User:alice", "alter", "cluster", "logsvc-cluster")],
     "User:alice", need("describe", "cluster", "logsvc-cluster"), True),
    ("create does not imply describe", [allow("User:alice", "create", "topic", "t")],
     "User:alice", need("describe", "topic", "t"), False),
    ("describe implies nothing else", [allow("User:alice", "describe", "topic", "t")],
     "User:alice", need("read", "topic", "t"), False),
    ("a deny beats an allow on the same resource",
     [allow("User:alice", "read", "topic", "t"), deny("User:alice", "read", "topic", "t")],
     "User:alice", need("read", "topic", "t"), False),
    ("a deny for User:* beats a principal's own allow",
     [allow("User:alice", "all", "topic", "*"), deny("User:*", "write", "topic", "secret.", "prefixed")],
     "User:alice", need("write", "topic", "secret.keys"), False),
    ("a deny of all beats an allow of one operation",
     [allow("User:alice", "read", "topic", "t"), deny("User:alice", "all", "topic", "*")],
     "User:alice", need("read", "topic", "t"), False),
    ("a deny of one operation leaves the others",
     [allow("User:alice", "all", "topic", "t"), deny("User:alice", "write", "topic", "t")],
     "User:alice", need("read", "topic", "t"), True),
    ("a deny of read does not deny the describe it would imply",
     [allow("User:alice", "describe", "topic", "t"), deny("User:alice", "read", "topic", "t")],
     "User:alice", need("describe", "topic", "t"), True),
    ("another principal's deny does not apply",
     [allow("User:alice", "read", "topic", "t"), deny("User:bob", "read", "topic", "t")],
     "User:alice", need("read", "topic", "t"), True),
    ("once any ACL exists, what none allows is refused", [allow("User:bob", "read", "topic", "t")],
     "User:alice", need("read", "topic", "other"), False),
]  # fmt: skip


@pytest.mark.parametrize(("why", "acls", "principal", "need", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_decision(why: str, acls: list[Acl], principal: str, need: Need, expected: bool) -> None:
    assert Authorizer(acls).allowed(principal, need) is expected


def test_a_super_user_may_do_anything_even_what_an_acl_denies() -> None:
    authorizer = Authorizer([deny("User:*", "all", "topic", "*")], super_users={"User:admin"})
    assert authorizer.allowed("User:admin", need("delete", "topic", "t"))
    assert not authorizer.allowed("User:alice", need("delete", "topic", "t"))


@pytest.mark.parametrize("allow_if_no_acl", [True, False])
def test_without_any_acl_allow_if_no_acl_decides(allow_if_no_acl: bool) -> None:
    authorizer = Authorizer([], super_users={"User:admin"}, allow_if_no_acl=allow_if_no_acl)
    assert authorizer.allowed("User:alice", need("write", "topic", "t")) is allow_if_no_acl
    assert authorizer.any_allowed("User:alice", "write", "topic") is allow_if_no_acl
    assert authorizer.allowed("User:admin", need("write", "topic", "t"))


def test_once_an_acl_exists_allow_if_no_acl_no_longer_matters() -> None:
    authorizer = Authorizer([allow("User:bob", "read", "topic", "t")], allow_if_no_acl=True)
    assert not authorizer.allowed("User:alice", need("read", "topic", "t"))


SOME = [
    ("an allow on one topic", [allow("User:alice", "write", "topic", "t")], True),
    ("an allow on a prefix", [allow("User:alice", "write", "topic", "t.", "prefixed")], True),
    ("an allow of all for User:*", [allow("User:*", "all", "topic", "*")], True),
    ("only another operation", [allow("User:alice", "read", "topic", "t")], False),
    ("only another principal", [allow("User:bob", "write", "topic", "t")], False),
    ("only another resource type", [allow("User:alice", "write", "group", "g")], False),
    ("an allow on a topic that is denied",
     [allow("User:alice", "write", "topic", "t"), deny("User:alice", "write", "topic", "t")], False),
    ("an allow on a prefix inside a denied prefix",
     [allow("User:alice", "write", "topic", "t.a", "prefixed"),
      deny("User:*", "all", "topic", "t.", "prefixed")], False),
    ("a deny on every topic",
     [allow("User:alice", "write", "topic", "t"), deny("User:alice", "write", "topic", "*")], False),
    ("a deny on one topic of the many an allow covers",
     [allow("User:alice", "write", "topic", "*"), deny("User:alice", "write", "topic", "t")], True),
]  # fmt: skip


@pytest.mark.parametrize(("why", "acls", "expected"), SOME, ids=[c[0] for c in SOME])
def test_some_topic_may_be_written(why: str, acls: list[Acl], expected: bool) -> None:
    assert Authorizer(acls).any_allowed("User:alice", "write", "topic") is expected


def test_check_names_the_principal_the_operation_and_the_resource() -> None:
    authorizer = Authorizer([allow("User:alice", "read", "topic", "orders")])
    authorizer.check("User:alice", [need("read", "topic", "orders"), need("describe", "topic", "orders")])
    with pytest.raises(PermissionDenied) as e:
        authorizer.check("User:bob", [need("write", "topic", "orders")])
    assert e.value.message == "principal User:bob may not write topic 'orders'"
    assert e.value.details == {
        "principal": "User:bob",
        "operation": "write",
        "resource_type": "topic",
        "resource_name": "orders",
    }


def test_any_of_is_met_by_one_alternative_and_the_refusal_names_them_all() -> None:
    # Given CreateTopic's requirement: create on the topic, or create on the cluster
    create = AnyOf((need("create", "topic", "t"), need("create", "cluster", "logsvc-cluster")))
    authorizer = Authorizer(
        [allow("User:ops", "create", "cluster", "logsvc-cluster"), allow("User:dev", "create", "topic", "t")]
    )
    # Then either ACL suffices
    authorizer.check("User:ops", [create])
    authorizer.check("User:dev", [create])
    # And without either the message says what would have done
    with pytest.raises(PermissionDenied) as e:
        authorizer.check("User:bob", [create])
    assert e.value.message == "principal User:bob may not create topic 't' or create the cluster"
    init = AnyOf((SomeResource("write", "topic"), need("alter", "cluster", "logsvc-cluster")))
    with pytest.raises(PermissionDenied, match="may not write any topic or alter the cluster"):
        authorizer.check("User:bob", [init])


def test_decisions_are_cached_per_authorizer_and_a_new_one_sees_new_acls() -> None:
    old = Authorizer([allow("User:bob", "read", "topic", "x")])
    assert not old.allowed("User:alice", need("read", "topic", "t"))
    assert not old.allowed("User:alice", need("read", "topic", "t"))  # from the cache
    new = Authorizer([*old.acls, allow("User:alice", "read", "topic", "t")])
    assert new.allowed("User:alice", need("read", "topic", "t"))
    assert not old.allowed("User:alice", need("read", "topic", "t"))


def test_many_prefixes_are_probed_only_at_their_lengths() -> None:
    acls = [allow("User:alice", "read", "topic", f"p{i}.", "prefixed") for i in range(1000)]
    authorizer = Authorizer(acls)
    assert authorizer.allowed("User:alice", need("read", "topic", "p999.x"))
    assert not authorizer.allowed("User:alice", need("read", "topic", "q1.x"))
