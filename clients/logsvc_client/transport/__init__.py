"""How the client talks to a broker: one contract, and its gRPC implementation.

- base.py: the contract (:class:`Transport` = :class:`ProduceTransport` +
  :class:`ConsumeTransport` + :class:`GroupTransport` + :class:`AdminTransport`), in the
  client's own values (no request messages): partition counts, produce, producer ids, fetches,
  offset look-ups, committed offsets, join / heartbeat / leave, and the admin's topic, group and
  access calls. The producer, the consumer, the group membership and offsets and the admin are
  written against it alone.
- grpc.py: :class:`~logsvc_client.transport.grpc.GrpcTransport`, the contract over ONE gRPC
  channel per client object (a group member's heartbeats get a connection of their own);
  grpc_admin.py: its admin calls. A Kafka transport (through librdkafka) would sit beside it.
- channel.py: the gRPC boundary under it (channel options, calls, errors translated once).
- retry.py: :class:`Backoff` and :class:`RetryPolicy`, plain policies.

Only the client objects' constructors name :class:`GrpcTransport` (the default); the producer
also takes ``transport=`` (its tests pass an in-memory one).
"""

from .base import (
    MAX_MESSAGE_BYTES,
    AdminTransport,
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
    "AdminTransport",
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
