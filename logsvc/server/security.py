"""Who may talk to the broker: TLS on the gRPC port and bearer tokens, both off by default.

* **TLS** (``tls_cert_file`` + ``tls_key_file``): the port speaks TLS only. With
  ``tls_client_ca_file`` a client must also present a certificate signed by that CA (mutual TLS);
  the handshake refuses the others before any call reaches the broker.
* **Tokens** (``auth_tokens_file``): every call must carry metadata ``authorization: Bearer TOKEN``
  with one of the file's tokens (one per line; blank lines and ``#`` comments ignored), or it fails
  with UNAUTHENTICATED naming what was wrong. Health checks stay open, so load balancers work
  without one; server reflection needs a token too (``grpcurl -H 'authorization: Bearer TOKEN'
  ... list``). The file is read once, at start-up. A refused call costs the broker no state: its
  request is not read, and it is logged once per client address per interval with a count
  (:mod:`logsvc.server.refusals`). A call to a method the broker does not have is UNIMPLEMENTED,
  token or not.

Tokens over a plaintext port can be read off the network: use them with TLS beyond localhost. The
``/metrics`` HTTP port is covered by neither: it listens on ``metrics_host`` (127.0.0.1 by
default) and takes its own optional token (``metrics_token_file``, :mod:`logsvc.server.metrics`).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from logsvc.errors import InvalidConfig, Unauthenticated
from logsvc.server.refusals import RefusalLog, refusing_handler
from logsvc.settings import Settings

log = logging.getLogger("logsvc.server")

#: Services any caller may use: health checking (reflection needs a token: it describes the API).
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)
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


MIN_METRICS_TOKEN_CHARS = 16


def load_metrics_token(path: str) -> bytes:
    """The one token of ``metrics_token_file`` (surrounding whitespace ignored, at least
    :data:`MIN_METRICS_TOKEN_CHARS` printable characters, no spaces)."""
    token = _read(path, "metrics_token_file").decode("utf-8", errors="replace").strip()
    if len(token) < MIN_METRICS_TOKEN_CHARS or not token.isprintable() or any(c.isspace() for c in token):
        raise InvalidConfig(
            f"metrics_token_file: {path} must hold one token of at least {MIN_METRICS_TOKEN_CHARS} "
            "printable characters without spaces",
            key="metrics_token_file",
        )
    return token.encode()


class TokenAuth:
    """Which calls carry a known bearer token; the others are refused without reading their
    request (:meth:`refusal`). Health checks never get here (:mod:`logsvc.server.calls`)."""

    def __init__(
        self,
        tokens: Sequence[bytes],
        refusals: RefusalLog | None = None,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self._tokens = tuple(tokens)
        self.refusals = refusals if refusals is not None else RefusalLog()
        self._on_refused = on_refused

    def refusal(self, metadata: Sequence[tuple[str, str | bytes]], method: str) -> grpc.RpcMethodHandler | None:
        """None when ``metadata`` carries a known token, else a handler that refuses the call."""
        error = self.check(metadata)
        if error is None:
            return None

        def count(context: grpc.aio.ServicerContext) -> None:
            if self._on_refused is not None:
                self._on_refused()
            self.refusals.refused(context.peer(), f"a call to {method}", error.message)

        return refusing_handler(error, count)

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
