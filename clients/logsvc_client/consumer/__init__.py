"""The consumer: fetches records of assigned or group-subscribed partitions ahead of ``poll``.

How a record comes back, one module per arrow::

    Consumer.poll                            consumer.py
      ← Fetcher: positions, pipelined fetches  fetcher.py, in_flight_fetch.py (one fetch in flight)
        ← the transport's fetch                logsvc_client.transport
      ← RecordBuffer: decoded batches per partition   record_buffer.py
        ← LaneBuffers: which partitions' records first   lane_buffers.py, lanes.py (the policy)
    where a position starts or resets: offset_reset.py (auto_offset_reset)
    how much a Fetch asks for, what a corrupt batch does: fetch_options.py
    group mode: Subscription applies the group's assignment inside poll   subscription.py
                (membership and committed offsets: :mod:`logsvc_client.group`)
"""

from .consumer import Consumer
from .fetch_options import CorruptBatches
from .lanes import LanePolicy, Priority

__all__ = ["Consumer", "CorruptBatches", "LanePolicy", "Priority"]
