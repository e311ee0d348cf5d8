"""The data-directory lock: one writing process per data directory, as Kafka's ``.lock``.

A writable open takes an exclusive, non-blocking ``flock`` on ``logsvc.lock`` inside the
directory and writes its PID there (for the message another process gets). The kernel drops the
lock when the holder closes it or dies, even by SIGKILL, so a file left behind with a dead PID
never blocks anyone: only a live holder does. The file is never deleted (deleting it while
another process has it open would let two processes each lock a different file of that name).

Read-only opens take no lock: LMDB lets readers share the environment with its writer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from logsvc_wire.errors import DataDirectoryLocked, Unavailable

LOCK_FILE = "logsvc.lock"


class DirectoryLock:
    """The held lock of one data directory. Use :meth:`acquire`; :meth:`release` when done."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: str) -> DirectoryLock:
        """Lock directory ``path`` (which must exist) for this process, or raise
        DataDirectoryLocked naming the directory and, where it is known, the holder's PID."""
        lock_path = os.path.join(path, LOCK_FILE)
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise Unavailable(f"cannot open the lock file {lock_path}: {e.strerror or e}", path=path) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            holder = f"process {pid}" if pid is not None else "another process"
            raise DataDirectoryLocked(
                f"data directory {path} is locked by {holder} (a running logsvc broker?); "
                "stop it or use another --data-dir",
                path=path,
                pid=pid,
            ) from None
        except OSError as e:
            os.close(fd)
            raise Unavailable(f"cannot lock {lock_path}: {e.strerror or e}", path=path) from e
        with contextlib.suppress(OSError):  # the PID only serves other processes' messages
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Give the lock up (safe to call twice)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no PID left behind for the next process to report
        os.close(fd)  # closing the last descriptor of the open file releases the flock


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
