"""TLS, mutual TLS and bearer tokens on the broker's gRPC port, with the client library, the CLI
and a plain gRPC health check as the callers. Certificates are made fresh for the run
(tests/fixtures/tls.py); the broker runs in this process (TLS and token checks are gRPC's and the
interceptor's, the same in a subprocess) except where the CLI's ``serve`` is the subject."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from logsvc.errors import InvalidConfig
from logsvc.server.app import Broker, create_server
from logsvc_client import Admin, Consumer, Producer, Security
from logsvc_client.access import Acl
from logsvc_client.errors import PermissionDenied, Unauthenticated, Unavailable
from tests.client.group_helpers import wait_until
from tests.conftest import broker_settings, cli_env
from tests.fixtures.tls import Pki, make_pki

TOKEN = "s3cret-token-billing"
OTHER_TOKEN = "other#token-connectors"  # a '#' inside a token is part of it


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.txt"
    path.write_text(f"# billing team\nbilling {TOKEN}\n\n# the connectors\nconnectors {OTHER_TOKEN}\n")
    path.chmod(0o600)
    return path


def quick_admin(address: str, security: Security) -> Admin:
    """An Admin that gives up at once when the connection cannot be made."""
    return Admin(address, security=security, request_timeout_ms=3_000, retries=0)


def round_trip(address: str, security: Security, topic: str = "orders") -> list[bytes]:
    """Create ``topic``, produce three records (the last one waited for, so it goes on the
    producer's ProduceStream call), read them back as a group member."""
    with Admin(address, security=security) as admin:
        admin.create_topic(topic, 2)
    with Producer(address, security=security, linger_ms=1) as producer:
        for i in range(2):
            producer.send(topic, b"v%d" % i, key=b"k%d" % i)
        producer.flush(timeout=10)
    with Producer(address, security=security, linger_ms=0) as producer:
        producer.send(topic, b"v2", key=b"k2").result()
    values: list[bytes] = []
    with Consumer(address, "g", security=security, session_timeout_ms=3_000) as consumer:
        consumer.subscribe([topic])
        for _ in range(100):
            values += [r.value for r in consumer.poll(timeout_ms=100) if r.value is not None]
            if len(values) == 3:
                break
    return sorted(values)


# -- TLS ------------------------------------------------------------------------------------------


def test_a_tls_broker_serves_clients_that_trust_its_ca(start_broker: Callable[..., Broker], pki: Pki) -> None:
    # Given a broker whose port speaks TLS only
    broker = start_broker(tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key))
    # When producer, admin and group consumer connect trusting the CA that signed its certificate
    # Then everything works as over a plaintext port
    assert round_trip(broker.address, Security(ca_file=str(pki.ca))) == [b"v0", b"v1", b"v2"]


@pytest.mark.parametrize("who", ["plaintext", "a stranger's CA"])
def test_a_tls_broker_refuses_plaintext_clients_and_clients_that_do_not_trust_it(
    start_broker: Callable[..., Broker], pki: Pki, who: str
) -> None:
    broker = start_broker(tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key))
    security = Security() if who == "plaintext" else Security(ca_file=str(pki.stranger_ca))
    with quick_admin(broker.address, security) as admin, pytest.raises(Unavailable):
        admin.list_topics()


