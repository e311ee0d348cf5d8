"""The read guard: lets a map resize (and close) wait until no read transaction is open.

LMDB's ``set_mapsize`` needs every transaction of the process closed (py-lmdb aborts the ones
still open, and a reader's memoryviews would point into an unmapped region). Readers hold the
guard shared for the few microseconds of their transaction; the writer takes it exclusive to
resize, which waits for the readers in flight and holds new ones off until the resize is done.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from logsvc.storage import rules


class ReadGuard:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._exclusive = False
        self._closed = False

    def acquire_shared(self) -> None:
        """Enter as a reader; Unavailable once the store is closed."""
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            if self._closed:
                raise rules.closed()
            self._readers += 1

    def release_shared(self) -> None:
        with self._cond:
            self._readers -= 1
            if not self._readers and self._exclusive:
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """No reader inside while the block runs."""
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._exclusive = True
            while self._readers:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()

    def close(self) -> None:
        """Refuse new readers from now on (call inside :meth:`exclusive`)."""
        self._closed = True
