"""Brokers for the access-control tests: the callers of these tests (no token, so
``User:ANONYMOUS``) are super users, so the tests keep working once ACLs are enforced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logsvc.server.app import Broker, create_server
from tests.conftest import broker_settings

#: The principal of a call without a token or client certificate.
ANONYMOUS = "User:ANONYMOUS"


@pytest.fixture
def broker(data_dir: Path) -> Iterator[Broker]:
    """A broker in this process (port 0, LMDB in a temp dir) whose anonymous callers are super users."""
    b = create_server(broker_settings(data_dir, super_users=ANONYMOUS))
    try:
        yield b
    finally:
        b.stop(grace_s=1)
