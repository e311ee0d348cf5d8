"""Handler connectors against a real broker: ``logsvc connect python`` as a subprocess (SIGKILL and
restart, SIGTERM drain, two processes in one group, start-up errors) and :class:`HandlerConnector`
in this process (stateful handlers, transient errors, bisecting an unexpected exception)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Consumer, Producer, Record, TopicPartition
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.handler import HandlerConnector, HandlerContractError
from logsvc_connect.sink import SinkRecord

# Handlers run by ``logsvc connect python`` subprocesses. Each process appends what it handled to
# its own file ``<out_dir>/<pid>.log`` (one "partition offset n" line per record, fsynced before
# the handler returns, so before the runtime commits), so a SIGKILL leaves at worst a torn last line.
HANDLERS = """
import json
import os
import time

from logsvc_connect.handler import RecordError
from logsvc_connect.sink import TransientSinkError


class Ledger:
    def __init__(self, out_dir, fail_every_record=0, fail_every_batch=0, sleep_s=0.0):
        self.out_dir = out_dir
        self.fail_every_record = fail_every_record
        self.fail_every_batch = fail_every_batch
        self.sleep_s = sleep_s

    def setup(self):
        self.file = open(os.path.join(self.out_dir, f"{os.getpid()}.log"), "a")
        self.batches = 0

    def __call__(self, records):
        self.batches += 1
        if self.fail_every_batch and self.batches % self.fail_every_batch == 0:
            raise TransientSinkError(f"batch {self.batches}: the ledger is away")
        if self.sleep_s:
            with open(os.path.join(self.out_dir, "began"), "a") as f:
                f.write(f"{len(records)}\\n")
            time.sleep(self.sleep_s)
        errors, lines = [], []
        for r in records:
            n = r.decoded["n"]
            if self.fail_every_record and n % self.fail_every_record == 0:
                errors.append(RecordError(r, f"record {n} is a multiple of {self.fail_every_record}"))
            else:
                lines.append(f"{r.partition} {r.offset} {n}\\n")
        self.file.write("".join(lines))
        self.file.flush()
        os.fsync(self.file.fileno())
        return errors

    def close(self):
        self.file.close()


def two_arguments(records, extra):
    pass
"""

Handled = list[tuple[int, int, int]]  # (partition, offset, n)


# -- helpers ------------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], object], timeout_s: float = 30, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def write_config(path: Path, options: dict[str, Any] | None = None, **runtime: object) -> Path:
    lines = [f"{key} = {toml_value(value)}" for key, value in runtime.items()]
    if options is not None:
        lines += ["[python]", f"options = {toml_value(options)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def cli_env(pythonpath: Path | None = None) -> dict[str, str]:
    """The environment without the caller's LOGSVC_* settings, warnings as errors."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSVC_")}
    env["PYTHONWARNINGS"] = "error"
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(pythonpath), env.get("PYTHONPATH", "")) if p)
    return env


