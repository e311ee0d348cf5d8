"""`logsvc serve`: start-up line, configuration errors, graceful SIGTERM."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import Cli, start_broker
from tests.conftest import cli_env


def serve(*args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "serve", *args], capture_output=True, timeout=30, env=cli_env(**env)
    )


def test_serve_announces_its_ports_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    # Given a broker started on free ports
    broker = start_broker(tmp_path / "data")
    try:
        # When it is used, then sent SIGTERM
        Cli(broker.address, broker.data_dir).new_topic()
        code = broker.terminate()
    finally:
        broker.kill()

    # Then it announced both ports, and shut down gracefully with exit 0
    assert code == 0
    stderr = broker.stderr_text()
    assert re.search(
        r"^logsvc listening on 127\.0\.0\.1:\d+ \(metrics http://127\.0\.0\.1:\d+/metrics\)$", stderr, re.M
    )
    assert "Traceback" not in stderr


def test_an_unknown_key_in_the_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    # Given a config file with a misspelt setting
    config = tmp_path / "logsvc.toml"
    config.write_text('data_dir = "x"\ndurabilty = "os"\n')

    # When the broker is started with it
    done = serve("--config", str(config), "--listen", "127.0.0.1:0", "--metrics-port", "0")

    # Then it refuses with one line naming the key, exit 1, no traceback
    stderr = done.stderr.decode()
    assert done.returncode == 1
    assert stderr.startswith("error: ") and stderr.count("\n") == 1
    assert "unknown setting 'durabilty'" in stderr


def test_an_unknown_logsvc_environment_variable_is_an_error_naming_it(tmp_path: Path) -> None:
    # When the broker is started with a misspelt LOGSVC_ variable
    done = serve("--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0", LOGSVC_DURABILTY="os")

    # Then it refuses, naming the variable
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "error: environment: unknown setting LOGSVC_DURABILTY"


def test_a_bad_flag_value_is_a_usage_error(tmp_path: Path) -> None:
    # When --durability is not one of the choices
    done = serve("--durability", "sometimes")

    # Then click's usage error is one line, exit 2
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "sometimes" in lines[0]
