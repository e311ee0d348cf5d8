"""Nothing unauthenticated costs the broker anything it keeps (issue 9): made-up method names, calls
without a token, oversized requests. Memory is read from a `logsvc serve` subprocess (its
/proc status), so the test's own client allocations do not count."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from logsvc.server.refusals import OTHER, RefusalLog, peer_host
from logsvc_wire._proto import logsvc_pb2 as pb
from tests.conftest import BrokerProcess

TOKEN = "a-token-long-enough-1"
SERIES = re.compile(r"^[a-z_]+(\{[^}]*\})? ", re.M)


@pytest.fixture
def guarded_broker(data_dir: Path, tmp_path: Path) -> Iterator[BrokerProcess]:
    """`logsvc serve` with tokens on, /metrics on a free port."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"tester {TOKEN}\n")
    tokens.chmod(0o600)
    proc = BrokerProcess(data_dir, "--auth-tokens", str(tokens), "--log-level", "WARNING").start()
    try:
        yield proc
    finally:
        proc.kill()


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def scrape(proc: BrokerProcess) -> str:
    m = re.search(r"metrics http://[^:]+:(\d+)/metrics", proc.stderr_text())
    assert m, proc.stderr_text()
    with urllib.request.urlopen(f"http://127.0.0.1:{m.group(1)}/metrics", timeout=10) as response:
        return str(response.read().decode())


def call_made_up_methods(address: str, first: int, count: int, token: str | None = None) -> set[grpc.StatusCode]:
    """``count`` calls to distinct made-up method names, in parallel; the status codes seen."""
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    codes: set[grpc.StatusCode] = set()
    with grpc.insecure_channel(address) as channel:
        for start in range(first, first + count, 1_000):
            pending = [
                channel.unary_unary(f"/made.up.Service{i}/Method{i}").future(b"", timeout=30, metadata=metadata)
                for i in range(start, min(start + 1_000, first + count))
            ]
            for call in pending:
                call.exception()  # waits for the answer
                codes.add(call.code())
    return codes


def test_20000_unknown_method_calls_leave_metrics_and_rss_bounded(guarded_broker: BrokerProcess) -> None:
    # Given a broker with tokens on, warmed up by a first round of made-up calls
    assert guarded_broker.proc is not None
    pid = guarded_broker.proc.pid
    assert call_made_up_methods(guarded_broker.address, 0, 2_000) == {grpc.StatusCode.UNIMPLEMENTED}
    before = scrape(guarded_broker)
    rss_before = rss_kib(pid)
    # When 20,000 more calls name 20,000 more made-up methods, without a token and with one
    codes = call_made_up_methods(guarded_broker.address, 2_000, 10_000)
    codes |= call_made_up_methods(guarded_broker.address, 12_000, 10_000, token=TOKEN)
    after = scrape(guarded_broker)
    # Then every one is UNIMPLEMENTED, counted under one label, and nothing grew with the names
    assert codes == {grpc.StatusCode.UNIMPLEMENTED}
    assert len(SERIES.findall(after)) == len(SERIES.findall(before))
    assert abs(len(after) - len(before)) < 1_024
    assert 'logsvc_request_seconds_count{code="UNIMPLEMENTED",method="unknown"} 22000.0' in after
    assert "made.up" not in after and "Method1" not in after
    # (before the fix these calls grew it by ~116 MiB; gRPC's own buffers under a loaded machine
    # take up to ~16 MiB, so the bound leaves room for them and still catches a per-name cost)
    assert rss_kib(pid) - rss_before < 40 * 1024, "the broker's RSS grew by more than 40 MiB"
    # And not one line was logged per call
    assert "made.up" not in guarded_broker.stderr_text()


def test_a_large_produce_without_a_token_is_refused_without_being_read(data_dir: Path, tmp_path: Path) -> None:
    # Given a broker with tokens on that accepts messages up to 128 MiB, and a 96 MiB Produce: one
    # read whole would raise the broker's peak memory by at least its size
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"tester {TOKEN}\n")
    tokens.chmod(0o600)
    broker = BrokerProcess(
        data_dir,
        "--auth-tokens",
        str(tokens),
        "--log-level",
        "WARNING",
        env={"LOGSVC_MAX_MESSAGE_BYTES": str(128 << 20)},
    ).start()
    try:
        assert broker.proc is not None
        pid = broker.proc.pid
        request = pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=b"x" * (96 << 20))])
        peak_before = rss_kib(pid, "VmHWM")
        options = [("grpc.max_send_message_length", 128 << 20)]
        with grpc.insecure_channel(broker.address, options=options) as channel:
            produce = channel.unary_unary("/logsvc.v1.Broker/Produce")
            # When it is sent three times without a token
            for _ in range(3):
                with pytest.raises(grpc.RpcError) as refused:
                    produce(request.SerializeToString(), timeout=60)
                # Then each is UNAUTHENTICATED
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # And the broker's peak memory grew by far less than one request (gRPC's flow-control
        # window holds a part of it, up to ~16 MiB on a loaded machine); the refusals are counted
        assert rss_kib(pid, "VmHWM") - peak_before < 48 * 1024  # measured: 9-15 MiB
        assert "\nlogsvc_unauthenticated_calls_total 3.0\n" in scrape(broker)
    finally:
        broker.kill()


