"""Broker configuration: every setting, its default and its unit, in one place.

Precedence, lowest first: the defaults below < a TOML file (``logsvc serve --config FILE``) <
``LOGSVC_<KEY>`` environment variables < command-line flags. Unknown keys are an error naming the
key, in the file and in the environment alike (``LOGSVC_SERVER`` and the ``LOGSVC_CONNECT_*`` /
``LOGSVC_TEST_*`` families belong to the CLI, connectors and tests, ``LOGSVC_PURE_PYTHON`` to the
wire, and are left alone).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from typing import Any

from logsvc.errors import InvalidConfig
from logsvc_wire.native import ENV_PURE_PYTHON
from logsvc_wire.types import MAX_PARTITION_COUNT

ENV_PREFIX = "LOGSVC_"
#: Room in a request for what is not a batch: field tags, lengths, the topic name, sequences.
MESSAGE_HEADROOM_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 16 * 1024 * 1024 + MESSAGE_HEADROOM_BYTES
# LOGSVC_* variables that are not broker settings (the CLI's, the client's: logsvc_client.security, and
# the wire's: logsvc_wire.native).
_FOREIGN_ENV = (
    ENV_PURE_PYTHON,
    "LOGSVC_SERVER",
    "LOGSVC_CONFIG",
    "LOGSVC_OUTPUT",
    "LOGSVC_TOKEN",
    "LOGSVC_TLS",
    "LOGSVC_TLS_CA",
    "LOGSVC_TLS_CLIENT_CERT",
    "LOGSVC_TLS_CLIENT_KEY",
)
#: The values of Settings.event_loop.
EVENT_LOOPS = ("auto", "uvloop", "asyncio")
_FOREIGN_ENV_PREFIXES = ("LOGSVC_CONNECT_", "LOGSVC_TEST_")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Broker settings. Sizes in bytes, durations in milliseconds, as the names say."""

    data_dir: str = "./data"
    """Directory of the LMDB environment (created if missing)."""
    listen: str = "127.0.0.1:50051"
    """gRPC listen address HOST:PORT; port 0 picks a free port."""
    metrics_port: int = 9095
    """HTTP port for /metrics (Prometheus) on metrics_host; 0 picks a free port, -1 disables."""
    metrics_host: str = "127.0.0.1"
    """Address /metrics listens on, whatever ``listen`` says: it names every topic and group, so it
    stays on loopback unless set (e.g. 0.0.0.0 for a Prometheus elsewhere; then consider
    metrics_token_file)."""
    metrics_token_file: str = ""
    """A file holding one bearer token (at least 16 characters): when set, /metrics answers 401
    unless a scrape sends ``Authorization: Bearer TOKEN`` (Prometheus: ``authorization:
    credentials_file:``). Separate from auth_tokens_file, so the scraper's secret cannot produce or
    delete. Read once, at start-up."""
    durability: str = "fsync"
    """"fsync": every acknowledged write is on disk. "os": the OS flushes when it likes (faster,
    loses the last writes on a machine crash, never on a process crash)."""
    map_size_bytes: int = 1 << 30
    """Initial LMDB map size; the map doubles by itself when full."""
    max_map_size_bytes: int = 0
    """Upper bound for map growth; 0 = no bound but the disk."""
    max_partitions: int = 10_000
    """Largest partition count a topic may have."""
    auto_create_topics: bool = False
    """Create an unknown topic on first produce (with default_partitions) instead of NOT_FOUND."""
    default_partitions: int = 1
    """Partition count of auto-created topics."""
    retention_check_interval_ms: int = 300_000
    """How often the writer applies retention_ms / retention_bytes."""
    producer_id_expiration_ms: int = 86_400_000
    """How long the broker remembers an idempotent producer's sequences on a partition after its
    last write there (Kafka's producer.id.expiration.ms); then a retry from it is refused as unknown."""
    offsets_retention_minutes: int = 10_080
    """A consumer group with no live member whose last activity (its newest offset commit, or when
    its last member left or died) is older than this is forgotten, committed offsets included
    (Kafka's offsets.retention.minutes; 7 days). Checked every retention_check_interval_ms."""
    max_members_per_group: int = 1_000
    initial_rebalance_delay_ms: int = 3_000
    """How long an empty consumer group waits for more members before its first assignment (each
    member joining meanwhile extends it, up to the rebalance timeout), so members started together
    share the backlog (Kafka's group.initial.rebalance.delay.ms); 0: assign at once."""
    """Most members a consumer group may have; a join beyond it fails with RESOURCE_EXHAUSTED
    (GroupMaxSizeReached)."""
    fetch_max_bytes: int = 32 * 1024 * 1024
    """Fetch size cap when a request asks for 0 or more."""
    fetch_max_wait_ms: int = 30_000
    """Longest long-poll a Fetch may ask for."""
    max_message_bytes: int = MAX_MESSAGE_BYTES
    """Largest gRPC request the broker accepts (17 MiB): the client's Produce requests are at most
    16 MiB (or one batch), topics' batches 8 MiB by default, plus 1 MiB of headroom for the
    request's framing. gRPC refuses a larger request with RESOURCE_EXHAUSTED, so nobody can make
    the broker buffer hundreds of MB. A topic's max_batch_bytes must fit in it with the headroom
    (CreateTopic/AlterTopic refuse one that does not). Responses may be larger: up to
    fetch_max_bytes plus one batch (see max_response_bytes)."""
    event_loop: str = "auto"
    """The event loop the gRPC server runs on: "uvloop" (libuv; 0.02 - 0.07 ms less per call and
    less CPU per call than asyncio's own loop on the reference machine), "asyncio" (the standard
    library's), or "auto": uvloop when it is installed (it is a dependency everywhere but Windows),
    else asyncio."""
    workers: int = 16
    """Threads that run the broker's short calls (produce, commits, admin, a fetch's read).
    Long-polling fetches and health watches hold none while they wait (they wait on the server's
    event loop), so this does not bound how many clients may be connected or waiting."""
    max_concurrent_rpcs: int = 10_000
    """Calls the broker holds at once (waiting long polls included); one more is refused at once
    with RESOURCE_EXHAUSTED, so a flood of calls cannot grow memory without bound."""
    max_streams_per_connection: int = 1_000
    """Concurrent calls one client connection may have open (HTTP/2 max concurrent streams); more
    wait in the client until one finishes."""
    shutdown_grace_ms: int = 10_000
    """On SIGTERM/SIGINT, how long in-flight calls may finish."""
    tls_cert_file: str = ""
    """PEM certificate (chain) of the gRPC port; with tls_key_file it turns TLS on."""
    tls_key_file: str = ""
    """PEM private key of tls_cert_file."""
    tls_client_ca_file: str = ""
    """PEM CA certificate(s): when set, clients must present a certificate signed by one (mutual TLS)."""
    tls_principal: str = "cn"
    """With mutual TLS and no auth_tokens_file, a call's principal comes from its client certificate:
    "cn" = ``User:<common name>``, "dn" = ``User:<the whole subject, RFC 2253>`` (Kafka's default,
    e.g. ``User:CN=alice,O=shop``)."""
    auth_tokens_file: str = ""
    """A file of ``PRINCIPAL TOKEN`` lines (whole-line # comments; tokens of at least 16
    characters): when set, every call but health checks must carry one of its tokens
    (``authorization: Bearer TOKEN``), or it fails with UNAUTHENTICATED; the call then acts as
    ``User:PRINCIPAL``. Re-read on SIGHUP; connections stay up."""
    super_users: str = ""
    """Principals that may do anything whatever the ACLs say, separated by ``;`` (Kafka's
    super.users; a certificate's DN principal holds commas), e.g. ``User:admin;User:ops``."""
    allow_if_no_acl: bool = True
    """While the broker holds no ACL at all, let every principal do anything (so a broker without
    ACLs works as before). Once any ACL exists this has no effect: what no ACL allows is refused.
    false: refuse from the start (only super_users may act until ACLs are added)."""
    quota_produce_bytes_per_second: int = 0
    """Default produce quota of every principal (bytes of produced batches per second); 0 = no limit. Over it,
    responses are held back (throttled), never refused. ``logsvc quotas set`` overrides it per
    principal."""
    quota_fetch_bytes_per_second: int = 0
    """Default fetch quota of every principal (bytes of fetched batches per second); 0 = no limit."""
    log_level: str = "INFO"
    validate_records: bool = True
    """Check every record of every produced batch against the specification before acknowledging
    it. false keeps the header, CRC and count checks and skips the per-record walk: a knob for
    measuring what the check costs (bench), never to be turned off in production, where one bad
    batch would wedge its partition for every reader."""

    @property
    def max_batch_bytes(self) -> int:
        """The largest batch a topic may be configured for: max_message_bytes less the headroom."""
        return self.max_message_bytes - MESSAGE_HEADROOM_BYTES

    @property
    def max_response_bytes(self) -> int:
        """The largest gRPC message the broker sends: a Fetch answer holds up to fetch_max_bytes
        of batches plus one whole batch, with per-batch framing (at most as large again for
        tiny batches)."""
        return 2 * self.fetch_max_bytes + self.max_message_bytes

    def validate(self) -> Settings:
        if self.durability not in ("fsync", "os"):
            raise InvalidConfig(f"durability={self.durability!r} must be 'fsync' or 'os'", key="durability")
        _host, colon, port = self.listen.rpartition(":")
        if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise InvalidConfig(f"listen={self.listen!r} must be HOST:PORT, the port 0 (any) to 65535", key="listen")
        if self.max_partitions > MAX_PARTITION_COUNT:
            raise InvalidConfig(
                f"max_partitions={self.max_partitions} must be at most {MAX_PARTITION_COUNT} (Kafka's 32-bit count)",
                key="max_partitions",
            )
        for key in (
            "map_size_bytes",
            "max_partitions",
            "default_partitions",
            "retention_check_interval_ms",
            "producer_id_expiration_ms",
            "offsets_retention_minutes",
            "max_members_per_group",
            "fetch_max_bytes",
            "max_message_bytes",
            "workers",
            "max_concurrent_rpcs",
            "max_streams_per_connection",
        ):
            if getattr(self, key) <= 0:
                raise InvalidConfig(f"{key}={getattr(self, key)} must be positive", key=key)
        if self.initial_rebalance_delay_ms < 0:
            raise InvalidConfig(
                f"initial_rebalance_delay_ms={self.initial_rebalance_delay_ms} must not be negative",
                key="initial_rebalance_delay_ms",
            )
        for key in (
            "max_map_size_bytes",
            "fetch_max_wait_ms",
            "shutdown_grace_ms",
            "quota_produce_bytes_per_second",
            "quota_fetch_bytes_per_second",
        ):
            if getattr(self, key) < 0:
                raise InvalidConfig(f"{key}={getattr(self, key)} must not be negative", key=key)
        if self.max_message_bytes < MESSAGE_HEADROOM_BYTES + 1024:
            raise InvalidConfig(
                f"max_message_bytes={self.max_message_bytes} must be at least {MESSAGE_HEADROOM_BYTES + 1024} "
                f"(the smallest batch, 1024, plus {MESSAGE_HEADROOM_BYTES} of headroom)",
                key="max_message_bytes",
            )
        if not self.metrics_host.strip():
            raise InvalidConfig("metrics_host must not be empty (127.0.0.1, 0.0.0.0, ::, a name)", key="metrics_host")
        if not -1 <= self.metrics_port <= 65535:
            raise InvalidConfig(
                f"metrics_port={self.metrics_port} must be -1 (off), 0 (any) or a port", key="metrics_port"
            )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            missing = "tls_key_file" if self.tls_cert_file else "tls_cert_file"
            raise InvalidConfig(f"TLS needs both tls_cert_file and tls_key_file; {missing} is not set", key=missing)
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise InvalidConfig(
                "tls_client_ca_file (mutual TLS) needs TLS: set tls_cert_file and tls_key_file",
                key="tls_client_ca_file",
            )
        if self.event_loop not in EVENT_LOOPS:
            raise InvalidConfig(
                f"event_loop={self.event_loop!r} must be one of {', '.join(EVENT_LOOPS)}", key="event_loop"
            )
        if self.tls_principal not in ("cn", "dn"):
            raise InvalidConfig(f"tls_principal={self.tls_principal!r} must be 'cn' or 'dn'", key="tls_principal")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise InvalidConfig(f"log_level={self.log_level!r} must be DEBUG, INFO, WARNING or ERROR", key="log_level")
        return self


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(key: str, value: Any, source: str) -> Any:
    kind = FIELDS[key].type
    try:
        if kind in ("bool", bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind in ("int", int):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise InvalidConfig(f"{source}: {key}={value!r} is not a valid {kind}", key=key) from None


def _check_keys(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key not in FIELDS:
            raise InvalidConfig(f"{source}: unknown setting {key!r}; known: {', '.join(FIELDS)}", key=key)
        out[key] = _coerce(key, value, source)
    return out


def from_file(path: str) -> dict[str, Any]:
    """Settings from a TOML file (top-level keys, or a ``[server]`` table)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise InvalidConfig(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise InvalidConfig(f"config file {path} is not valid TOML: {e}") from None
    if isinstance(raw.get("server"), dict):
        raw = {**{k: v for k, v in raw.items() if k != "server"}, **raw["server"]}
    return _check_keys(raw, path)


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings from ``LOGSVC_<KEY>`` variables; an unknown ``LOGSVC_*`` name is an error."""
    values = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _FOREIGN_ENV or name.startswith(_FOREIGN_ENV_PREFIXES):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in FIELDS:
            raise InvalidConfig(f"environment: unknown setting {name}", key=name)
        values[key] = value
    return _check_keys(values, "environment")


def load(
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults < file < environment < overrides (flags; None values are ignored)."""
    values: dict[str, Any] = {}
    if config_file:
        values.update(from_file(config_file))
    values.update(from_env(os.environ if environ is None else environ))
    values.update(_check_keys({k: v for k, v in (overrides or {}).items() if v is not None}, "flags"))
    return Settings(**values).validate()
