"""End-to-end helpers: connectors run as real ``logsvc connect`` subprocesses against a
``logsvc serve`` subprocess and the real databases of :mod:`tests.fixtures`.

* :class:`Connectors` writes connector configs (TOML) into the test's temp dir and starts
  :class:`ConnectorProcess` es; every process still running at the end of the test is SIGKILLed.
* :class:`PostgresTarget` / :class:`MongoTarget` are the two sinks' databases behind one small
  interface (count, full contents, clear), so one test body can run against both.
* :func:`produce`, :func:`dead_letters`, :func:`describe_group` and :func:`wait_until` talk to the
  broker and poll for an outcome without fixed sleeps.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

import psycopg
import pymongo
from psycopg import sql

from logsvc_client import Admin, Consumer, Producer, Record, TopicPartition
from logsvc_client.errors import GroupNotFound, TopicNotFound
from logsvc_client.group.descriptions import GroupDescription
from logsvc_connect.sink import Sink

T = TypeVar("T")
S = TypeVar("S", bound=Sink)

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "AMD", "INTC", "ORCL", "IBM", "NFLX")
BASE_TIME_MS = 1_714_564_800_000  # 2024-05-01T12:00:00Z
#: the runtime settings every test connector starts from: small batches and lingers (many commits
#: per second, so kills land mid-stream) and short retry backoffs (an outage ends in seconds)
TEST_RUNTIME: Mapping[str, Any] = {
    "linger_ms": 20,
    "batch_max_records": 2_000,
    "retry_initial_ms": 100,
    "retry_max_ms": 1_000,
    "shutdown_timeout_ms": 20_000,
}
METRICS_LINE = re.compile(r"metrics on http://([^/\s]+)/metrics")


def order(seq: int, *, key_space: int | None = None, **extra: Any) -> tuple[bytes, bytes]:
    """(key, value) of a ~150-byte JSON market order; ``seq`` is unique per record. The key is the
    order id (``seq % key_space`` when given, so keys repeat and later orders update earlier ones)."""
    order_id = seq if key_space is None else seq % key_space
    value = {
        "order_id": order_id,
        "seq": seq,
        "symbol": SYMBOLS[order_id % len(SYMBOLS)],
        "side": "buy" if seq % 2 else "sell",
        "price": round(100 + (seq % 9973) / 100, 2),
        "quantity": 1 + seq % 500,
        "timestamp": BASE_TIME_MS + seq,
        **extra,
    }
    return b"order-%d" % order_id, json.dumps(value, separators=(",", ":")).encode()


# -- the broker --------------------------------------------------------------------------------------


def create_topic(address: str, topic: str, partitions: int) -> None:
    with Admin(address) as admin:
        admin.create_topic(topic, partitions)


def produce(
    address: str,
    topic: str,
    records: Iterable[tuple[bytes | None, bytes | None]],
    *,
    partition: int | None = None,
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> int:
    """Send ``(key, value)`` pairs and wait until every one is acknowledged; how many were sent."""
    with Producer(address, linger_ms=5) as producer:
        futures = [producer.send(topic, v, k, partition=partition, headers=headers) for k, v in records]
        producer.flush(60)
    for future in futures:
        future.result()
    return len(futures)


def end_offsets(address: str, topic: str) -> dict[int, int]:
    with Admin(address) as admin:
        return admin.list_offsets(topic, "latest")


def read_topic(address: str, topic: str) -> list[Record]:
    """Every record of ``topic`` (an empty list when it does not exist)."""
    try:
        ends = end_offsets(address, topic)
    except TopicNotFound:
        return []
    wanted = sum(ends.values())
    records: list[Record] = []
    with Consumer(address) as consumer:
        consumer.assign_topic(topic)
        deadline = time.monotonic() + 30
        while len(records) < wanted and time.monotonic() < deadline:
            records.extend(consumer.poll(timeout_ms=500))
    assert len(records) == wanted, f"read {len(records)} of the {wanted} records of {topic}"
    return sorted(records, key=lambda r: (r.partition, r.offset))


def dead_letters(address: str, connector: str) -> list[Record]:
    """The records in the connector's dead-letter topic ``<name>.dlq``."""
    return read_topic(address, f"{connector}.dlq")


