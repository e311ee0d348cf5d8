"""Client fixtures: a real broker's address, consumers closed after the test, and a broker that can
be stopped and started again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from logsvc.server.app import Broker, create_server
from logsvc_client import Admin, Consumer
from tests.conftest import broker_settings
from tests.fixtures.ports import free_port


@pytest.fixture
def address(broker: Broker) -> str:
    return broker.address


@pytest.fixture
def admin(address: str) -> Iterator[Admin]:
    with Admin(address) as a:
        yield a


@pytest.fixture
def consumers() -> Iterator[Callable[..., Consumer]]:
    """A factory of consumers that are closed at the end of the test."""
    with ExitStack() as stack:

        def make(*args: Any, **kwargs: Any) -> Consumer:
            return stack.enter_context(Consumer(*args, **kwargs))

        yield make


class RestartableBroker:
    """A broker in this process that can be stopped and started again on the same port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        # a port below the ephemeral range: while it is stopped, no client connection takes it
        self.broker: Broker | None = create_server(broker_settings(data_dir, listen=f"127.0.0.1:{free_port()}"))
        self.port = self.broker.port
        self.address = self.broker.address

    def stop(self) -> None:
        if self.broker is not None:
            self.broker.stop(grace_s=0)
            self.broker = None

    def start(self) -> None:
        assert self.broker is None
        self.broker = create_server(broker_settings(self.data_dir, listen=f"127.0.0.1:{self.port}"))


@pytest.fixture
def restartable_broker(data_dir: Path) -> Iterator[RestartableBroker]:
    b = RestartableBroker(data_dir)
    try:
        yield b
    finally:
        b.stop()
