"""Fetched record batches waiting to be handed out by a consumer's poll.

A :class:`RecordBuffer` keeps batches whole, as the broker sent them, and decodes one only when
a poll reaches it, straight into :class:`~logsvc_client.records.Record` tuples
(:func:`~logsvc_wire.batch.decode_records`). A :class:`~logsvc_client.consumer.fetcher.Fetcher` has one
for all its partitions, or one per lane with priority lanes (in a
:class:`~logsvc_client.consumer.lane_buffers.LaneBuffers`).

A stored batch that does not decode (:class:`~logsvc_client.errors.CorruptBatch`, data written
by an older version or damaged on disk) is either reported — it stays at the head of the buffer,
so every poll raises until the application seeks past it — or, with ``skip_corrupt``, dropped
with one WARNING and its partition's position moved past its last offset (the log record carries
the error as ``corrupt_batch``, for a handler that wants the range or the bytes).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from logsvc_wire import batch as codec

from ..errors import CorruptBatch
from ..records import Record, TopicPartition

log = logging.getLogger("logsvc_client.consumer")


def stored_count(data: bytes | memoryview) -> int:
    """How many offsets a stored batch covers, counted as the broker counts them (even for a
    corrupt header): :func:`~logsvc_wire.batch.stored_span`."""
    return codec.stored_span(data).record_count


def corrupt_error(
    error: CorruptBatch, tp: TopicPartition, base: int, end: int, data: bytes | memoryview
) -> CorruptBatch:
    """``error`` for the batch ``data`` of ``tp`` covering ``[base, end)``, with the stored bytes
    in ``details["batch"]`` (for a dead-letter topic) and ``last_offset`` the one the broker's
    offsets say (``end - 1``; the codec says ``base`` when the header itself is unreadable)."""
    if error.details.get("last_offset") != end - 1:
        why = error.message.partition(" is corrupt: ")[2] or error.message
        error = codec.corrupt(tp.topic, tp.partition, base, end - base, why)
    error.details["batch"] = bytes(data)
    return error


class RecordBuffer:
    """Batches of some partitions in fetch order; ``count`` records not handed out yet."""

    __slots__ = ("_check_crcs", "_decoded", "_decoded_at", "_pending", "_record_type", "_skip_corrupt", "count")

    def __init__(
        self, check_crcs: bool = True, skip_corrupt: bool = False, record_type: type[tuple[Any, ...]] = Record
    ) -> None:
        self._check_crcs = check_crcs
        self._skip_corrupt = skip_corrupt
        self._record_type = record_type  # what batches are decoded into (see Consumer's record_type)
        # tp, base, batch (a view into a fetch answer over gRPC), start, end
        self._pending: deque[tuple[TopicPartition, int, bytes | memoryview, int, int]] = deque()
        self._decoded: list[Record] = []  # the batch being handed out, from _decoded_at on
        self._decoded_at = 0
        self.count = 0

    def add(self, tp: TopicPartition, base: int, data: bytes | memoryview, start: int, records: int) -> None:
        """Buffer the batch ``data`` of ``tp`` (base offset ``base``) from offset ``start`` on,
        which is ``records`` records."""
        self._pending.append((tp, base, data, start, max(base, start) + records))
        self.count += records

    def take(self, limit: int, positions: dict[TopicPartition, int]) -> list[Record]:
        """Up to ``limit`` records, decoding batches as needed; ``positions`` is moved past them.

        A corrupt batch either stays where it is, so every poll raises
        :class:`~logsvc_client.errors.CorruptBatch` until the application seeks past it (the
        records taken before it in the same call are returned first, and its partition's
        position stays at its first offset), or, with ``skip_corrupt``, is dropped (one WARNING)
        and its partition's position moves past it."""
        out: list[Record] = []
        while limit > 0:
            recs = self._decoded
            if recs:
                at = self._decoded_at
                n = len(recs) - at
                if n <= limit:
                    chunk = recs if at == 0 else recs[at:]
                    self._decoded, self._decoded_at = [], 0
                else:
                    chunk = recs[at : at + limit]
                    self._decoded_at = at + limit
                last = chunk[-1]
                positions[TopicPartition(last.topic, last.partition)] = last.offset + 1
                if out:
                    out += chunk
                else:
                    out = chunk
                limit -= len(chunk)
                self.count -= len(chunk)
            elif self._pending:
                tp, base, data, start, end = item = self._pending.popleft()
                try:
                    self._decoded = codec.decode_records(
                        tp.topic, tp.partition, base, data, start, self._check_crcs, self._record_type
                    )
                except CorruptBatch as e:
                    error = corrupt_error(e, tp, base, end, data)
                    if self._skip_corrupt:
                        self.count -= end - max(base, start)
                        positions[tp] = end
                        log.warning(
                            "%s; skipped it, reading on from offset %d",
                            error.message,
                            end,
                            extra={"corrupt_batch": error},
                        )
                        continue
                    self._pending.appendleft(item)
                    if out:
                        break
                    raise error from None
                self._decoded_at = 0
            else:
                break
        return out

    def discard(self, affected: Callable[[TopicPartition], bool]) -> None:
        """Drop the records of the partitions ``affected`` says yes to."""
        self._pending = deque(item for item in self._pending if not affected(item[0]))
        if self._decoded and affected(TopicPartition(self._decoded[0].topic, self._decoded[0].partition)):
            self._decoded, self._decoded_at = [], 0
        self.count = (
            len(self._decoded)
            - self._decoded_at
            + sum(end - max(base, start) for _, base, _, start, end in self._pending)
        )
