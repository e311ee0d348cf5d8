"""The test servers' ports (tests/fixtures/ports.py): free, and out of the range the kernel hands
to outgoing connections, so that no client takes one while its server restarts."""

from __future__ import annotations

import socket

import pytest

from tests.fixtures.ports import LOWEST, ephemeral_start, free_port


def test_a_free_port_is_below_the_ephemeral_range_and_can_be_bound() -> None:
    ports = {free_port() for _ in range(20)}
    assert all(LOWEST <= port < ephemeral_start() for port in ports)
    assert len(ports) > 1  # picked at random, not the same one for every worker
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


def test_without_room_below_the_ephemeral_range_any_free_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an ephemeral range that starts at the lowest port this picks from
    monkeypatch.setattr("tests.fixtures.ports.ephemeral_start", lambda: LOWEST)
    # When a port is asked for, then it is one the kernel gives (from the range) and it is free
    port = free_port()
    assert port >= LOWEST
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
