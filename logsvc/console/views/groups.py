"""A group: members and their assignment; per partition the committed offset, lag in records and
in seconds (polled from ``/live/groups/NAME``); a lag-over-time chart from the sampled history
(``/api/groups/NAME/lag``); and resetting its offsets the CLI's way: the first POST is a dry run
that shows the plan, a second click on "Reset" executes it — only a reset whose dry run this
browser session was shown executes; the broker refuses either while the group has live members
(GroupNotEmpty)."""

from __future__ import annotations

from typing import cast

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from logsvc.cli.timespec import parse_duration_ms, parse_time_ms
from logsvc_client.admin import ResetSpec
from logsvc_client.errors import FailedPrecondition, InvalidRequest

from ..pages import blocking, checked_form, console_of, form_text, render
from ..sampler import chart_data, group_ms_series, group_series

SPECS = ("earliest", "latest", "offset", "datetime", "shift_by", "duration")
VALUE_HELP = {
    "offset": "an offset",
    "datetime": "a time: 2026-01-02T03:04:05Z, epoch ms, or -1h",
    "shift_by": "records to move, negative = back",
    "duration": "how long before now: 15m, 2h, 1d",
}


async def group(request: Request) -> HTMLResponse:
    console = console_of(request)
    desc = await blocking(console.view.group, request.path_params["group"])
    topics = sorted({p.topic for p in desc.partitions} | {tp.topic for m in desc.members for tp in m.assignment})
    return render(request, "group.html", {"group": desc, "topics": topics, "specs": SPECS, "value_help": VALUE_HELP})


async def live(request: Request) -> HTMLResponse:
    console = console_of(request)
    desc = await blocking(console.view.group, request.path_params["group"])
    return render(request, "_group_live.html", {"group": desc})


async def lag(request: Request) -> JSONResponse:
    name = request.path_params["group"]
    data = chart_data(console_of(request).history, [(group_series(name), False), (group_ms_series(name), False)])
    records, lag_ms = data[group_series(name)], data[group_ms_series(name)]
    seconds = [None if v is None else v / 1000 for v in lag_ms]
    return JSONResponse({"columns": [data["t"], records, seconds], "labels": ["lag (records)", "lag (s)"]})


def reset_value(spec: str, text: str, now_ms: int) -> int | None:
    """The form's value for ``spec`` as :meth:`Admin.reset_offsets` takes it."""
    if spec in ("earliest", "latest"):
        return None
    if not text:
        raise InvalidRequest(f"reset to {spec} needs a value: {VALUE_HELP[spec]}")
    try:
        if spec == "datetime":
            return parse_time_ms(text, lambda: now_ms)
        if spec == "duration":
            return parse_duration_ms(text)
        return int(text)
    except ValueError as e:
        raise InvalidRequest(f"{text!r} is not {VALUE_HELP[spec]} ({e})") from None


async def reset(request: Request) -> HTMLResponse:
    console = console_of(request)
    session, form, principal = await checked_form(request)
    assert session is not None
    name = request.path_params["group"]
    topic = form_text(form, "topic")
    spec = form_text(form, "spec")
    value_text = form_text(form, "value")
    execute = form_text(form, "confirm") == "yes"
    if spec not in SPECS:
        raise InvalidRequest(f"reset spec {spec!r} is not one of {', '.join(SPECS)}")
    if not topic:
        raise InvalidRequest("choose the topic whose offsets to reset")
    value = reset_value(spec, value_text, console.clock())
    plan = (name, topic, spec, value_text)
    if execute and plan not in session.planned_resets:
        raise FailedPrecondition(
            f"no dry run of this reset of {name} on {topic} was shown in this session: run the dry run first, "
            "then confirm its plan"
        )
    result = await blocking(console.view.reset, name, topic, cast(ResetSpec, spec), value, execute)
    if execute:
        session.planned_resets.discard(plan)
    else:
        session.planned_resets.add(plan)
    return render(
        request,
        "reset.html",
        {
            "group_name": name,
            "topic": topic,
            "spec": spec,
            "value_text": value_text,
            "result": result,
            "principal": principal,
        },
    )


routes = [
    Route("/groups/{group}", group),
    Route("/live/groups/{group}", live),
    Route("/api/groups/{group}/lag", lag),
    Route("/groups/{group}/reset", reset, methods=["POST"]),
]
