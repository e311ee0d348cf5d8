"""Dead letters: the connectors with a dead-letter topic; per connector the list with each
record's source topic/partition/offset, error class and message, content and replays; and
replaying one record, as ``logsvc dlq replay CONNECTOR --offset N`` does (refused when it, or a
copy of it, was replayed before: the markers topic remembers every replay)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from logsvc_client.errors import InvalidRequest

from ..pages import blocking, checked_form, console_of, form_text, render


async def index(request: Request) -> HTMLResponse:
    console = console_of(request)
    names = await blocking(console.view.dlq_connectors)
    return render(request, "dead_letters_index.html", {"connectors": names})


async def connector(request: Request) -> HTMLResponse:
    console = console_of(request)
    name = request.path_params["connector"]
    found = await blocking(console.view.dead_letters, name)
    letters = [(d, found.replays_of(d)) for d in found.letters]
    return render(request, "dead_letters.html", {"connector": name, "found": found, "letters": letters})


async def replay(request: Request) -> HTMLResponse:
    console = console_of(request)
    _, form, principal = await checked_form(request)
    name = request.path_params["connector"]
    text = form_text(form, "offset")
    if not text.isdigit():
        raise InvalidRequest(f"offset {text!r} is not a DLQ offset")
    replayed = await blocking(console.view.replay, name, int(text))
    return render(request, "replayed.html", {"connector": name, "replayed": replayed, "principal": principal})


routes = [
    Route("/dead-letters", index),
    Route("/dead-letters/{connector}", connector),
    Route("/dead-letters/{connector}/replay", replay, methods=["POST"]),
]