def describe_group(address: str, group: str) -> GroupDescription | None:
    try:
        with Admin(address) as admin:
            return admin.describe_group(group)
    except GroupNotFound:
        return None


def committed(address: str, group: str) -> dict[TopicPartition, int]:
    with Admin(address) as admin:
        return {tp: c.offset for tp, c in admin.committed_offsets(group).items()}


def caught_up(address: str, group: str, topic: str) -> bool:
    """Whether ``group`` has committed every partition of ``topic`` up to its end."""
    done = {tp.partition: offset for tp, offset in committed(address, group).items() if tp.topic == topic}
    return all(done.get(p, 0) >= end for p, end in end_offsets(address, topic).items())


def opened_sinks(build: Callable[[dict[str, Any]], S]) -> Iterator[Callable[..., S]]:
    """For a fixture to ``yield from``: a factory of sinks built from config overrides by ``build``
    and opened; every one is closed when the fixture ends."""
    sinks: list[S] = []

    def make(**config: Any) -> S:
        sink = build(config)
        sink.open()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close()


def wait_until(what: str, probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 30) -> T:
    """Call ``probe`` until ``done(value)``; AssertionError naming ``what`` and the last value after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what} (last: {value!r})")
        time.sleep(0.02)


# -- connector processes -----------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """``value`` as TOML: strings as basic strings (JSON escapes without \\u surrogates are valid
    TOML), lists as arrays, mappings as inline tables with quoted keys."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{toml_value(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as TOML")


def toml_config(runtime: Mapping[str, Any], kind: str, adapter: Mapping[str, Any]) -> str:
    lines = [f"{name} = {toml_value(value)}" for name, value in runtime.items()]
    lines.append(f"\n[{kind}]")
    lines.extend(f"{toml_value(name)} = {toml_value(value)}" for name, value in adapter.items())
    return "\n".join(lines) + "\n"


