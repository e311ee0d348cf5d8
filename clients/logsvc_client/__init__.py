"""logsvc client library: produce to, consume from and administer a logsvc broker over gRPC.

    from logsvc_client import Admin, Consumer, Producer, TopicPartition

    with Admin("127.0.0.1:50051") as admin:
        admin.create_topic("orders", partitions=4)
    with Producer("127.0.0.1:50051") as producer:
        future = producer.send("orders", b'{"id": 1}', key="customer-7")
        print(future.result())                      # RecordPosition(partition=.., offset=..)
    with Consumer("127.0.0.1:50051") as consumer:
        consumer.assign_topic("orders")             # all partitions, from the earliest offset
        for record in consumer.poll(timeout_ms=1000):
            print(record.partition, record.offset, record.key, record.value)
    with Consumer("127.0.0.1:50051", group_id="billing") as consumer:
        consumer.subscribe(["orders"])              # partitions come from the group, auto-committed
        records = consumer.poll(timeout_ms=1000)

Errors are the classes of :mod:`logsvc_client.errors` (one root, :class:`LogsvcError`), the
same on both sides of the wire; no ``grpc.RpcError`` escapes the library.

The package, one sub-package per thing the client owns (each ``__init__`` lists its modules):

- :mod:`~logsvc_client.producer`: Producer, accumulator (+ bulk), sender, batches, futures,
  idempotence.
- :mod:`~logsvc_client.consumer`: Consumer, fetcher, in-flight fetch, record buffer, lanes,
  offset resets, the group subscription.
- :mod:`~logsvc_client.group`: a member's membership, committed offsets, group descriptions.
- :mod:`~logsvc_client.transport`: the one contract all of the above and the admin talk to a
  broker through (``base.py``) and its gRPC implementation; ``channel.py`` is the gRPC boundary.
- top level: ``admin.py`` with its value types ``topics.py`` and ``access.py`` (a module each:
  the admin is one class over the transport, a package would hold one module), ``records.py``
  (the records users hold), ``security.py`` (TLS and tokens, used by every client object), and
  the wire modules (``batch.py``, ``errors.py``, ``partitioner.py``, ``_proto``, ...).
"""

from . import errors
from .acls import Acl, AclFilter, Quota, Quotas
from .admin import Admin
from .consumer.consumer import Consumer
from .errors import LogsvcError
from .group.descriptions import (
    CommittedOffset,
    GroupDescription,
    GroupMetadata,
    GroupSummary,
    MemberInfo,
    PartitionLag,
    PartitionReset,
    ResetResult,
)
from .producer.futures import RecordFuture, RecordFutures
from .producer.producer import Producer
from .records import ProducerRecord, Record, RecordPosition, TopicPartition
from .security import Security
from .topics import OffsetAndTimestamp, PartitionInfo, TopicDescription, TopicSummary

__all__ = [
    "Acl",
    "AclFilter",
    "Admin",
    "CommittedOffset",
    "Consumer",
    "GroupDescription",
    "GroupMetadata",
    "GroupSummary",
    "LogsvcError",
    "MemberInfo",
    "OffsetAndTimestamp",
    "PartitionInfo",
    "PartitionLag",
    "PartitionReset",
    "Producer",
    "ProducerRecord",
    "Quota",
    "Quotas",
    "Record",
    "RecordFuture",
    "RecordFutures",
    "RecordPosition",
    "ResetResult",
    "Security",
    "TopicDescription",
    "TopicPartition",
    "TopicSummary",
    "errors",
]
