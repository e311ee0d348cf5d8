"""What each Broker RPC needs, exactly as the proto's ACCESS CONTROL section lists it.

:func:`needs` turns a call (method short name and request) into the requirements the caller's
principal must meet (:class:`~logsvc.acl.Need`, :class:`~logsvc.acl.SomeResource`,
:class:`~logsvc.acl.AnyOf`), for :meth:`logsvc.authorizer.Authorizer.check`; :func:`visible`
trims ListTopics / ListGroups answers to what the principal may describe. Every method of the
service has an entry in :data:`REQUIREMENTS` (a test holds it to the service descriptor), and
:func:`needs` refuses a method it does not know, so a new RPC cannot skip authorization.

Requirements are taken from the request as sent, before the handler validates it: a name that
is not a valid topic or group simply matches no ACL (Kafka, too, authorizes before it validates).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from logsvc.acl import (
    ALTER,
    CLUSTER,
    CLUSTER_NAME,
    CREATE,
    DELETE,
    DESCRIBE,
    GROUP,
    READ,
    TOPIC,
    WRITE,
    AnyOf,
    Need,
    Requirement,
    SomeResource,
)
from logsvc.authorizer import Authorizer
from logsvc.settings import Settings
from logsvc.storage.base import Store
from logsvc.topic_config import TOPIC_NAME
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire.errors import InternalError, TopicNotFound

#: (request, store, settings) -> what the call needs
Rule = Callable[[Any, Store, Settings], list[Requirement]]


def _cluster(operation: str) -> Need:
    return Need(operation, CLUSTER, CLUSTER_NAME)


def _topic(operation: str, name: str) -> Need:
    return Need(operation, TOPIC, name)


def _group(operation: str, name: str) -> Need:
    return Need(operation, GROUP, name)


def _each_topic(operation: str, names: Iterable[str]) -> list[Requirement]:
    return [_topic(operation, name) for name in dict.fromkeys(names)]  # once each, in request order


def _create_topic(name: str) -> AnyOf:
    """Creating a topic: create on the topic, or on the cluster."""
    return AnyOf((_topic(CREATE, name), _cluster(CREATE)))


def _would_create(name: str, store: Store, settings: Settings) -> bool:
    """Whether a produce to (or an auto-creating describe of) ``name`` would create the topic."""
    if not settings.auto_create_topics or not TOPIC_NAME.fullmatch(name):  # else the handler refuses it
        return False
    try:
        store.topic(name)
    except TopicNotFound:
        return True
    return False


def _produce(request: Any, store: Store, settings: Settings) -> list[Requirement]:
    out: list[Requirement] = [_topic(WRITE, request.topic)]
    if _would_create(request.topic, store, settings):
        out.append(_create_topic(request.topic))  # the broker would create it
    return out


def _describe_topic(request: Any, store: Store, settings: Settings) -> list[Requirement]:
    if request.allow_auto_create and _would_create(request.name, store, settings):
        return [_topic(WRITE, request.name), _create_topic(request.name)]  # what the produce would need
    return [_topic(DESCRIBE, request.name)]


def _fixed(*requirements: Requirement) -> Rule:
    return lambda request, store, settings: list(requirements)


def _on_topic(operation: str) -> Rule:
    return lambda request, store, settings: [_topic(operation, request.name)]


REQUIREMENTS: dict[str, Rule] = {
    # topics
    "CreateTopic": lambda r, store, settings: [_create_topic(r.name)],
    "DeleteTopic": _on_topic(DELETE),
    "ListTopics": _fixed(),  # answers are trimmed by visible()
    "DescribeTopic": _describe_topic,
    "AlterTopic": _on_topic(ALTER),
    # records
    "Produce": _produce,
    "ProduceStream": _produce,  # each request of the stream (the door checks them one by one)
    "ProduceRecords": _produce,
    "InitProducer": _fixed(AnyOf((SomeResource(WRITE, TOPIC), _cluster(ALTER)))),
    "Fetch": lambda r, store, settings: _each_topic(READ, (fp.topic for fp in r.partitions)),
    "ListOffsets": lambda r, store, settings: [_topic(DESCRIBE, r.topic)],
    "Trim": lambda r, store, settings: [_topic(DELETE, r.topic)],
    # consumer groups
    "JoinGroup": lambda r, store, settings: [_group(READ, r.group), *_each_topic(DESCRIBE, r.topics)],
    "Heartbeat": lambda r, store, settings: [_group(READ, r.group)],
    "LeaveGroup": lambda r, store, settings: [_group(READ, r.group)],
    "CommitOffsets": lambda r, store, settings: [
        _group(READ, r.group),
        *_each_topic(READ, (o.topic for o in r.offsets)),
    ],
    "FetchOffsets": lambda r, store, settings: [_group(DESCRIBE, r.group)],
    "ListGroups": _fixed(),  # answers are trimmed by visible()
    "DescribeGroup": lambda r, store, settings: [_group(DESCRIBE, r.group)],
    "ResetOffsets": lambda r, store, settings: [_group(READ, r.group), _topic(READ, r.topic)],
    "DeleteGroup": lambda r, store, settings: [_group(DELETE, r.group)],
    # access control
    "CreateAcls": _fixed(_cluster(ALTER)),
    "DescribeAcls": _fixed(_cluster(DESCRIBE)),
    "DeleteAcls": _fixed(_cluster(ALTER)),
    "AlterQuotas": _fixed(_cluster(ALTER)),
    "DescribeQuotas": _fixed(_cluster(DESCRIBE)),
    "WhoAmI": _fixed(),
}


def needs(method: str, request: Any, store: Store, settings: Settings) -> list[Requirement]:
    """What a call to Broker ``method`` (short name: ``"Produce"``) with ``request`` needs.
    InternalError for a method without an entry (refused rather than let through)."""
    rule = REQUIREMENTS.get(method)
    if rule is None:
        raise InternalError(f"no authorization rule for Broker method {method!r}: refused")
    return rule(request, store, settings)


def visible(method: str, response: Any, principal: str, authorizer: Authorizer) -> Any:
    """``response`` with what ``principal`` may not describe left out (ListTopics: topics,
    ListGroups: groups); any other method's response as it is."""
    if method == "ListTopics":
        topics = [t for t in response.topics if authorizer.allowed(principal, _topic(DESCRIBE, t.name))]
        if len(topics) != len(response.topics):
            return pb.ListTopicsResponse(topics=topics)
    elif method == "ListGroups":
        groups = [g for g in response.groups if authorizer.allowed(principal, _group(DESCRIBE, g.group))]
        if len(groups) != len(response.groups):
            return pb.ListGroupsResponse(groups=groups)
    return response
