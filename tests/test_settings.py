"""Configuration: defaults < TOML file < LOGSVC_* environment < flags; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from logsvc import settings
from logsvc.errors import InvalidConfig


def test_defaults_are_the_documented_ones() -> None:
    s = settings.load(environ={})
    assert (s.data_dir, s.listen, s.durability) == ("./data", "127.0.0.1:50051", "fsync")


def test_file_then_environment_then_flags_each_win_over_the_one_before(tmp_path: Path) -> None:
    # Given a config file, an environment and flags that disagree
    cfg = tmp_path / "logsvc.toml"
    cfg.write_text('data_dir = "/from/file"\nlisten = "0.0.0.0:1"\nworkers = 8\n')
    env = {"LOGSVC_LISTEN": "0.0.0.0:2", "LOGSVC_WORKERS": "9", "LOGSVC_SERVER": "ignored:1"}
    # When loading with a flag for workers only
    s = settings.load(str(cfg), env, {"workers": 10, "data_dir": None})
    # Then each key comes from the highest layer that sets it
    assert (s.data_dir, s.listen, s.workers) == ("/from/file", "0.0.0.0:2", 10)


def test_a_server_table_in_the_file_is_read_too(tmp_path: Path) -> None:
    cfg = tmp_path / "logsvc.toml"
    cfg.write_text('[server]\ndurability = "os"\n')
    assert settings.load(str(cfg), {}).durability == "os"


def test_an_unknown_key_in_the_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "logsvc.toml"
    cfg.write_text("data_dirr = 'x'\n")
    with pytest.raises(InvalidConfig, match="data_dirr"):
        settings.load(str(cfg), {})


def test_an_unknown_logsvc_environment_variable_is_an_error_naming_it() -> None:
    with pytest.raises(InvalidConfig, match="LOGSVC_DATA_DIRR"):
        settings.load(None, {"LOGSVC_DATA_DIRR": "x"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("durability", "sometimes"),
        ("workers", "0"),
        ("workers", "many"),
        ("listen", "nowhere"),
        ("listen", "127.0.0.1:99999"),
        ("listen", "127.0.0.1:http"),
        ("max_partitions", str(2**31)),
        ("metrics_port", "-5"),
        ("event_loop", "twisted"),
    ],
)
def test_bad_values_are_errors_naming_the_key(key: str, value: str) -> None:
    with pytest.raises(InvalidConfig, match=key):
        settings.load(None, {f"LOGSVC_{key.upper()}": value})


def test_an_invalid_toml_file_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("this is = = not toml")
    with pytest.raises(InvalidConfig, match="not valid TOML"):
        settings.load(str(cfg), {})
