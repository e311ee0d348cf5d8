"""Consumer groups: membership of one consumer, committed offsets, and what the broker describes.

- membership.py: :class:`Membership`, one consumer's join / heartbeat / leave cycle on a
  background thread, through a :class:`~logsvc_client.transport.base.GroupTransport` of its own;
  the consumer's :mod:`~logsvc_client.consumer.subscription` applies what it is assigned.
- offsets.py: the checks before committing a group's offsets (the consumer's and the admin's
  commits); the calls are the transport's ``commit_offsets`` / ``fetch_offsets``.
- descriptions.py: the value types the broker answers with (:class:`GroupDescription`,
  :class:`CommittedOffset`, :class:`PartitionLag`, ...), re-exported by ``logsvc_client``.
"""

from .descriptions import (
    CommittedOffset,
    GroupDescription,
    GroupMetadata,
    GroupSummary,
    MemberInfo,
    PartitionLag,
    PartitionReset,
    ResetResult,
)
from .membership import Membership

__all__ = [
    "CommittedOffset",
    "GroupDescription",
    "GroupMetadata",
    "GroupSummary",
    "MemberInfo",
    "Membership",
    "PartitionLag",
    "PartitionReset",
    "ResetResult",
]
