"""logsvc: a Kafka-style partitioned commit log as one small Python service.

The vocabulary, in one screen:

* **topic** — a named log split into ``partitions``; keyed records go to Kafka's partition
  (:mod:`logsvc_client.partitioner`).
* **record batch** — the unit of the wire and of storage (:mod:`logsvc_client.batch`); the broker
  stores producer batches as they are under their base offset.
* **store** — the durable log (:mod:`logsvc.storage.base`, LMDB in :mod:`logsvc.storage.lmdb_store`)
  with one writer thread that group-commits appends and offset commits.
* **broker** — the gRPC service (:mod:`logsvc.server`), configured by :mod:`logsvc.settings`.
* **errors** — one exception tree (:mod:`logsvc.errors`, shared with the client library).
* **CLI** — ``logsvc`` (:mod:`logsvc.cli`), built on the client library (:mod:`logsvc_client`).
"""

__version__ = "0.1.0"
