"""Which CPUs a benchmark and the brokers it starts run on (``--cpus``).

- ``shared`` (the default): wherever the kernel's scheduler puts each thread, as an application
  and a broker on one machine run.
- ``split``: the benchmark process on the first half of the CPUs it may use and every broker it
  starts (the paired rounds' new brokers and the restarted one included) on the other half; on a
  2-core machine one core each, as a client and a broker on two machines. Every thread of a process
  is pinned (``sched_setaffinity`` is per thread, and a thread started later inherits its
  creator's CPUs). The raw-LMDB floors run in the benchmark process, so on its half.

  On the reference machine (2 cores, ``--page-cache full``) this steadied the long run's read
  windows: their rates varied by 2.8 - 3.4 % (coefficient of variation over the ten windows of
  each of three runs) against 7.3 - 7.8 % shared (two runs), because the client's CPU per record
  read stopped moving with where its threads ran. Produce windows varied as much either way (7.7 -
  8.5 % split): the broker is then the limit on its one core, and its kernel time per record (the
  page cache taking the log's writes) moves from window to window.
"""

from __future__ import annotations

import contextlib
import os

STATES = ("shared", "split")


def split() -> tuple[frozenset[int], frozenset[int]]:
    """The benchmark's CPUs and its brokers': the first half of the CPUs this process may use
    (rounded down, at least one) and the rest. Exits when there are fewer than two."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        raise SystemExit(f"--cpus split needs two CPUs or more; this process may use {len(usable)}")
    half = len(usable) // 2
    return frozenset(usable[:half]), frozenset(usable[half:])


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Every thread of process ``pid`` (0: this one) on ``cpus`` from now on."""
    for task in os.listdir(f"/proc/{pid or os.getpid()}/task"):
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(int(task), cpus)
