"""What each Broker RPC needs (the proto's ACCESS CONTROL list), and what List answers leave out."""

from __future__ import annotations

from typing import Any

import pytest

from logsvc.acl import Acl, AnyOf, Need, SomeResource
from logsvc.authorizer import Authorizer
from logsvc.errors import InternalError
from logsvc.server.authorization import REQUIREMENTS, needs, visible
from logsvc.settings import Settings
from logsvc.storage.memory import MemoryStore
from logsvc.topic_config import TopicConfig
from logsvc_wire._proto import logsvc_pb2 as pb

CLUSTER = "logsvc-cluster"


def topic(op: str, name: str) -> Need:
    return Need(op, "topic", name)


def group(op: str, name: str) -> Need:
    return Need(op, "group", name)


def cluster(op: str) -> Need:
    return Need(op, "cluster", CLUSTER)


def create(name: str) -> AnyOf:
    return AnyOf((topic("create", name), cluster("create")))


def test_every_broker_method_has_a_rule() -> None:
    methods = {m.name for m in pb.DESCRIPTOR.services_by_name["Broker"].methods}
    assert methods == set(REQUIREMENTS), "a Broker RPC without an authorization rule (or a stale rule)"


def test_a_method_without_a_rule_is_refused() -> None:
    with pytest.raises(InternalError, match="no authorization rule"):
        needs("Teleport", None, MemoryStore(), Settings())


TP = pb.TopicPartitions
CASES: list[tuple[str, Any, list[Any]]] = [
    ("CreateTopic", pb.CreateTopicRequest(name="t"), [create("t")]),
    ("DeleteTopic", pb.DeleteTopicRequest(name="t"), [topic("delete", "t")]),
    ("ListTopics", pb.ListTopicsRequest(), []),
    ("DescribeTopic", pb.DescribeTopicRequest(name="t"), [topic("describe", "t")]),
    ("AlterTopic", pb.AlterTopicRequest(name="t"), [topic("alter", "t")]),
    ("Produce", pb.ProduceRequest(topic="t"), [topic("write", "t")]),
    ("ProduceStream", pb.ProduceRequest(topic="t"), [topic("write", "t")]),  # each request of it
    ("ProduceRecords", pb.ProduceRecordsRequest(topic="t"), [topic("write", "t")]),
    ("InitProducer", pb.InitProducerRequest(), [AnyOf((SomeResource("write", "topic"), cluster("alter")))]),
    (
        "Fetch",
        pb.FetchRequest(
            partitions=[
                pb.FetchPartition(topic="a"),
                pb.FetchPartition(topic="b", partition=1),
                pb.FetchPartition(topic="a", partition=2),
            ]
        ),
        [topic("read", "a"), topic("read", "b")],
    ),
    ("ListOffsets", pb.ListOffsetsRequest(topic="t"), [topic("describe", "t")]),
    ("Trim", pb.TrimRequest(topic="t"), [topic("delete", "t")]),
    (
        "JoinGroup",
        pb.JoinGroupRequest(group="g", topics=["a", "b"]),
        [group("read", "g"), topic("describe", "a"), topic("describe", "b")],
    ),
    ("Heartbeat", pb.HeartbeatRequest(group="g"), [group("read", "g")]),
    ("LeaveGroup", pb.LeaveGroupRequest(group="g"), [group("read", "g")]),
    (
        "CommitOffsets",
        pb.CommitOffsetsRequest(group="g", offsets=[pb.OffsetCommit(topic="a")]),
        [group("read", "g"), topic("read", "a")],
    ),
    ("FetchOffsets", pb.FetchOffsetsRequest(group="g", partitions=[TP(topic="a")]), [group("describe", "g")]),
    ("ListGroups", pb.ListGroupsRequest(), []),
    ("DescribeGroup", pb.DescribeGroupRequest(group="g"), [group("describe", "g")]),
    ("ResetOffsets", pb.ResetOffsetsRequest(group="g", topic="a"), [group("read", "g"), topic("read", "a")]),
    ("DeleteGroup", pb.DeleteGroupRequest(group="g"), [group("delete", "g")]),
    ("CreateAcls", pb.CreateAclsRequest(), [cluster("alter")]),
    ("DescribeAcls", pb.DescribeAclsRequest(), [cluster("describe")]),
    ("DeleteAcls", pb.DeleteAclsRequest(), [cluster("alter")]),
    ("AlterQuotas", pb.AlterQuotasRequest(), [cluster("alter")]),
    ("DescribeQuotas", pb.DescribeQuotasRequest(), [cluster("describe")]),
    ("WhoAmI", pb.WhoAmIRequest(), []),
]


