"""The producer: records batched per partition on the client, sent on a background thread.

How a record flows, one module per arrow::

    Producer.send / send_many            producer.py
      → Accumulator.append / append_many accumulator.py (bulk.py prepares many records at once)
        → the partition's open ProducerBatch   batches.py, topic_batches.py (per-topic queues)
          → Sender: encode, number, Produce   sender.py, idempotence.py (sequence numbers)
            → the transport's produce         logsvc_client.transport
              → the answer completes the batch and every RecordFuture in it   futures.py

The partition rule is :func:`logsvc_wire.partitioner.choose_partition`, shared with the broker.
"""

from .futures import RecordFuture, RecordFutures
from .producer import Producer

__all__ = ["Producer", "RecordFuture", "RecordFutures"]
