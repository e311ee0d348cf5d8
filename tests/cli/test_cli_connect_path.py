"""Where `logsvc connect` imports modules from: installed packages first, then --path DIRs, then
the working directory, so a module lying in the working directory never replaces an installed one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import cli_env

# A stand-in for an installed module: importing it says so on stderr and stops the process.
PLANTED = 'import sys\nsys.stderr.write("PLANTED MODULE RAN\\n")\nsys.exit(42)\n'
# A handler module whose import fails on purpose, naming the file it was found in (so a test
# needs no broker: the one error line proves where the module came from).
FOUND = 'raise RuntimeError("handler found in " + __file__)\n'

LOGSVC = str(Path(sys.executable).parent / "logsvc")
ENTRY_POINTS = {"console script": [LOGSVC], "python -m": [sys.executable, "-m", "logsvc.cli"]}


def run_connect(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOGSVC, "connect", *args], cwd=cwd, capture_output=True, text=True, timeout=30, env=cli_env()
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "connector.toml"
    path.parent.mkdir()
    path.write_text('name = "paths"\nserver = "127.0.0.1:1"\ntopics = ["orders"]\n[postgres]\nno_such_key = 1\n')
    return path


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_psycopg_py_in_the_working_directory_is_not_imported_by_the_postgres_connector(
    tmp_path: Path, config: Path, entry_point: str
) -> None:
    # Given a psycopg.py in the working directory
    (tmp_path / "psycopg.py").write_text(PLANTED)

    # When the PostgreSQL connector starts there (its config has a bad key, checked after psycopg loads)
    argv = [*ENTRY_POINTS[entry_point], "connect", "postgres", "--config", str(config)]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=30, env=cli_env())

    # Then the installed psycopg was imported, not the planted one: the error is the config's
    assert "PLANTED" not in done.stderr
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no_such_key" in lines[0], done.stderr


def test_a_json_py_in_the_working_directory_is_not_imported_by_a_handler(tmp_path: Path, config: Path) -> None:
    # Given a json.py in the working directory and a handler in --path that imports json
    (tmp_path / "json.py").write_text(PLANTED)
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "uses_json.py").write_text('import json\nraise RuntimeError("json from " + json.__file__)\n')
    config.write_text('name = "paths"\nserver = "127.0.0.1:1"\ntopics = ["orders"]\n')

    # When the handler connector starts in that directory
    done = subprocess.run(
        [
            LOGSVC,
            "connect",
            "python",
            "--path",
            str(handlers),
            "--handler",
            "uses_json:handle",
            "--config",
            str(config),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )

    # Then the handler got the standard library's json
    assert "PLANTED" not in done.stderr
    assert "json from " in done.stderr and str(tmp_path / "json.py") not in done.stderr, done.stderr


@pytest.mark.parametrize("where", ["--path", "working directory"])
def test_a_handler_module_is_found_in_a_path_directory_or_the_working_directory(
    tmp_path: Path, where: str, config: Path
) -> None:
    # Given a handler module in a --path directory, or in the working directory
    directory = tmp_path / "handlers" if where == "--path" else tmp_path
    directory.mkdir(exist_ok=True)
    (directory / "found_handler.py").write_text(FOUND)
    config.write_text('name = "paths"\nserver = "127.0.0.1:1"\ntopics = ["orders"]\n')
    path_args = ["--path", str(directory)] if where == "--path" else []

    # When the handler connector starts
    done = subprocess.run(
        [LOGSVC, "connect", "python", *path_args, "--handler", "found_handler:handle", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )

    # Then the module was imported from there (its import error, on purpose, names the file)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert f"handler found in {directory / 'found_handler.py'}" in lines[0]


def test_a_path_that_is_not_a_directory_is_a_usage_error(tmp_path: Path, config: Path) -> None:
    # Given no such directory
    # When it is given as --path
    done = run_connect(tmp_path, "python", "--path", str(tmp_path / "missing"), "--config", str(config))

    # Then the CLI says so on one line and exits 2
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing" in lines[0], done.stderr
