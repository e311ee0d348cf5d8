"""The audit log names who changed what from where, and every refusal; dry runs and reads are not
changes."""

from __future__ import annotations

import logging

import pytest

from logsvc.server import audit
from logsvc_wire._proto import logsvc_pb2 as pb

PEER = "ipv4:10.0.0.5:53124"


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "logsvc.audit"]


def test_a_change_is_logged_with_principal_address_method_and_what_it_touched(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="logsvc.audit")
    audit.changed("User:alice", PEER, "DeleteTopic", pb.DeleteTopicRequest(name="orders"))
    audit.changed("User:alice", PEER, "Trim", pb.TrimRequest(topic="orders", partition=2, before_offset=10))
    audit.changed(
        "User:ops",
        PEER,
        "ResetOffsets",
        pb.ResetOffsetsRequest(group="billing", topic="orders", spec=pb.ResetOffsetsRequest.EARLIEST, execute=True),
    )
    assert lines(caplog) == [
        "audit: User:alice from 10.0.0.5: DeleteTopic topic=orders",
        "audit: User:alice from 10.0.0.5: Trim topic=orders partition=2 before_offset=10",
        "audit: User:ops from 10.0.0.5: ResetOffsets group=billing topic=orders partitions=all to=earliest:0",
    ]


def test_acl_and_quota_changes_are_spelled_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="logsvc.audit")
    acl = pb.Acl(principal="User:bob", resource_type="topic", resource_name="orders.", pattern_type="prefixed",
                 operation="read", permission="allow")  # fmt: skip
    audit.changed("User:admin", PEER, "CreateAcls", pb.CreateAclsRequest(acls=[acl]))
    audit.changed("User:admin", PEER, "DeleteAcls", pb.DeleteAclsRequest(filters=[pb.AclFilter(principal="User:bob")]))
    audit.changed(
        "User:admin",
        PEER,
        "AlterQuotas",
        pb.AlterQuotasRequest(set=[pb.Quota(principal="User:bob", produce_bytes_per_second=1000)], remove=["User:x"]),
    )
    assert lines(caplog) == [
        "audit: User:admin from 10.0.0.5: CreateAcls allow User:bob read topic:orders.(prefixed)",
        "audit: User:admin from 10.0.0.5: DeleteAcls {principal=User:bob}",
        "audit: User:admin from 10.0.0.5: AlterQuotas set User:bob produce_bytes_per_second=1000; remove User:x",
    ]


def test_reads_produce_and_dry_runs_are_not_changes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="logsvc.audit")
    audit.changed("User:alice", PEER, "Fetch", pb.FetchRequest())
    audit.changed("User:alice", PEER, "Produce", pb.ProduceRequest(topic="orders"))
    audit.changed("User:alice", PEER, "ResetOffsets", pb.ResetOffsetsRequest(group="g", topic="t", execute=False))
    assert lines(caplog) == []


def test_a_refusal_is_a_warning_naming_who_and_why(caplog: pytest.LogCaptureFixture) -> None:
    audit.denied("User:bob", "ipv6:[::1]:5000", "DeleteTopic", "principal User:bob may not delete topic 'orders'")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "audit: DENIED User:bob from ::1: DeleteTopic: principal User:bob may not delete topic 'orders'")
    ]
