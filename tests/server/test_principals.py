"""Who a call is (logsvc/server/principals.py): the ``NAME TOKEN`` tokens file, bearer tokens,
client certificates over a real mutual-TLS gRPC connection, and reloading the file."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from logsvc import settings as settings_mod
from logsvc.acl import ANONYMOUS
from logsvc.errors import InvalidConfig, Unauthenticated
from logsvc.server import principals as principals_mod
from logsvc.server.principals import Principals, load_tokens, parse_tokens, principal_of
from tests.fixtures.tls import Pki, make_pki

ALICE = "alice-token-0123456789"
BOB = "bob#token#with#hashes"  # a '#' inside a token is part of it
ROTATED = "alice-new-token-98765"


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def write_tokens(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    return write_tokens(
        tmp_path / "tokens.txt",
        f"# the billing team\n\nalice {ALICE}\n   # an indented comment\nbob\t{BOB}\nalice {ROTATED}\n",
    )


# -- the file -------------------------------------------------------------------------------------


def test_the_tokens_file_maps_each_token_to_user_name_with_comments_and_blank_lines(tokens_file: Path) -> None:
    # Given a file with comments, a blank line, a tab, a token holding '#' and a name with two tokens
    principals = Principals(str(tokens_file))
    # Then each token acts as its name, the whole token counting ('#' included)
    assert principals.authenticate(bearer(ALICE)) == "User:alice"
    assert principals.authenticate(bearer(ROTATED)) == "User:alice"
    assert principals.authenticate(bearer(BOB)) == "User:bob"
    with pytest.raises(Unauthenticated):
        principals.authenticate(bearer("bob"))  # what today's parser cut the token to
    assert len(principals) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"# header\n{ALICE}\n", r"line 2 of \S+ holds one word: the format is now 'PRINCIPAL TOKEN'"),
        ("alice short-token\n", "line 1 of .* has a bad token: at least 16 printable ASCII"),
        ("alice tökén-not-ascii-at-all\n", "line 1 of .* has a bad token"),
        (f"alice {ALICE}\n\nbob {ALICE}\n", "line 3 of .* repeats the token of line 1"),
        (f"al!ce {ALICE}\n", "line 1 of .* has a bad name: 1 to 249 of"),
        (f"User:alice {ALICE}\n", r"line 1 of .* has a bad name \(without 'User:'\)"),
        (f"{'a' * 250} {ALICE}\n", "line 1 of .* has a bad name"),
        (f"alice {ALICE} # the billing team\n", "line 1 of .* holds more than 'PRINCIPAL TOKEN'"),
        ("# nothing but comments\n\n", "holds no 'PRINCIPAL TOKEN' line"),
    ],
)
def test_a_bad_tokens_file_is_refused_naming_the_file_and_line_never_the_token(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_tokens(tmp_path / "tokens.txt", text)
    with pytest.raises(InvalidConfig, match=message) as raised:
        Principals(str(path))
    assert str(path) in raised.value.message
    assert raised.value.details["key"] == "auth_tokens_file"
    for secret in (ALICE, "short-token", "tökén-not-ascii-at-all"):
        assert secret not in raised.value.message


def test_a_tokens_file_that_is_not_utf8_or_missing_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_bytes(f"alice {ALICE}\nbob \xff\xfe-0123456789abcdef\n".encode("latin-1"))
    with pytest.raises(InvalidConfig, match=r"line 2 of .* is not UTF-8"):
        parse_tokens(path.read_bytes(), str(path))
    with pytest.raises(InvalidConfig, match=r"auth_tokens_file: cannot read .*missing"):
        Principals(str(tmp_path / "missing"))


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o400, False), (0o640, True), (0o604, True)])
def test_a_tokens_file_others_may_read_loads_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int, warned: bool
) -> None:
    path = write_tokens(tmp_path / "tokens.txt", f"alice {ALICE}\n", mode)
    with caplog.at_level(logging.INFO, logger="logsvc.server"):
        Principals(str(path))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if warned:
        assert warnings == [f"auth_tokens_file {path} is open to group or others (mode {mode:04o}): chmod 600 {path}"]
    else:
        assert warnings == []
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [f"auth_tokens_file {path}: 1 tokens for 1 principals"]
    assert ALICE not in caplog.text


# -- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ([], "this broker requires a bearer token: set LOGSVC_TOKEN"),
        ([("other", "x")], "this broker requires a bearer token"),
        ([("authorization", f"Basic {ALICE}")], "the authorization metadata must be 'Bearer TOKEN'"),
        (bearer(ALICE + "x"), "the bearer token is not one this broker accepts"),
        (bearer(ALICE[:-1]), "the bearer token is not one this broker accepts"),
        (bearer(""), "the bearer token is not one this broker accepts"),
    ],
)
def test_a_call_without_a_known_token_is_unauthenticated(
    tokens_file: Path, metadata: list[tuple[str, str]], message: str
) -> None:
    principals = Principals(str(tokens_file))
    assert principals.requires_token
    with pytest.raises(Unauthenticated, match=message):
        principals.authenticate(metadata, {"x509_common_name": [b"alice"]})


def test_the_bearer_scheme_is_case_insensitive_and_bytes_values_work(tokens_file: Path) -> None:
    principals = Principals(str(tokens_file))
    assert principals.authenticate([("authorization", f"bearer {ALICE}")]) == "User:alice"
    assert principals.authenticate([("authorization", f"BEARER {BOB}".encode())]) == "User:bob"


def test_a_token_is_found_with_one_hash_and_one_lookup_however_many_tokens_there_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 20,000 principals
    lines = "".join(f"user{i} token-number-{i:012d}\n" for i in range(20_000))
    principals = Principals(str(write_tokens(tmp_path / "tokens.txt", lines)))
    # And a count of the hashes computed from now on
    hashed: list[bytes] = []
    real = principals_mod._digest

    def counting(token: bytes) -> bytes:
        hashed.append(token)
        return real(token)

    monkeypatch.setattr(principals_mod, "_digest", counting)
    # When a known and an unknown token authenticate
    assert principals.authenticate(bearer(f"token-number-{19_999:012d}")) == "User:user19999"
    with pytest.raises(Unauthenticated):
        principals.authenticate(bearer(f"token-number-{19_999:011d}x"))
    # Then each cost one hash of the given token (no comparison with every token), and the table
    # holds digests, not tokens
    assert hashed == [f"token-number-{19_999:012d}".encode(), f"token-number-{19_999:011d}x".encode()]
    assert {len(key) for key in load_tokens(str(tmp_path / "tokens.txt"))} == {32}


# -- certificates and anonymity -------------------------------------------------------------------


def test_without_a_tokens_file_the_certificate_names_the_principal_else_anonymous() -> None:
    context = {"x509_subject": [b"CN=alice,OU=payments,O=shop"], "x509_common_name": [b"alice"]}
    assert Principals(tls_principal="cn").authenticate([], context) == "User:alice"
    assert Principals(tls_principal="dn").authenticate([], context) == "User:CN=alice,OU=payments,O=shop"
    assert Principals().authenticate([], {"x509_subject": [b"O=shop"]}) == "User:O=shop"  # no CN: the DN
    assert Principals().authenticate(bearer(ALICE), {"transport_security_type": [b"ssl"]}) == ANONYMOUS
    assert Principals().authenticate(None, None) == ANONYMOUS
    assert not Principals().requires_token


def test_tls_principal_is_a_validated_setting(tmp_path: Path) -> None:
    base = {"data_dir": str(tmp_path)}
    assert settings_mod.load(environ={}, overrides=base).tls_principal == "cn"
    assert settings_mod.load(environ={"LOGSVC_TLS_PRINCIPAL": "dn"}, overrides=base).tls_principal == "dn"
    with pytest.raises(InvalidConfig, match="tls_principal='subject' must be 'cn' or 'dn'"):
        settings_mod.load(environ={}, overrides={**base, "tls_principal": "subject"})


def test_from_settings_reads_the_tokens_file_and_tls_principal(tmp_path: Path, tokens_file: Path) -> None:
    s = settings_mod.load(
        environ={}, overrides={"data_dir": str(tmp_path), "auth_tokens_file": str(tokens_file), "tls_principal": "dn"}
    )
    principals = Principals.from_settings(s)
    assert (principals.requires_token, principals.tls_principal) == (True, "dn")
    assert principals.authenticate(bearer(BOB)) == "User:bob"
    assert not Principals.from_settings(settings_mod.load(environ={}, overrides={"data_dir": "x"})).requires_token


# -- reload ---------------------------------------------------------------------------------------


def test_reload_swaps_in_the_edited_file(tokens_file: Path) -> None:
    # Given a running table
    principals = Principals(str(tokens_file))
    # When alice's old token is removed and carol added, and the file reloaded
    write_tokens(tokens_file, f"alice {ROTATED}\ncarol carol-token-0123456789\n")
    principals.reload()
    # Then the new table is the one in force
    assert principals.authenticate(bearer("carol-token-0123456789")) == "User:carol"
    assert principals.authenticate(bearer(ROTATED)) == "User:alice"
    with pytest.raises(Unauthenticated):
        principals.authenticate(bearer(ALICE))


@pytest.mark.parametrize("broken", [f"alice {ALICE}\n{BOB}\n", "", None])
def test_a_reload_that_fails_keeps_the_old_table(tokens_file: Path, broken: str | None) -> None:
    # Given a running table
    principals = Principals(str(tokens_file))
    # When the file is broken (a one-word line, emptied, deleted) and reloaded
    if broken is None:
        tokens_file.unlink()
    else:
        write_tokens(tokens_file, broken)
    with pytest.raises(InvalidConfig):
        principals.reload()
    # Then every old token still works
    assert principals.authenticate(bearer(ALICE)) == "User:alice"
    assert principals.authenticate(bearer(BOB)) == "User:bob"
    assert len(principals) == 3


def test_try_reload_logs_a_broken_edit_instead_of_raising(tokens_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Given a running table, and the file then broken by a one-word line
    principals = Principals(str(tokens_file))
    write_tokens(tokens_file, f"alice {ALICE}\n{BOB}\n")
    # When a SIGHUP handler reloads it
    with caplog.at_level(logging.ERROR, logger="logsvc.server"):
        assert principals.try_reload() is False
    # Then one error line names the file and the line, not the token, and the old table serves
    [record] = caplog.records
    assert f"line 2 of {tokens_file} holds one word" in record.getMessage()
    assert "still using the tokens loaded before" in record.getMessage()
    assert BOB not in caplog.text
    assert principals.authenticate(bearer(BOB)) == "User:bob"
    # And a fixed file goes in
    write_tokens(tokens_file, f"carol {ALICE}\n")
    assert principals.try_reload() is True
    assert principals.authenticate(bearer(ALICE)) == "User:carol"


def test_readers_never_see_a_half_loaded_table_while_reloads_run(tmp_path: Path) -> None:
    # Given two versions of a 2,000-line file that both hold alice's token
    path = tmp_path / "tokens.txt"
    versions = [f"alice {ALICE}\n" + "".join(f"u{v}x{i} token-{v}-{i:014d}\n" for i in range(2_000)) for v in range(2)]
    write_tokens(path, versions[0])
    principals = Principals(str(path))
    failures: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                assert principals.authenticate(bearer(ALICE)) == "User:alice"
            except BaseException as e:  # any failure is the test's failure
                failures.append(e)
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    for t in readers:
        t.start()
    # When the file is reloaded over and over, alternating versions
    try:
        for n in range(30):
            write_tokens(path, versions[n % 2])
            principals.reload()
    finally:
        stop.set()
        for t in readers:
            t.join()
    # Then no reader ever failed to find alice
    assert failures == []


# -- a real mutual-TLS connection -----------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class WhoAmI(grpc.GenericRpcHandler):
    """Answers every call with the caller's principal (or the Unauthenticated message)."""

    def __init__(self, principals: Principals) -> None:
        self.principals = principals

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        def who(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                return principal_of(self.principals, context).encode()
            except Unauthenticated as e:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, e.message)

        return grpc.unary_unary_rpc_method_handler(who)


