"""Opening the LMDB environment of a data directory: flags, named databases, the format marker,
clearing stale reader slots, and rebuilding the in-memory catalog."""

from __future__ import annotations

import os
from typing import NamedTuple

import lmdb

from logsvc.storage.lock import DirectoryLock
from logsvc.storage.state import FORMAT, FORMAT_VERSION, Catalog, Dbs, load_catalog
from logsvc_wire.errors import NotFound, Unavailable

MAX_READERS = 1024  # concurrent read transactions (gRPC threads) the lock file has room for
MAX_SPARE_TXNS = 16  # read transactions kept for reuse (renewing one is cheaper than beginning)


class Environment(NamedTuple):
    env: lmdb.Environment
    dbs: Dbs
    catalog: Catalog
    stale_readers_cleared: int
    lock: DirectoryLock | None  # held by writable opens until the store closes


def open_environment(path: str, *, sync: bool, map_size_bytes: int, readonly: bool) -> Environment:
    """Open (creating when writable) the environment in directory ``path``.

    Read-only opens (inspect tools, possibly while a broker has the directory open) register in
    the lock file like any LMDB reader, so the broker's writer never reuses pages they are still
    reading; only when the lock file cannot be written (a read-only mount, another user's files)
    do they fall back to ``lock=False``, a best-effort snapshot. The map size is taken from the
    file. NotFound when there is no store.

    A writable open first takes the directory's :class:`~logsvc.storage.lock.DirectoryLock`
    (DataDirectoryLocked while another process holds it); read-only opens do not.
    """
    lock = None
    if not readonly:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise Unavailable(f"cannot create the data directory {path}: {e.strerror or e}", path=path) from e
        lock = DirectoryLock.acquire(path)
    try:
        return _open_locked(path, sync=sync, map_size_bytes=map_size_bytes, readonly=readonly, lock=lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _open_locked(
    path: str, *, sync: bool, map_size_bytes: int, readonly: bool, lock: DirectoryLock | None
) -> Environment:
    try:
        if readonly:
            if not os.path.exists(os.path.join(path, "data.mdb")):
                raise NotFound(f"no logsvc data directory at {path}", path=path)
            try:
                env = lmdb.open(path, readonly=True, map_size=0, max_dbs=len(Dbs._fields), max_readers=MAX_READERS)
            except lmdb.Error:
                env = lmdb.open(path, readonly=True, lock=False, map_size=0, max_dbs=len(Dbs._fields))
        else:
            env = lmdb.open(
                path,
                map_size=map_size_bytes,
                max_dbs=len(Dbs._fields),
                sync=sync,
                max_readers=MAX_READERS,
                max_spare_txns=MAX_SPARE_TXNS,
            )
    except (lmdb.Error, OSError) as e:
        raise Unavailable(f"cannot open the store at {path}: {e}", path=path) from e
    try:
        cleared = 0 if readonly else env.reader_check()
        dbs = Dbs.open(env, create=not readonly)
        if not readonly:
            with env.begin(write=True) as txn:
                txn.put(FORMAT, FORMAT_VERSION, db=dbs.meta, overwrite=False)
        with env.begin(buffers=True) as txn:
            catalog = load_catalog(txn, dbs)
    except lmdb.NotFoundError as e:
        env.close()
        raise NotFound(f"{path} holds no logsvc data", path=path) from e
    except lmdb.Error as e:
        env.close()
        raise Unavailable(f"cannot open the store at {path}: {e}", path=path) from e
    except BaseException:
        env.close()
        raise
    return Environment(env, dbs, catalog, cleared, lock)
