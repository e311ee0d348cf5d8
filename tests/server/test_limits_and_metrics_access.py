"""Length limits on ids, commit metadata and topic config (issue 9); max_message_bytes against
topics' max_batch_bytes; reflection behind the token; /metrics on metrics_host with an optional
token, and its topic labels gone with the topic. Against a real broker in this process."""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from logsvc.errors import InvalidConfig
from logsvc.server.app import Broker, create_server
from logsvc.settings import MAX_MESSAGE_BYTES, Settings
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.conftest import broker_settings, cli_env

TOKEN = "a-token-long-enough-2"
METRICS_TOKEN = "scrape-token-0123456789"


def refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def join(stub: pb_grpc.BrokerStub, **fields: str) -> object:
    return stub.JoinGroup(pb.JoinGroupRequest(group="g", topics=["t"], **fields), timeout=10)


# -- length limits --------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["client_id", "instance_id", "member_id", "assignor"])
def test_a_join_with_an_id_over_255_bytes_is_invalid_naming_the_field_and_the_limit(
    stub: pb_grpc.BrokerStub, field: str
) -> None:
    # Given a topic to join on
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1), timeout=10)
    # When a member joins with a 10 MB id in one field (20 MB is above max_message_bytes)
    error = refused(lambda: join(stub, **{field: "x" * 10_000_000}))
    # Then it is INVALID_ARGUMENT naming the field, its length and the limit, without echoing it
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"{field} is 10000000 bytes long: at most 255 bytes"


def test_an_id_of_exactly_255_bytes_is_accepted(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1), timeout=10)
    joined = stub.JoinGroup(
        pb.JoinGroupRequest(group="g", topics=["t"], client_id="é" * 127 + "x", instance_id="i" * 255), timeout=10
    )
    assert joined.member_id


def test_heartbeat_leave_and_commit_refuse_a_member_id_over_255_bytes(stub: pb_grpc.BrokerStub) -> None:
    long_id = "m" * 256
    for call in (
        lambda: stub.Heartbeat(pb.HeartbeatRequest(group="g", member_id=long_id), timeout=10),
        lambda: stub.LeaveGroup(pb.LeaveGroupRequest(group="g", member_id=long_id), timeout=10),
        lambda: stub.CommitOffsets(
            pb.CommitOffsetsRequest(
                group="g", member_id=long_id, offsets=[pb.OffsetCommit(topic="t", partition=0, offset=0)]
            ),
            timeout=10,
        ),
    ):
        error = refused(call)
        assert (error.code(), error.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "member_id is 256 bytes long: at most 255 bytes",
        )


def test_commit_metadata_over_4_kib_is_invalid_and_nothing_is_committed(stub: pb_grpc.BrokerStub) -> None:
    # Given a topic with a record
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1), timeout=10)
    stub.ProduceRecords(pb.ProduceRecordsRequest(topic="t", records=[pb.Record(value=b"v")]), timeout=10)
    # When a commit carries 4,097 bytes of metadata on its second offset
    offsets = [
        pb.OffsetCommit(topic="t", partition=0, offset=1, metadata="ok"),
        pb.OffsetCommit(topic="t", partition=0, offset=1, metadata="x" * 4097),
    ]
    error = refused(lambda: stub.CommitOffsets(pb.CommitOffsetsRequest(group="g", offsets=offsets), timeout=10))
    # Then it is refused naming which one, and nothing was committed
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "offsets[1].metadata is 4097 bytes long: at most 4096 bytes"
    assert not stub.FetchOffsets(pb.FetchOffsetsRequest(group="g"), timeout=10).offsets


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"retention_ms": "1" * 5000}, "topic config retention_ms: the value is 5000 bytes long: at most 4096 bytes"),
        ({"k" * 300: "1"}, "a topic config key is 300 bytes long: at most 255 bytes"),
    ],
)
def test_a_topic_config_key_or_value_over_its_limit_is_invalid_on_create_and_alter(
    stub: pb_grpc.BrokerStub, config: dict[str, str], message: str
) -> None:
    error = refused(lambda: stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1, config=config), timeout=10))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1), timeout=10)
    error = refused(lambda: stub.AlterTopic(pb.AlterTopicRequest(name="t", set_config=config), timeout=10))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


# -- max_message_bytes ----------------------------------------------------------------------------


def test_max_message_bytes_defaults_to_the_largest_request_plus_headroom() -> None:
    assert Settings().max_message_bytes == MAX_MESSAGE_BYTES == 17 * 1024 * 1024
    assert Settings().max_batch_bytes == 16 * 1024 * 1024
    assert Settings().max_response_bytes > Settings().fetch_max_bytes + Settings().max_batch_bytes


