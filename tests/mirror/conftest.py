"""Fixtures of the mirror tests: a logsvc broker subprocess (the source), the session's Kafka
cluster (Tansu, :mod:`tests.fixtures.kafka`) and a mirror subprocess stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BrokerProcess, cli_env
from tests.fixtures.ports import free_port
from tests.mirror.helpers import MirrorProcess


@pytest.fixture
def source(tmp_path: Path) -> Iterator[BrokerProcess]:
    """``logsvc serve`` as a subprocess: the mirror's source (on a port no client connection takes
    while a test has it stopped)."""
    proc = BrokerProcess(tmp_path / "data", base_env=cli_env()).start(listen=f"127.0.0.1:{free_port()}")
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def mirrors() -> Iterator[list[MirrorProcess]]:
    """Mirror processes a test starts (killed at the end if still running)."""
    started: list[MirrorProcess] = []
    yield started
    for proc in started:
        proc.kill()
