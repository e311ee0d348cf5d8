"""The single writer thread, which group-commits every write.

Callers :meth:`Writer.submit` an :class:`~logsvc.storage.ops.Op` and block until it is done. The
thread blocks on the queue (no sleep-based batching, so a lone request is written at once), takes
the first op, drains whatever else is pending (bounded by :data:`MAX_GROUP_OPS` and
:data:`MAX_GROUP_BYTES`), runs them all in one write transaction, commits once (one fsync), and
only then publishes the new state and completes every waiter. An op whose check fails fails
alone; the others commit.

When the LMDB map is full the transaction is aborted, the map doubled (up to
``max_map_size_bytes``; 0 = unlimited) and the group retried. When the map cannot grow or the
disk is full, the appends in the group fail with StorageFull and the rest (offset commits, trims,
retention) are retried without them, so they keep working; reads never depend on the writer.
A commit error is "disk full" whatever its errno when the filesystem has little space left
(:func:`space_left_bytes`): LMDB reports a short write, what a full disk gives, as EIO.

Any other commit error (a failed fdatasync, an I/O error, LMDB's MDB_PANIC after a failed meta
page write) means the environment can no longer be trusted to write: the writer fails for good
(:attr:`Writer.failure`). It logs the cause once, tells ``on_failure`` (the broker turns health
NOT_SERVING and exits), and fails the group, everything queued and every later submit with
StorageFailed; nothing of them was acknowledged. Retrying in the same process is not safe: after
a failed fsync the kernel may have dropped the unwritten pages, and after MDB_PANIC LMDB refuses
every transaction until the environment is opened again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import lmdb

from logsvc.storage import rules
from logsvc.storage.guard import ReadGuard
from logsvc.storage.ops import Op, TxnContext
from logsvc.storage.retention import ApplyRetention
from logsvc.storage.state import Catalog, Dbs
from logsvc_wire.errors import InternalError, LogsvcError, StorageFailed, StorageFull

log = logging.getLogger(__name__)

MAX_GROUP_OPS = 10_000
MAX_GROUP_BYTES = 64 * 1024 * 1024
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
#: A commit error is taken for a full disk when less than this (plus twice the group's bytes)
#: is left on the data directory's filesystem
DISK_FULL_MARGIN_BYTES = 1024 * 1024


class WriterStats:
    """Counters for tests and metrics: ``commits`` transactions for ``ops`` completed ops, which
    carried ``batches`` record batches (appended or found duplicate)."""

    def __init__(self) -> None:
        self.commits = 0
        self.ops = 0
        self.batches = 0
        self.map_grows = 0


class _Stop:
    """Queued by :meth:`Writer.close`: everything queued before it is still written."""


class Writer:
    def __init__(
        self,
        env: lmdb.Environment,
        dbs: Dbs,
        catalog: Catalog,
        guard: ReadGuard,
        *,
        path: str,
        clock: Callable[[], int],
        max_map_size_bytes: int,
        retention_check_interval_ms: int,
        on_commit: Callable[[], None],
        on_failure: Callable[[StorageFailed], None],
    ) -> None:
        self._env = env
        self._path = path
        self._on_failure = on_failure
        self.failure: StorageFailed | None = None  # set once the storage can no longer write
        self._disk_full = False  # logged once per episode, not per refused append
        self._dbs = dbs
        self._catalog = catalog
        self._guard = guard
        self._clock = clock
        self._max_map_size = max_map_size_bytes
        self._retention_interval_s = retention_check_interval_ms / 1000
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[Op | _Stop] = queue.SimpleQueue()
        self._lock = threading.Lock()  # orders submit() against close()'s stop marker
        self._closed = False
        self.stats = WriterStats()
        self._thread = threading.Thread(target=self._run, name="logsvc-storage-writer", daemon=True)
        self._thread.start()

    def submit(self, op: Op) -> Any:
        """Queue ``op`` and block until it is durable; its result, or its error raised."""
        self.enqueue(op)
        return op.wait()

    def enqueue(self, op: Op) -> None:
        """Queue ``op`` without waiting: its ``on_complete`` is called on this thread once it is
        done (StorageFailed or Unavailable raised here when nothing can be queued any more)."""
        with self._lock:
            if self.failure is not None:
                raise _copy(self.failure)
            if self._closed:
                raise rules.closed()
            self._queue.put(op)

    def close(self) -> None:
        """Write everything already queued, then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_Stop())
        self._thread.join()

    # -- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        interval = self._retention_interval_s
        next_retention = time.monotonic() + interval if interval > 0 else math.inf
        while True:
            timeout = next_retention - time.monotonic()
            if timeout <= 0:
                self._run_safely([ApplyRetention(self._clock())])
                next_retention = time.monotonic() + interval
            else:
                try:
                    first = self._queue.get(timeout=min(timeout, threading.TIMEOUT_MAX))
                except queue.Empty:
                    continue
                if isinstance(first, _Stop):
                    return
                ops, stop = self._drain(first)
                self._run_safely(ops)
                if stop:
                    return
            if self.failure is not None:
                self._fail_queued(self.failure)
                return

    def _fail_queued(self, failure: StorageFailed) -> None:
        """Answer whatever was queued before the failure (submit queues nothing after it)."""
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return
            if not isinstance(op, _Stop):
                self._fail([op], failure)

    def _drain(self, first: Op) -> tuple[list[Op], bool]:
        ops = [first]
        nbytes = first.nbytes
        while len(ops) < MAX_GROUP_OPS and nbytes < MAX_GROUP_BYTES:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(op, _Stop):
                return ops, True
            ops.append(op)
            nbytes += op.nbytes
        return ops, False

    def _run_safely(self, ops: list[Op]) -> None:
        try:
            self._run_group(ops)
        except Exception as e:  # never let the thread die: every waiter must be answered
            log.exception("storage writer failed")
            self._fail([op for op in ops if not op.completed], InternalError(f"storage write failed: {e}"))

    def _run_group(self, ops: list[Op]) -> None:
        pending = ops
        while pending:
            try:
                txn = self._env.begin(write=True, buffers=True)
            except lmdb.Error as e:  # MDB_PANIC: an earlier failure left the environment unusable
                self._storage_failed(pending, e)
                return
            ctx = TxnContext(txn, self._dbs, self._catalog, self._clock)
            current: Op | None = None
            committing = False
            try:
                for op in pending:
                    op.error = None
                    current = op
                    try:
                        plan = op.check(ctx)
                    except LogsvcError as e:  # nothing of it written: it fails alone
                        op.error = e
                    else:
                        op.result = op.write(ctx, plan)
                current = None
                ctx.flush()
                committing = True
                txn.commit()
            except lmdb.MapFullError:
                _abort(txn)
                if not self._grow():
                    pending = self._refuse_appends(pending, self._map_full())
                continue
            except Exception as e:
                _abort(txn)
                storage = committing or isinstance(e, lmdb.PanicError) or _disk_full(e) or _io_error(e)
                if storage and self._is_disk_full(e, pending):
                    pending = self._refuse_appends(pending, StorageFull(f"storage is full: the disk is full ({e})"))
                elif storage:
                    self._storage_failed(pending, e)
                    return
                elif current is not None:  # a bug in one op: fail it, retry the others
                    log.exception("storage write of %s failed", type(current).__name__)
                    self._fail([current], InternalError(f"storage write failed: {type(e).__name__}: {e}"))
                    pending = [op for op in pending if op is not current]
                else:
                    log.exception("storage commit failed")
                    self._fail(pending, InternalError(f"storage commit failed: {type(e).__name__}: {e}"))
                    return
                continue
            ctx.publish()
            self.stats.commits += 1
            self.stats.ops += len(pending)
            self.stats.batches += sum(op.nbatches for op in pending)
            if self._disk_full and any(op.appends and op.error is None for op in pending):
                self._disk_full = False
                log.warning("storage has room again: appends are accepted")
            for op in pending:
                op.complete()
            self._on_commit()
            return

    def _is_disk_full(self, e: BaseException, pending: list[Op]) -> bool:
        """Whether commit error ``e`` comes from a full disk: ENOSPC/EDQUOT, or any error while
        the filesystem has less than twice the group's bytes plus DISK_FULL_MARGIN_BYTES left."""
        if not _disk_full(e):
            left = space_left_bytes(self._path)
            if left is None or left >= 2 * sum(op.nbytes for op in pending) + DISK_FULL_MARGIN_BYTES:
                return False
        if not self._disk_full:
            self._disk_full = True
            log.error("storage disk is full (%s): appends are refused until space is freed", e)
        return True

    def _storage_failed(self, pending: list[Op], cause: BaseException) -> None:
        """The environment cannot be trusted to write any more: fail for good (see the module doc)."""
        failure = StorageFailed(
            f"storage at {self._path} can no longer write ({type(cause).__name__}: {cause}); "
            "the broker stops and must be restarted",
            path=self._path,
        )
        with self._lock:  # from here on submit() refuses instead of queueing
            self.failure = failure
        log.critical("%s", failure.message)  # once: the requests failed with it are not logged
        try:
            self._on_failure(failure)
        except Exception:
            log.exception("storage failure listener failed")
        self._fail(pending, failure)

    def _grow(self) -> bool:
        current = self._env.info()["map_size"]
        target = current * 2
        if self._max_map_size:
            target = min(target, self._max_map_size)
        if target <= current:
            return False
        with self._guard.exclusive():
            self._env.set_mapsize(target)
        self.stats.map_grows += 1
        log.info("storage map grown from %d to %d bytes", current, target)
        return True

    def _map_full(self) -> StorageFull:
        size = self._env.info()["map_size"]
        return StorageFull(
            f"storage is full: the LMDB map is at its maximum size of {size} bytes (max_map_size_bytes)",
            map_size_bytes=size,
        )

    def _refuse_appends(self, pending: list[Op], error: StorageFull) -> list[Op]:
        """Fail the appends with ``error``; the ops left to retry (none when no append was there)."""
        appends = [op for op in pending if op.appends]
        if not appends:
            self._fail(pending, error)
            return []
        self._fail(appends, error)
        return [op for op in pending if not op.appends]

    @staticmethod
    def _fail(ops: list[Op], error: LogsvcError) -> None:
        for op in ops:  # each waiter raises its own instance
            op.error = _copy(error)
            op.result = None
            op.complete()


def space_left_bytes(path: str) -> int | None:
    """Bytes this process may still write on the filesystem of ``path`` (root may use the
    blocks reserved for it); None when it cannot be told."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail
    return blocks * st.f_frsize


def _copy(error: LogsvcError) -> LogsvcError:
    return type(error)(error.message, **error.details)


def _abort(txn: lmdb.Transaction[memoryview]) -> None:
    with contextlib.suppress(lmdb.Error):  # a failed commit already ended it
        txn.abort()


def _io_error(e: BaseException) -> bool:
    """EIO from LMDB before the commit (pages spilled to disk by a large transaction)."""
    return isinstance(e, lmdb.Error) and getattr(e, "code", None) == errno.EIO


def _disk_full(e: BaseException) -> bool:
    if isinstance(e, lmdb.DiskError):
        return True
    code = getattr(e, "errno", None) or getattr(e, "code", None)
    return code in _DISK_FULL