def test_a_topic_whose_batches_could_not_fit_in_a_request_is_refused_on_create_and_alter(
    stub: pb_grpc.BrokerStub,
) -> None:
    # Given the default max_message_bytes (17 MiB: batches up to 16 MiB)
    too_big = {"max_batch_bytes": str(32 * 1024 * 1024)}
    # When a topic asks for 32 MiB batches, at creation or later
    error = refused(lambda: stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1, config=too_big), timeout=10))
    # Then it is refused naming the value, the limit and the setting
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "topic config max_batch_bytes=33554432 is above 16777216, the largest batch a request of this "
        "broker's max_message_bytes=17825792 can carry"
    )
    stub.CreateTopic(pb.CreateTopicRequest(name="t", partitions=1, config={"max_batch_bytes": "16777216"}), timeout=10)
    error = refused(lambda: stub.AlterTopic(pb.AlterTopicRequest(name="t", set_config=too_big), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_max_message_bytes_below_the_smallest_batch_plus_headroom_is_a_configuration_error(data_dir: Path) -> None:
    with pytest.raises(InvalidConfig, match="max_message_bytes=1000 must be at least 1049600"):
        broker_settings(data_dir, max_message_bytes=1000)


# -- reflection -----------------------------------------------------------------------------------


def list_services(address: str, token: str | None) -> list[str]:
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with grpc.insecure_channel(address) as channel:
        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        answers = list(refl.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=10))
    return [s.name for s in answers[0].list_services_response.service]


def test_with_tokens_on_reflection_needs_a_token(start_broker: Callable[..., Broker], tmp_path: Path) -> None:
    # Given a broker that requires tokens
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"tester {TOKEN}\n")
    tokens.chmod(0o600)
    broker = start_broker(auth_tokens_file=str(tokens))
    # When reflection is asked without a token
    error = refused(lambda: list_services(broker.address, None))
    # Then it is UNAUTHENTICATED; with the token it lists the broker
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "logsvc.v1.Broker" in list_services(broker.address, TOKEN)


# -- /metrics -------------------------------------------------------------------------------------


def scrape(broker: Broker, host: str = "127.0.0.1", token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://{host}:{broker.metrics.port}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_metrics_listen_on_127_0_0_1_whatever_listen_says(start_broker: Callable[..., Broker]) -> None:
    # Given a broker listening for gRPC on every interface
    broker = start_broker(listen="0.0.0.0:0")
    # Then /metrics listens on loopback only
    assert broker.metrics._http is not None
    assert broker.metrics._http.server_address[0] == "127.0.0.1"
    assert scrape(broker)[0] == 200


def test_metrics_host_moves_metrics_to_another_address(start_broker: Callable[..., Broker]) -> None:
    broker = start_broker(listen="127.0.0.1:0", metrics_host="0.0.0.0")
    assert broker.metrics._http is not None
    assert broker.metrics._http.server_address[0] == "0.0.0.0"


def test_with_a_metrics_token_a_scrape_without_it_gets_401_and_no_names(
    start_broker: Callable[..., Broker], tmp_path: Path
) -> None:
    # Given a broker with a topic and a /metrics token
    token_file = tmp_path / "metrics.token"
    token_file.write_text(METRICS_TOKEN + "\n")
    broker = start_broker(metrics_token_file=str(token_file))
    with grpc.insecure_channel(broker.address) as channel:
        pb_grpc.BrokerStub(channel).CreateTopic(pb.CreateTopicRequest(name="secret-orders", partitions=1), timeout=10)
    # When scraped without the token, or with a wrong one
    for token in (None, "wrong-token-0123456789"):
        status, body = scrape(broker, token=token)
        # Then the answer is 401 and names no topic
        assert status == 401 and "secret-orders" not in body
    # And with the token it is the metrics
    status, body = scrape(broker, token=METRICS_TOKEN)
    assert status == 200 and 'topic="secret-orders"' in body


@pytest.mark.parametrize("text", ["", "short", "two words-that-are-long-enough"])
def test_a_metrics_token_file_without_one_long_token_is_refused(data_dir: Path, tmp_path: Path, text: str) -> None:
    token_file = tmp_path / "metrics.token"
    token_file.write_text(text)
    with pytest.raises(InvalidConfig, match=r"metrics_token_file: .* must hold one token of at least 16"):
        create_server(broker_settings(data_dir, metrics_token_file=str(token_file)))


def test_a_deleted_topic_leaves_no_series_in_metrics(broker: Broker, stub: pb_grpc.BrokerStub) -> None:
    # Given a topic that was produced to
    stub.CreateTopic(pb.CreateTopicRequest(name="gone", partitions=1), timeout=10)
    stub.ProduceRecords(pb.ProduceRecordsRequest(topic="gone", records=[pb.Record(value=b"v")]), timeout=10)
    assert 'topic="gone"' in scrape(broker)[1]
    # When it is deleted
    stub.DeleteTopic(pb.DeleteTopicRequest(name="gone"), timeout=10)
    # Then /metrics no longer names it
    assert 'topic="gone"' not in scrape(broker)[1]


def test_serve_help_documents_the_metrics_host_and_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "serve", "--help"], capture_output=True, text=True, env=cli_env()
    )
    assert result.returncode == 0
    assert "--metrics-host HOST" in result.stdout and "[default: 127.0.0.1]" in result.stdout
    assert "--metrics-token FILE" in result.stdout