class ConnectorProcess:
    """``logsvc connect python`` as a child process, its stderr collected."""

    def __init__(self, handler: str, config: Path, pythonpath: Path) -> None:
        cmd = [sys.executable, "-m", "logsvc.cli", "connect", "python", "--handler", handler, "--config", str(config)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(pythonpath)
        )
        self.stderr_lines: list[str] = []
        self._pump = threading.Thread(target=self._read_stderr, daemon=True)
        self._pump.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_lines.append(raw.decode(errors="replace").rstrip("\n"))

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    def _reap(self, timeout_s: float) -> int:
        code = self.proc.wait(timeout_s)
        self._pump.join(5)
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return code

    def terminate(self, timeout_s: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self._reap(timeout_s)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self._reap(10)


@pytest.fixture
def handlers_dir(tmp_path: Path) -> Path:
    """A directory on the connectors' PYTHONPATH holding the ``ledger_handlers`` module."""
    path = tmp_path / "handlers"
    path.mkdir()
    (path / "ledger_handlers.py").write_text(HANDLERS)
    return path


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def connectors() -> Iterator[list[ConnectorProcess]]:
    """Connector processes started by a test (killed at the end if still running)."""
    started: list[ConnectorProcess] = []
    yield started
    for proc in started:
        proc.kill()


@pytest.fixture
def topic(broker: Broker) -> str:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    with Admin(broker.address) as admin:
        admin.create_topic(name, 3)
    return name


def produce(address: str, topic: str, numbers: Sequence[int]) -> None:
    """One JSON record ``{"n": n}`` per number, keyed by it (so spread over the partitions)."""
    with Producer(address, linger_ms=5) as producer:
        for n in numbers:
            producer.send(topic, json.dumps({"n": n}).encode(), str(n).encode())
        producer.flush()


def read_handled(out_dir: Path) -> dict[str, Handled]:
    """{file name: handled records}; a torn last line (a SIGKILL mid-write) is left out."""
    out: dict[str, Handled] = {}
    for path in sorted(out_dir.glob("*.log")):
        text = path.read_text()
        complete = text[: text.rfind("\n") + 1]
        out[path.name] = [(int(p), int(o), int(n)) for p, o, n in (line.split() for line in complete.splitlines())]
    return out


def read_topic(address: str, topic: str) -> list[Record]:
    """Every record of ``topic`` (an empty list when it does not exist)."""
    with Admin(address) as admin:
        if topic not in {t.name for t in admin.list_topics()}:
            return []
        ends = admin.list_offsets(topic, "latest")
    records: list[Record] = []
    with Consumer(address) as consumer:
        consumer.assign_topic(topic)
        consumer.seek_to_beginning()
        while any(consumer.position(TopicPartition(topic, p)) < end for p, end in ends.items()):
            records.extend(consumer.poll(timeout_ms=1000))
    return records


def header(record: Record, name: str) -> str:
    return dict(record.headers or ()).get(name, b"").decode()


def committed(address: str, group: str) -> dict[int, int]:
    with Admin(address) as admin:
        return {tp.partition: c.offset for tp, c in admin.committed_offsets(group).items()}


def caught_up(address: str, group: str, topic: str) -> bool:
    with Admin(address) as admin:
        ends = admin.list_offsets(topic, "latest")
    done = committed(address, group)
    return all(done.get(p, 0) >= end for p, end in ends.items())


def runtime_config(address: str, topic: str, name: str, **overrides: Any) -> RuntimeConfig:
    values: dict[str, Any] = {"linger_ms": 20, "retry_initial_ms": 10, "retry_max_ms": 100, **overrides}
    return RuntimeConfig(name=name, server=address, topics=(topic,), **values)


# -- subprocess connectors ----------------------------------------------------------------------------


def test_data_errors_and_transient_errors_across_a_sigkill_lose_nothing_and_repeat_only_uncommitted_batches(
    broker: Broker, topic: str, tmp_path: Path, handlers_dir: Path, out_dir: Path, connectors: list[ConnectorProcess]
) -> None:
    # Given 6,000 records and a handler that fails every 7th record with a data error and every
    # 100th batch with a transient error, in batches of 20
    total = 6_000
    produce(broker.address, topic, range(1, total + 1))
    config = write_config(
        tmp_path / "ledger.toml",
        {"out_dir": str(out_dir), "fail_every_record": 7, "fail_every_batch": 100},
        name="ledger", server=broker.address, topics=[topic], batch_max_records=20, linger_ms=20,
        retry_initial_ms=10, retry_max_ms=50, instance_id="ledger-1",
    )  # fmt: skip

    # When the connector is SIGKILLed a third of the way through, then started again and left to finish
    first = ConnectorProcess("ledger_handlers:Ledger", config, handlers_dir)
    connectors.append(first)
    wait_until(lambda: sum(map(len, read_handled(out_dir).values())) >= total // 3, what="a third of the records")
    first.kill()
    committed_at_kill = committed(broker.address, "ledger")
    second = ConnectorProcess("ledger_handlers:Ledger", config, handlers_dir)
    connectors.append(second)
    wait_until(lambda: caught_up(broker.address, "ledger", topic), timeout_s=60, what="the group to catch up")
    assert second.terminate() == 0, second.stderr_text()

    # Then every record that is not a multiple of 7 was handled, and only records at or past the
    # offset committed when the connector was killed were handled twice
    handled = [h for records in read_handled(out_dir).values() for h in records]
    good = {n for n in range(1, total + 1) if n % 7}
    assert {n for _, _, n in handled} == good
    seen: set[int] = set()
    for partition, offset, n in handled:
        if n in seen:
            assert offset >= committed_at_kill.get(partition, 0), f"record {n} was handled twice below the commit"
        seen.add(n)
    # And every multiple of 7 is in the dead-letter topic with its reason (twice only when uncommitted)
    dead = read_topic(broker.address, "ledger.dlq")
    assert {json.loads(r.value or b"")["n"] for r in dead} == {n for n in range(1, total + 1) if n % 7 == 0}
    for r in dead:
        assert header(r, "dlq.topic") == topic
        assert header(r, "dlq.error.class") == "RecordError"
        assert header(r, "dlq.error.message").endswith("is a multiple of 7")
    dead_offsets = [(int(header(r, "dlq.partition")), int(header(r, "dlq.offset"))) for r in dead]
    for partition, offset in {po for po in dead_offsets if dead_offsets.count(po) > 1}:
        assert offset >= committed_at_kill.get(partition, 0)
    # And the every-100th-batch transient errors were retried, not dead-lettered
    assert "TransientSinkError: batch 100: the ledger is away" in first.stderr_text() + second.stderr_text()


def test_sigterm_finishes_the_batch_in_flight_commits_and_exits_0(
    broker: Broker, topic: str, tmp_path: Path, handlers_dir: Path, out_dir: Path, connectors: list[ConnectorProcess]
) -> None:
    # Given a connector whose handler takes 1 s per batch, in the middle of a batch of 50 records
    produce(broker.address, topic, range(1, 51))
    config = write_config(
        tmp_path / "slow.toml",
        {"out_dir": str(out_dir), "sleep_s": 1.0},
        name="slow", server=broker.address, topics=[topic], batch_max_records=1_000, linger_ms=200,
    )  # fmt: skip
    proc = ConnectorProcess("ledger_handlers:Ledger", config, handlers_dir)
    connectors.append(proc)
    wait_until(lambda: (out_dir / "began").exists(), what="the first batch")

    # When it gets SIGTERM
    code = proc.terminate()

    # Then it exits 0 after handling and committing what it held
    assert code == 0, proc.stderr_text()
    assert "received SIGTERM" in proc.stderr_text()
    handled = [n for records in read_handled(out_dir).values() for _, _, n in records]
    assert sorted(handled) == list(range(1, 51))
    assert caught_up(broker.address, "slow", topic)


def test_two_processes_with_one_name_share_the_partitions(
    broker: Broker, topic: str, tmp_path: Path, handlers_dir: Path, out_dir: Path, connectors: list[ConnectorProcess]
) -> None:
    # Given two connector processes with the same name, both members of the group
    config = write_config(
        tmp_path / "shared.toml", {"out_dir": str(out_dir)}, name="shared", server=broker.address, topics=[topic]
    )
    connectors.extend(ConnectorProcess("ledger_handlers:Ledger", config, handlers_dir) for _ in range(2))

    def both_own_partitions() -> bool:
        with Admin(broker.address) as admin:
            try:
                group = admin.describe_group("shared")
            except Exception:
                return False
        return group.state == "Stable" and len(group.members) == 2 and all(m.assignment for m in group.members)

    wait_until(both_own_partitions, what="two members sharing the partitions")

    # When records arrive
    produce(broker.address, topic, range(1, 601))
    wait_until(lambda: caught_up(broker.address, "shared", topic), what="the group to catch up")

    # Then each process handled the records of its own partitions, and together all of them, once
    by_process = read_handled(out_dir)
    assert len(by_process) == 2
    partitions = [{p for p, _, _ in records} for records in by_process.values()]
    assert all(partitions) and not partitions[0] & partitions[1]
    handled = [n for records in by_process.values() for _, _, n in records]
    assert sorted(handled) == list(range(1, 601))
    for proc in connectors:
        assert proc.terminate() == 0, proc.stderr_text()


@pytest.mark.parametrize(
    ("handler", "named"),
    [
        ("no_such_module.handlers:handle", "'no_such_module.handlers:handle' does not import"),
        ("ledger_handlers:missing", "'ledger_handlers:missing': module ledger_handlers has no 'missing'"),
        ("ledger_handlers", "'ledger_handlers' must look like package.module:function"),
        ("ledger_handlers:two_arguments", "'ledger_handlers:two_arguments' must take one argument"),
        ("ledger_handlers:Ledger", "'ledger_handlers:Ledger' cannot be created with options {}"),
    ],
)
def test_a_handler_that_cannot_be_loaded_is_one_error_line_at_start_up(
    tmp_path: Path, handlers_dir: Path, handler: str, named: str
) -> None:
    # Given a config whose broker is never reached (the handler is loaded first)
    config = write_config(tmp_path / "bad.toml", name="bad", server="127.0.0.1:1", topics=["orders"])

    # When the connector starts with a handler that does not import or has the wrong signature
    cmd = [sys.executable, "-m", "logsvc.cli", "connect", "python", "--handler", handler, "--config", str(config)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(handlers_dir), timeout=30)

    # Then it exits non-zero with one error line naming the handler, and no traceback
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: handler ")
    assert named in lines[0]


# -- in-process: HandlerConnector -----------------------------------------------------------------------


class Tally:
    """A stateful handler class: counts across batches, remembers its lifecycle calls."""

    instances: list[Tally] = []

    def __init__(self, label: str, every: int = 1) -> None:
        self.label = label
        self.every = every
        self.calls: list[str] = []
        self.seen: list[int] = []
        Tally.instances.append(self)

    def setup(self) -> None:
        self.calls.append("setup")

    def handle(self, records: list[SinkRecord]) -> None:
        self.calls.append("handle")
        self.seen.extend(r.decoded["n"] for r in records)  # type: ignore[index]

    def close(self) -> None:
        self.calls.append("close")


def test_a_handler_class_is_created_with_its_options_and_keeps_state_from_setup_to_close(
    broker: Broker, topic: str
) -> None:
    # Given 300 records and a handler class run in this process, in batches of at most 50
    produce(broker.address, topic, range(300))
    Tally.instances.clear()
    config = runtime_config(broker.address, topic, "tally", batch_max_records=50)

    # When a HandlerConnector runs it until the group has caught up
    with HandlerConnector(Tally, config, options={"label": "eu", "every": 3}) as connector:
        wait_until(lambda: caught_up(broker.address, "tally", topic), what="the group to catch up")

    # Then one instance got the options, setup and close ran once each around several batches,
    # and it saw every record once
    assert len(Tally.instances) == 1 and connector.handler is Tally.instances[0]
    tally = Tally.instances[0]
    assert (tally.label, tally.every) == ("eu", 3)
    assert tally.calls[0] == "setup" and tally.calls[-1] == "close"
    assert tally.calls.count("setup") == tally.calls.count("close") == 1
    assert tally.calls.count("handle") >= 6
    assert sorted(tally.seen) == list(range(300))


def test_a_transient_error_retries_the_batch_and_dead_letters_nothing(broker: Broker, topic: str) -> None:
    # Given a handler whose store is unreachable for its first two calls
    produce(broker.address, topic, range(100))
    calls: list[int] = []
    handled: list[int] = []

    def handle(records: list[SinkRecord]) -> None:
        calls.append(len(records))
        if len(calls) <= 2:
            raise ConnectionError("store unreachable")
        handled.extend(r.decoded["n"] for r in records)  # type: ignore[index]

    # When it runs until the group has caught up
    connector = HandlerConnector(handle, runtime_config(broker.address, topic, "flaky"))
    with connector:
        wait_until(lambda: caught_up(broker.address, "flaky", topic), what="the group to catch up")

    # Then the batch was retried twice and every record handled exactly once, none dead-lettered
    assert connector.runtime.metrics.retries._value.get() == 2
    assert sorted(handled) == list(range(100))
    assert read_topic(broker.address, "flaky.dlq") == []


def test_an_unexpected_exception_dead_letters_only_the_record_that_raises_it(broker: Broker, topic: str) -> None:
    # Given a handler that raises ValueError whenever its batch holds record 42
    produce(broker.address, topic, range(200))
    handled: set[int] = set()

    def handle(records: list[SinkRecord]) -> None:
        numbers = [r.decoded["n"] for r in records]  # type: ignore[index]
        if 42 in numbers:
            raise ValueError("cannot price order 42")
        handled.update(numbers)

    # When it runs in batches of up to 100 until the group has caught up
    config = runtime_config(broker.address, topic, "bisect", batch_max_records=100)
    with HandlerConnector(handle, config):
        wait_until(lambda: caught_up(broker.address, "bisect", topic), what="the group to catch up")

    # Then the batch was split until record 42 failed alone: only it is dead-lettered, with the
    # exception's class and message, and every other record was handled
    assert handled == set(range(200)) - {42}
    dead = read_topic(broker.address, "bisect.dlq")
    assert [json.loads(r.value or b"")["n"] for r in dead] == [42]
    assert header(dead[0], "dlq.error.class") == "ValueError"
    assert header(dead[0], "dlq.error.message") == "ValueError: cannot price order 42"


def test_a_handler_returning_something_else_than_record_errors_stops_the_connector_with_a_clear_error(
    broker: Broker, topic: str
) -> None:
    # Given a handler that returns True instead of None or a list of RecordError
    produce(broker.address, topic, range(10))
    connector = HandlerConnector(lambda records: True, runtime_config(broker.address, topic, "truthy"))

    # When it runs
    connector.start()
    wait_until(lambda: not connector.running, what="the connector to stop")

    # Then it stopped with an error naming what came back, and committed nothing
    with pytest.raises(HandlerContractError, match="returned a bool"):
        connector.stop()
    assert committed(broker.address, "truthy") == {}
