"""The state of the machine's memory a benchmark runs in (``--page-cache``).

Writing a record batch into LMDB copies it into the page cache, and what that copy costs depends on
where the kernel finds the page. On a VM whose balloon device reports free pages to its host
(virtio-balloon free page reporting, as on the reference machine), a page that has been free for a
few seconds goes back to the host, and the first write into it waits for the host to back it again:
raw LMDB writing a million records fsync'd used 0.1 - 0.35 CPU-seconds into such pages in the
benchmarks' floors, against 0.03 - 0.04 s into pages the kernel reclaims from the page cache (see
the README). So a run on a machine with free memory measures, besides the broker, how long ago that
memory was freed.

- ``as-found`` (the default, but for the long run of :mod:`produce_fetch`): the machine as it is. A
  run right after another one that freed gigabytes writes into those pages cheaply for a while, then
  into pages the host must back. That alone moves a long run's end against its start: raw LMDB
  with no broker (ad hoc, 5 M-record windows fsync'd in 100-batch commits, right after another run)
  wrote its first windows at 2.86 - 3.06 M records/s and its last at 2.44 - 2.60 M (-9 % and -20 %
  in two runs), yet in seven alternating rounds after, a new environment wrote no faster than the
  50 M-record one (median ratio 1.00). So the long run of :mod:`produce_fetch` runs ``full`` unless
  told otherwise.
- ``full``: before the run, the page cache is filled with a sparse file as large as the memory
  available less :data:`RESERVE_BYTES`, read once (a hole reads as zeros, with no disk I/O). Every
  page the run writes then comes from the kernel reclaiming page cache, from that file first (read
  once, it is the oldest and least used of what the cache holds), as it does on a broker whose log
  has filled the machine's memory: the steady state of a long-running log server. The file is
  removed when the run ends, which leaves gigabytes freed for what runs next.

  A kernel that runs DAMON proactive reclaim undoes that slowly: on the reference machine a
  kdamond pages out page cache nobody has touched for a minute (``pageout`` of unmapped file pages).
  With the cache filled and nothing else running it paged out 23 MiB a second, 4.1 GiB in three
  minutes, as long as ``make bench-long`` runs; memory that then stays free goes to the host. So
  ``full`` also switches off, for the run (the fill included), each kdamond with a ``pageout``
  scheme (it needs root; without it, it says so and the run goes on), and switches it on again when
  the run ends, also on SIGTERM or Ctrl-C (a kill -9 leaves it off: ``echo on >
  /sys/kernel/mm/damon/admin/kdamonds/N/state``). How much that moves the figures was not shown:
  the raw-LMDB floor stayed at 0.03 - 0.045 s per million in 52 of 60 windows with it running (six
  runs) and 52 of 60 with it off (six runs).

  The reference machine's kernel also reports free pages to the host as soon as it finds them free
  (its page_reporting module's ``min_free_ms`` is 0), and the host takes them back. The kernel
  reclaims page cache ahead of the writes, a few MiB at a time, so some of the pages the broker
  then writes into have already gone to the host, and the copy into them waits for the host to
  back them again. In a profile of the broker (``perf``, page cache full, the broker on a core of
  its own) the two slowest of twenty million-record blocks spent 17 times as long as the others
  copying the log's writes into the page cache (``copy_folio_from_iter_atomic``), and nothing else
  differed. So ``full`` also sets ``min_free_ms`` to :data:`REPORTING_HOLD_MS` for the run (where
  the parameter exists and as root), and back at the end, also on SIGTERM or Ctrl-C (after a kill -9:
  ``echo 0 > /sys/module/page_reporting/parameters/min_free_ms``). Pages that stay free for a
  minute still go back to the host. With the hold, the broker's system time per million records
  produced stayed at 0.044 - 0.078 s in all 140 windows of fourteen ``make bench-long`` runs,
  where it had reached 0.102 s without it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator

STATES = ("as-found", "full")
#: memory left free by ``full``, for the run's processes before the kernel has to reclaim anything
RESERVE_BYTES = 512 << 20
READ_CHUNK_BYTES = 16 << 20
#: DAMON's sysfs interface: one directory per kdamond (kernel thread), each with a ``state`` file
KDAMONDS = "/sys/kernel/mm/damon/admin/kdamonds"
#: how long a free page must have stayed free before the kernel reports it to the host, where the
#: machine's kernel lets that be set (a parameter of its page_reporting module; mainline has none)
REPORTING_MIN_FREE_MS = "/sys/module/page_reporting/parameters/min_free_ms"
#: ``full``'s hold on that: pages the kernel frees while the run writes are reused well within it
REPORTING_HOLD_MS = 60_000


def available_bytes() -> int:
    """``MemAvailable`` from /proc/meminfo: memory the kernel can hand out without swapping."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