class ConnectorProcess:
    """``python -m logsvc.cli connect KIND --config FILE [ARGS]`` with its stderr in a log file."""

    def __init__(self, kind: str, config: Path, log_file: Path, args: Sequence[str] = ()) -> None:
        self.kind = kind
        self.config = config
        self.log_file = log_file
        self.args = tuple(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> ConnectorProcess:
        # The test decides every setting: no LOGSVC_CONNECT_* from the outer environment leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSVC_CONNECT_")}
        cmd = [sys.executable, "-m", "logsvc.cli", "connect", self.kind, "--config", str(self.config), *self.args]
        self._log = self.log_file.open("ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log, env=env)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.wait(10)

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM and the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout_s)

    def wait(self, timeout_s: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout_s)
        finally:
            if self.proc.poll() is not None and self._log is not None:
                self._log.close()
                self._log = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def metrics(self) -> str:
        """The text of the connector's /metrics page (it must run with metrics_port = 0)."""
        found = wait_until("the connector's metrics address", lambda: METRICS_LINE.search(self.log()), bool, 20)
        assert found is not None
        try:
            with urllib.request.urlopen(f"http://{found.group(1)}/metrics", timeout=5) as response:
                text: str = response.read().decode()
                return text
        except OSError as e:
            state = "running" if self.alive() else f"exited with {self.proc and self.proc.poll()}"
            raise AssertionError(f"/metrics of the connector ({state}): {e}\n{self.log()[-4000:]}") from e

    def counter(self, name: str) -> float:
        """A counter of the connector's metrics, e.g. ``records_written``."""
        m = re.search(rf"^logsvc_connect_{name}_total\{{[^}}]*\}} (\S+)$", self.metrics(), re.MULTILINE)
        return float(m.group(1)) if m else 0.0


class Connectors:
    """Writes connector configs into ``directory`` and starts connector processes; :meth:`close`
    SIGKILLs every one still running."""

    def __init__(self, directory: Path, server: str) -> None:
        self.directory = directory
        self.server = server
        self.started: list[ConnectorProcess] = []

    def config(
        self, name: str, target: Target, topics: Sequence[str], adapter: Mapping[str, Any] | None = None, **runtime: Any
    ) -> Path:
        path = self.directory / f"{name}-{len(list(self.directory.glob(f'{name}*.toml')))}.toml"
        settings = {"name": name, "server": self.server, "topics": list(topics), **TEST_RUNTIME, **runtime}
        path.write_text(toml_config(settings, target.kind, target.adapter_config(**(adapter or {}))))
        return path

    def start(self, kind: str, config: Path, *args: str) -> ConnectorProcess:
        log_file = self.directory / f"{config.stem}.{len(self.started)}.log"
        process = ConnectorProcess(kind, config, log_file, args).start()
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            process.kill()


# -- the databases ---------------------------------------------------------------------------------


class Target(Protocol):
    """A sink's database, as the tests look at it."""

    kind: str

    def adapter_config(self, **overrides: Any) -> dict[str, Any]: ...

    def count(self) -> int: ...

    def contents(self) -> list[Any]: ...

    def origins(self) -> list[tuple[int, int]]: ...

    def clear(self) -> None: ...


class PostgresTarget:
    """A fresh PostgreSQL database; the connector writes topic ``orders`` to table ``orders``."""

    kind = "postgres"

    def __init__(self, dsn: str, table: str = "orders", schema: str = "public") -> None:
        self.dsn = dsn
        self.table = table
        self.schema = schema

    def adapter_config(self, **overrides: Any) -> dict[str, Any]:
        return {"dsn": self.dsn, **overrides}

    def query(self, statement: str | sql.Composable, *params: Any) -> list[tuple[Any, ...]]:
        """The rows a statement returns ([] for one that returns none)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(statement, params or None)
            return cur.fetchall() if cur.description is not None else []

    @property
    def target(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)

    def count(self) -> int:
        try:
            return int(self.query(sql.SQL("SELECT count(*) FROM {}").format(self.target))[0][0])
        except psycopg.errors.UndefinedTable:
            return 0

    def contents(self) -> list[tuple[Any, ...]]:
        """Every column of every row, in (topic, partition, offset) order."""
        statement = sql.SQL('SELECT * FROM {} ORDER BY topic, partition, "offset"').format(self.target)
        return self.query(statement)

    def origins(self) -> list[tuple[int, int]]:
        """(partition, offset) of every row."""
        return [(p, o) for p, o in self.query(sql.SQL('SELECT partition, "offset" FROM {}').format(self.target))]

    def clear(self) -> None:
        self.query(sql.SQL("DELETE FROM {}").format(self.target))

    def stored_offsets(self, connector: str) -> dict[int, int]:
        rows = self.query("SELECT partition, next_offset FROM logsvc_offsets WHERE connector = %s", connector)
        return dict(rows)


class MongoTarget:
    """A fresh MongoDB database; the connector writes topic ``orders`` to collection ``orders``."""

    kind = "mongo"

    def __init__(self, client: pymongo.MongoClient[dict[str, Any]], uri: str, database: str) -> None:
        self.uri = uri
        self.database = client[database]
        self.collection = self.database["orders"]

    def adapter_config(self, **overrides: Any) -> dict[str, Any]:
        return {"uri": self.uri, "database": self.database.name, "server_selection_timeout_ms": 2_000, **overrides}

    def count(self) -> int:
        return self.collection.count_documents({})

    def contents(self) -> list[dict[str, Any]]:
        """Every document, in _id order."""
        return sorted(self.collection.find(), key=lambda d: str(d["_id"]))

    def origins(self) -> list[tuple[int, int]]:
        projection = {"_logsvc": 1}  # nx-27017 projects no dotted paths
        return [(d["_logsvc"]["partition"], d["_logsvc"]["offset"]) for d in self.collection.find({}, projection)]

    def clear(self) -> None:
        self.collection.delete_many({})
