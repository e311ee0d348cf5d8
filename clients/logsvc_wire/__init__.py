"""logsvc_wire: what the broker (:mod:`logsvc`) and every client (:mod:`logsvc_client`, the
connectors, the CLI) agree on about the wire, in one package that imports neither of them.

The vocabulary, in one screen:

* :mod:`~logsvc_wire._proto` — the gRPC messages and stubs, generated from
  ``proto/logsvc/v1/logsvc.proto`` by ``make proto`` and never edited by hand (``make proto-check``
  fails when they are stale).
* :mod:`~logsvc_wire.batch` — the record-batch codec: the 28-byte header, the msgpack payload,
  :func:`~logsvc_wire.batch.encode_batch`, :func:`~logsvc_wire.batch.validate`,
  :func:`~logsvc_wire.batch.decode_records`.
* :mod:`~logsvc_wire.record_check` — the per-record check of a payload.
* :mod:`~logsvc_wire.record_codec` — the per-record loops of the producer (encoding as records
  are queued) and the consumer (decoding into ``Record`` tuples).
* :mod:`~logsvc_wire.native` — whether those loops, the check and the key hash run in the C
  extension ``_codec`` (built by ``pip install``) or in their pure-Python fallback, which gives
  the same results (``LOGSVC_PURE_PYTHON=1`` forces the fallback).
* :mod:`~logsvc_wire.produce_request` and :mod:`~logsvc_wire.fetch_response` — the two messages
  that carry record batches, written (and the Fetch answer read) as their protobuf bytes without
  protobuf's copies of the batches; :mod:`~logsvc_wire.protowire` — the wire-format primitives
  they share.
* :mod:`~logsvc_wire.compression` — gzip and zstd payloads, inflated under a bound.
* :mod:`~logsvc_wire.partitioner` — Kafka's partition rule (explicit partition, else murmur2 of the
  key, else sticky), one function for the producer and the broker.
* :mod:`~logsvc_wire.types` — the value types both sides hand around: ``TopicPartition``,
  ``Record``, and the offset-reset commit marker.
* :mod:`~logsvc_wire.errors` — the one exception tree with its code registry, translated in both
  directions: an exception to a gRPC status and trailing metadata, and back to the same class.
* :mod:`~logsvc_wire.metrics_http` — the other wire both the broker and the connectors speak:
  ``/metrics`` over HTTP, optionally behind a bearer token.

Import rule: the wire imports nothing from ``logsvc``, ``logsvc_client`` or ``logsvc_connect``
(``tests/test_layout.py`` checks it).
"""
