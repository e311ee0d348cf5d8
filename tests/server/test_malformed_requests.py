"""Requests whose bytes are not a protobuf message: INVALID_ARGUMENT naming the method, and one
rate-limited log line on the broker instead of a traceback per request."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from logsvc.server.malformed import RateLimitedLog
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import BrokerProcess, cli_env

JUNK = [
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # a varint that never ends
    b"\x0a\x40short",  # a length-delimited field cut off
    b"\x07",  # wire type 7 does not exist
    b"\x12\x03abc\x0b",  # a group start with no end
]


def test_junk_bytes_to_produce_are_invalid_argument_and_one_log_line_without_a_traceback(data_dir: Path) -> None:
    # Given a broker process
    broker = BrokerProcess(data_dir, base_env=cli_env()).start()
    try:
        with grpc.insecure_channel(broker.address) as channel:
            # When 100 requests of junk bytes are sent to Produce (and some to CreateTopic)
            raw_produce = channel.unary_unary("/logsvc.v1.Broker/Produce")
            codes = []
            details = []
            for i in range(100):
                try:
                    raw_produce(JUNK[i % len(JUNK)], timeout=10)
                except grpc.RpcError as e:
                    codes.append(e.code())
                    details.append(e.details() or "")
            try:
                channel.unary_unary("/logsvc.v1.Broker/CreateTopic")(JUNK[0], timeout=10)
            except grpc.RpcError as e:
                codes.append(e.code())

            # (and to health Watch, a streaming method gRPC itself refuses)
            watch = channel.unary_stream("/grpc.health.v1.Health/Watch")
            with pytest.raises(grpc.RpcError) as refused_watch:
                list(watch(JUNK[1], timeout=10))
            assert refused_watch.value.code() == grpc.StatusCode.UNKNOWN

            # Then each is refused with INVALID_ARGUMENT, the message naming the method
            assert codes == [grpc.StatusCode.INVALID_ARGUMENT] * 101
            assert details[0].startswith("the request to Produce is not a valid protobuf message (11 bytes: "), details[
                0
            ]
            # And the broker still serves well-formed requests
            pb_grpc.BrokerStub(channel).ListTopics(pb.ListTopicsRequest(), timeout=10)
        assert broker.terminate() == 0
    finally:
        broker.kill()

    # And its log has no traceback, and one line for the burst (rate-limited), not one per request
    stderr = broker.stderr_text()
    assert "Traceback" not in stderr and "Exception deserializing" not in stderr, stderr
    assert stderr.count("malformed request") == 1, stderr


def test_the_rate_limited_log_says_how_many_it_left_out(caplog: object) -> None:
    # Given a rate-limited log with a 10 s interval on a clock the test moves
    now = [0.0]
    limited = RateLimitedLog(interval_s=10, clock=lambda: now[0])

    # When 5 messages come within the interval, then one after it
    logged = [limited.warning(f"bad {i}") for i in range(5)]
    now[0] = 10.0
    logged.append(limited.warning("bad 5"))

    # Then the first and the one after the interval are logged, the latter counting the 4 left out
    assert logged == [True, False, False, False, False, True]
    messages = [r.getMessage() for r in caplog.records]  # type: ignore[attr-defined]
    assert messages == ["bad 0", "bad 5 (4 more since the last one logged)"]
