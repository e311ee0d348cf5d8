"""Connector configuration: one TOML file, every key overridable from the environment.

The file has the runtime's keys at the top level and the adapter's keys in a table named after
the connector kind::

    name = "orders-pg"                 # the connector's name = its consumer group
    server = "127.0.0.1:50051"
    topics = ["orders"]

    [postgres]
    dsn = "host=127.0.0.1 dbname=shop"
    insert_mode = "upsert"

With several topics, ``priority`` makes them lanes, highest first (see
:mod:`logsvc_client.consumer.lanes`): ``"strict"`` writes a higher topic's backlog before a lower one's,
``"weighted"`` gives each its ``lane_weights`` share of every batch; either way a topic with a
backlog waits at most ``max_lane_wait_ms`` for its next records::

    topics = ["orders.critical", "orders.normal", "orders.bulk"]
    priority = "weighted"
    lane_weights = [6, 3, 1]

Environment variables override the file: ``LOGSVC_CONNECT_<KEY>`` for a runtime key and
``LOGSVC_CONNECT_<KIND>_<KEY>`` for an adapter key (``LOGSVC_CONNECT_POSTGRES_DSN``); lists are
comma-separated, tables (``columns``) JSON. Unknown keys — in the file or the environment — are
an error naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from logsvc_client.consumer.lanes import LanePolicy, Priority, check_options
from logsvc_client.errors import InvalidConfig
from logsvc_connect.dead_letters.format import dlq_topic

ENV_PREFIX = "LOGSVC_CONNECT_"
#: the largest number a count, size or time setting may hold: a 32-bit int, as Kafka's own settings
MAX_SETTING = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """The runtime's settings (sizes in bytes, durations in ms)."""

    name: str = ""
    """Connector name: its consumer group id and the default dead-letter topic ``<name>.dlq``."""
    server: str = "127.0.0.1:50051"
    """The logsvc broker (``host:port``) or a Kafka cluster (``kafka://host:port,...``)."""
    topics: tuple[str, ...] = ()
    value_format: str = "auto"
    """auto | json | msgpack | raw: how record values are decoded for the adapter."""
    dlq_topic: str = ""
    """Dead-letter topic; empty = ``<name>.dlq`` (created with 1 partition when missing)."""
    batch_max_records: int = 10_000
    batch_max_bytes: int = 16 * 1024 * 1024
    linger_ms: int = 100
    """How long a batch may wait to fill when the connector is caught up (low lag)."""
    retry_initial_ms: int = 200
    retry_max_ms: int = 30_000
    metrics_port: int = 0
    """HTTP /metrics port; 0 (the default) = any free port, printed at start; -1 = off."""
    metrics_host: str = "127.0.0.1"
    metrics_token_file: str = ""
    """A file holding one bearer token (at least 16 characters; the broker's format): when set,
    ``/metrics`` answers 401 unless a scrape sends ``Authorization: Bearer TOKEN``. Read at start."""
    instance_id: str = ""
    """Static membership id: a restart within the session timeout keeps the partitions."""
    session_timeout_ms: int = 10_000
    max_poll_interval_ms: int = 300_000
    """A member whose loop does not poll for this long gives its partitions up (Kafka's
    ``max.poll.interval.ms``; on Kafka also the rebalance timeout: how long a join may wait)."""
    shutdown_timeout_ms: int = 30_000
    """On SIGTERM, how long the batch in flight may take to finish before the process exits."""
    filter: str = ""
    """``module:function`` returning the record (possibly changed) or None to skip it."""
    keep_fields: tuple[str, ...] = ()
    drop_fields: tuple[str, ...] = ()
    rename_fields: dict[str, str] = dataclasses.field(default_factory=dict)
    header_fields: dict[str, str] = dataclasses.field(default_factory=dict)
    """header name -> value field to copy it into."""
    key_field: str = ""
    """Value field to copy the record key into."""
    priority: Priority = "none"
    """none | strict | weighted: with lanes, ``topics`` are lanes, highest first."""
    lane_weights: tuple[float, ...] = ()
    """With priority = "weighted": one positive weight per topic, in the order of ``topics``."""
    max_lane_wait_ms: int = 1_000
    """With lanes: the longest a topic with a backlog goes without records taken from it."""

    def validate(self) -> RuntimeConfig:
        if not self.name:
            raise InvalidConfig("connector config needs a name (its consumer group)", key="name")
        if not self.topics:
            raise InvalidConfig("connector config needs topics = [...]", key="topics")
        if self.value_format not in ("auto", "json", "msgpack", "raw"):
            raise InvalidConfig(
                f"value_format={self.value_format!r} must be auto, json, msgpack or raw", key="value_format"
            )
        for key in (
            "batch_max_records",
            "batch_max_bytes",
            "retry_initial_ms",
            "retry_max_ms",
            "session_timeout_ms",
            "max_poll_interval_ms",
        ):
            if not 0 < getattr(self, key) <= MAX_SETTING:
                raise InvalidConfig(f"{key}={getattr(self, key)} must be from 1 to {MAX_SETTING}", key=key)
        for key in ("linger_ms", "shutdown_timeout_ms"):
            if not 0 <= getattr(self, key) <= MAX_SETTING:
                raise InvalidConfig(f"{key}={getattr(self, key)} must be from 0 to {MAX_SETTING}", key=key)
        check_options(self.priority, self.lane_weights, self.max_lane_wait_ms)
        if self.priority != "none":
            LanePolicy(self.topics, self.priority, self.lane_weights or None, self.max_lane_wait_ms)
        return self

    @property
    def dead_letter_topic(self) -> str:
        return self.dlq_topic or dlq_topic(self.name)


