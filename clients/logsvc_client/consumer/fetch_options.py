"""Two of the consumer's fetch options, checked and sized here for the
:class:`~logsvc_client.consumer.fetcher.Fetcher`, the consumers and the CLI:

- ``corrupt_batches``: what a poll does on reaching a stored batch that does not decode;
- how many records one Fetch asks for, given ``max_poll_records``: a small poll size (Kafka's
  default is 500) bounds what a poll hands out, not how much one round trip brings, as Kafka's
  fetches are sized apart from ``max.poll.records``.
"""

from __future__ import annotations

from typing import Literal

from ..errors import InvalidConfig

#: What a poll does on reaching a stored batch that does not decode: raise CorruptBatch (the
#: position stays at the batch's first offset) or skip it (one WARNING, the position moves on).
CorruptBatches = Literal["raise", "skip"]
CORRUPT_BATCHES: tuple[CorruptBatches, ...] = ("raise", "skip")

#: The fewest records a Fetch asks for, whatever ``max_poll_records`` is.
MIN_FETCH_RECORDS = 10_000


def check_corrupt_batches(value: object) -> CorruptBatches:
    """``value`` when it is one of :data:`CORRUPT_BATCHES`; InvalidConfig otherwise."""
    for known in CORRUPT_BATCHES:
        if value == known:
            return known
    raise InvalidConfig(
        f"consumer option corrupt_batches={value!r} must be one of {', '.join(CORRUPT_BATCHES)}",
        key="corrupt_batches",
    )


def fetch_records(max_poll_records: int) -> int:
    """How many records one Fetch asks for (its ``max_records``), given ``max_poll_records``."""
    return max(max_poll_records, MIN_FETCH_RECORDS)
