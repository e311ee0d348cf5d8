"""The CLI under test is the real thing: ``python -m logsvc.cli`` as a subprocess, against a real
``logsvc serve`` subprocess (one per test session; tests use their own topic names)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BrokerProcess, cli_env

_names = itertools.count()


def start_broker(data_dir: Path) -> BrokerProcess:
    """A started ``logsvc serve`` on free ports, in the CLI tests' environment (see :func:`cli_env`)."""
    return BrokerProcess(data_dir, base_env=cli_env()).start()


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
def cli_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """One ``logsvc serve`` for the CLI tests, on a free port."""
    proc = start_broker(tmp_path_factory.mktemp("cli") / "data")
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def cli(cli_broker: BrokerProcess) -> Cli:
    return Cli(cli_broker.address, cli_broker.data_dir)
