"""The idempotent producer's sequence rules, over plain data (no LMDB, no clock of its own).

What a broker remembers per (topic, partition, producer id) is a :class:`ProducerState`: the
producer's epoch, the last :data:`REMEMBERED` batches it stored there (:class:`BatchEntry`) and the
time of its last write. :func:`decide` says what to do with a produced batch — append it, answer it
as a duplicate of one already stored, or refuse it with the error the proto specifies
(proto/logsvc/v1/logsvc.proto, "IDEMPOTENT PRODUCE"); :func:`appended` is the state after an
append. Both stores (LMDB inside the writer's transaction, and the in-memory fake) apply exactly
these functions, so they answer alike.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import NamedTuple

from logsvc_wire.errors import InvalidRequest, OutOfOrderSequence, ProducerFenced, UnknownProducer

REMEMBERED = 5  # batches remembered per producer per partition (Kafka's 5)
SEQUENCE_MODULUS = 1 << 31  # sequences are taken modulo 2^31 (Kafka's int32 wrap)
MAX_EPOCH = 32_767  # past this, InitProducer hands out a new producer id (Kafka's short epoch)
NOT_IDEMPOTENT = 0  # producer id of a produce request that asks for no deduplication
DEFAULT_EXPIRATION_MS = 86_400_000  # a day, as Kafka's producer.id.expiration.ms

_HEAD = struct.Struct(">IqB")  # epoch, last write ms, entry count
_ENTRY = struct.Struct(">IIQq")  # first seq, last seq, base offset, log append time ms
_KEY = struct.Struct(">IIQ")  # topic id, partition, producer id


class BatchEntry(NamedTuple):
    """One stored batch as the broker remembers it, to answer a retry of it."""

    first_seq: int
    last_seq: int
    base_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime


class ProducerState(NamedTuple):
    epoch: int
    entries: tuple[BatchEntry, ...]  # oldest first, at most REMEMBERED
    last_write_ms: int

    @property
    def next_seq(self) -> int:
        return (self.entries[-1].last_seq + 1) % SEQUENCE_MODULUS if self.entries else 0


class Produced(NamedTuple):
    """The producer fields of one batch of a Produce request."""

    producer_id: int
    epoch: int
    base_seq: int


def last_seq(base_seq: int, record_count: int) -> int:
    return (base_seq + record_count - 1) % SEQUENCE_MODULUS


def request_fields(
    producer_id: int, epoch: int, sequences: Sequence[int] | None, batches: int
) -> tuple[tuple[int, int] | None, list[int] | None]:
    """The checked producer fields of an append: ``((id, epoch), sequences)``, or ``(None, None)``
    when it is not idempotent. InvalidRequest for fields out of their ranges (see the proto)."""
    seqs = list(sequences) if sequences is not None else None
    if producer_id == NOT_IDEMPOTENT:
        if epoch or any(seqs or ()):
            raise InvalidRequest(
                f"producer_epoch {epoch} and base_sequence {max(seqs or (0,))} must be 0 without a producer_id "
                "(0 = not idempotent)"
            )
        return None, None
    if not 0 < producer_id < 1 << 64:
        raise InvalidRequest(f"producer_id {producer_id} is out of range")
    if not 0 <= epoch <= MAX_EPOCH:
        raise InvalidRequest(f"producer_epoch {epoch} is out of range 0 to {MAX_EPOCH}")
    if seqs is None or len(seqs) != batches:
        raise InvalidRequest(f"an idempotent produce needs one base_sequence per batch ({batches})")
    for seq in seqs:
        if not 0 <= seq < SEQUENCE_MODULUS:
            raise InvalidRequest(f"base_sequence {seq} is out of range 0 to {SEQUENCE_MODULUS - 1}")
    return (producer_id, epoch), seqs


def expired(state: ProducerState, now_ms: int, expiration_ms: int) -> bool:
    """Whether the producer has not written to the partition for longer than ``expiration_ms``."""
    return now_ms - state.last_write_ms > expiration_ms


def live(state: ProducerState | None, now_ms: int, expiration_ms: int) -> ProducerState | None:
    """``state`` unless it has expired (expired state counts as none, even before it is deleted)."""
    return None if state is None or expired(state, now_ms, expiration_ms) else state


def check_issued(producer_id: int, next_producer_id: int) -> None:
    """UnknownProducer for a producer id this broker never issued."""
    if not 0 < producer_id < next_producer_id:
        raise UnknownProducer(f"producer id {producer_id} was never issued by this broker", producer_id=producer_id)


def decide(state: ProducerState | None, produced: Produced, record_count: int, where: str) -> BatchEntry | None:
    """What to do with a batch: None = append it; a :class:`BatchEntry` = it duplicates that
    stored batch (answer with its offsets, write nothing). Raises ProducerFenced,
    OutOfOrderSequence or UnknownProducer. ``state`` is the producer's live state on this
    partition (None when there is none, see :func:`live`); ``where`` ("topic/partition") is for
    messages.
    """
    pid, epoch, seq = produced
    if state is None:
        if seq == 0:
            return None
        raise UnknownProducer(
            f"producer {pid} has no state on {where} (expired after producer_id_expiration_ms, or never "
            f"written there) and its batch starts at sequence {seq}, not 0",
            producer_id=pid,
            base_sequence=seq,
        )
    if epoch < state.epoch:
        raise ProducerFenced(
            f"producer {pid} epoch {epoch} on {where} is fenced: the broker holds epoch {state.epoch}",
            producer_id=pid,
            epoch=epoch,
            current_epoch=state.epoch,
        )
    if epoch > state.epoch:
        if seq == 0:
            return None
        raise OutOfOrderSequence(
            f"producer {pid} starts epoch {epoch} on {where} at sequence {seq}; a new epoch starts at 0",
            producer_id=pid,
            base_sequence=seq,
            expected=0,
        )
    last = last_seq(seq, record_count)
    for entry in state.entries:
        if entry.first_seq == seq and entry.last_seq == last:
            return entry
    expected = state.next_seq
    if seq == expected:
        return None
    raise OutOfOrderSequence(
        f"producer {pid} epoch {epoch} sent sequence {seq} to {where}; expected {expected}",
        producer_id=pid,
        base_sequence=seq,
        expected=expected,
    )


def appended(
    state: ProducerState | None, produced: Produced, record_count: int, entry_offsets: tuple[int, int], now_ms: int
) -> ProducerState:
    """The state after appending a batch :func:`decide` let through, stored at
    ``entry_offsets`` = (base offset, log append time ms)."""
    entry = BatchEntry(produced.base_seq, last_seq(produced.base_seq, record_count), *entry_offsets)
    if state is None or produced.epoch != state.epoch or produced.base_seq != state.next_seq:
        return ProducerState(produced.epoch, (entry,), now_ms)  # new, new epoch, or after expiry
    return ProducerState(produced.epoch, (*state.entries[1 - REMEMBERED :], entry), now_ms)


# -- persistence ---------------------------------------------------------------------------------


def state_key(topic_id: int, partition: int, producer_id: int) -> bytes:
    """The LMDB key; starts with the topic's and the partition's keys (see storage.keys)."""
    return _KEY.pack(topic_id, partition, producer_id)


def encode(state: ProducerState) -> bytes:
    parts = [_HEAD.pack(state.epoch, state.last_write_ms, len(state.entries))]
    parts.extend(_ENTRY.pack(*entry) for entry in state.entries)
    return b"".join(parts)


def decode(raw: bytes | memoryview) -> ProducerState:
    epoch, last_write_ms, n = _HEAD.unpack_from(raw)
    entries = tuple(BatchEntry(*_ENTRY.unpack_from(raw, _HEAD.size + i * _ENTRY.size)) for i in range(n))
    return ProducerState(epoch, entries, last_write_ms)


def last_write_ms(raw: bytes | memoryview) -> int:
    """The last write time of an encoded state, without decoding the rest."""
    return int(_HEAD.unpack_from(raw)[1])


def next_identity(producer_id: int, epoch: int, next_producer_id: int) -> tuple[int, int] | None:
    """InitProducer's answer for an id the caller holds: the same id with the next epoch, or None
    when the epoch is used up (the caller then gets a new id). UnknownProducer for an id never issued."""
    check_issued(producer_id, next_producer_id)
    if not 0 <= epoch <= MAX_EPOCH:
        raise InvalidRequest(f"producer_epoch {epoch} is out of range 0 to {MAX_EPOCH}")
    return None if epoch >= MAX_EPOCH else (producer_id, epoch + 1)
