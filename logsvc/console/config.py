"""The console's settings: defaults in one place, validated once, passed explicitly.

This module needs none of the console extra's packages, so ``logsvc console --help`` shows the
defaults even where the extra is not installed.

``logsvc console`` builds a :class:`ConsoleConfig` from its flags (which click reads from the
``LOGSVC_CONSOLE_*`` environment when not given); the app never reads the environment itself.
How the console reaches the broker (TLS, token) is the client library's business: it reads
``LOGSVC_TLS*`` and ``LOGSVC_TOKEN`` as it does for the CLI.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from logsvc_client.errors import InvalidConfig

DEFAULT_HOST = "127.0.0.1"  # this machine only, unless told otherwise
DEFAULT_PORT = 8080
DEFAULT_LISTEN = f"{DEFAULT_HOST}:{DEFAULT_PORT}"
DEFAULT_SAMPLE_INTERVAL_MS = 5_000
#: how far back the lag and rate charts reach; the issue asks for at least an hour
DEFAULT_HISTORY_MS = 3_600_000
MIN_HISTORY_MS = 3_600_000
#: records per page of the message browser
DEFAULT_PAGE_RECORDS = 20
#: at most this many records are read looking for a key on one page (then "go on from here")
DEFAULT_FILTER_SCAN_RECORDS = 20_000
#: a page polls its live parts this often
DEFAULT_REFRESH_MS = 2_000


@dataclasses.dataclass(frozen=True)
class ConsoleConfig:
    server: str
    listen_host: str = DEFAULT_HOST
    listen_port: int = DEFAULT_PORT
    auth_tokens_file: str = ""  # empty: every state-changing action is refused
    read_only: bool = False  # actions are hidden and refused
    sample_interval_ms: int = DEFAULT_SAMPLE_INTERVAL_MS
    history_ms: int = DEFAULT_HISTORY_MS
    refresh_ms: int = DEFAULT_REFRESH_MS
    page_records: int = DEFAULT_PAGE_RECORDS
    filter_scan_records: int = DEFAULT_FILTER_SCAN_RECORDS
    connector_metrics: tuple[str, ...] = ()  # http(s) URLs of connectors' /metrics

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """InvalidConfig naming the setting for any value out of range."""
        if not 0 <= self.listen_port <= 65535:
            raise InvalidConfig(f"listen port {self.listen_port} is not 0 to 65535", key="listen")
        if self.sample_interval_ms < 50:
            raise InvalidConfig(f"sample_interval_ms={self.sample_interval_ms} must be >= 50", key="sample_interval_ms")
        if self.history_ms < MIN_HISTORY_MS:
            raise InvalidConfig(f"history_ms={self.history_ms} must be >= {MIN_HISTORY_MS} (an hour)", key="history_ms")
        if self.refresh_ms < 100:
            raise InvalidConfig(f"refresh_ms={self.refresh_ms} must be >= 100", key="refresh_ms")
        if self.page_records < 1 or self.filter_scan_records < self.page_records:
            raise InvalidConfig("page_records must be >= 1 and <= filter_scan_records", key="page_records")
        for url in self.connector_metrics:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidConfig(
                    f"connector metrics URL {url!r} is not http(s)://HOST:PORT/PATH", key="connector_metrics"
                )

    @property
    def actions_shown(self) -> bool:
        """Whether pages show the forms of state-changing actions (``--read-only`` hides them)."""
        return not self.read_only


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) as ``(host, port)``; InvalidConfig otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InvalidConfig(f"--listen {text!r} is not HOST:PORT", key="listen")
    return host, int(port)
