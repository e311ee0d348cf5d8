"""Storage fixtures: every store implementation in a temp dir, and an injectable clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logsvc.storage.base import Store
from logsvc.storage.lmdb_store import LmdbStore
from logsvc.storage.memory import MemoryStore
from tests.storage.batches import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000_000)


@pytest.fixture(params=["lmdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    """Each implementation of the contract; periodic retention off (tests call apply_retention)."""
    s: Store
    if request.param == "lmdb":
        s = LmdbStore.open(tmp_path / "data", clock=clock, retention_check_interval_ms=0)
    else:
        s = MemoryStore(clock=clock)
    try:
        yield s
    finally:
        s.close()
