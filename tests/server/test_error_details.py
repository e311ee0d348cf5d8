"""Error details cross the wire: a real call to a real broker fails with the class the broker raised
and the details it raised it with (the valid offset range, the partition count, the generations,
the principal and resource), carried in the ``logsvc-error-details`` trailing metadata."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from logsvc.server.app import Broker, create_server
from logsvc_client import Acl, Admin, ProducerRecord, Security
from logsvc_client.errors import InvalidPartition, OffsetOutOfRange, PermissionDenied, StaleGeneration
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.errors import (
    DETAILS_METADATA_KEY,
    METADATA_KEY,
    LogsvcError,
    from_rpc_error,
    trailing_metadata,
)
from tests.conftest import broker_settings


@pytest.fixture
def admin(broker: Broker) -> Iterator[Admin]:
    with Admin(broker.address) as a:
        a.create_topic("orders", partitions=2)
        a.produce_records("orders", [ProducerRecord(b"v", partition=0) for _ in range(3)])
        yield a


def test_offset_out_of_range_comes_back_with_the_valid_range(admin: Admin) -> None:
    # Given a partition holding offsets 0 to 2
    # When a trim asks for an offset past its end
    with pytest.raises(OffsetOutOfRange) as refused:
        admin.trim("orders", 0, 99)
    # Then the client's exception carries the range the broker named
    assert refused.value.code == "offset_out_of_range"
    assert refused.value.details == {
        "topic": "orders",
        "partition": 0,
        "offset": 99,
        "log_start_offset": 0,
        "next_offset": 3,
    }


def test_invalid_partition_comes_back_with_the_partition_count(admin: Admin) -> None:
    # Given a topic of two partitions; When a call names partition 5
    with pytest.raises(InvalidPartition) as refused:
        admin.trim("orders", 5, 0)
    # Then the exception says which partition and how many the topic has
    assert refused.value.code == "invalid_partition"
    assert refused.value.details == {"topic": "orders", "partition": 5, "partitions": 2}


def test_stale_generation_comes_back_with_the_generations(broker: Broker, admin: Admin) -> None:
    # Given a member of group g at generation 1
    with grpc.insecure_channel(broker.address) as channel:
        stub = pb_grpc.BrokerStub(channel)
        joined = stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["orders"]))
        # When its heartbeat carries a generation the group never had
        with pytest.raises(grpc.RpcError) as failed:
            stub.Heartbeat(pb.HeartbeatRequest(group="g", member_id=joined.member_id, generation=joined.generation + 5))
    # Then it comes back as StaleGeneration naming the member's and the group's generation
    error = from_rpc_error(failed.value)
    assert type(error) is StaleGeneration
    assert error.details == {
        "group": "g",
        "member_id": joined.member_id,
        "generation": joined.generation + 5,
        "member_generation": joined.generation,
        "group_generation": joined.generation,
    }


def test_permission_denied_comes_back_naming_principal_operation_and_resource(tmp_path: Path) -> None:
    # Given a broker with tokens and ACLs, where bob has no ACL
    tokens = tmp_path / "tokens"
    tokens.write_text("admin admin-token-0123456789\nbob bob-token-0123456789ab\n")
    tokens.chmod(0o600)
    broker = create_server(broker_settings(tmp_path / "data", auth_tokens_file=str(tokens), super_users="User:admin"))
    try:
        with Admin(broker.address, security=Security(token="admin-token-0123456789")) as admin:
            admin.create_acls([Acl("User:alice", "topic", "other", "literal", "read")])
        # When bob creates a topic
        with (
            Admin(broker.address, security=Security(token="bob-token-0123456789ab")) as bob,
            pytest.raises(PermissionDenied) as refused,
        ):
            bob.create_topic("bobs", partitions=1)
    finally:
        broker.stop(grace_s=1)
    # Then the exception names who may not do what to which resource
    assert refused.value.details == {
        "principal": "User:bob",
        "operation": "create",
        "resource_type": "topic",
        "resource_name": "bobs",
    }


def test_only_json_safe_details_are_sent_and_they_come_back_as_they_went() -> None:
    # Given an error whose details hold JSON values and two that are not JSON (bytes, NaN)
    error = OffsetOutOfRange("out", offset=7, topic="t", bounds=[0, 3], raw=b"\x00", ratio=float("nan"))
    # When it becomes trailing metadata and is read back by the client
    metadata = dict(trailing_metadata(error))
    assert metadata[METADATA_KEY] == "offset_out_of_range"
    assert json.loads(metadata[DETAILS_METADATA_KEY]) == {"offset": 7, "topic": "t", "bounds": [0, 3]}
    back = from_rpc_error(_Failed(grpc.StatusCode.OUT_OF_RANGE, "out", tuple(metadata.items())))
    # Then the class and the JSON details are restored
    assert type(back) is OffsetOutOfRange
    assert back.details == {"offset": 7, "topic": "t", "bounds": [0, 3]}


def test_an_error_without_details_sends_only_its_code_and_bad_details_are_ignored() -> None:
    assert trailing_metadata(LogsvcError("plain")) == ((METADATA_KEY, "error"),)
    metadata = ((METADATA_KEY, "invalid_partition"), (DETAILS_METADATA_KEY, "not json"))
    back = from_rpc_error(_Failed(grpc.StatusCode.INVALID_ARGUMENT, "bad", metadata))
    assert type(back) is InvalidPartition
    assert back.details == {}


class _Failed(grpc.RpcError):
    """A failed call as the client sees one, without a broker."""

    def __init__(self, status: grpc.StatusCode, message: str, metadata: tuple[tuple[str, str], ...]) -> None:
        self._status, self._message, self._metadata = status, message, metadata

    def code(self) -> grpc.StatusCode:
        return self._status

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata
