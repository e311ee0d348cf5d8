"""The console as an ASGI app: :func:`create_app` builds it from a :class:`ConsoleConfig`;
:func:`serve` binds the listening socket (port 0: a free one) and runs it under uvicorn.

The one boundary where errors become pages: a :class:`~logsvc_client.errors.LogsvcError` (from
the broker, or a refusal of :mod:`.auth`) is shown with its message and a status code chosen by
its class; anything else is an "unexpected error" page without a traceback (logged with one).
Every response carries a Content-Security-Policy allowing only the console's own scripts and
styles, so even a markup slip could not run a script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from logsvc_client import errors

from . import connectors
from .auth import Guard
from .broker import BrokerView
from .config import ConsoleConfig
from .pages import Console, now_ms, render
from .sampler import History, Sampler
from .views import dead_letters, groups, messages, overview, session, topics

log = logging.getLogger("logsvc.console")
STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}

#: error class -> HTTP status, most specific first
STATUS = (
    (errors.Unauthenticated, 401),
    (errors.PermissionDenied, 403),
    (errors.NotFound, 404),
    (errors.OffsetOutOfRange, 404),
    (errors.InvalidRequest, 400),
    (errors.FailedPrecondition, 409),
    (errors.Unavailable, 503),
)


def status_of(exc: errors.LogsvcError) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


async def _logsvc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.LogsvcError)
    return render(request, "error.html", {"message": exc.message, "kind": type(exc).__name__}, status_of(exc))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("console: unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    message = f"unexpected {type(exc).__name__} (the console's log has the details)"
    return render(request, "error.html", {"message": message, "kind": "error"}, 500)


class SecurityHeaders(BaseHTTPMiddleware):
    """Adds :data:`SECURITY_HEADERS` to every response, and turns an unexpected exception into
    the error page."""

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        try:
            response = await call_next(request)
        except Exception as e:  # the boundary: no traceback reaches the browser
            response = await _unexpected(request, e)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def create_app(config: ConsoleConfig, view: BrokerView | None = None, clock: Callable[[], int] = now_ms) -> Starlette:
    """The console for ``config.server`` (or ``view``, a broker view of the caller's, closed with
    the app). The sampler runs while the app does (its lifespan)."""
    guard = Guard(config.auth_tokens_file, config.read_only)  # InvalidConfig for a bad tokens file
    view = view or BrokerView(config.server)
    history = History(config.history_ms)
    scrape_timeout_s = min(2.0, config.sample_interval_ms / 1000)
    sampler = Sampler(
        history,
        lambda: view.facts(config.connector_metrics, lambda url: connectors.scrape(url, scrape_timeout_s)),
        clock,
    )
    console = Console(config, view, history, sampler, guard, clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(sampler.run(config.sample_interval_ms))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            view.close()

    app = Starlette(
        routes=[
            *overview.routes,
            *topics.routes,
            *messages.routes,
            *groups.routes,
            *dead_letters.routes,
            *session.routes,
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={errors.LogsvcError: _logsvc_error},
        lifespan=lifespan,
    )
    app.state.console = console
    return app


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (``port`` 0: a free one); OSError when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(config: ConsoleConfig, ready: Callable[[str, int], None] = lambda host, port: None) -> None:
    """Run the console until interrupted (SIGINT/SIGTERM: uvicorn's graceful stop). ``ready`` is
    told the address once the socket listens."""
    import uvicorn

    app = create_app(config)
    sock = bind(config.listen_host, config.listen_port)
    host, port = sock.getsockname()[:2]
    ready(host, port)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # SIGTERM is the way to stop it (docker, systemd): after uvicorn's graceful stop, exit 0
            # like `logsvc serve` rather than have uvicorn raise the signal again and die of it
            captured = getattr(self, "_captured_signals", None)
            if sig == signal.SIGTERM and isinstance(captured, list) and sig in captured:
                captured.remove(sig)

    server = Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    server.run(sockets=[sock])
