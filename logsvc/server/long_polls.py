"""Fetches waiting for data, held on the server's event loop instead of a thread each.

A long-polling Fetch (``max_wait_ms``) that finds nothing registers its positions here and awaits
a future; it costs a few hundred bytes, not a thread, so a thousand idle consumers do not starve
produce, health or admin calls. The store calls :meth:`LongPolls.data_changed` after every commit
(on its writer thread); that schedules one sweep on the loop, however many commits come before it
runs. A sweep asks the store once per distinct (topic, partition, offset) that someone waits on
and resolves the futures whose position now has data (or would fail: the read reports it).

All state is touched on the loop thread only; ``data_changed`` is the one entry from other threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence

from logsvc.storage.base import Store

Position = tuple[str, int, int]  # (topic, partition, offset)


class LongPolls:
    """Waiting Fetches of one broker, keyed by the position they wait at."""

    def __init__(
        self, store: Store, loop: asyncio.AbstractEventLoop, on_count: Callable[[int], None] | None = None
    ) -> None:
        self._store = store
        self._on_count = on_count  # told how many calls wait, whenever that changes
        self.waiting_calls = 0
        self._loop = loop
        self._waiting: dict[Position, set[asyncio.Future[None]]] = {}
        self._sweep_lock = threading.Lock()
        self._sweep_scheduled = False
        self._closed = False
        store.add_data_listener(self.data_changed)

    def __len__(self) -> int:
        """How many distinct positions are waited on."""
        return len(self._waiting)

    def data_changed(self) -> None:
        """From any thread: the store changed; check the waiters soon (one sweep per burst). With no
        Fetch waiting this is one attribute read: no sweep is scheduled and the loop is not woken
        (a Fetch registering meanwhile looks at the store again after it counts itself, so it
        cannot miss this change)."""
        if not self.waiting_calls:
            return
        with self._sweep_lock:
            if self._sweep_scheduled or self._loop.is_closed():
                return
            self._sweep_scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
            self._loop.call_soon_threadsafe(self._sweep)

    async def wait(self, positions: Sequence[Position], timeout_s: float) -> bool:
        """Wait until any position has data (True) or ``timeout_s`` passes (False); at once
        when one already has, or when the broker is stopping (:meth:`release_all`)."""
        if self._closed or any(self._store.has_data(*p) for p in positions):
            return True
        if timeout_s <= 0:
            return False
        woken: asyncio.Future[None] = self._loop.create_future()
        for position in positions:
            self._waiting.setdefault(position, set()).add(woken)
        self._count(+1)
        try:
            # A commit between the first look and the count saw no one waiting and woke no one:
            # look again now that data_changed sees this call.
            if any(self._store.has_data(*p) for p in positions):
                return True
            await asyncio.wait_for(woken, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            self._count(-1)
            for position in positions:
                waiters = self._waiting.get(position)
                if waiters is not None:
                    waiters.discard(woken)
                    if not waiters:
                        del self._waiting[position]

    def _count(self, change: int) -> None:
        self.waiting_calls += change
        if self._on_count is not None:
            self._on_count(self.waiting_calls)

    def release_all(self) -> None:
        """On the loop: the broker is stopping; every waiting Fetch answers now."""
        self._closed = True
        for waiters in self._waiting.values():
            for woken in waiters:
                if not woken.done():
                    woken.set_result(None)

    def _sweep(self) -> None:
        with self._sweep_lock:
            self._sweep_scheduled = False
        has_data = self._store.has_data
        for position, waiters in list(self._waiting.items()):
            if has_data(*position):
                for woken in waiters:
                    if not woken.done():
                        woken.set_result(None)
