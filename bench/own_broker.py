"""The broker a benchmark runs against: the one at ``--server`` when it is given, else its own
``logsvc serve`` on a temporary data directory and a free port (metrics off), SIGTERMed at the end.

The benchmarks are run as scripts (``python bench/x.py``), so this module is imported as a sibling:
``from own_broker import broker``. :func:`cpu_seconds` reads a broker's CPU time from /proc
(:func:`cpu_times` split into user and system), and
:func:`restart_seconds` stops a broker and times a new one on the same data directory.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from cpus import pin

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextmanager
def broker(server: str | None, *extra: str) -> Iterator[str]:
    """The address of ``server`` when given, else of :func:`own_broker` started with ``extra`` flags."""
    with broker_process(server, *extra) as (address, _):
        yield address


@contextmanager
def broker_process(server: str | None, *extra: str) -> Iterator[tuple[str, int | None]]:
    """As :func:`broker`, yielding ``(address, pid)``: the pid None for a given ``server``."""
    if server:
        yield server, None
        return
    with own_broker_process(*extra) as (address, pid):
        yield address, pid


@contextmanager
def own_broker(*extra: str) -> Iterator[str]:
    """``logsvc serve [EXTRA]`` on a temporary data directory; yields its address."""
    with own_broker_process(*extra) as (address, _):
        yield address


@contextmanager
def own_broker_process(*extra: str) -> Iterator[tuple[str, int]]:
    """As :func:`own_broker`, yielding ``(address, pid)`` (to read the broker's CPU, RSS and threads)."""
    with tempfile.TemporaryDirectory(prefix="logsvc-bench-") as tmp:
        proc, address, _ = start(tmp, *extra)
        try:
            yield address, proc.pid
        finally:
            stop(proc)


class BrokerOnDir:
    """A broker on a data directory that outlives it, so it can be stopped and started again."""

    def __init__(
        self, data_dir: str, *extra: str, env: dict[str, str] | None = None, cpus: frozenset[int] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.extra = extra
        self.env = env
        self.cpus = cpus
        self.proc, self.address, self.metrics_url = start(data_dir, *extra, metrics=True, env=env, cpus=cpus)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def restart_seconds(self) -> float:
        """Stop the broker (SIGTERM, wait for it to exit), start a new one on the same data
        directory and port, and time from its start to the first ListTopics it answers."""
        from logsvc_client import Admin  # the benchmark's own import path (clients/ is installed)

        stop(self.proc)
        started = time.perf_counter()
        self.proc, self.address, self.metrics_url = start(
            self.data_dir, *self.extra, listen=self.address, metrics=True, env=self.env, cpus=self.cpus
        )
        with Admin(self.address) as admin:
            admin.list_topics()
        return time.perf_counter() - started

    def writer_counts(self) -> tuple[int, int]:
        """``(commits, batches)`` the broker's storage writer has done so far (from /metrics)."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        counts = dict(re.findall(r"^logsvc_storage_(commits|write_batches)_total (\S+)$", text, re.MULTILINE))
        return int(float(counts["commits"])), int(float(counts["write_batches"]))

    def close(self) -> None:
        stop(self.proc)


def start(
    data_dir: str,
    *extra: str,
    listen: str = "127.0.0.1:0",
    metrics: bool = False,
    env: dict[str, str] | None = None,
    cpus: frozenset[int] | None = None,
) -> tuple[subprocess.Popen[bytes], str, str]:
    """``logsvc serve`` on ``data_dir``; the process, its address once it listens, and its /metrics
    URL (on a free port with ``metrics``, else metrics are off and the URL is empty). ``env``: more
    environment variables for it (settings without a flag, ``LOGSVC_EVENT_LOOP=asyncio``). ``cpus``:
    every thread of it on these CPUs from the moment it listens (:mod:`cpus`), before any request."""
    cmd = [sys.executable, "-m", "logsvc.cli", "serve", "--data-dir", data_dir, "--listen", listen]
    port = "0" if metrics else "-1"
    # A group's first assignment comes at once: the figures are of consuming and rebalancing, not of
    # the 3 s an empty group waits by default for more members (initial_rebalance_delay_ms)
    environment = {"LOGSVC_INITIAL_REBALANCE_DELAY_MS": "0", **os.environ, **(env or {})}
    proc = subprocess.Popen(
        [*cmd, "--metrics-port", port, *extra], stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=environment
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
    if cpus is not None:
        pin(proc.pid, cpus)
    url = re.search(rb"metrics (http://\S+/metrics)", raw)
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, address, url.group(1).decode() if url else ""


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of process ``pid`` (all its threads) so far, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()  # after "pid (comm) ": field 3 is state
    return int(fields[11]) / _CLOCK_TICKS, int(fields[12]) / _CLOCK_TICKS  # utime, stime (fields 14, 15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    return sum(cpu_times(pid))
