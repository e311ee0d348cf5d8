"""What every view shares: the console's state on the app, rendering a template with the
browser's session (setting its cookie), and checking a state-changing POST.

Templates are Jinja2 with autoescape on for every file: a value is text unless a template marks
it safe, which none does with data from the broker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from . import rendering
from .auth import COOKIE, CSRF_FIELD, Guard, Session, Sessions
from .broker import BrokerView
from .config import ConsoleConfig
from .sampler import History, Sampler

T = TypeVar("T")
TEMPLATES = Path(__file__).parent / "templates"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Console:
    """Everything the views use, built once by :func:`logsvc.console.app.create_app`."""

    config: ConsoleConfig
    view: BrokerView
    history: History
    sampler: Sampler
    guard: Guard
    clock: Callable[[], int] = now_ms
    sessions: Sessions = field(default_factory=Sessions)


def templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True)
    t = Jinja2Templates(env=env)
    t.env.filters["iso_ms"] = rendering.iso_ms
    t.env.filters["key"] = rendering.render_key
    t.env.filters["render"] = rendering.render
    t.env.filters["si"] = _si
    return t


def _si(value: float | None, unit: str = "") -> str:
    """1234567 → ``1.2M``; None → ``-``."""
    if value is None:
        return "-"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f}{suffix}{unit}"
    return f"{value:.0f}{unit}" if float(value).is_integer() else f"{value:.1f}{unit}"


_TEMPLATES = templates()


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def blocking(fn: Callable[..., T], *args: Any) -> T:
    """Call the broker off the event loop."""
    return await run_in_threadpool(fn, *args)


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    """``template`` with ``context`` plus the console, its config and the browser's session (its
    CSRF token for forms), setting the session cookie when the session is new."""
    console = console_of(request)
    session, new = console.sessions.get_or_new(request.cookies.get(COOKIE))
    response = _TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "config": console.config,
            "session": session,
            "csrf_field": CSRF_FIELD,
            "actions_refused": console.guard.refusal(),
            "sampler": console.sampler,
            **context,
        },
        status_code=status_code,
    )
    if new:
        response.set_cookie(COOKIE, session.id, httponly=True, samesite="strict", path="/")
    return response


async def checked_form(request: Request, sign_in: bool = False) -> tuple[Session | None, FormData, str | None]:
    """A state-changing POST's form, after the guard's checks (:mod:`.auth`): ``(session, form,
    principal)``. Signing in checks origin and CSRF only; every other action all three steps."""
    console = console_of(request)
    guard: Guard = console.guard
    form = await request.form()
    session = console.sessions.get(request.cookies.get(COOKIE))
    token = form.get(CSRF_FIELD)
    csrf = token if isinstance(token, str) else None
    host = request.headers.get("host", "")
    scheme = request.url.scheme
    if sign_in:
        return guard.check_form(session, request.headers, scheme, host, csrf), form, None
    principal = guard.check_post(session, request.headers, scheme, host, csrf)
    return session, form, principal


def form_text(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default
