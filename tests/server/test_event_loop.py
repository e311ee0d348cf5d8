"""The broker's event loop (Settings.event_loop): uvloop by default, asyncio's own on request;
either serves the whole produce-fetch-long-poll path, and a loop that cannot be had is a clear
configuration error."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import pytest
import uvloop

from logsvc.errors import InvalidConfig
from logsvc.server.app import create_server, new_event_loop
from logsvc_client import Admin, Consumer, Producer
from tests.conftest import broker_settings


@pytest.mark.parametrize(("kind", "loop_type"), [("auto", uvloop.Loop), ("uvloop", uvloop.Loop), ("asyncio", None)])
def test_each_event_loop_serves_produce_fetch_and_a_waiting_long_poll(
    tmp_path: Path, kind: str, loop_type: type | None
) -> None:
    # Given a broker on the event loop of that kind
    broker = create_server(broker_settings(tmp_path / "data", event_loop=kind))
    try:
        if loop_type is None:
            assert not isinstance(broker.io.loop, uvloop.Loop)
            assert isinstance(broker.io.loop, asyncio.AbstractEventLoop)
        else:
            assert isinstance(broker.io.loop, loop_type)
        with Admin(broker.address) as admin:
            admin.create_topic("t", 2)
        # When a consumer long-polls an empty topic while a producer sends to it
        got: list[bytes] = []
        with Consumer(broker.address, fetch_max_wait_ms=5_000) as consumer:
            consumer.assign([("t", 0), ("t", 1)])
            assert consumer.poll(timeout_ms=100) == []

            def produce() -> None:
                with Producer(broker.address, linger_ms=0) as producer:
                    for i in range(20):
                        producer.send("t", b"v%d" % i, b"k%d" % i).result()

            sender = threading.Thread(target=produce)
            sender.start()
            while len(got) < 20:
                got += [r.value for r in consumer.poll(timeout_ms=5_000)]
            sender.join()
        # Then every acknowledged record is read back
        assert sorted(got) == sorted(b"v%d" % i for i in range(20))
    finally:
        broker.stop(grace_s=1)


def test_event_loop_uvloop_without_uvloop_installed_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with pytest.raises(InvalidConfig, match="event_loop='uvloop' but uvloop is not installed"):
        new_event_loop("uvloop")
    loop = new_event_loop("auto")  # auto falls back to asyncio's loop
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
