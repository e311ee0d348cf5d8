"""Storage: the :class:`~logsvc.storage.base.Store` contract and its implementations.

* :mod:`~logsvc.storage.base` — the contract (read its docstrings first).
* :mod:`~logsvc.storage.lmdb_store` — ``LmdbStore.open(data_dir, ...)``, the real store.
* :mod:`~logsvc.storage.memory` — ``MemoryStore()``, an in-memory fake for fast tests.
* :mod:`~logsvc.storage.rules` — checks, error messages and retention rules both stores share.
* :mod:`~logsvc.storage.producers` — the idempotent producer's sequence rules both stores apply.

Inside the LMDB store: :mod:`~logsvc.storage.keys` (key layout), :mod:`~logsvc.storage.state`
(in-memory catalog, persisted partition state), :mod:`~logsvc.storage.environment` (opening),
:mod:`~logsvc.storage.writer` (the group-commit thread; full disks and storage failures),
:mod:`~logsvc.storage.ops` (what it writes), :mod:`~logsvc.storage.retention` (trim, retention),
:mod:`~logsvc.storage.timeindex` (offsets for times), :mod:`~logsvc.storage.guard` (readers vs.
map resizes), :mod:`~logsvc.storage.lock` (one writing process per data directory).
"""
