"""``logsvc connect python`` as a subprocess against a real broker: data errors and transient
errors across a SIGKILL and restart, SIGTERM draining the batch in flight, two processes in one
group, and a handler that cannot be loaded refused at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin
from tests.conftest import ChildProcess, cli_env
from tests.connectors.e2e import caught_up, read_topic, wait_until
from tests.connectors.handler.conftest import committed, header, produce

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


def handler_env(pythonpath: Path) -> dict[str, str]:
    """The CLI tests' environment (see :func:`cli_env`) with ``pythonpath`` first on PYTHONPATH."""
    return cli_env(PYTHONPATH=os.pathsep.join(p for p in (str(pythonpath), os.environ.get("PYTHONPATH", "")) if p))


class ConnectorProcess(ChildProcess):
    """``logsvc connect python`` as a child process, its stderr collected."""

    def __init__(self, handler: str, config: Path, pythonpath: Path) -> None:
        super().__init__()
        cmd = [sys.executable, "-m", "logsvc.cli", "connect", "python", "--handler", handler, "--config", str(config)]
        self.spawn(cmd, handler_env(pythonpath))

    def terminate(self, timeout_s: float = 30) -> int:
        return super().terminate(timeout_s)


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


def read_handled(out_dir: Path) -> dict[str, Handled]:
    """{file name: handled records}; a torn last line (a SIGKILL mid-write) is left out."""
    out: dict[str, Handled] = {}
    for path in sorted(out_dir.glob("*.log")):
        text = path.read_text()
        complete = text[: text.rfind("\n") + 1]
        out[path.name] = [(int(p), int(o), int(n)) for p, o, n in (line.split() for line in complete.splitlines())]
    return out


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
    wait_until("a third of the records", lambda: sum(map(len, read_handled(out_dir).values())) >= total // 3, bool)
    first.kill()
    committed_at_kill = committed(broker.address, "ledger")
    second = ConnectorProcess("ledger_handlers:Ledger", config, handlers_dir)
    connectors.append(second)
    wait_until("the group to catch up", lambda: caught_up(broker.address, "ledger", topic), bool, timeout_s=60)
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
    wait_until("the first batch", lambda: (out_dir / "began").exists(), bool)

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

    wait_until("two members sharing the partitions", both_own_partitions, bool)

    # When records arrive
    produce(broker.address, topic, range(1, 601))
    wait_until("the group to catch up", lambda: caught_up(broker.address, "shared", topic), bool)

    # Then each process handled the records of its own partitions, and together all of them, once
    by_process = read_handled(out_dir)
    assert len(by_process) == 2
    partitions = [{p for p, _, _ in records} for records in by_process.values()]
    assert all(partitions) and not partitions[0] & partitions[1]
    handled = [n for records in by_process.values() for _, _, n in records]
    assert sorted(handled) == list(range(1, 601))
    for proc in connectors:
        assert proc.terminate() == 0, proc.stderr_text()


def test_a_second_process_with_the_same_instance_id_fences_the_first_which_exits_with_an_error(
    broker: Broker, topic: str, tmp_path: Path, handlers_dir: Path, out_dir: Path, connectors: list[ConnectorProcess]
) -> None:
    # Given a connector with a static instance id, handling records
    config = write_config(
        tmp_path / "static.toml", {"out_dir": str(out_dir)},
        name="static", server=broker.address, topics=[topic], instance_id="static-1",
    )  # fmt: skip
    first = ConnectorProcess("ledger_handlers:Ledger", config, handlers_dir)
    connectors.append(first)
    produce(broker.address, topic, range(1, 101))
    wait_until("the first records", lambda: caught_up(broker.address, "static", topic), bool)

    # When a second process is started with the same config (so the same instance id) by mistake
    second = ConnectorProcess("ledger_handlers:Ledger", config, handlers_dir)
    connectors.append(second)

    # Then the first one stops with one error line saying it was fenced, and no traceback
    assert first.proc is not None
    code = first.proc.wait(30)
    assert code == 1, first.stderr_text()
    errors = [line for line in first.stderr_text().splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "was fenced" in errors[0] and "instance id 'static-1'" in errors[0], errors
    assert "Traceback" not in first.stderr_text()
    # And the second one carries on with every partition, handling what arrives next
    produce(broker.address, topic, range(101, 201))
    wait_until("the group to catch up", lambda: caught_up(broker.address, "static", topic), bool)
    handled = {n for records in read_handled(out_dir).values() for _, _, n in records}
    assert handled == set(range(1, 201))
    with Admin(broker.address) as admin:
        assert [m.instance_id for m in admin.describe_group("static").members] == ["static-1"]
    assert second.terminate() == 0, second.stderr_text()


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
    done = subprocess.run(cmd, capture_output=True, text=True, env=handler_env(handlers_dir), timeout=30)

    # Then it exits non-zero with one error line naming the handler, and no traceback
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: handler ")
    assert named in lines[0]
