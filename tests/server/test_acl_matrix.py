"""ACLs over every RPC, as the proto's ACCESS CONTROL section states them: for each method, a
principal without the ACL it needs is refused with PERMISSION_DENIED naming the principal, the
operation and the resource; with it the call goes through (it may still fail for its own reasons).
Also: prefixes, deny beating allow, super users, and a broker with no ACL yet."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from logsvc.server.app import Broker, create_server
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.errors import from_status
from tests.conftest import broker_settings

TOKENS = {"admin": "admin-token-0123456789", "alice": "alice-token-0123456789", "bob": "bob-token-0123456789ab"}
Spec = pb.ResetOffsetsRequest


def acl(
    resource_type: str,
    name: str,
    operation: str,
    principal: str = "User:bob",
    pattern: str = "literal",
    permission: str = "allow",
) -> pb.Acl:
    return pb.Acl(
        principal=principal,
        resource_type=resource_type,
        resource_name=name,
        pattern_type=pattern,
        operation=operation,
        permission=permission,
    )


def batch() -> bytes:
    return codec.encode_batch([[int(time.time() * 1000), b"k", b"v", None]])


#: method -> (request, the ACLs bob needs for it). Requests that would change shared state use
#: names of their own (scratch-*), so the rows do not depend on each other.
MATRIX: dict[str, tuple[Any, list[pb.Acl]]] = {
    "CreateTopic": (pb.CreateTopicRequest(name="made-by-bob", partitions=1), [acl("topic", "made-by-bob", "create")]),
    "AlterTopic": (
        pb.AlterTopicRequest(name="orders", set_config={"retention_ms": "86400000"}),
        [acl("topic", "orders", "alter")],
    ),
    "DeleteTopic": (pb.DeleteTopicRequest(name="scratch-delete"), [acl("topic", "scratch-delete", "delete")]),
    "ListTopics": (pb.ListTopicsRequest(), []),  # filtered, never refused (see its own test)
    "DescribeTopic": (pb.DescribeTopicRequest(name="orders"), [acl("topic", "orders", "describe")]),
    "Produce": (
        pb.ProduceRequest(topic="orders", batches=[pb.PartitionBatch(partition=0, batch=batch())]),
        [acl("topic", "orders", "write")],
    ),
    # each request of the stream is authorized as a Produce call; a refusal is its answer's error
    "ProduceStream": (
        pb.ProduceRequest(topic="orders", batches=[pb.PartitionBatch(partition=0, batch=batch())]),
        [acl("topic", "orders", "write")],
    ),
    "ProduceRecords": (
        pb.ProduceRecordsRequest(topic="orders", records=[pb.Record(value=b"v")]),
        [acl("topic", "orders", "write")],
    ),
    "InitProducer": (pb.InitProducerRequest(), [acl("topic", "anything", "write")]),
    "Fetch": (
        pb.FetchRequest(partitions=[pb.FetchPartition(topic="orders", partition=0, offset=0)]),
        [acl("topic", "orders", "read")],
    ),
    "ListOffsets": (pb.ListOffsetsRequest(topic="orders"), [acl("topic", "orders", "describe")]),
    "Trim": (pb.TrimRequest(topic="orders", partition=0, before_offset=0), [acl("topic", "orders", "delete")]),
    "JoinGroup": (
        pb.JoinGroupRequest(group="g1", topics=["orders"], session_timeout_ms=6000),
        [acl("group", "g1", "read"), acl("topic", "orders", "describe")],
    ),
    "Heartbeat": (pb.HeartbeatRequest(group="g1", member_id="nobody", generation=1), [acl("group", "g1", "read")]),
    "LeaveGroup": (pb.LeaveGroupRequest(group="g1", member_id="nobody"), [acl("group", "g1", "read")]),
    "CommitOffsets": (
        pb.CommitOffsetsRequest(
            group="g2", generation=-1, offsets=[pb.OffsetCommit(topic="orders", partition=0, offset=0)]
        ),
        [acl("group", "g2", "read"), acl("topic", "orders", "read")],
    ),
    "FetchOffsets": (pb.FetchOffsetsRequest(group="g1"), [acl("group", "g1", "describe")]),
    "ListGroups": (pb.ListGroupsRequest(), []),  # filtered, never refused
    "DescribeGroup": (pb.DescribeGroupRequest(group="g1"), [acl("group", "g1", "describe")]),
    "ResetOffsets": (
        pb.ResetOffsetsRequest(group="g3", topic="orders", spec=Spec.EARLIEST),
        [acl("group", "g3", "read"), acl("topic", "orders", "read")],
    ),
    "DeleteGroup": (pb.DeleteGroupRequest(group="scratch-group"), [acl("group", "scratch-group", "delete")]),
    "CreateAcls": (
        pb.CreateAclsRequest(acls=[acl("topic", "x", "read", principal="User:carol")]),
        [acl("cluster", "logsvc-cluster", "alter")],
    ),
    "DescribeAcls": (pb.DescribeAclsRequest(), [acl("cluster", "logsvc-cluster", "describe")]),
    "DeleteAcls": (
        pb.DeleteAclsRequest(filters=[pb.AclFilter(principal="User:carol")]),
        [acl("cluster", "logsvc-cluster", "alter")],
    ),
    "AlterQuotas": (pb.AlterQuotasRequest(remove=["User:carol"]), [acl("cluster", "logsvc-cluster", "alter")]),
    "DescribeQuotas": (pb.DescribeQuotasRequest(), [acl("cluster", "logsvc-cluster", "describe")]),
    "WhoAmI": (pb.WhoAmIRequest(), []),
}


class Caller:
    def __init__(self, channel: grpc.Channel, token: str) -> None:
        self.stub = pb_grpc.BrokerStub(channel)
        self.metadata = (("authorization", f"Bearer {token}"),)

    def __call__(self, method: str, request: Any) -> Any:
        return getattr(self.stub, method)(request, metadata=self.metadata, timeout=10)

    def code(self, method: str, request: Any) -> tuple[grpc.StatusCode, str]:
        try:
            if method == "ProduceStream":
                (answer,) = self.stub.ProduceStream(iter([request]), metadata=self.metadata, timeout=10)
                if answer.HasField("error"):
                    failed = answer.error
                    refused = from_status(failed.status, failed.message, failed.code, failed.details_json)
                    return refused.status, refused.message
            else:
                self(method, request)
        except grpc.RpcError as e:
            return e.code(), e.details() or ""
        return grpc.StatusCode.OK, ""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    tmp = tmp_path_factory.mktemp("acl")
    tokens = tmp / "tokens"
    tokens.write_text("".join(f"{name} {token}\n" for name, token in TOKENS.items()))
    tokens.chmod(0o600)
    b = create_server(broker_settings(tmp / "data", auth_tokens_file=str(tokens), super_users="User:admin"))
    try:
        yield b
    finally:
        b.stop(grace_s=1)


@pytest.fixture(scope="module")
def channel(secured: Broker) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(secured.address) as c:
        admin = Caller(c, TOKENS["admin"])
        for name in ("orders", "orders-eu", "other", "scratch-delete"):
            admin("CreateTopic", pb.CreateTopicRequest(name=name, partitions=1))
        # an ACL for somebody else: from now on, what no ACL allows is refused
        admin("CreateAcls", pb.CreateAclsRequest(acls=[acl("topic", "other", "read", principal="User:alice")]))
        yield c


def test_the_matrix_covers_every_rpc_of_the_broker() -> None:
    assert sorted(MATRIX) == sorted(m.name for m in pb.DESCRIPTOR.services_by_name["Broker"].methods)


@pytest.mark.parametrize("method", [m for m, (_, acls) in MATRIX.items() if acls])
def test_each_rpc_is_refused_without_its_acl_and_allowed_with_it(channel: grpc.Channel, method: str) -> None:
    request, needed = MATRIX[method]
    admin, bob = Caller(channel, TOKENS["admin"]), Caller(channel, TOKENS["bob"])

    # Given bob holds none of the ACLs the method needs: PERMISSION_DENIED naming him
    code, message = bob.code(method, request)
    assert code == grpc.StatusCode.PERMISSION_DENIED, (method, code, message)
    assert "User:bob" in message

    # When all but one are granted, still refused; with all of them, the call gets through
    try:
        for i in range(len(needed)):
            admin("CreateAcls", pb.CreateAclsRequest(acls=needed[:i]))
            if i:
                assert bob.code(method, request)[0] == grpc.StatusCode.PERMISSION_DENIED, (method, needed[:i])
        admin("CreateAcls", pb.CreateAclsRequest(acls=needed))
        code, message = bob.code(method, request)
        assert code != grpc.StatusCode.PERMISSION_DENIED, (method, message)
    finally:
        admin("DeleteAcls", pb.DeleteAclsRequest(filters=[pb.AclFilter(principal="User:bob")]))


def test_whoami_needs_no_acl_and_names_the_caller(channel: grpc.Channel) -> None:
    assert Caller(channel, TOKENS["bob"])("WhoAmI", pb.WhoAmIRequest()).principal == "User:bob"


def test_lists_leave_out_what_the_caller_may_not_describe(channel: grpc.Channel) -> None:
    admin, bob = Caller(channel, TOKENS["admin"]), Caller(channel, TOKENS["bob"])
    admin("CreateAcls", pb.CreateAclsRequest(acls=[acl("topic", "orders", "read", pattern="prefixed")]))
    try:
        names = [t.name for t in bob("ListTopics", pb.ListTopicsRequest()).topics]
        assert names == ["orders", "orders-eu"]  # read implies describe; the prefix covers orders-eu
        everything = [t.name for t in admin("ListTopics", pb.ListTopicsRequest()).topics]
        assert "other" in everything  # the super user sees every topic
    finally:
        admin("DeleteAcls", pb.DeleteAclsRequest(filters=[pb.AclFilter(principal="User:bob")]))


def test_a_prefix_acl_covers_every_topic_it_starts_and_a_deny_beats_it(channel: grpc.Channel) -> None:
    admin, bob = Caller(channel, TOKENS["admin"]), Caller(channel, TOKENS["bob"])
    admin("CreateAcls", pb.CreateAclsRequest(acls=[acl("topic", "orders", "write", pattern="prefixed")]))
    records = [pb.Record(value=b"v")]
    try:
        assert bob.code("ProduceRecords", pb.ProduceRecordsRequest(topic="orders-eu", records=records))[0] == (
            grpc.StatusCode.OK
        )
        admin("CreateAcls", pb.CreateAclsRequest(acls=[acl("topic", "orders-eu", "write", permission="deny")]))
        code, message = bob.code("ProduceRecords", pb.ProduceRecordsRequest(topic="orders-eu", records=records))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "User:bob" in message and "write" in message and "orders-eu" in message
        assert bob.code("ProduceRecords", pb.ProduceRecordsRequest(topic="orders", records=records))[0] == (
            grpc.StatusCode.OK
        )
    finally:
        admin("DeleteAcls", pb.DeleteAclsRequest(filters=[pb.AclFilter(principal="User:bob")]))


def test_a_super_user_needs_no_acl(channel: grpc.Channel) -> None:
    admin = Caller(channel, TOKENS["admin"])
    assert admin.code("DescribeTopic", pb.DescribeTopicRequest(name="other"))[0] == grpc.StatusCode.OK


def test_before_any_acl_exists_everyone_may_do_everything(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"bob {TOKENS['bob']}\n")
    tokens.chmod(0o600)
    b = create_server(broker_settings(tmp_path / "data", auth_tokens_file=str(tokens)))
    try:
        with grpc.insecure_channel(b.address) as c:
            bob = Caller(c, TOKENS["bob"])
            bob("CreateTopic", pb.CreateTopicRequest(name="orders", partitions=1))
            bob("ProduceRecords", pb.ProduceRecordsRequest(topic="orders", records=[pb.Record(value=b"v")]))
            bob("DeleteTopic", pb.DeleteTopicRequest(name="orders"))
    finally:
        b.stop(grace_s=1)


def test_allow_if_no_acl_false_refuses_from_the_start(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"bob {TOKENS['bob']}\n")
    tokens.chmod(0o600)
    b = create_server(broker_settings(tmp_path / "data", auth_tokens_file=str(tokens), allow_if_no_acl=False))
    try:
        with grpc.insecure_channel(b.address) as c:
            code, message = Caller(c, TOKENS["bob"]).code("CreateTopic", pb.CreateTopicRequest(name="o", partitions=1))
            assert code == grpc.StatusCode.PERMISSION_DENIED, message
    finally:
        b.stop(grace_s=1)
