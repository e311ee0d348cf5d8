"""Who may talk to the broker: TLS on the gRPC port and bearer tokens, both off by default.

* **TLS** (``tls_cert_file`` + ``tls_key_file``): the port speaks TLS only. With
  ``tls_client_ca_file`` a client must also present a certificate signed by that CA (mutual TLS);
  the handshake refuses the others before any call reaches the broker.
* **Tokens** (``auth_tokens_file``, lines ``NAME TOKEN``, :mod:`logsvc.server.principals`): every
  call must carry metadata ``authorization: Bearer TOKEN`` with one of the file's tokens, or it
  fails with UNAUTHENTICATED naming what was wrong; it then acts as ``User:NAME``. Health checks
  stay open, so load balancers work without one; server reflection needs a token too (``grpcurl
  -H 'authorization: Bearer TOKEN' ... list``). The file is re-read on SIGHUP. A refused call
  costs the broker no state: its request is not read, and it is logged once per client address
  per interval with a count (:mod:`logsvc.server.refusals`, :mod:`logsvc.server.calls`). A call
  to a method the broker does not have is UNIMPLEMENTED, token or not.

Tokens over a plaintext port can be read off the network: use them with TLS beyond localhost. The
``/metrics`` HTTP port is covered by neither: it listens on ``metrics_host`` (127.0.0.1 by
default) and takes its own optional token (``metrics_token_file``, :mod:`logsvc.server.metrics`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import grpc

from logsvc.errors import InvalidConfig
from logsvc.settings import Settings

log = logging.getLogger("logsvc.server")

#: Services any caller may use: health checking (reflection needs a token: it describes the API).
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)


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
