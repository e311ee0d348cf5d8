"""Consumer groups: membership of one consumer, committed offsets, and what the broker describes.

- membership.py: :class:`Membership`, one consumer's join / sync / heartbeat / leave cycle on a
  background thread; the consumer's :mod:`~logsvc_client.consumer.subscription` applies what it
  is assigned.
- offsets.py: committing and reading a group's offsets (the consumer's commits, the admin's
  reads and resets).
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
