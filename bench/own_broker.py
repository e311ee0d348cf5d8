"""The broker a benchmark runs against: the one at ``--server`` when it is given, else its own
``logsvc serve`` on a temporary data directory and a free port (metrics off), SIGTERMed at the end.

The benchmarks are run as scripts (``python bench/x.py``), so this module is imported as a sibling:
``from own_broker import broker``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def broker(server: str | None, *extra: str) -> Iterator[str]:
    """The address of ``server`` when given, else of :func:`own_broker` started with ``extra`` flags."""
    if server:
        yield server
        return
    with own_broker(*extra) as address:
        yield address


@contextmanager
def own_broker(*extra: str) -> Iterator[str]:
    """``logsvc serve [EXTRA]`` on a temporary data directory; yields its address."""
    with own_broker_process(*extra) as (address, _):
        yield address


@contextmanager
def own_broker_process(*extra: str) -> Iterator[tuple[str, int]]:
    """As :func:`own_broker`, yielding ``(address, pid)`` (to read the broker's RSS and threads)."""
    with tempfile.TemporaryDirectory(prefix="logsvc-bench-") as tmp:
        cmd = [sys.executable, "-m", "logsvc.cli", "serve", "--data-dir", tmp, "--listen", "127.0.0.1:0"]
        proc = subprocess.Popen(
            [*cmd, "--metrics-port", "-1", *extra], stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert proc.stderr is not None
        address = None
        for raw in proc.stderr:
            m = re.search(rb"listening on (\S+:\d+)", raw)
            if m:
                address = m.group(1).decode()
                break
        if address is None:
            proc.wait()
            raise SystemExit("benchmark broker did not start")
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        try:
            yield address, proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
