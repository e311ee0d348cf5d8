"""Shared fixtures: a real broker on port 0 over TCP with LMDB in a temp dir, in-process or as a
`logsvc serve` subprocess (for SIGKILL and signal tests); and :class:`ChildProcess`, the stderr
plumbing of every ``logsvc`` subprocess a test starts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import grpc
import pytest

from logsvc import settings as settings_mod
from logsvc.server.app import Broker, create_server
from logsvc_client.kafka.settings import ENV_SASL_MECHANISM, ENV_SASL_PASSWORD, ENV_SASL_USERNAME
from logsvc_client.security import ENV_CA, ENV_CERT, ENV_KEY, ENV_TLS, ENV_TOKEN
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.fixtures.clusters import cluster  # noqa: F401  (logsvc and Kafka, one test)
from tests.fixtures.kafka import kafka_cluster  # noqa: F401  (Tansu, or LOGSVC_TEST_KAFKA_BOOTSTRAP)

LISTENING = re.compile(rb"listening on (\S+):(\d+)")


def broker_settings(data_dir: Path, **overrides: object) -> settings_mod.Settings:
    # Groups form at once (the default waits 3 s for more members; tests of that wait set it)
    values: dict[str, object] = {
        "data_dir": str(data_dir),
        "listen": "127.0.0.1:0",
        "metrics_port": 0,
        "initial_rebalance_delay_ms": 0,
    }
    values.update(overrides)
    return settings_mod.load(environ={}, overrides=values)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def broker(data_dir: Path) -> Iterator[Broker]:
    """A broker in this process, on 127.0.0.1:<free port>, LMDB in a temp dir."""
    b = create_server(broker_settings(data_dir))
    try:
        yield b
    finally:
        b.stop(grace_s=1)


@pytest.fixture
def start_broker(data_dir: Path) -> Iterator[Callable[..., Broker]]:
    """Start a broker in this process with extra settings (stopped at the end)."""
    started: list[Broker] = []

    def start(**settings: object) -> Broker:
        broker = create_server(broker_settings(data_dir, **settings))
        started.append(broker)
        return broker

    yield start
    for broker in started:
        broker.stop(grace_s=0.5)


@pytest.fixture
def stub(broker: Broker) -> Iterator[pb_grpc.BrokerStub]:
    with grpc.insecure_channel(broker.address) as channel:
        yield pb_grpc.BrokerStub(channel)


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a ``logsvc`` subprocess: this one's without the caller's LOGSVC_*
    settings, warnings turned into errors, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSVC_")}
    env["PYTHONWARNINGS"] = "error"
    env.update(extra)
    return env


def pytest_configure(config: pytest.Config) -> None:
    """Make the suite independent of how and where it was started.

    A shell starts background jobs with SIGINT ignored, and children inherit that, so a CLI child
    would never see the Ctrl-C some tests send it: give the suite (and so its children) the
    terminal's SIGINT."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # The client library reads TLS, token and SASL settings from the environment: a developer's own
    # must not change how every client of the suite connects.
    for name in (
        ENV_TLS,
        ENV_CA,
        ENV_CERT,
        ENV_KEY,
        ENV_TOKEN,
        ENV_SASL_MECHANISM,
        ENV_SASL_USERNAME,
        ENV_SASL_PASSWORD,
    ):
        os.environ.pop(name, None)


class ChildProcess:
    """A child process whose stderr a thread collects line by line (so the pipe never fills);
    subclasses watch the lines in :meth:`on_stderr_line`, e.g. for the one saying it is ready."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_lines: list[bytes] = []

    def spawn(self, cmd: Sequence[str], env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        self._pump = threading.Thread(target=self._read_stderr, daemon=True)
        self._pump.start()

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            self.on_stderr_line(line)

    def on_stderr_line(self, line: bytes) -> None:
        """Called on the reading thread with each line of stderr, as it comes."""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close()

    def terminate(self, timeout_s: float = 20) -> int:
        """SIGTERM, then the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout_s)
        self._close()
        return code

    def _close(self) -> None:
        if self.proc and self.proc.stderr and not self.proc.stderr.closed:
            self._pump.join(10)  # the pipe reaches EOF once the process is gone
            self.proc.stderr.close()

    def stderr_text(self) -> str:
        return b"".join(self.stderr_lines).decode(errors="replace")


class BrokerProcess(ChildProcess):
    """`logsvc serve` as a child process; the port is read from its 'listening on' line. ``extra``
    are more flags; ``env`` is added to ``base_env`` (default: this process's environment)."""

    def __init__(
        self,
        data_dir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.data_dir = data_dir
        self.extra = extra
        self.env = env
        self.base_env = base_env
        self.address = ""
        self.port = 0
        self._listening = threading.Event()

    def start(self, listen: str = "127.0.0.1:0", timeout_s: float = 20) -> BrokerProcess:
        cmd = [
            sys.executable, "-m", "logsvc.cli", "serve",
            "--data-dir", str(self.data_dir), "--listen", listen, "--metrics-port", "0", *self.extra,
        ]  # fmt: skip
        self._listening = threading.Event()
        # Groups form at once (the default waits 3 s for more members), unless the test says otherwise
        base = {"LOGSVC_INITIAL_REBALANCE_DELAY_MS": "0", **(os.environ if self.base_env is None else self.base_env)}
        self.spawn(cmd, {**base, **(self.env or {})})
        if not self._listening.wait(timeout_s):
            self.kill()
            raise RuntimeError("broker did not start: " + self.stderr_text())
        return self

    def on_stderr_line(self, line: bytes) -> None:
        m = LISTENING.search(line)
        if m and not self._listening.is_set():
            self.address = f"{m.group(1).decode()}:{m.group(2).decode()}"
            self.port = int(m.group(2))
            self._listening.set()


@pytest.fixture
def broker_process(data_dir: Path) -> Iterator[BrokerProcess]:
    """A started `logsvc serve` subprocess on a free port (killed at the end)."""
    proc = BrokerProcess(data_dir).start()
    try:
        yield proc
    finally:
        proc.kill()
