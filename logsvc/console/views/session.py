"""Signing in with a console token (a token of ``--auth-tokens FILE``) and out. The sign-in form
is itself CSRF-checked, so another site cannot sign a browser in as someone else."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..auth import COOKIE
from ..pages import checked_form, console_of, form_text, render


def _back(form_next: str) -> str:
    """Where to go after signing in or out: a path of this console, never another site."""
    return form_next if form_next.startswith("/") and not form_next.startswith("//") else "/"


async def sign_in_page(request: Request) -> HTMLResponse:
    return render(request, "sign_in.html", {"next": request.query_params.get("next", "/")})


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    session, form, _ = await checked_form(request, sign_in=True)
    assert session is not None
    console.guard.sign_in(session, form_text(form, "token"))
    fresh = console.sessions.renew(session)
    response = RedirectResponse(_back(form_text(form, "next")), status_code=303)
    response.set_cookie(COOKIE, fresh.id, httponly=True, samesite="strict", path="/")
    return response


async def sign_out(request: Request) -> Response:
    session, form, _ = await checked_form(request, sign_in=True)
    if session is not None:
        session.principal = None
    return RedirectResponse(_back(form_text(form, "next")), status_code=303)


routes = [
    Route("/sign-in", sign_in_page),
    Route("/sign-in", sign_in, methods=["POST"]),
    Route("/sign-out", sign_out, methods=["POST"]),
]
