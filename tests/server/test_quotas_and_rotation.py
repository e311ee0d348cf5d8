"""Quotas hold a principal to its rate by delaying its answers (never refusing), and a rotated
tokens file takes effect on SIGHUP while clients stay connected."""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from logsvc.server.app import create_server
from logsvc.server.fetch_answer import FetchAnswer
from logsvc.server.quotas import fetched_bytes, produced_bytes
from logsvc_wire import batch as codec
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.produce_request import decode_produce_request
from tests.conftest import BrokerProcess, broker_settings, cli_env

QUOTA = 500_000  # bytes per second
PAYLOAD = 50_000
OLD, NEW = "alice-old-token-0123456789", "alice-new-token-0123456789"


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def produce_request(value: bytes) -> pb.ProduceRequest:
    batch = codec.encode_batch([[int(time.time() * 1000), None, value, None]])
    return pb.ProduceRequest(topic="orders", batches=[pb.PartitionBatch(partition=0, batch=batch)])


def test_a_producer_over_its_quota_is_slowed_to_its_rate_and_an_override_lifts_it(tmp_path: Path) -> None:
    # Given a broker whose default produce quota is 500 KB/s
    broker = create_server(broker_settings(tmp_path / "data", quota_produce_bytes_per_second=QUOTA))
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stub.CreateTopic(pb.CreateTopicRequest(name="orders", partitions=1), timeout=10)
            request = produce_request(b"x" * PAYLOAD)
            size = sum(len(b.batch) for b in request.batches)  # what a produce counts

            # When a producer sends 2 MB as fast as it can (4 s of its quota)
            start = time.monotonic()
            throttled = [stub.Produce(request, timeout=30).throttle_time_ms for _ in range(40)]
            elapsed = time.monotonic() - start

            # Then every request is stored, and past its one-second burst it ran at its quota (±20 %)
            rate = (40 * size - QUOTA) / elapsed
            assert 0.8 * QUOTA <= rate <= 1.2 * QUOTA, (rate, elapsed)
            assert throttled[0] == 0 and max(throttled) > 0
            offsets = stub.ListOffsets(pb.ListOffsetsRequest(topic="orders"), timeout=10).offsets
            assert offsets[0].offset == 40

            # When its principal gets an override of 0 (no limit), it runs at full speed again
            stub.AlterQuotas(
                pb.AlterQuotasRequest(set=[pb.Quota(principal="User:ANONYMOUS", produce_bytes_per_second=0)]),
                timeout=10,
            )
            start = time.monotonic()
            assert all(stub.Produce(request, timeout=30).throttle_time_ms == 0 for _ in range(40))
            assert time.monotonic() - start < 2
    finally:
        broker.stop(grace_s=1)


def test_quotas_count_the_bytes_of_record_batches_not_of_the_protobuf_around_them() -> None:
    # A Produce counts its batches, ProduceRecords its keys, values and headers, a Fetch the batches it returns
    produce = pb.ProduceRequest(
        topic="orders", batches=[pb.PartitionBatch(partition=p, batch=b"x" * 100) for p in range(3)]
    )
    assert produced_bytes(decode_produce_request(produce.SerializeToString())) == 300  # as the broker reads it
    records = pb.ProduceRecordsRequest(
        topic="orders",
        records=[
            pb.Record(key=b"k1", value=b"v" * 10, headers=[pb.Header(name="trace", value=b"abc")]),
            pb.Record(value=b"w" * 5),
        ],
    )
    assert produced_bytes(records) == 2 + 10 + 5 + 3 + 5
    fetch = FetchAnswer()
    fetch.add("orders", 0, 0, 1, [(0, b"y" * 40)])
    fetch.add("orders", 1, 0, 11, [(9, b"z" * 2)] * 2)
    fetch.add("orders", 2, 5, 5)
    assert fetched_bytes(fetch) == 44


