"""The idempotent producer's side of the sequence rules (proto/logsvc/v1/logsvc.proto, "IDEMPOTENT
PRODUCE"): the producer's identity (id, epoch) and each partition's next sequence number.

A batch gets its producer id, epoch and base sequence the first time the sender drains it, and
keeps them on every retry, so the broker recognises a retry of a batch it already stored and
answers it with the original offsets. At most one request per partition is in flight (the
accumulator mutes a partition while its batch is out), so a partition's batches reach the broker
in sequence order, retries included.

When a partition's batch fails for good (retries exhausted, or refused), the producer cannot know
whether the broker stored it, so that partition is *reset*: the producer asks the broker for the
next epoch (:meth:`Sequences.identity_wanted`) and the partition starts again at sequence 0 under
it. A partition moves to the newest identity whenever it starts afresh (nothing of it in flight or
waiting for a retry), so after a reset every partition follows within one batch.

Every method but :meth:`identity_wanted` runs with the accumulator's lock held.
"""

from __future__ import annotations

from collections.abc import Iterable

from .batches import ProducerBatch

SEQUENCE_MODULUS = 1 << 31

Identity = tuple[int, int]  # (producer id, epoch)


class _PartitionSequence:
    __slots__ = ("identity", "next")

    def __init__(self) -> None:
        self.identity: Identity | None = None  # None: start at 0 under the newest identity
        self.next = 0


class Sequences:
    """The producer's identity and its partitions' sequence numbers; see the module docstring."""

    def __init__(self) -> None:
        self.identity: Identity | None = None  # from InitProducer; None until the first answer
        self.bump_needed = False  # a partition was reset: get the next epoch before assigning
        self._parts: dict[tuple[str, int], _PartitionSequence] = {}

    def identity_wanted(self) -> Identity | None:
        """What to ask InitProducer for before assigning: ``(0, 0)`` for a first id, the current
        identity for its next epoch, or None when the current one will do."""
        if self.identity is None:
            return (0, 0)
        return self.identity if self.bump_needed else None

    def set_identity(self, identity: Identity) -> None:
        """The broker's answer to :meth:`identity_wanted` (newer than every identity before it)."""
        self.identity = identity
        self.bump_needed = False

    def assign(self, batches: Iterable[ProducerBatch]) -> None:
        """Give every batch without a sequence its producer id, epoch and base sequence, in order.

        A partition whose first batch here has none starts afresh, so it moves to the current
        identity (at sequence 0) unless it is already under it; a partition with retried
        batches ahead goes on under their identity.
        """
        identity = self.identity
        assert identity is not None
        parts = self._parts
        continuing: set[int] = set()
        for b in batches:
            partition = b.partition
            if b.base_sequence >= 0:
                continuing.add(partition)
                continue
            part = parts.get((b.topic, partition))
            if part is None:
                part = parts[(b.topic, partition)] = _PartitionSequence()
            if partition not in continuing:
                continuing.add(partition)
                if part.identity != identity:
                    part.identity = identity
                    part.next = 0
            assert part.identity is not None
            b.producer_id, b.producer_epoch = part.identity
            b.base_sequence = part.next
            part.next = (part.next + b.count) % SEQUENCE_MODULUS

    def reset(self, topic: str, partition: int) -> None:
        """The partition's batches failed for good: it starts at 0 under the next epoch."""
        part = self._parts.get((topic, partition))
        if part is not None:
            part.identity = None
        self.bump_needed = True


def request_groups(batches: list[ProducerBatch]) -> list[list[ProducerBatch]]:
    """``batches`` (of one topic) split into runs that share a producer identity, one request each
    (a request carries one producer id and epoch). Order inside each partition is kept."""
    first = batches[0]
    pid, epoch = first.producer_id, first.producer_epoch
    if all(b.producer_id == pid and b.producer_epoch == epoch for b in batches):
        return [batches]
    groups: dict[Identity, list[ProducerBatch]] = {}
    for b in batches:
        groups.setdefault((b.producer_id, b.producer_epoch), []).append(b)
    return list(groups.values())
