"""One topic's batches in the producer, and which of them are ready to send.

:class:`TopicBatches` holds, per partition, the open batch records are appended to, the sealed
batches waiting to be sent, and whether a batch is in flight (*muted*: at most one request per
partition is in flight, so records of a partition are stored in send order even when a request is
retried). It also keeps the topic's sticky partition, where records without key or partition go.

:func:`take_ready` is the sender's side: it picks the ready batches of every topic — full, lingered
``linger_s``, covered by a flush, or forced out (a closing producer, a full buffer) — and groups
them per topic into requests. The :class:`~logsvc_client.producer.accumulator.Accumulator` owns the lock
and calls both with it held.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Container

from logsvc_wire.partitioner import StickyPartitioner

from ..errors import InvalidPartition
from .batches import ProducerBatch


class TopicBatches:
    """One topic's batches: the open one per partition, sealed ones waiting, in-flight mutes."""

    __slots__ = ("_partitioner", "muted", "name", "open", "partitions", "sealed", "sticky")

    def __init__(
        self, name: str, partitions: int, partitioner: StickyPartitioner, previous: TopicBatches | None = None
    ) -> None:
        self.name = name
        self.partitions = partitions
        self.open: list[ProducerBatch | None] = [None] * partitions
        self.sealed: list[deque[ProducerBatch]] = [deque() for _ in range(partitions)]
        self.muted: list[bool] = [False] * partitions
        if previous is not None and previous.partitions < partitions:
            # The topic grew: take over its waiting batches and share its in-flight mutes, so a
            # partition still has one request in flight and its batches go out in order.
            for p in range(previous.partitions):
                self.open[p], self.sealed[p] = previous.open[p], previous.sealed[p]
                previous.open[p], previous.sealed[p] = None, deque()
            previous.muted.extend([False] * (partitions - previous.partitions))
            self.muted = previous.muted
        self._partitioner = partitioner
        self.sticky = partitioner.partition(name, partitions)  # where records without key or partition go now

    def check_partition(self, partition: object) -> None:
        """InvalidPartition unless ``partition`` is one of the topic's."""
        if partition.__class__ is not int or not 0 <= partition < self.partitions:
            raise InvalidPartition(
                f"partition {partition!r} does not exist in {self.name} (partitions 0 to {self.partitions - 1})"
            )

    def rotate_sticky(self) -> None:
        """The sticky partition's batch is full or sent: records without a key go elsewhere now."""
        self._partitioner.next_batch(self.name, self.partitions)
        self.sticky = self._partitioner.partition(self.name, self.partitions)

    def idle(self) -> bool:
        return not any(self.muted) and all(b is None for b in self.open) and not any(self.sealed)


def take_ready(
    topics: list[TopicBatches],
    now: float,
    slots: int,
    max_request_bytes: int,
    *,
    force: bool,
    flush_seq: int,
    linger_s: float,
    partial_held: Container[str] = (),
) -> tuple[list[tuple[TopicBatches, list[ProducerBatch]]], float]:
    """Take the ready batches, grouped per topic into at most ``slots`` requests of about
    ``max_request_bytes``; also return when the next batch becomes ready (inf: never).

    A batch is ready when sealed (and past its ``retry_at``), or open and ``force``, covered by
    ``flush_seq`` or created ``linger_s`` ago; the last not for a topic in ``partial_held`` (one
    with a partial batch in flight: it waits, without a deadline, for the answer that wakes the
    sender). An open batch taken is marked ``partial``. Every ready batch of a partition goes into
    the same request (in order), and the partition is muted, so a partition never has two requests
    in flight.
    """
    requests: list[tuple[TopicBatches, list[ProducerBatch]]] = []
    deadline = math.inf
    for t in topics:
        group: list[ProducerBatch] = []
        size = 0
        partial_ok = t.name not in partial_held
        muted, sealed, opened = t.muted, t.sealed, t.open
        for p in range(t.partitions):
            if muted[p]:
                continue
            q = sealed[p]
            n_sealed, p_size = 0, 0
            for b in q:
                if b.retry_at > now:
                    deadline = min(deadline, b.retry_at)
                    break
                if n_sealed and size + p_size + b.nbytes > max_request_bytes:
                    break
                n_sealed += 1
                p_size += b.nbytes
            last = opened[p]
            if (
                last is not None
                and n_sealed == len(q)
                and (not n_sealed or size + p_size + last.nbytes <= max_request_bytes)
            ):
                ready_at = last.created + linger_s
                if force or last.seq <= flush_seq or (partial_ok and ready_at <= now):
                    p_size += last.nbytes
                else:
                    if not n_sealed and ready_at > now:
                        deadline = min(deadline, ready_at)
                    last = None
            else:
                last = None
            if not n_sealed and last is None:
                continue
            if not group and len(requests) >= slots:
                return requests, deadline
            for _ in range(n_sealed):
                group.append(q.popleft())
            if last is not None:
                opened[p] = None
                last.partial = True
                group.append(last)
                if p == t.sticky:
                    t.rotate_sticky()
            muted[p] = True
            size += p_size
            if size >= max_request_bytes:
                requests.append((t, group))
                group, size = [], 0
        if group:
            requests.append((t, group))
    return requests, deadline