def test_a_fetch_over_its_quota_is_delayed_not_refused(tmp_path: Path) -> None:
    # Given 1 MB in a topic and a fetch quota of 500 KB/s
    broker = create_server(broker_settings(tmp_path / "data", quota_fetch_bytes_per_second=QUOTA))
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            stub.CreateTopic(pb.CreateTopicRequest(name="orders", partitions=1), timeout=10)
            for _ in range(20):
                stub.Produce(produce_request(b"y" * PAYLOAD), timeout=10)

            # When a consumer reads it all, one batch per fetch
            start, offset, fetched, throttled = time.monotonic(), 0, 0, 0
            while offset < 20:
                got = stub.Fetch(
                    pb.FetchRequest(
                        partitions=[pb.FetchPartition(topic="orders", partition=0, offset=offset)], max_records=1
                    ),
                    timeout=30,
                )
                offset = got.partitions[0].batches[-1].base_offset + 1
                fetched += sum(len(b.batch) for p in got.partitions for b in p.batches)
                throttled = max(throttled, got.throttle_time_ms)
            elapsed = time.monotonic() - start

            # Then it got every record, at its quota past the burst
            rate = (fetched - QUOTA) / elapsed
            assert 0.8 * QUOTA <= rate <= 1.2 * QUOTA, (rate, elapsed)
            assert throttled > 0
    finally:
        broker.stop(grace_s=1)


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# the payments team\nalice {OLD}\n")
    path.chmod(0o600)
    return path


def wait_for(condition: object, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


def test_sighup_rotates_tokens_without_dropping_connections(tmp_path: Path, tokens_file: Path) -> None:
    # Given a broker process with alice's old token, and a client connected with it whose long
    # poll is waiting
    broker = BrokerProcess(tmp_path / "data", "--auth-tokens", str(tokens_file), base_env=cli_env()).start()
    try:
        with grpc.insecure_channel(broker.address) as channel:
            stub = pb_grpc.BrokerStub(channel)
            assert stub.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(OLD), timeout=10).principal == "User:alice"
            stub.CreateTopic(pb.CreateTopicRequest(name="orders", partitions=1), metadata=bearer(OLD), timeout=10)
            poll = stub.Fetch.future(
                pb.FetchRequest(
                    partitions=[pb.FetchPartition(topic="orders", partition=0, offset=0)], max_wait_ms=20_000
                ),
                metadata=bearer(OLD),
                timeout=30,
            )
            metrics = re.search(r"metrics (http://\S+/metrics)", broker.stderr_text())
            assert metrics is not None

            def poll_waiting() -> bool:
                return "logsvc_fetches_waiting 1.0" in urllib.request.urlopen(metrics.group(1)).read().decode()

            wait_for(poll_waiting)
            assert poll_waiting()  # the broker holds the poll, authenticated with the old token

            # When the file is rotated to a new token and the broker gets SIGHUP
            tokens_file.write_text(f"alice {NEW}\n")
            assert broker.proc is not None
            broker.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: broker.stderr_text().count("tokens for") >= 2)  # logged at start and at reload

            # Then on the same connection the new token works and the old one is refused
            assert stub.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(NEW), timeout=10).principal == "User:alice"
            with pytest.raises(grpc.RpcError) as refused:
                stub.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(OLD), timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

            # And the call that was waiting across the reload is still served
            stub.Produce(produce_request(b"v"), metadata=bearer(NEW), timeout=10)
            assert [b.base_offset for b in poll.result(timeout=10).partitions[0].batches] == [0]

            # When a broken file is loaded, the tokens from before keep working
            tokens_file.write_text("alice short\n")
            broker.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "still using the tokens loaded before" in broker.stderr_text())
            assert "still using the tokens loaded before" in broker.stderr_text()
            assert stub.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(NEW), timeout=10).principal == "User:alice"
        assert broker.terminate() == 0
    finally:
        broker.kill()
    assert NEW not in broker.stderr_text() and OLD not in broker.stderr_text()
