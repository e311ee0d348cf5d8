"""Priority lanes on a Kafka cluster: records buffered per lane, each poll planned by the same
:class:`~logsvc_client.consumer.lanes.LanePolicy` as on logsvc, and librdkafka's fetching of a
lane paused while its buffer is full.

librdkafka fetches every assigned partition into one queue, so a poll cannot ask for one lane's
records the way a logsvc Fetch can. Instead :class:`KafkaLanes` takes whatever the queue holds
into one buffer per lane and lets the policy plan the poll from each lane's backlog: buffered
records plus, per partition, the high watermark of librdkafka's last Fetch minus the next offset
to be fetched (nothing is planned before every partition had a Fetch answer).
:meth:`KafkaLanes.pauses` names the partitions to pause — those of lanes holding ``cap`` records
or more (the consumer's choice: two polls' worth) — and to resume, so a lane that is not being
taken from stops being fetched while the others go on, and a low lane's backlog stays on the
cluster instead of in memory. Pure: the consumer passes the clock, the watermarks and the
assignment, and calls librdkafka's ``pause``/``resume`` itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ..consumer.lanes import LanePolicy
from ..records import Record, TopicPartition


class KafkaLanes:
    """The lane buffers of one consumer; see the module docstring."""

    def __init__(self, policy: LanePolicy, cap: int) -> None:
        self.policy = policy
        self.cap = cap
        self.buffers: dict[str, deque[Record]] = {lane: deque() for lane in policy.lanes}
        self.fetched: dict[tuple[str, int], int] = {}  # the next offset librdkafka hands over, per partition
        self.paused: set[TopicPartition] = set()

    def add(self, records: Iterable[Record]) -> None:
        """Buffer consumed records in their lanes (records of a topic that is no lane are dropped)."""
        buffers, fetched = self.buffers, self.fetched
        for r in records:
            buffer = buffers.get(r.topic)
            if buffer is not None:
                buffer.append(r)
                fetched[(r.topic, r.partition)] = r.offset + 1

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """``tp`` is read again from ``offset``: its buffered records go."""
        self.discard(lambda other: other == tp)
        self.fetched[tp] = offset

    def discard(self, affected: Callable[[TopicPartition], bool]) -> None:
        """Drop the buffered records (and what is known of the fetching) of affected partitions."""
        for lane, buffer in self.buffers.items():
            if any(affected(TopicPartition(r.topic, r.partition)) for r in buffer):
                self.buffers[lane] = deque(r for r in buffer if not affected(TopicPartition(r.topic, r.partition)))
        for key in [key for key in self.fetched if affected(TopicPartition(*key))]:
            del self.fetched[key]
        self.paused = {tp for tp in self.paused if not affected(tp)}

    def take(
        self,
        limit: int,
        now_ms: int,
        assigned: Iterable[TopicPartition],
        watermarks: Callable[[TopicPartition], tuple[int, int] | None],
        positions: dict[tuple[str, int], int],
        whole: bool = False,
    ) -> list[Record] | None:
        """The records the policy plans for a poll of ``limit``, in lane order; ``positions`` moves
        past them. ``watermarks`` are librdkafka's cached log start and end of a partition (None
        until its first Fetch answer): until every partition has them no lane's backlog is known,
        and nothing is taken (a lane that has not answered yet is not passed over). With
        ``whole``, None (and nothing taken) when a lane's part of the plan is not buffered yet:
        the caller may wait a little for it."""
        ready = {lane: len(buffer) for lane, buffer in self.buffers.items()}
        backlog = dict(ready)
        for tp in assigned:
            if tp.topic not in backlog:
                continue
            marks = watermarks(tp)
            if marks is None:
                return []
            at = self.fetched.get(tp, positions.get(tp, marks[0]))
            if marks[1] > at:
                backlog[tp.topic] += marks[1] - at
        plan = self.policy.plan(backlog, now_ms, limit, ready)
        if whole and any(n > ready[lane] for lane, n in plan.items()):
            return None
        out: list[Record] = []
        for lane, n in plan.items():
            buffer = self.buffers[lane]
            taken = min(n, len(buffer))
            for _ in range(taken):
                r = buffer.popleft()
                out.append(r)
                positions[(r.topic, r.partition)] = r.offset + 1
            self.policy.served(lane, taken, now_ms)
        return out

    def pauses(
        self,
        assigned: Iterable[TopicPartition],
        watermarks: Callable[[TopicPartition], tuple[int, int] | None],
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """The partitions to pause (their lane holds ``cap`` records or more) and to resume (it no
        longer does); :attr:`paused` is updated as if the caller did both.

        A partition without a Fetch answer yet (``watermarks`` None) is never paused, even in a
        full lane: :meth:`take` takes nothing until every partition has one, so pausing it would
        stall the consumer for good (its lane filled from its other partitions first, which a
        busy machine makes likely)."""
        full = {lane for lane, buffer in self.buffers.items() if len(buffer) >= self.cap}
        owned = set(assigned)
        want = {tp for tp in owned if tp.topic in full and watermarks(tp) is not None}
        pause = sorted(want - self.paused)
        resume = sorted((self.paused - want) & owned)
        self.paused = want
        return pause, resume