def _coerce(cls: type, key: str, value: Any, source: str) -> Any:
    field = {f.name: f for f in dataclasses.fields(cls)}[key]
    kind = str(field.type)
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[str(value).lower()]
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind == "tuple[float, ...]":
            if isinstance(value, str):
                value = [float(v) for v in value.split(",") if v.strip()]
            if not isinstance(value, list | tuple) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value
            ):
                raise ValueError(value)
            return tuple(value)
        if kind.startswith("tuple"):
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ValueError(value)
            return tuple(value)
        if kind.startswith(("dict", "Mapping")):
            if isinstance(value, str):
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError(value)
            return dict(value)
        if not isinstance(value, str):
            raise ValueError(value)
        return value
    except (KeyError, ValueError, TypeError, OverflowError, json.JSONDecodeError):  # OverflowError: int(inf)
        raise InvalidConfig(f"{source}: {key}={value!r} is not a valid {kind}", key=key) from None


def check_keys(cls: type[Any], values: Mapping[str, Any], source: str) -> None:
    """InvalidConfig naming the first key of ``values`` that is not a field of the dataclass ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise InvalidConfig(f"{source}: unknown key {key!r}; known: {', '.join(sorted(names))}", key=key)


def build(cls: type[Any], values: Mapping[str, Any], source: str) -> Any:
    """An instance of the dataclass ``cls`` from ``values``; unknown keys are InvalidConfig."""
    check_keys(cls, values, source)
    return cls(**{k: _coerce(cls, k, v, source) for k, v in values.items()})


def read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise InvalidConfig(f"connector config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidConfig(f"connector config file {path} is not valid TOML: {e}") from None


def split_sources(
    kind: str, raw: Mapping[str, Any], environ: Mapping[str, str], path: str, kinds: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(runtime values, adapter values, where each environment key came from) from the file's
    contents and the environment; ``kinds`` are every connector kind (the registry's), whose
    tables and variables are adapters'. The third maps a key set by the environment to its
    variable's name, so an error about it names the variable rather than the file."""
    # A table named after a connector kind is the adapter's; any other table is a runtime key whose
    # value is a table (rename_fields = {old = "new"}), checked with the other runtime keys.
    runtime = {k: v for k, v in raw.items() if not (isinstance(v, dict) and k in kinds)}
    adapter: dict[str, Any] = {}
    for table, values in raw.items():
        if isinstance(values, dict) and table in kinds:
            if table != kind:
                raise InvalidConfig(f"{path}: unknown table [{table}] for a {kind} connector", key=table)
            adapter.update(values)
    kind_prefix = f"{ENV_PREFIX}{kind.upper()}_"
    from_env: dict[str, str] = {}
    for name, value in environ.items():
        if name.startswith(kind_prefix):
            adapter[name[len(kind_prefix) :].lower()] = value
            from_env[name[len(kind_prefix) :].lower()] = name
        elif name.startswith(ENV_PREFIX) and not any(name.startswith(f"{ENV_PREFIX}{k.upper()}_") for k in kinds):
            runtime[name[len(ENV_PREFIX) :].lower()] = value
            from_env[name[len(ENV_PREFIX) :].lower()] = name
    return runtime, adapter, from_env


def load_runtime(values: Mapping[str, Any], source: str) -> RuntimeConfig:
    config: RuntimeConfig = build(RuntimeConfig, values, source)
    return config.validate()


def check_one_target_per_topic(topics: Iterable[str], name_of: Callable[[str], str], what: str, key: str) -> None:
    """InvalidConfig unless each topic is written to a ``what`` (table, collection) of its own:
    ``orders.eu`` and ``orders-eu`` both becoming table ``orders_eu`` would mix two topics' rows
    (and their keys) in one table. ``key`` is the template's config key."""
    seen: dict[str, str] = {}
    for topic in topics:
        name = name_of(topic)
        other = seen.setdefault(name, topic)
        if other != topic:
            raise InvalidConfig(
                f"topics {other} and {topic} both map to {what} {name}; each topic needs a {what} of its "
                f"own (run a connector per topic with its own {key} template, or rename a topic)",
                key=key,
            )
