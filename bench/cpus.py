"""Which CPUs a benchmark and the brokers it starts run on (``--cpus``).

- ``shared`` (the default, but for the long run of :mod:`produce_fetch`): wherever the kernel's
  scheduler puts each thread, as an application and a broker on one machine run.
- ``split``: the benchmark process on the first half of the CPUs it may use and every broker it
  starts (the paired rounds' new brokers and the restarted one included) on the other half; on a
  2-core machine one core each, as a client and a broker on two machines. Every thread of a process
  is pinned (``sched_setaffinity`` is per thread, and a thread started later inherits its
  creator's CPUs). The raw-LMDB floors run in the benchmark process, so on its half.

  On the reference machine (2 cores, ``--page-cache full``, fresh clones) this steadied the long
  run's read windows: their rates varied by 0.7 - 3.3 % (coefficient of variation over the ten
  windows of each of nine runs) against 4.7 - 8.9 % shared (five runs), because the client, the
  limit when reading, stopped spending more CPU per record in some windows than in others.
  Produce windows varied by 3.5 - 6.2 % split (nine runs) against 5.4 - 9.3 % shared (five).
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
