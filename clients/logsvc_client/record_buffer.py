"""Fetched record batches waiting to be handed out by a consumer's poll.

A :class:`RecordBuffer` keeps batches whole, as the broker sent them, and decodes one only when
a poll reaches it, straight into :class:`~logsvc_client.records.Record` tuples
(:func:`~logsvc_client.batch.decode_records`). A :class:`~logsvc_client.fetcher.Fetcher` has one
for all its partitions, or one per lane with priority lanes (in a
:class:`~logsvc_client.lane_buffers.LaneBuffers`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from . import batch as codec
from .records import Record, TopicPartition


class RecordBuffer:
    """Batches of some partitions in fetch order; ``count`` records not handed out yet."""

    __slots__ = ("_check_crcs", "_decoded", "_decoded_at", "_pending", "count")

    def __init__(self, check_crcs: bool = True) -> None:
        self._check_crcs = check_crcs
        self._pending: deque[tuple[TopicPartition, int, bytes, int]] = deque()  # tp, base, batch, start
        self._decoded: list[Record] = []  # the batch being handed out, from _decoded_at on
        self._decoded_at = 0
        self.count = 0

    def add(self, tp: TopicPartition, base: int, data: bytes, start: int, records: int) -> None:
        """Buffer the batch ``data`` of ``tp`` (base offset ``base``) from offset ``start`` on,
        which is ``records`` records."""
        self._pending.append((tp, base, data, start))
        self.count += records

    def take(self, limit: int, positions: dict[TopicPartition, int]) -> list[Record]:
        """Up to ``limit`` records, decoding batches as needed; ``positions`` is moved past them.

        A corrupt batch stays where it is, so every poll reports it until the application seeks
        past it; the records taken before it in the same call are returned first."""
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
                tp, base, data, start = item = self._pending.popleft()
                try:
                    self._decoded = codec.decode_records(tp.topic, tp.partition, base, data, start, self._check_crcs)
                except Exception:
                    self._pending.appendleft(item)
                    if out:
                        break
                    raise
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
            + sum(codec.read_header(data).record_count - max(0, start - base) for _, base, data, start in self._pending)
        )
