"""Kafka's default partitioner, so a key lands on the partition Apache Kafka would choose.

Keyed records: ``(murmur2(key) & 0x7fffffff) % partitions`` with Kafka's seed ``0x9747b28c``
(the C implementation comes from the ``murmurhash2`` package). Records without a key use sticky
partitioning: one partition is chosen at random and kept until the batch being filled for it is
sent, then another is chosen — fewer, fuller batches than round-robin.

The hash comes from the codec's C extension :mod:`logsvc_wire._codec`, which keeps the GIL: the
``murmurhash2`` package (the fallback when the extension was not built) releases it on every
call, and in a producer whose sender thread is runnable each release costs a GIL handoff — tens
of microseconds instead of a tenth of one.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from murmurhash2 import murmurhash2 as _murmurhash2

from .native import extension

KAFKA_SEED = 0x9747B28C


def _positive_fallback(key: bytes) -> int:
    return int(_murmurhash2(key, KAFKA_SEED)) & 0x7FFFFFFF


#: ``murmur2(key) & 0x7fffffff``: the non-negative hash Kafka's partitioner takes modulo n (the C
#: extension's when it runs, see :mod:`~logsvc_wire.native`; the same hash, slower beside other threads)
murmur2_positive: Callable[[bytes], int] = _positive_fallback if extension is None else extension.murmur2_positive


def murmur2(key: bytes) -> int:
    """Kafka's ``Utils.murmur2``: the signed 32-bit MurmurHash2 of ``key``."""
    h = int(_murmurhash2(key, KAFKA_SEED))
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` among ``partitions``."""
    return murmur2_positive(key) % partitions


def choose_partition(partition: int | None, key: bytes | None, partitions: int, sticky: int) -> int:
    """THE partition rule, for the producer and for the broker's ProduceRecords alike: an explicit
    ``partition`` wins (the caller checks its range); else a key's Kafka murmur2 hash; else
    ``sticky``, the partition the caller's sticky choice stands on for keyless records."""
    if partition is not None:
        return partition
    if key is not None:
        return murmur2_positive(key) % partitions
    return sticky


class StickyPartitioner:
    """Chooses partitions for records without a key: one per batch, changed on :meth:`next_batch`."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self._current: dict[str, int] = {}

    def partition(self, topic: str, partitions: int) -> int:
        p = self._current.get(topic)
        if p is None or p >= partitions:
            p = self._rng.randrange(partitions)
            self._current[topic] = p
        return p

    def next_batch(self, topic: str, partitions: int) -> None:
        """The sticky partition's batch was sent: move to another partition."""
        old = self._current.get(topic)
        if partitions <= 1:
            self._current[topic] = 0
            return
        p = self._rng.randrange(partitions - 1)
        self._current[topic] = p + 1 if old is not None and p >= old else p