def test_mutual_tls_serves_only_clients_with_a_certificate_its_ca_signed(
    start_broker: Callable[..., Broker], pki: Pki
) -> None:
    # Given a broker that requires client certificates signed by the test CA
    broker = start_broker(
        tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key), tls_client_ca_file=str(pki.ca)
    )
    # Then a client with such a certificate is served
    signed = Security(ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    assert round_trip(broker.address, signed) == [b"v0", b"v1", b"v2"]
    # And a client without one, or with one another CA signed, is not
    stranger = Security(ca_file=str(pki.ca), cert_file=str(pki.stranger_cert), key_file=str(pki.stranger_key))
    for security in (Security(ca_file=str(pki.ca)), stranger):
        with quick_admin(broker.address, security) as admin, pytest.raises(Unavailable):
            admin.list_topics()


@pytest.mark.parametrize(
    ("tls_principal", "expected"), [("cn", "User:alice"), ("dn", "User:CN=alice,OU=payments,O=shop")]
)
def test_with_mutual_tls_a_call_acts_as_its_certificates_subject_and_acls_apply_to_it(
    start_broker: Callable[..., Broker], pki: Pki, tls_principal: str, expected: str
) -> None:
    # Given a mutual-TLS broker without tokens, where only User:ops may administer ACLs
    broker = start_broker(
        tls_cert_file=str(pki.server_cert),
        tls_key_file=str(pki.server_key),
        tls_client_ca_file=str(pki.ca),
        tls_principal=tls_principal,
        super_users=expected,
    )
    alice = Security(ca_file=str(pki.ca), cert_file=str(pki.named_cert), key_file=str(pki.named_key))
    other = Security(ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    with Admin(broker.address, security=alice) as admin:
        # Then a client with alice's certificate is that principal (a super user here)
        assert admin.whoami() == expected
        admin.create_acls([Acl("User:ops", "cluster", "", "", "alter")])
    # And a client with another certificate is another principal, refused what no ACL allows it
    with Admin(broker.address, security=other) as admin:
        assert admin.whoami() != expected
        with pytest.raises(PermissionDenied):
            admin.create_topic("orders", 1)


# -- tokens ---------------------------------------------------------------------------------------


def test_a_broker_with_tokens_serves_callers_with_a_known_token(
    start_broker: Callable[..., Broker], tokens_file: Path
) -> None:
    broker = start_broker(auth_tokens_file=str(tokens_file))
    assert round_trip(broker.address, Security(token=TOKEN)) == [b"v0", b"v1", b"v2"]
    with Admin(broker.address, security=Security(token=OTHER_TOKEN)) as admin:
        assert [t.name for t in admin.list_topics()] == ["orders"]


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "this broker requires a bearer token: set LOGSVC_TOKEN"),
        ("guess", "the bearer token is not one this broker accepts"),
        (TOKEN + "x", "the bearer token is not one this broker accepts"),
    ],
)
def test_a_call_without_a_known_token_is_unauthenticated_and_changes_nothing(
    start_broker: Callable[..., Broker], tokens_file: Path, token: str | None, message: str
) -> None:
    # Given a broker that requires tokens
    broker = start_broker(auth_tokens_file=str(tokens_file))
    # When a caller without a valid one creates a topic or produces
    with Admin(broker.address, security=Security(token=token)) as admin:
        with pytest.raises(Unauthenticated, match=message):
            admin.create_topic("orders", 1)
        with pytest.raises(Unauthenticated):
            admin.produce_records("orders", [b"v"])
    # Then nothing was created
    with Admin(broker.address, security=Security(token=TOKEN)) as admin:
        assert admin.list_topics() == []


def test_health_checks_need_no_token(start_broker: Callable[..., Broker], tokens_file: Path) -> None:
    broker = start_broker(auth_tokens_file=str(tokens_file))
    with grpc.insecure_channel(broker.address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_tls_and_a_token_together(start_broker: Callable[..., Broker], pki: Pki, tokens_file: Path) -> None:
    broker = start_broker(
        tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key), auth_tokens_file=str(tokens_file)
    )
    assert round_trip(broker.address, Security(ca_file=str(pki.ca), token=TOKEN)) == [b"v0", b"v1", b"v2"]
    with Admin(broker.address, security=Security(ca_file=str(pki.ca))) as admin, pytest.raises(Unauthenticated):
        admin.list_topics()


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"tls_cert_file": "broker.pem"}, "tls_key_file"),
        ({"tls_key_file": "broker.key"}, "tls_cert_file"),
        ({"tls_client_ca_file": "ca.pem"}, "tls_client_ca_file"),
    ],
)
def test_incomplete_tls_settings_are_refused_naming_the_missing_key(
    data_dir: Path, settings: dict[str, str], key: str
) -> None:
    with pytest.raises(InvalidConfig) as raised:
        broker_settings(data_dir, **settings)
    assert raised.value.details["key"] == key


def test_unreadable_or_non_pem_files_are_refused_before_the_store_opens(data_dir: Path, tmp_path: Path) -> None:
    not_pem = tmp_path / "broker.pem"
    not_pem.write_text("hello")
    for settings, message in (
        ({"tls_cert_file": str(tmp_path / "missing.pem"), "tls_key_file": str(not_pem)}, "cannot read"),
        ({"tls_cert_file": str(not_pem), "tls_key_file": str(not_pem)}, "is not a PEM file"),
        ({"auth_tokens_file": str(tmp_path / "missing.txt")}, "auth_tokens_file: cannot read"),
    ):
        with pytest.raises(InvalidConfig, match=message):
            create_server(broker_settings(data_dir, **settings))
    assert not data_dir.exists()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LOGSVC_TLS": "maybe"}, "LOGSVC_TLS='maybe' must be 1 or 0"),
        ({"LOGSVC_TLS_CLIENT_CERT": "client.pem"}, "key_file is not set"),
        ({"LOGSVC_TOKEN": "two words"}, "token must be one non-empty word"),
    ],
)
def test_bad_client_security_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        Security.from_env(environ)