def test_a_request_above_max_message_bytes_is_refused_before_it_is_read_whole(guarded_broker: BrokerProcess) -> None:
    # Given a broker with the default max_message_bytes (17 MiB), and a caller with a token
    assert guarded_broker.proc is not None
    pid = guarded_broker.proc.pid
    request = pb.ProduceRequest(topic="t", batches=[pb.PartitionBatch(partition=0, batch=b"x" * (64 << 20))])
    peak_before = rss_kib(pid, "VmHWM")
    options = [("grpc.max_send_message_length", 128 << 20)]
    with grpc.insecure_channel(guarded_broker.address, options=options) as channel:
        produce = channel.unary_unary("/logsvc.v1.Broker/Produce")
        # When it sends a 64 MiB Produce
        with pytest.raises(grpc.RpcError) as refused:
            produce(request.SerializeToString(), timeout=30, metadata=(("authorization", f"Bearer {TOKEN}"),))
    # Then gRPC refuses it naming both sizes, and the broker never held it
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "17825792" in (refused.value.details() or "")
    assert rss_kib(pid, "VmHWM") - peak_before < 32 * 1024


def test_refused_calls_are_logged_once_per_address_per_interval_with_a_count() -> None:
    # Given a refusal log with a one-minute interval and a clock the test moves
    now = [0.0]
    lines: list[str] = []
    refusals = RefusalLog(interval_s=60, clock=lambda: now[0], logger=_ListLogger(lines))  # type: ignore[arg-type]
    # When one address is refused 100 times in a minute, and another once
    for _ in range(100):
        refusals.refused("ipv4:10.0.0.7:5000", "a call to /logsvc.v1.Broker/Produce", "no token")
    refusals.refused("ipv6:[::1]:6000", "a call to /logsvc.v1.Broker/Fetch", "no token")
    # Then each address got one line, naming it
    assert lines == [
        "refused a call to /logsvc.v1.Broker/Produce from 10.0.0.7: no token",
        "refused a call to /logsvc.v1.Broker/Fetch from ::1: no token",
    ]
    # When the first address is refused again after the interval
    now[0] = 61
    refusals.refused("ipv4:10.0.0.7:5001", "a call to /logsvc.v1.Broker/Produce", "no token")
    # Then its line counts the 99 not logged
    assert lines[-1].endswith("(99 more refused since the last line)")


def test_the_refusal_log_remembers_a_bounded_number_of_addresses() -> None:
    # Given a refusal log that remembers two addresses
    now = [0.0]
    lines: list[str] = []
    refusals = RefusalLog(interval_s=60, clock=lambda: now[0], max_addresses=2, logger=_ListLogger(lines))  # type: ignore[arg-type]
    # When 1,000 addresses are refused within the interval
    for i in range(1_000):
        refusals.refused(f"ipv4:10.0.{i // 256}.{i % 256}:80", "a call", "no token")
    # Then it holds at most two plus the "other addresses" entry, and wrote three lines
    assert len(refusals) <= 3
    assert len(lines) == 3 and OTHER in lines[-1]
    # When the interval has passed, a new address takes the place of the quiet ones
    now[0] = 120
    refusals.refused("ipv4:192.168.1.1:80", "a call", "no token")
    assert any("997 more calls from other addresses" in line for line in lines)
    assert lines[-1].startswith("refused a call from 192.168.1.1")


@pytest.mark.parametrize(
    ("peer", "host"),
    [("ipv4:10.0.0.7:53124", "10.0.0.7"), ("ipv6:[::1]:5000", "::1"), ("unix:/tmp/s", "unix:/tmp/s")],
)
def test_a_peer_is_logged_by_its_host_without_the_port(peer: str, host: str) -> None:
    assert peer_host(peer) == host


class _ListLogger:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def warning(self, fmt: str, *args: object) -> None:
        self.lines.append(fmt % args)