@pytest.mark.parametrize(("method", "request_", "expected"), CASES, ids=[c[0] for c in CASES])
def test_what_each_call_needs(method: str, request_: Any, expected: list[Any]) -> None:
    assert needs(method, request_, MemoryStore(), Settings()) == expected


def test_the_table_covers_every_case() -> None:
    assert {c[0] for c in CASES} == set(REQUIREMENTS)


@pytest.mark.parametrize("method", ["Produce", "ProduceStream", "ProduceRecords"])
def test_producing_to_a_missing_topic_needs_create_only_when_the_broker_would_create_it(method: str) -> None:
    store = MemoryStore()
    store.create_topic("there", 1, TopicConfig())
    request = pb.ProduceRecordsRequest if method == "ProduceRecords" else pb.ProduceRequest
    auto = Settings(auto_create_topics=True)
    assert needs(method, request(topic="missing"), store, auto) == [topic("write", "missing"), create("missing")]
    assert needs(method, request(topic="there"), store, auto) == [topic("write", "there")]
    assert needs(method, request(topic="missing"), store, Settings()) == [topic("write", "missing")]
    assert needs(method, request(topic="not a name"), store, auto) == [topic("write", "not a name")]


def test_list_answers_leave_out_what_the_principal_may_not_describe() -> None:
    authorizer = Authorizer(
        [
            Acl("User:alice", "topic", "pub.", "prefixed", "read", "allow"),
            Acl("User:alice", "group", "g1", "literal", "describe", "allow"),
        ]
    )
    topics = pb.ListTopicsResponse(topics=[pb.TopicSummary(name=n) for n in ("pub.a", "priv", "pub.b")])
    shown = visible("ListTopics", topics, "User:alice", authorizer)
    assert [t.name for t in shown.topics] == ["pub.a", "pub.b"]
    groups = pb.ListGroupsResponse(groups=[pb.GroupSummary(group=g) for g in ("g1", "g2")])
    assert [g.group for g in visible("ListGroups", groups, "User:alice", authorizer).groups] == ["g1"]
    # Everything visible, or another method: the response as it is
    assert visible("ListTopics", topics, "User:root", Authorizer(super_users={"User:root"})) is topics
    other = pb.DescribeTopicRequest(name="priv")
    assert visible("DescribeTopic", other, "User:alice", authorizer) is other


def test_an_auto_creating_describe_needs_what_the_produce_that_creates_the_topic_needs() -> None:
    store = MemoryStore()
    store.create_topic("there", 1, TopicConfig())
    auto = Settings(auto_create_topics=True)
    creating = pb.DescribeTopicRequest(name="missing", allow_auto_create=True)
    # Only when it would create the topic: write on it and create (topic or cluster)
    assert needs("DescribeTopic", creating, store, auto) == [topic("write", "missing"), create("missing")]
    # An existing topic, auto-creation off, or no allow_auto_create: describe, as always
    assert needs("DescribeTopic", pb.DescribeTopicRequest(name="there", allow_auto_create=True), store, auto) == [
        topic("describe", "there")
    ]
    assert needs("DescribeTopic", creating, store, Settings()) == [topic("describe", "missing")]
    assert needs("DescribeTopic", pb.DescribeTopicRequest(name="missing"), store, auto) == [
        topic("describe", "missing")
    ]