def test_client_security_comes_from_the_environment_by_default() -> None:
    environ = {"LOGSVC_TLS_CA": "ca.pem", "LOGSVC_TOKEN": TOKEN}
    assert Security.from_env(environ) == Security(ca_file="ca.pem", token=TOKEN)
    assert Security.from_env({"LOGSVC_TLS": "1"}).uses_tls
    assert not Security.from_env({}).uses_tls


# -- the CLI --------------------------------------------------------------------------------------


def logsvc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logsvc.cli", *args], capture_output=True, text=True, timeout=30, env=cli_env(**env)
    )


def test_the_cli_connects_with_the_ca_and_token_from_its_environment(
    start_broker: Callable[..., Broker], pki: Pki, tokens_file: Path
) -> None:
    # Given a broker with TLS and tokens
    broker = start_broker(
        tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key), auth_tokens_file=str(tokens_file)
    )
    env = {"LOGSVC_SERVER": broker.address, "LOGSVC_TLS_CA": str(pki.ca)}
    # When the CLI runs with LOGSVC_TLS_CA and LOGSVC_TOKEN, Then it works
    created = logsvc("topics", "create", "orders", "--partitions", "1", LOGSVC_TOKEN=TOKEN, **env)
    assert created.returncode == 0, created.stderr
    produced = subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "produce", "orders"],
        input="hello\n",
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(LOGSVC_TOKEN=TOKEN, **env),
    )
    assert produced.returncode == 0, produced.stderr
    consumed = logsvc("consume", "orders", "-n", "1", LOGSVC_TOKEN=TOKEN, **env)
    assert consumed.stdout == "hello\n"
    # And without the token it fails with one error line saying what to set
    refused = logsvc("topics", "list", **env)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "error: this broker requires a bearer token: set LOGSVC_TOKEN (CLI, connectors) or pass "
        "Security(token=...) to the client"
    ]


def test_serve_refuses_half_a_tls_configuration_with_one_error_line(tmp_path: Path, pki: Pki) -> None:
    done = logsvc("serve", "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0", "--tls-cert", str(pki.ca))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: TLS needs both tls_cert_file and tls_key_file; tls_key_file is not set"
    ]


HANDLER = """
import os


def handle(records):
    with open(os.environ["HANDLED_FILE"], "a") as out:
        out.writelines(r.value.decode() + "\\n" for r in records)
"""


def test_a_connector_connects_with_the_token_from_its_environment(
    start_broker: Callable[..., Broker], pki: Pki, tokens_file: Path, tmp_path: Path
) -> None:
    # Given a broker with TLS and tokens, and records in a topic
    broker = start_broker(
        tls_cert_file=str(pki.server_cert), tls_key_file=str(pki.server_key), auth_tokens_file=str(tokens_file)
    )
    security = Security(ca_file=str(pki.ca), token=TOKEN)
    with Admin(broker.address, security=security) as admin:
        admin.create_topic("orders", 2)
        admin.produce_records("orders", [b"a", b"b", b"c"])
    (tmp_path / "token_handler.py").write_text(HANDLER)
    config = tmp_path / "handler.toml"
    config.write_text(f'name = "secure"\nserver = "{broker.address}"\ntopics = ["orders"]\nlinger_ms = 20\n')
    handled = tmp_path / "handled.txt"
    env = cli_env(LOGSVC_TLS_CA=str(pki.ca), LOGSVC_TOKEN=TOKEN, HANDLED_FILE=str(handled), PYTHONPATH=str(tmp_path))

    # When a handler connector runs with LOGSVC_TLS_CA and LOGSVC_TOKEN in its environment
    argv = [sys.executable, "-m", "logsvc.cli", "connect", "python", "--handler", "token_handler:handle"]
    with subprocess.Popen([*argv, "--config", str(config)], env=env, stderr=subprocess.PIPE) as proc:
        try:
            wait_until(lambda: handled.exists() and len(handled.read_text().splitlines()) == 3, 30, "3 records")
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=30)

    # Then it handled every record and committed them, and stopped cleanly on SIGTERM
    assert sorted(handled.read_text().splitlines()) == ["a", "b", "c"]
    assert proc.returncode == 0, stderr.decode(errors="replace")
    with Admin(broker.address, security=security) as admin:
        assert sum(c.offset for c in admin.committed_offsets("secure").values()) == 3
