"""How a client reaches a broker that uses TLS, client certificates or bearer tokens.

Producer, Consumer and Admin take ``security=Security(...)``; without it they read the same
settings from the environment (:meth:`Security.from_env`), the way libpq reads ``PGSSLROOTCERT``,
so the CLI and the connectors need no flags:

=========================  ==========================================================
``LOGSVC_TLS_CA``          PEM CA that signed the broker's certificate (turns TLS on)
``LOGSVC_TLS``             ``1``: TLS with the system's CA roots
``LOGSVC_TLS_CLIENT_CERT`` PEM client certificate, for a broker with mutual TLS
``LOGSVC_TLS_CLIENT_KEY``  its private key
``LOGSVC_TOKEN``           bearer token, for a broker with ``auth_tokens_file``
=========================  ==========================================================

The token travels as call metadata ``authorization: Bearer TOKEN``; without TLS anyone on the
network path can read it, so use both beyond localhost.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc

from .errors import InvalidConfig

ENV_TLS = "LOGSVC_TLS"
ENV_CA = "LOGSVC_TLS_CA"
ENV_CERT = "LOGSVC_TLS_CLIENT_CERT"
ENV_KEY = "LOGSVC_TLS_CLIENT_KEY"
ENV_TOKEN = "LOGSVC_TOKEN"


@dataclass(frozen=True)
class Security:
    """TLS and token settings of a client; the default is a plaintext connection without a token.

    ``tls`` turns TLS on with the system's CA roots; ``ca_file`` (which implies TLS) trusts that CA
    instead. ``cert_file`` and ``key_file`` present a client certificate (mutual TLS). ``token``
    is sent with every call.
    """

    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None

    def __post_init__(self) -> None:
        if bool(self.cert_file) != bool(self.key_file):
            missing = "key_file" if self.cert_file else "cert_file"
            raise InvalidConfig(f"a client certificate needs cert_file and key_file; {missing} is not set", key=missing)
        if self.token is not None and (not self.token or any(c.isspace() for c in self.token)):
            raise InvalidConfig("token must be one non-empty word", key="token")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Security:
        """The settings of the ``LOGSVC_TLS*`` and ``LOGSVC_TOKEN`` variables (see the module docs)."""
        env = os.environ if environ is None else environ
        tls = env.get(ENV_TLS, "").strip().lower()
        if tls not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
            raise InvalidConfig(f"{ENV_TLS}={env[ENV_TLS]!r} must be 1 or 0", key=ENV_TLS)
        return cls(
            tls=tls in ("1", "true", "yes", "on"),
            ca_file=env.get(ENV_CA) or None,
            cert_file=env.get(ENV_CERT) or None,
            key_file=env.get(ENV_KEY) or None,
            token=env.get(ENV_TOKEN) or None,
        )

    @property
    def uses_tls(self) -> bool:
        return self.tls or bool(self.ca_file or self.cert_file)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """The TLS credentials (reads the PEM files now; InvalidConfig naming an unreadable one)."""
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file, "ca_file"),
            private_key=_read(self.key_file, "key_file"),
            certificate_chain=_read(self.cert_file, "cert_file"),
        )

    def secure(self, channel: grpc.Channel) -> grpc.Channel:
        """``channel`` sending the bearer token with every call (as is when there is none)."""
        if self.token is None:
            return channel
        return grpc.intercept_channel(channel, _BearerToken(self.token))


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise InvalidConfig(f"TLS {what}: cannot read {path}: {e.strerror or e}", key=what) from None


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds ``authorization: Bearer TOKEN`` to every call: the unary ones and ProduceStream."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _with_token(self, details: Any) -> _CallDetails:
        return _CallDetails(
            details.method,
            details.timeout,
            [*(details.metadata or ()), self._header],
            details.credentials,
            details.wait_for_ready,
            details.compression,
        )

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_token(details), request)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(self._with_token(details), requests)
