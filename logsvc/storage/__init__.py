"""Storage: the :class:`~logsvc.storage.base.Store` contract and its LMDB implementation."""
