"""An in-memory ProduceTransport honouring the contract in logsvc_client.transport.base.

It stores batches per partition with dense offsets, like a broker, and lets a test script
failures (``fail_next``) or hold responses until it releases them (``hold``), so batching,
retries, ordering and buffer limits are tested without a network or sleeps on timing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from logsvc_client.errors import LogsvcError, TopicNotFound, Unavailable
from logsvc_client.records import Record
from logsvc_client.transport.base import ProduceCallback
from logsvc_wire import batch as codec


@dataclass
class ProduceCall:
    topic: str
    batches: list[tuple[int, bytes]]
    done: ProduceCallback
    answered: bool = False
    producer_id: int = 0
    producer_epoch: int = 0
    sequences: list[int] | None = None
    wait: bool = False


@dataclass
class FakeTransport:
    topics: dict[str, int] = field(default_factory=dict)  # name -> partition count
    hold: bool = False  # when True, calls wait in `held` until release()
    calls: list[ProduceCall] = field(default_factory=list)
    held: list[ProduceCall] = field(default_factory=list)
    failures: list[LogsvcError] = field(default_factory=list)
    log: dict[tuple[str, int], list[tuple[int, bytes]]] = field(default_factory=dict)  # (base, batch)
    closed: bool = False
    lose_answers: int = 0  # the next calls are stored, then answered Unavailable (a lost answer)
    init_calls: list[tuple[int, int]] = field(default_factory=list)
    # idempotence, as a broker: (topic, partition, producer id, epoch, base sequence) -> base offset
    stored_sequences: dict[tuple[str, int, int, int, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.called = threading.Condition(self._lock)

    # -- the contract ---------------------------------------------------------------------------

    def partition_count(self, topic: str, *, auto_create: bool = False) -> int:
        if topic not in self.topics:
            raise TopicNotFound(f"topic {topic!r} does not exist")
        return self.topics[topic]

    def init_producer(self, producer_id: int, producer_epoch: int) -> tuple[int, int]:
        with self._lock:
            self.init_calls.append((producer_id, producer_epoch))
            return (producer_id, producer_epoch + 1) if producer_id else (len(self.init_calls), 0)

    def produce(
        self,
        topic: str,
        batches: Sequence[tuple[int, bytes]],
        done: ProduceCallback,
        *,
        producer_id: int = 0,
        producer_epoch: int = 0,
        sequences: Sequence[int] | None = None,
        wait: bool = False,
    ) -> None:
        seqs = list(sequences) if sequences is not None else None
        call = ProduceCall(
            topic,
            list(batches),
            done,
            producer_id=producer_id,
            producer_epoch=producer_epoch,
            sequences=seqs,
            wait=wait,
        )
        with self._lock:
            self.calls.append(call)
            self.called.notify_all()
            if self.hold:
                self.held.append(call)
                return
        self._answer(call)

    def close(self) -> None:
        self.closed = True

    # -- test controls --------------------------------------------------------------------------

    def fail_next(self, *errors: LogsvcError) -> None:
        """The next produce calls fail with these errors, in order."""
        with self._lock:
            self.failures.extend(errors)

    def release(self, n: int | None = None) -> int:
        """Answer held calls (the first ``n``, or all); returns how many were answered."""
        with self._lock:
            take = self.held if n is None else self.held[:n]
            self.held = self.held[len(take) :]
        for call in take:
            self._answer(call)
        return len(take)

    def wait_for_calls(self, n: int, timeout_s: float = 5) -> None:
        """Until ``n`` produce calls were made; else AssertionError, after answering the held
        calls and holding no more, so that the producer's close (its flush) cannot hang the test."""
        with self._lock:
            if self.called.wait_for(lambda: len(self.calls) >= n, timeout_s):
                return
            got = len(self.calls)
            self.hold = False
        self.release()
        raise AssertionError(f"expected {n} produce calls, got {got}")

    def records(self, topic: str, partition: int) -> list[Record]:
        """Every stored record of a partition, decoded, in offset order."""
        return [
            r
            for base, data in self.log.get((topic, partition), [])
            for r in codec.decode_records(topic, partition, base, data)
        ]

    def _answer(self, call: ProduceCall) -> None:
        with self._lock:
            error = self.failures.pop(0) if self.failures else None
            bases = []
            if error is None:
                for i, (partition, data) in enumerate(call.batches):
                    codec.validate(data)
                    key = None
                    if call.sequences is not None:
                        key = (call.topic, partition, call.producer_id, call.producer_epoch, call.sequences[i])
                        if key in self.stored_sequences:  # a retry of a stored batch: its offset
                            bases.append(self.stored_sequences[key])
                            continue
                    stored = self.log.setdefault((call.topic, partition), [])
                    base = stored[-1][0] + codec.read_header(stored[-1][1]).record_count if stored else 0
                    stored.append((base, data))
                    bases.append(base)
                    if key is not None:
                        self.stored_sequences[key] = base
                if self.lose_answers:
                    self.lose_answers -= 1
                    error = Unavailable("the answer was lost")
            call.answered = True
        if error is None:
            call.done(bases, None)
        else:
            call.done(None, error)
