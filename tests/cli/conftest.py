"""The CLI under test is the real thing: ``python -m logsvc.cli`` as a subprocess, against a real
``logsvc serve`` subprocess (one per test session; tests use their own topic names)."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

_names = itertools.count()
READY = re.compile(r"^logsvc listening on (\S+:\d+) \(metrics (?:http://\S+/metrics|off)\)$")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's LOGSVC_* settings, warnings turned into errors."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSVC_")}
    env["PYTHONWARNINGS"] = "error"
    env.update(extra)
    return env


class ServeProcess:
    """`logsvc serve` as a child process; its address is read from the line it prints when ready."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.address = ""
        self.stderr_lines: list[str] = []
        cmd = [sys.executable, "-m", "logsvc.cli", "serve", "--data-dir", str(data_dir)]
        cmd += ["--listen", "127.0.0.1:0", "--metrics-port", "0", *extra]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env()
        )
        self._ready = threading.Event()
        self._pump = threading.Thread(target=self._read_stderr, daemon=True)
        self._pump.start()
        if not self._ready.wait(20):
            self.kill()
            raise RuntimeError("logsvc serve did not start: " + self.stderr_text())

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip("\n")
            self.stderr_lines.append(line)
            m = READY.match(line)
            if m and not self._ready.is_set():
                self.address = m.group(1)
                self._ready.set()

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    def _reap(self, timeout_s: float) -> int:
        code = self.proc.wait(timeout_s)
        self._pump.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code

    def terminate(self, timeout_s: float = 20) -> int:
        """SIGTERM, then the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self._reap(timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self._reap(10)


class Cli:
    """Runs ``logsvc ...`` against one broker address."""

    def __init__(self, address: str, data_dir: Path) -> None:
        self.address = address
        self.data_dir = data_dir

    def argv(self, *args: str, server: bool = True) -> list[str]:
        return [sys.executable, "-m", "logsvc.cli", *(["--server", self.address] if server else []), *args]

    def run(
        self, *args: str, input: bytes = b"", server: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """``logsvc [--server ADDRESS] ARGS...`` with ``input`` on stdin; ``env`` adds variables."""
        argv = self.argv(*args, server=server)
        return subprocess.run(argv, input=input, capture_output=True, timeout=30, env=cli_env(**(env or {})))

    def ok(self, *args: str, input: bytes = b"", server: bool = True) -> subprocess.CompletedProcess[bytes]:
        """Run and require exit 0 with no traceback on stderr."""
        done = self.run(*args, input=input, server=server)
        assert done.returncode == 0, f"exit {done.returncode}: {done.stderr.decode(errors='replace')}"
        assert b"Traceback" not in done.stderr
        return done

    def fails(self, *args: str, input: bytes = b"", code: int = 1) -> str:
        """Run, require exit ``code``, one ``error:`` line on stderr; return that line."""
        done = self.run(*args, input=input)
        stderr = done.stderr.decode(errors="replace")
        assert done.returncode == code, f"exit {done.returncode}: {stderr}"
        assert "Traceback" not in stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        return lines[0]

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.argv(*args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env()
        )

    def new_topic(self, partitions: int = 1, *config: str) -> str:
        name = f"t{next(_names)}-{os.getpid()}"
        self.ok(
            "topics", "create", name, "--partitions", str(partitions), *(a for c in config for a in ("--config", c))
        )
        return name


@pytest.fixture(scope="session")
def cli_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One ``logsvc serve`` for the CLI tests, on a free port."""
    proc = ServeProcess(tmp_path_factory.mktemp("cli") / "data")
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def cli(cli_broker: ServeProcess) -> Cli:
    return Cli(cli_broker.address, cli_broker.data_dir)
