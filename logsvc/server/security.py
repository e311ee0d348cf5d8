"""Who may talk to the broker: TLS on the gRPC port and bearer tokens, both off by default.

* **TLS** (``tls_cert_file`` + ``tls_key_file``): the port speaks TLS only. With
  ``tls_client_ca_file`` a client must also present a certificate signed by that CA (mutual TLS);
  the handshake refuses the others before any call reaches the broker.
* **Tokens** (``auth_tokens_file``): every call must carry metadata ``authorization: Bearer TOKEN``
  with one of the file's tokens (one per line; blank lines and ``#`` comments ignored), or it fails
  with UNAUTHENTICATED naming what was wrong. Health checks and server reflection stay open, so load
  balancers and ``grpcurl list`` work without one. The file is read once, at start-up.

Tokens over a plaintext port can be read off the network: use them with TLS beyond localhost. The
``/metrics`` HTTP port is not covered by either (bind it to a private interface, or turn it off).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from logsvc.errors import InvalidConfig, Unauthenticated
from logsvc.server.status import abort
from logsvc.settings import Settings

log = logging.getLogger("logsvc.server")

#: Services any caller may use: health checking and reflection.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
AUTHORIZATION = "authorization"
BEARER = "bearer "


def _read(path: str, key: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise InvalidConfig(f"{key}: cannot read {path}: {e.strerror or e}", key=key) from None


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The port's TLS credentials, or None for a plaintext port."""
    if not settings.tls_cert_file:
        return None
    cert = _read(settings.tls_cert_file, "tls_cert_file")
    key = _read(settings.tls_key_file, "tls_key_file")
    client_ca = _read(settings.tls_client_ca_file, "tls_client_ca_file") if settings.tls_client_ca_file else None
    for name, pem, marker in (
        ("tls_cert_file", cert, b"-----BEGIN CERTIFICATE-----"),
        ("tls_key_file", key, b"PRIVATE KEY-----"),
        ("tls_client_ca_file", client_ca, b"-----BEGIN CERTIFICATE-----"),
    ):
        if pem is not None and marker not in pem:
            raise InvalidConfig(f"{name}: {getattr(settings, name)} is not a PEM file", key=name)
    try:
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
        )
    except (RuntimeError, ValueError) as e:
        raise InvalidConfig(f"tls_cert_file/tls_key_file: {e}", key="tls_cert_file") from None


def load_tokens(path: str) -> tuple[bytes, ...]:
    """The tokens of ``auth_tokens_file``: one per line, blank lines and ``#`` comments ignored."""
    text = _read(path, "auth_tokens_file").decode("utf-8", errors="replace")
    tokens = []
    for number, line in enumerate(text.splitlines(), 1):
        token = line.split("#", 1)[0].strip()
        if not token:
            continue
        if any(c.isspace() for c in token) or not token.isprintable():
            raise InvalidConfig(
                f"auth_tokens_file: line {number} of {path} holds more than one word; one token per line",
                key="auth_tokens_file",
            )
        tokens.append(token.encode())
    if not tokens:
        raise InvalidConfig(f"auth_tokens_file: {path} holds no token", key="auth_tokens_file")
    return tuple(tokens)


class TokenAuth(grpc.ServerInterceptor):
    """Refuses every call but health checks and reflection unless it carries a known bearer token."""

    def __init__(self, tokens: Sequence[bytes]) -> None:
        self._tokens = tuple(tokens)

    def intercept_service(self, continuation: Callable[..., Any], details: grpc.HandlerCallDetails) -> Any:
        if details.method.startswith(OPEN_METHOD_PREFIXES):
            return continuation(details)
        error = self.check(details.invocation_metadata or ())
        if error is None:
            return continuation(details)
        log.info("refused %s: %s", details.method, error)

        def refuse(request: Any, context: grpc.ServicerContext) -> None:
            abort(context, error)

        return grpc.unary_unary_rpc_method_handler(refuse)

    def check(self, metadata: Sequence[tuple[str, str | bytes]]) -> Unauthenticated | None:
        """None when ``metadata`` carries a known token, else the error that says what is missing."""
        values = [v for k, v in metadata if k == AUTHORIZATION]
        if not values:
            return Unauthenticated(
                "this broker requires a bearer token: set LOGSVC_TOKEN (CLI, connectors) or pass "
                "Security(token=...) to the client"
            )
        value = values[0] if isinstance(values[0], str) else values[0].decode("utf-8", errors="replace")
        if not value.lower().startswith(BEARER):
            return Unauthenticated("the authorization metadata must be 'Bearer TOKEN'")
        given = value[len(BEARER) :].strip().encode()
        # compare_digest against every token: the time taken does not say which one nearly matched
        if any([hmac.compare_digest(given, token) for token in self._tokens]):  # a list: compare with all
            return None
        return Unauthenticated("the bearer token is not one this broker accepts")
