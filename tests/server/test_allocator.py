"""The broker's heap keeps the memory of freed large buffers (``logsvc.server.allocator``): a
process that frees and allocates 24 MB again and again faults its pages in once, not every time,
and an operator's own malloc tunables are left alone. Each case runs in a fresh interpreter, as
``logsvc serve`` does, since the setting is the process's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from logsvc.server.allocator import keep_freed_memory

CYCLES = """
import resource, sys
from logsvc.server.allocator import keep_freed_memory
print(keep_freed_memory() if sys.argv[1] == "keep" else None)

def cycle():  # 24 buffers of 1 MB, every byte written (so every page is touched), then all freed
    held = [b"\\x01" * (1 << 20) for _ in range(24)]
    del held

cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    cycle()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str, **env: str) -> tuple[str, int]:
    """(what keep_freed_memory answered, page faults of 10 more cycles after the first)."""
    done = subprocess.run(
        [sys.executable, "-c", CYCLES, mode], capture_output=True, text=True, timeout=60, env={"PATH": "", **env}
    )
    assert done.returncode == 0, done.stderr
    answer, count = done.stdout.split()
    return answer, int(count)


glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")


@glibc_only
def test_freed_buffers_are_reused_instead_of_faulted_in_again() -> None:
    answer, kept = faults("keep")
    _, default = faults("default")
    assert answer == "True"
    # 24 MB a cycle is about 6,000 pages: glibc's defaults give them back and fault them in again
    assert default > 5 * 6_000
    assert kept < 1_000 and kept * 10 < default


@glibc_only
def test_an_operators_malloc_tunables_are_left_alone() -> None:
    answer, _ = faults("keep", GLIBC_TUNABLES="glibc.malloc.trim_threshold=1000000")
    assert answer == "False"
    assert keep_freed_memory({"MALLOC_TRIM_THRESHOLD_": "1000000"}) is False
