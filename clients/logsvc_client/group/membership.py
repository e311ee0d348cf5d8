"""Group membership of a consumer: a background thread that joins the group, heartbeats, and
records the assignment the broker hands out. The consumer applies it on its own thread.

The broker's protocol (proto/logsvc/v1/logsvc.proto, "Consumer groups") is cooperative: a member
heartbeats every ``heartbeat_interval_ms`` with the partitions it *owns*; the answer carries the
current generation and the member's assignment; a partition leaves a member only when a heartbeat
no longer reports it, and only then is it handed to its next owner.

The handshake between this thread and the application's thread (:class:`Membership`):

* :meth:`Membership.take` — the application reads the latest assignment. From then on those
  partitions are *held*: every heartbeat reports them as owned, even after the broker has moved
  them elsewhere, until the application calls
* :meth:`Membership.release` — after its revoke callback and the revoke commit. The next heartbeat
  (sent at once) reports them as no longer owned, and the broker hands them over.

So a partition is never consumed by two members at once, and the offsets of a revoked partition
are committed before its next owner starts from them.

Membership can also be *lost* (the session expired, the broker restarted, or the application did
not poll for ``max_poll_interval_ms``): the thread joins again under a new member id, and
:attr:`Snapshot.epoch` changes, which tells the application to drop everything it held (its
commits would be refused anyway).

A static member (``instance_id``) can be *fenced*: another process joined with the same instance
id and took its place. That is fatal: the thread stops, and every later poll raises
:class:`~logsvc_client.errors.FencedInstance` (joining again would only fence the other process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from ..errors import FencedInstance, InternalError, LogsvcError, StaleGeneration, Unavailable, UnknownMember
from ..records import TopicPartition
from ..transport.base import GroupTransport
from ..transport.retry import Backoff

log = logging.getLogger("logsvc_client.group")

REBALANCE_HEARTBEAT_DIVISOR = 4  # heartbeat this much more often while the group reconciles
MIN_HEARTBEAT_S = 0.02
ERROR_BACKOFF = Backoff(base_ms=200, max_ms=5_000)


class Snapshot(NamedTuple):
    """What the application applies: the partitions it may consume now."""

    epoch: int  # changes whenever membership was lost or re-established under a new member id
    version: int  # changes whenever anything here changes
    member_id: str  # "" while not a member
    generation: int  # -1 while not a member
    assignment: frozenset[TopicPartition]


class Membership:
    """One consumer's membership of ``group_id``; see the module docstring.

    ``on_change`` is called (from the heartbeat thread) whenever a new :class:`Snapshot` is ready.
    The membership owns ``transport`` (closed with it); the consumer gives it a connection of its
    own, so heartbeats never queue behind large fetch answers.
    """

    def __init__(
        self,
        transport: GroupTransport,
        group_id: str,
        topics: Sequence[str],
        *,
        on_change: Callable[[], None],
        instance_id: str | None = None,
        session_timeout_ms: int = 10_000,
        assignor: str = "sticky",
        client_id: str = "",
        max_poll_interval_ms: int = 300_000,
        request_timeout_ms: int = 30_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.group_id = group_id
        self.instance_id = instance_id
        self._topics = list(topics)
        self._on_change = on_change
        self._session_timeout_ms = session_timeout_ms
        self._assignor = assignor
        self._client_id = client_id
        self._max_poll_interval_s = max_poll_interval_ms / 1000
        self._request_timeout_s = request_timeout_ms / 1000
        self._heartbeat_timeout_s = min(request_timeout_ms, max(1_000, session_timeout_ms // 2)) / 1000
        self._clock = clock
        self._transport = transport
        self._lock = threading.Lock()
        self._wakeup = threading.Event()  # wakes the heartbeat thread early
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Guarded by _lock:
        self._member_id = ""
        self._generation = -1
        self._epoch = 0
        self._version = 0
        self._assignment: frozenset[TopicPartition] = frozenset()
        self._held: frozenset[TopicPartition] = frozenset()
        self._held_epoch = -1
        self._joined = False
        self._rejoin = False  # join again under the same member id (topics changed, stale generation)
        self._idle = False  # left for exceeding max_poll_interval_ms; joins again at the next poll
        self._error: LogsvcError | None = None
        self._fenced: FencedInstance | None = None  # fatal: never join again
        # Heartbeat thread only:
        self._interval_s = 0.25
        self._rebalancing = False
        self._last_ok = clock()
        self._failures = 0
        # Written by the application thread without the lock (single assignments):
        self.last_poll = clock()
        self._in_poll = False

    # -- the application thread ---------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    def start(self) -> None:
        """Join now (raising what a join raises: TopicNotFound, InvalidRequest, ...), then keep the
        membership alive from a daemon thread. An unreachable broker is not an error here: the
        thread keeps trying, and polls return nothing meanwhile."""
        try:
            self._join(self._member_id)
        except Unavailable as e:
            log.warning("group %s: cannot join yet (%s); retrying in the background", self.group_id, e)
        self._thread = threading.Thread(target=self._run, name=f"logsvc-heartbeat-{self.group_id}", daemon=True)
        self._thread.start()

    def subscribe(self, topics: Sequence[str]) -> None:
        """Change the subscription: the member joins again (same member id) with these topics."""
        with self._lock:
            self._topics = list(topics)
            self._rejoin = True
        self._wakeup.set()

    def take(self) -> Snapshot:
        """The latest snapshot; its assignment counts as held from now on (see the module docs)."""
        with self._lock:
            if self._held_epoch != self._epoch:
                self._held, self._held_epoch = self._assignment, self._epoch
            else:
                self._held |= self._assignment
            return Snapshot(self._epoch, self._version, self._member_id, self._generation, self._assignment)

    def release(self, tps: Iterable[TopicPartition]) -> None:
        """The application stopped consuming ``tps`` (revoke callback and commit done): report them
        released in a heartbeat sent at once."""
        with self._lock:
            self._held -= frozenset(tps)
        self._wakeup.set()

    def credentials(self) -> tuple[str, int, int]:
        """``(member_id, generation, epoch)`` for a commit."""
        with self._lock:
            return self._member_id, self._generation, self._epoch

    def polling(self, inside: bool) -> None:
        """The application entered (or left) poll. The max_poll_interval_ms clock runs only between
        polls; entering one joins again if the member had left for exceeding it."""
        self.last_poll = self._clock()
        self._in_poll = inside
        if inside and self._idle:
            with self._lock:
                self._idle = False
            self._wakeup.set()

    def check(self) -> None:
        """Raise (once) what the last join failed with, e.g. TopicNotFound for a deleted topic; raise
        FencedInstance every time once a newer member took this one's instance id."""
        if self._fenced is not None:
            raise self._fenced
        if self._error is not None:
            with self._lock:
                error, self._error = self._error, None
            if error is not None:
                raise error

    def close(self, leave: bool) -> None:
        """Stop heartbeating; ``leave`` the group (partitions move at once) or, for a static member,
        keep the slot until the session timeout so a restart gets its partitions back."""
        self._stopping.set()
        self._wakeup.set()
        if self._thread is not None:
            self._thread.join(self._heartbeat_timeout_s + 1)
        try:
            with self._lock:
                member_id, joined = self._member_id, self._joined
            if leave and joined:
                self._transport.leave_group(self.group_id, member_id, timeout_s=self._request_timeout_s)
        except LogsvcError as e:
            log.warning("leaving group %s failed (its session will expire): %s", self.group_id, e)
        finally:
            self._transport.close()

    # -- the heartbeat thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            delay = self._step()
            if delay > 0:
                self._wakeup.wait(delay)
            self._wakeup.clear()

    def _step(self) -> float:
        """One heartbeat (or join, or leave); returns how long to wait before the next step."""
        try:
            with self._lock:
                joined, idle, rejoin, member_id = self._joined, self._idle, self._rejoin, self._member_id
            if idle or self._fenced is not None:
                return 3600.0  # polling() wakes us up; a fenced member never joins again
            if not joined or rejoin:
                self._join(member_id)
            elif not self._in_poll and self._clock() - self.last_poll > self._max_poll_interval_s:
                self._leave_idle()
                return 3600.0
            else:
                self._heartbeat()
            self._failures = 0
            return self._next_heartbeat_s()
        except FencedInstance as e:
            log.error("group %s: %s; this consumer stops", self.group_id, e)
            self._fenced = e
            self._lose(rejoin_as="")
            return 3600.0
        except UnknownMember as e:
            log.warning("group %s: %s", self.group_id, e)
            self._lose(rejoin_as="")
            return 0.0
        except StaleGeneration as e:
            log.info("group %s: %s; joining again", self.group_id, e)
            with self._lock:
                self._rejoin = True
            return 0.0
        except Unavailable as e:
            return self._on_unavailable(e)
        except LogsvcError as e:
            log.warning("group %s: %s", self.group_id, e)
            with self._lock:
                self._error = e
            return self._backoff_s()
        except Exception as e:  # a bug: keep the membership alive, tell the application
            log.exception("group %s: heartbeat failed", self.group_id)
            with self._lock:
                self._error = InternalError(f"group membership failed: {e!r}")
            return self._backoff_s()

    def _next_heartbeat_s(self) -> float:
        if self._rebalancing:
            return max(MIN_HEARTBEAT_S, self._interval_s / REBALANCE_HEARTBEAT_DIVISOR)
        return self._interval_s

    def _backoff_s(self) -> float:
        self._failures += 1
        return ERROR_BACKOFF.delay_s(self._failures - 1)

    def _on_unavailable(self, error: Unavailable) -> float:
        """Keep trying; once the session must have expired, stop consuming (another member may
        have the partitions by now) and join again when the broker is back."""
        with self._lock:
            joined, member_id = self._joined, self._member_id
        if joined and (self._clock() - self._last_ok) * 1000 > self._session_timeout_ms:
            log.warning("group %s: no heartbeat for longer than the session timeout (%s)", self.group_id, error)
            self._lose(rejoin_as=member_id)
        else:
            log.debug("group %s: heartbeat failed: %s", self.group_id, error)
        return min(self._interval_s, self._backoff_s())

    def _join(self, member_id: str) -> None:
        with self._lock:
            topics = list(self._topics)
            self._rejoin = False
        try:
            response = self._transport.join_group(
                self.group_id,
                member_id,
                topics,
                instance_id=self.instance_id or "",
                session_timeout_ms=self._session_timeout_ms,
                assignor=self._assignor,
                client_id=self._client_id,
                timeout_s=self._request_timeout_s,
            )
        except UnknownMember:
            if not member_id:
                raise
            log.info("group %s: member %s is gone; joining as a new member", self.group_id, member_id)
            self._lose(rejoin_as="")
            self._join("")
            return
        self._last_ok = self._clock()
        self._interval_s = max(MIN_HEARTBEAT_S, response.heartbeat_interval_ms / 1000)
        self._rebalancing = True
        assignment = response.assignment
        with self._lock:
            if response.member_id != self._member_id:
                self._epoch += 1
            self._member_id = response.member_id
            self._generation = response.generation
            self._assignment = assignment
            self._joined = True
            self._version += 1
        log.info(
            "group %s: joined as %s, generation %d, %d partition(s) now",
            *(self.group_id, response.member_id, response.generation, len(assignment)),
        )
        self._on_change()

    def _heartbeat(self) -> None:
        with self._lock:
            member_id, generation, epoch = self._member_id, self._generation, self._epoch
            owned = self._held | self._assignment if self._held_epoch == epoch else self._assignment
        response = self._transport.heartbeat(
            self.group_id, member_id, generation, owned, timeout_s=self._heartbeat_timeout_s
        )
        self._last_ok = self._clock()
        self._interval_s = max(MIN_HEARTBEAT_S, response.heartbeat_interval_ms / 1000)
        self._rebalancing = response.rebalance_in_progress
        assignment = response.assignment
        with self._lock:
            if self._epoch != epoch or self._member_id != member_id:
                return  # lost or re-joined meanwhile: this answer is about a member that is gone
            changed = assignment != self._assignment
            self._generation = response.generation
            self._assignment = assignment
            if changed:
                self._version += 1
        if changed:
            self._on_change()

    def _leave_idle(self) -> None:
        """The application has not polled for max_poll_interval_ms: give the partitions up."""
        with self._lock:
            member_id = self._member_id
        log.warning(
            "group %s: no poll for longer than max_poll_interval_ms (%.0f ms); leaving the group so others "
            "take over the partitions (the next poll joins again)",
            self.group_id,
            self._max_poll_interval_s * 1000,
        )
        try:
            self._transport.leave_group(self.group_id, member_id, timeout_s=self._request_timeout_s)
        except LogsvcError as e:
            log.warning("group %s: leaving failed (the session will expire): %s", self.group_id, e)
        self._lose(rejoin_as="", idle=True)

    def _lose(self, rejoin_as: str, idle: bool = False) -> None:
        """Membership is gone: nothing may be consumed until the next join."""
        with self._lock:
            self._epoch += 1
            self._version += 1
            self._member_id = rejoin_as
            self._generation = -1
            self._assignment = frozenset()
            self._joined = False
            self._idle = idle
        self._on_change()
