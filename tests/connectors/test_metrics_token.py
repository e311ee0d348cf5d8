"""A connector's /metrics behind a bearer token (``metrics_token_file``), read and checked by the
broker's own code (logsvc_wire/metrics_http.py), over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin
from logsvc_client.errors import InvalidConfig
from logsvc_connect import app
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.handler import HandlerConnector
from logsvc_connect.metrics import ConnectorMetrics
from tests.conftest import cli_env

TOKEN = "scraper-token-0123456789"


def scrape(port: int, authorization: str | None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "metrics-token"
    path.write_text(TOKEN + "\n")
    return path


def test_a_running_connector_serves_metrics_only_to_scrapes_with_its_token(broker: Broker, token_file: Path) -> None:
    # Given a handler connector with /metrics on a free port and a metrics_token_file
    with Admin(broker.address) as admin:
        admin.create_topic("orders", 1)
    config = RuntimeConfig(
        name="guarded", server=broker.address, topics=("orders",), metrics_port=0, metrics_token_file=str(token_file)
    )
    with HandlerConnector(lambda records: None, config) as connector:
        assert connector.metrics_port is not None
        # When scraped without the token, with a wrong one, or with another scheme
        for authorization in (None, "Bearer " + TOKEN[:-1] + "x", "Bearer " + TOKEN + "x", f"Basic {TOKEN}"):
            status, body = scrape(connector.metrics_port, authorization)
            # Then it answers 401, saying what is needed and showing no metric
            assert status == 401, authorization
            assert body == "/metrics needs Authorization: Bearer TOKEN (the connector's metrics_token_file)\n"
        # And with the token it answers with the connector's metrics
        status, body = scrape(connector.metrics_port, f"Bearer {TOKEN}")
        assert status == 200
        assert 'logsvc_connect_records_written_total{connector="guarded",kind="python"}' in body


def test_without_a_token_file_metrics_stay_open() -> None:
    metrics = ConnectorMetrics("open", "python")
    port = metrics.serve_http("127.0.0.1", 0)
    try:
        assert scrape(port, None)[0] == 200
    finally:
        metrics.stop_http()


@pytest.mark.parametrize("content", ["short-token\n", "two words-0123456789abcdef\n", ""])
def test_a_bad_or_missing_token_file_is_refused_like_the_brokers(tmp_path: Path, content: str) -> None:
    path = tmp_path / "metrics-token"
    path.write_text(content)
    metrics = ConnectorMetrics("bad", "python")
    with pytest.raises(InvalidConfig, match=r"metrics_token_file: .* must hold one token of at least 16") as raised:
        metrics.serve_http("127.0.0.1", 0, str(path))
    assert raised.value.details["key"] == "metrics_token_file"
    with pytest.raises(InvalidConfig, match="metrics_token_file: cannot read"):
        metrics.serve_http("127.0.0.1", 0, str(tmp_path / "missing"))
    assert metrics.port is None


def test_the_token_file_comes_from_the_config_file_or_the_environment_and_is_checked_at_load(
    tmp_path: Path, token_file: Path
) -> None:
    config = tmp_path / "connector.toml"
    config.write_text(f'name = "c"\ntopics = ["orders"]\nmetrics_token_file = "{token_file}"\n')
    handler = "tests.connectors.test_metrics_token:ignore"
    assert app.load("python", str(config), {}, handler).runtime.metrics_token_file == str(token_file)
    # And an environment variable overrides it, checked when the config is loaded
    with pytest.raises(InvalidConfig, match=r"metrics_token_file: cannot read .*nowhere"):
        app.load("python", str(config), {"LOGSVC_CONNECT_METRICS_TOKEN_FILE": str(tmp_path / "nowhere")}, handler)


def ignore(records: object) -> None:
    """A handler for the config tests."""


def test_logsvc_connect_refuses_a_short_metrics_token_with_one_error_line(tmp_path: Path) -> None:
    # Given a connector config whose metrics token is too short
    short = tmp_path / "metrics-token"
    short.write_text("short\n")
    config = tmp_path / "connector.toml"
    config.write_text(
        f'name = "c"\nserver = "127.0.0.1:1"\ntopics = ["orders"]\nmetrics_port = 0\nmetrics_token_file = "{short}"\n'
    )
    # When `logsvc connect python` starts with it
    done = subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "connect", "python", "--config", str(config), "--handler", "x:y"],
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    # Then it exits at once with one error line naming the key, never the token
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: metrics_token_file: {short} must hold one token of at least 16 printable characters without spaces"
    ]
