"""logsvc: a Kafka-style partitioned commit log as one small Python service.

The vocabulary, in one screen:

* **topic** — a named log split into ``partitions``; keyed records go to Kafka's partition
  (:mod:`logsvc_wire.partitioner`).
* **record batch** — the unit of the wire and of storage (:mod:`logsvc_wire.batch`); the broker
  stores producer batches as they are under their base offset.
* **store** — the durable log (:mod:`logsvc.storage.base`, LMDB in :mod:`logsvc.storage.lmdb_store`)
  with one writer thread that group-commits appends and offset commits.
* **broker** — the gRPC service (:mod:`logsvc.server`), configured by :mod:`logsvc.settings`.
* **wire** — what the broker and every client share (:mod:`logsvc_wire`): the generated gRPC code,
  the batch codec, the partitioner, the value types and the errors; the broker imports no client.
* **errors** — one exception tree (:mod:`logsvc.errors`, re-exporting :mod:`logsvc_wire.errors`).
* **CLI** — ``logsvc`` (:mod:`logsvc.cli`), built on the client library (:mod:`logsvc_client`).
"""

__version__ = "0.1.0"
