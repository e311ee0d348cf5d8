"""Where a connector's settings come from, and which wins: the config file < the CLI's
LOGSVC_SERVER < LOGSVC_CONNECT_* < the command line (--server, --handler); an error names its
source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logsvc_client.errors import InvalidConfig
from logsvc_connect import app
from tests.conftest import cli_env


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "pg.toml"
    path.write_text('name = "orders-pg"\ntopics = ["orders"]\nserver = "file:1"\n[postgres]\ndsn = "host=x"\n')
    return path


@pytest.fixture
def no_server(tmp_path: Path) -> Path:
    path = tmp_path / "bare.toml"
    path.write_text('name = "orders-pg"\ntopics = ["orders"]\n[postgres]\ndsn = "host=x"\n')
    return path


def test_the_server_flag_wins_over_the_file_and_the_environment(config: Path) -> None:
    env = {"LOGSVC_CONNECT_SERVER": "env:2"}
    assert app.load("postgres", str(config), env).runtime.server == "env:2"
    assert app.load("postgres", str(config), env, server="flag:3").runtime.server == "flag:3"
    assert app.load("postgres", str(config), {}, server="kafka://b1:9092").runtime.server == "kafka://b1:9092"


def test_logsvc_server_wins_over_the_file_as_for_every_command(config: Path, no_server: Path) -> None:
    assert app.load("postgres", str(config), {}, cli_server="cli:4").runtime.server == "cli:4"
    assert app.load("postgres", str(no_server), {}, cli_server="cli:4").runtime.server == "cli:4"
    # the connector's own variable is more specific than the CLI's
    env = {"LOGSVC_CONNECT_SERVER": "env:2"}
    assert app.load("postgres", str(config), env, cli_server="cli:4").runtime.server == "env:2"
    # neither given: the file's, else the default
    assert app.load("postgres", str(config), {}).runtime.server == "file:1"
    assert app.load("postgres", str(no_server), {}).runtime.server == "127.0.0.1:50051"


def test_an_unknown_key_from_the_environment_is_reported_as_the_environment_variable(config: Path) -> None:
    with pytest.raises(InvalidConfig, match=r"^environment variable LOGSVC_CONNECT_BATCH_SIZE: unknown key"):
        app.load("postgres", str(config), {"LOGSVC_CONNECT_BATCH_SIZE": "10"})
    with pytest.raises(InvalidConfig, match=r"^environment variable LOGSVC_CONNECT_POSTGRES_TABLES: unknown key"):
        app.load("postgres", str(config), {"LOGSVC_CONNECT_POSTGRES_TABLES": "x"})
    with pytest.raises(InvalidConfig, match=r"environment variable LOGSVC_CONNECT_LINGER_MS: .*linger_ms='soon'"):
        app.load("postgres", str(config), {"LOGSVC_CONNECT_LINGER_MS": "soon"})


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("linger_ms = 1e400", r"linger_ms=inf is not a valid int"),  # TOML's float infinity
        ("batch_max_records = 99999999999", r"batch_max_records=99999999999 must be from 1 to 2147483647"),
        ("shutdown_timeout_ms = 4294967296", r"shutdown_timeout_ms=4294967296 must be from 0 to 2147483647"),
        ("linger_ms = -1", r"linger_ms=-1 must be from 0 to 2147483647"),
    ],
)
def test_a_number_a_setting_cannot_hold_is_invalid_config_naming_it(tmp_path: Path, line: str, says: str) -> None:
    path = tmp_path / "numbers.toml"
    path.write_text(f'name = "n"\ntopics = ["t"]\n{line}\n[postgres]\ndsn = "host=x"\n')
    with pytest.raises(InvalidConfig, match=says):
        app.load("postgres", str(path), {})


def test_an_unknown_key_of_the_file_is_reported_as_the_file(tmp_path: Path) -> None:
    path = tmp_path / "typo.toml"
    path.write_text('name = "n"\ntopics = ["t"]\nbatch_size = 1\n[postgres]\ndsn = "host=x"\n')
    with pytest.raises(InvalidConfig, match=rf"^{path}: unknown key 'batch_size'"):
        app.load("postgres", str(path), {})


@pytest.mark.parametrize("where", ["before", "after"])
def test_logsvc_server_flag_before_or_after_connect_is_the_address_the_connector_uses(config: Path, where: str) -> None:
    # Given a config naming file:1, and the address given on the command line instead
    flag = ["--server", "127.0.0.1:9"]
    argv = [*flag, "connect", "postgres"] if where == "before" else ["connect", "postgres", *flag]
    # When the connector starts (it cannot reach anything: stop it once it said where it goes)
    proc = subprocess.Popen(
        [sys.executable, "-m", "logsvc.cli", *argv, "--config", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=cli_env(),
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if b"connector orders-pg consuming" in line:
                break
    finally:
        proc.kill()
        proc.wait(10)
        proc.stderr.close()
    # Then it goes to the flag's address, not the file's
    assert line.rstrip().endswith(b"connector orders-pg consuming orders from 127.0.0.1:9"), line