@pytest.fixture
def tls_server(pki: Pki) -> Iterator[Callable[..., str]]:
    """Start a tiny gRPC server (not the broker) that answers with the caller's principal;
    returns its address."""
    servers: list[grpc.Server] = []

    def start(principals: Principals, mutual: bool = True) -> str:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[WhoAmI(principals)])
        credentials = grpc.ssl_server_credentials(
            [(pki.server_key.read_bytes(), pki.server_cert.read_bytes())],
            root_certificates=pki.ca.read_bytes() if mutual else None,
            require_client_auth=mutual,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        server.stop(0)


def who_am_i(address: str, pki: Pki, cert: Path | None, key: Path | None, token: str | None = None) -> str:
    credentials = grpc.ssl_channel_credentials(
        pki.ca.read_bytes(), key.read_bytes() if key else None, cert.read_bytes() if cert else None
    )
    with grpc.secure_channel(address, credentials) as channel:
        answer: bytes = channel.unary_unary("/test.Who/AmI")(b"", metadata=bearer(token) if token else None, timeout=10)
    return answer.decode()


@pytest.mark.parametrize(
    ("tls_principal", "client", "expected"),
    [
        ("cn", "client", "User:logsvc client"),
        ("cn", "named", "User:alice"),
        ("dn", "client", "User:CN=logsvc client"),
        ("dn", "named", "User:CN=alice,OU=payments,O=shop"),  # RFC 2253: most specific first, as Kafka
    ],
)
def test_over_mutual_tls_the_client_certificate_names_the_principal(
    tls_server: Callable[..., str], pki: Pki, tls_principal: str, client: str, expected: str
) -> None:
    # Given a mutual-TLS server without a tokens file
    address = tls_server(Principals(tls_principal=tls_principal))
    # When a client presents a certificate the CA signed
    cert, key = (pki.client_cert, pki.client_key) if client == "client" else (pki.named_cert, pki.named_key)
    # Then its principal comes from the certificate's subject, read from context.auth_context()
    assert who_am_i(address, pki, cert, key) == expected


def test_over_tls_without_a_client_certificate_the_caller_is_anonymous(
    tls_server: Callable[..., str], pki: Pki
) -> None:
    address = tls_server(Principals(), mutual=False)
    assert who_am_i(address, pki, None, None) == ANONYMOUS


def test_with_mutual_tls_and_tokens_the_token_decides_the_principal(
    tls_server: Callable[..., str], pki: Pki, tokens_file: Path
) -> None:
    # Given a mutual-TLS server that also requires tokens
    address = tls_server(Principals(str(tokens_file)))
    # When alice's certificate calls with bob's token, Then the caller is bob
    assert who_am_i(address, pki, pki.named_cert, pki.named_key, token=BOB) == "User:bob"
    # And with the certificate alone it is refused
    with pytest.raises(grpc.RpcError) as raised:
        who_am_i(address, pki, pki.named_cert, pki.named_key)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
