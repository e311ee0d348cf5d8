"""logsvc_wire: what the broker (:mod:`logsvc`) and every client (:mod:`logsvc_client`, the
connectors, the CLI) agree on about the wire, in one package that imports neither of them.

The vocabulary, in one screen:

* :mod:`~logsvc_wire._proto` — the gRPC messages and stubs, generated from
  ``proto/logsvc/v1/logsvc.proto`` by ``make proto`` and never edited by hand (``make proto-check``
  fails when they are stale).
* :mod:`~logsvc_wire.batch` — the record-batch codec: the 28-byte header, the msgpack payload,
  :func:`~logsvc_wire.batch.encode_batch`, :func:`~logsvc_wire.batch.validate`,
  :func:`~logsvc_wire.batch.decode_records`.
* :mod:`~logsvc_wire.record_check` — the per-record check of a payload (the C extension
  ``_batchcheck`` when built, the same verdicts in Python otherwise).
* :mod:`~logsvc_wire.compression` — gzip and zstd payloads, inflated under a bound.
* :mod:`~logsvc_wire.partitioner` — Kafka's partition rule (explicit partition, else murmur2 of the
  key, else sticky), one function for the producer and the broker (C extension ``_murmur2``).
* :mod:`~logsvc_wire.types` — the value types both sides hand around: ``TopicPartition``,
  ``Record``, and the offset-reset commit marker.
* :mod:`~logsvc_wire.errors` — the one exception tree with its code registry, translated in both
  directions: an exception to a gRPC status and trailing metadata, and back to the same class.
* :mod:`~logsvc_wire.metrics_http` — the other wire both the broker and the connectors speak:
  ``/metrics`` over HTTP, optionally behind a bearer token.

Import rule: the wire imports nothing from ``logsvc``, ``logsvc_client`` or ``logsvc_connect``
(``tests/test_layout.py`` checks it).
"""
