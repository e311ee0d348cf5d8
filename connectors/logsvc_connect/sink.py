"""The sink contract: what an adapter (PostgreSQL, MongoDB, a user's handler) supplies.

The runtime owns the policy — group membership, batching, compaction of duplicate ids inside a
batch, retries, the dead-letter topic and the order "write, then commit" — and an adapter only
writes a batch idempotently. The contract, as :class:`Sink` documents it:

* ``write(records)`` makes every record durable (or deletes its row/document for a tombstone,
  whatever the id mode) before it returns. Writing the same records twice leaves the same
  result (at-least-once delivery relies on it).
* A failure of the database itself (connection lost, timeout, failover, server shutting down)
  raises :class:`~logsvc_connect.errors.TransientSinkError`: the runtime retries the whole batch with backoff and never
  dead-letters it.
* A failure of one record's data (bad value, constraint violation, document too large, NUL in
  text) is returned in :attr:`WriteResult.failed` keyed by the record's index in ``records``;
  the other records of the batch must still be written. The runtime dead-letters the failed
  ones and moves on.
* ``stored_offsets`` is for exactly-once sinks that keep their offsets in the same transaction
  as the rows; others return None.
"""

from __future__ import annotations

import abc
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from logsvc_client.records import Headers, TopicPartition
from logsvc_connect.errors import DataError, TransientSinkError
from logsvc_connect.values import decode_value

__all__ = ["DataError", "Sink", "SinkRecord", "TransientSinkError", "WriteResult"]


class SinkRecord(NamedTuple):
    """A record as the runtime hands it to an adapter.

    ``doc`` is the decoded value: a dict for a JSON object or a msgpack map, ``bytes`` for a raw
    value (``value_format = "raw"``, or "auto" when the value is neither), None for a tombstone.
    """

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: Headers | None
    doc: dict[str, Any] | bytes | None

    @property
    def is_tombstone(self) -> bool:
        return self.value is None

    @property
    def decoded(self) -> dict[str, Any] | bytes | None:
        """The value as a dict when it is a JSON object or a msgpack map, else the raw bytes
        (None for a tombstone); decoded on access when the runtime did not decode it."""
        if self.doc is not None or self.value is None:
            return self.doc
        return decode_value(self.value, "auto")


@dataclass
class WriteResult:
    """What a write did: indexes (into the records passed) of records that failed on their data."""

    failed: dict[int, DataError] = field(default_factory=dict)


class Sink(abc.ABC):
    """An adapter that writes batches of :class:`SinkRecord` to a database, idempotently."""

    #: connector kind, e.g. "postgres"
    kind: str = "sink"
    #: the runtime decodes values into ``doc`` before ``write`` (False: ``doc`` is None and
    #: ``record.decoded`` decodes on access)
    decode_values: bool = True
    #: records with equal :meth:`identity` in one batch are compacted by the runtime (the last one
    #: wins), so ``write`` never gets two records of one id in a batch; an adapter does not compact
    compact_ids: bool = True
    #: the runtime may call ``write`` on a thread of its own while it polls and prepares the next
    #: batch (never two writes at once, and never while it calls ``stored_offsets``, ``open`` or
    #: ``close``); False: every call comes from the thread that runs the runtime
    write_in_background: bool = False

    @abc.abstractmethod
    def open(self) -> None:
        """Connect (TransientSinkError when the database is unreachable)."""

    @abc.abstractmethod
    def identity(self, record: SinkRecord) -> Hashable:
        """The id the record's row/document gets (for in-batch compaction: last one wins).
        Records with equal identities in one batch would overwrite each other."""

    @abc.abstractmethod
    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        """Write ``records`` durably (see the module docstring). ``offsets`` are the next offsets
        the batch completes per partition (what the runtime will commit after this returns);
        an exactly-once sink stores them in the same transaction as the rows."""

    def prepare(self, records: list[SinkRecord]) -> None:
        """With :attr:`write_in_background`: called on the runtime's thread with the batch that
        the next ``write`` gets (the same list), while the previous write may still run. Work
        that needs no database (encoding) done here overlaps that write; ``write`` must still
        accept any records (a retry, or a list it was not prepared with). A no-op by default."""
        return

    @property
    def stores_offsets(self) -> bool:
        """True for exactly-once sinks that keep their offsets with the rows. They store offsets
        only up to the first record that failed in a write; the runtime then calls
        ``write([], offsets)`` once the failed records are dead-lettered."""
        return False

    def stored_offsets(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int] | None:
        """Offsets kept by the sink itself (exactly-once); None when it keeps none."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""
