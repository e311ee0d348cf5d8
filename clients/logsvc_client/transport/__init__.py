"""How the client talks to a broker: one contract, and its gRPC implementation.

- base.py: the contract (:class:`Transport` = :class:`ProduceTransport` +
  :class:`ConsumeTransport` + :class:`GroupTransport`), in the client's own values (no request
  messages): partition counts, produce, producer ids, fetches, offset look-ups, committed
  offsets, join / heartbeat / leave. The producer, the consumer and the group membership and
  offsets are written against it alone.
- grpc.py: :class:`~logsvc_client.transport.grpc.GrpcTransport`, the contract over ONE gRPC
  channel per client object; a Kafka transport (through librdkafka) would sit beside it.
- channel.py: the gRPC boundary under it (channel options, calls, errors translated once).
- retry.py: :class:`Backoff` and :class:`RetryPolicy`, plain policies.

Not in the contract yet: the admin's topic, group, ACL and quota calls (made on its
transport's channel through ``GrpcTransport.stub``); its offsets and group offsets are in.
"""

from .base import (
    MAX_MESSAGE_BYTES,
    ConsumeTransport,
    FetchedPartition,
    GroupAnswer,
    GroupTransport,
    OffsetSpec,
    PendingFetch,
    ProduceCallback,
    ProduceTransport,
    Transport,
)
from .retry import Backoff, RetryPolicy

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Backoff",
    "ConsumeTransport",
    "FetchedPartition",
    "GroupAnswer",
    "GroupTransport",
    "OffsetSpec",
    "PendingFetch",
    "ProduceCallback",
    "ProduceTransport",
    "RetryPolicy",
    "Transport",
]