@contextlib.contextmanager
def page_cache(state: str) -> Iterator[str]:
    """The run's memory in ``state`` (see the module docstring) while the block runs; yields the
    label for the benchmark's last line (``as_found`` or ``full``)."""
    if state == "as-found":
        yield "as_found"
        return
    size = max(0, available_bytes() - RESERVE_BYTES)
    with (
        _sigterm_exits(),
        reclaim_paused(),
        reporting_held(),
        tempfile.TemporaryDirectory(prefix="logsvc-bench-fill-") as tmp,
    ):
        path = os.path.join(tmp, "fill")
        with open(path, "wb") as f:
            f.truncate(size)
        started = time.perf_counter()
        buffer = bytearray(READ_CHUNK_BYTES)
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass
        seconds = time.perf_counter() - started
        print(f"page cache filled: {size / 2**30:.1f} GiB read from a sparse file in {seconds:.1f} s", file=sys.stderr)
        yield "full"


def reclaiming_kdamonds() -> list[str]:
    """The ``state`` files of the running kdamonds with a ``pageout`` scheme (none without DAMON)."""
    found = []
    for state in sorted(glob.glob(os.path.join(KDAMONDS, "*", "state"))):
        kdamond = os.path.dirname(state)
        actions = glob.glob(os.path.join(kdamond, "contexts", "*", "schemes", "*", "action"))
        if _read(state) == "on" and any(_read(action) == "pageout" for action in actions):
            found.append(state)
    return found


@contextlib.contextmanager
def reclaim_paused() -> Iterator[None]:
    """DAMON's proactive reclaim off while the block runs (see the module docstring), then on again."""
    paused = []
    for state in reclaiming_kdamonds():
        try:
            _write(state, "off")
        except OSError as e:
            print(
                f"DAMON reclaim left running ({state}: {e.strerror}): the filled cache drains during the run",
                file=sys.stderr,
            )
            continue
        paused.append(state)
        print(f"DAMON reclaim off for the run ({state}); switched on again when it ends", file=sys.stderr)
    try:
        yield
    finally:
        for state in paused:
            _write(state, "on")


@contextlib.contextmanager
def reporting_held(path: str = REPORTING_MIN_FREE_MS, hold_ms: int = REPORTING_HOLD_MS) -> Iterator[None]:
    """Free pages reported to the host only after ``hold_ms`` free while the block runs (see the
    module docstring), then as before; nothing where the kernel has no such setting."""
    before = _hold_reporting(path, hold_ms)
    try:
        yield
    finally:
        if before is not None:
            _write(path, before)


def _hold_reporting(path: str, hold_ms: int) -> str | None:
    """Set ``path`` to ``hold_ms`` unless it holds as long already; its value before, or None when
    left as it was (no such setting, already held, or not writable)."""
    try:
        before = _read(path)
    except FileNotFoundError:
        return None
    if int(before) >= hold_ms:
        return None
    try:
        _write(path, str(hold_ms))
    except OSError as e:
        print(
            f"free page reporting left as it is ({path}: {e.strerror}): the run's writes may wait for the host",
            file=sys.stderr,
        )
        return None
    print(f"free pages reported to the host after {hold_ms} ms free, for the run ({before} after it)", file=sys.stderr)
    return before


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM ends the run through ``SystemExit`` while the block runs, so that what the blocks
    around it changed on the machine is put back."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
