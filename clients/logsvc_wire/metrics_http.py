"""The other wire: ``/metrics`` over HTTP, as the broker and the sink connectors both serve it —
one Prometheus registry on its own port, optionally behind a bearer token. It lives here because
both sides speak it and neither may import the other (the broker does not import connectors, the
connectors not the broker).

With a token (the ``metrics_token_file`` setting of either, read by :func:`load_metrics_token`), a
scrape without ``Authorization: Bearer TOKEN`` gets 401 and nothing is read from the registry. The
comparison takes the same time however much of the header was right.
"""

from __future__ import annotations

import functools
import hmac
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from .errors import InvalidConfig

WsgiApp = Callable[..., Iterable[bytes]]
MIN_METRICS_TOKEN_CHARS = 16


def load_metrics_token(path: str) -> bytes:
    """The one token of a ``metrics_token_file`` (surrounding whitespace ignored, at least
    :data:`MIN_METRICS_TOKEN_CHARS` printable characters, no spaces); InvalidConfig otherwise."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise InvalidConfig(
            f"metrics_token_file: cannot read {path}: {e.strerror or e}", key="metrics_token_file"
        ) from None
    token = raw.decode("utf-8", errors="replace").strip()
    if len(token) < MIN_METRICS_TOKEN_CHARS or not token.isprintable() or any(c.isspace() for c in token):
        raise InvalidConfig(
            f"metrics_token_file: {path} must hold one token of at least {MIN_METRICS_TOKEN_CHARS} "
            "printable characters without spaces",
            key="metrics_token_file",
        )
    return token.encode()


def bearer_only(app: WsgiApp, token: bytes, owner: str = "the broker's") -> WsgiApp:
    """``app`` behind a bearer token: 401 (and ``app`` not called) without it. ``owner`` names
    whose ``metrics_token_file`` the 401 points to."""
    expected = b"Bearer " + token
    refusal = f"/metrics needs Authorization: Bearer TOKEN ({owner} metrics_token_file)\n".encode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", errors="replace")
        if hmac.compare_digest(given, expected):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')]
        )
        return [refusal]

    return guarded


class MetricsHttpServer:
    """``/metrics`` of ``registry`` served by a daemon thread on ``host``:``port`` (0 picks a free
    port, then in :attr:`port`); with ``token``, only to scrapes that send it."""

    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        token: bytes | None = None,
        owner: str = "the broker's",
        thread_name: str = "logsvc-metrics",
    ) -> None:
        app: WsgiApp = make_wsgi_app(registry)
        if token is not None:
            app = bearer_only(app, token, owner)

        class Server(ThreadingWSGIServer):
            address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]

        self._http: WSGIServer | None = make_server(host.strip("[]"), port, app, Server, handler_class=_SilentHandler)
        self.port = int(self._http.server_port)
        self.server_address: tuple[Any, ...] = tuple(self._http.server_address)
        # stop() waits until serve_forever next looks at its shutdown flag: every poll_interval, 0.5 s
        # by default, which every broker and connector stop paid; a select() 20 times a second is free
        serve = functools.partial(self._http.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, name=thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the port (idempotent)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
