"""A topic: per partition its first and next offset, size, oldest and newest timestamp (polled
from ``/live/topics/NAME``), and a produce-rate chart over the sampled history
(``/api/topics/NAME/rate``, uPlot's columns)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from ..pages import blocking, console_of, render
from ..sampler import chart_data, topic_series


async def topic(request: Request) -> HTMLResponse:
    console = console_of(request)
    desc = await blocking(console.view.topic, request.path_params["topic"])
    return render(request, "topic.html", {"topic": desc})


async def live(request: Request) -> HTMLResponse:
    console = console_of(request)
    desc = await blocking(console.view.topic, request.path_params["topic"])
    return render(request, "_topic_live.html", {"topic": desc})


async def rate(request: Request) -> JSONResponse:
    history = console_of(request).history
    data = chart_data(history, [(topic_series(request.path_params["topic"]), True)])
    return JSONResponse({"columns": [data["t"], *[v for k, v in data.items() if k != "t"]], "labels": ["records/s"]})


routes = [
    Route("/topics/{topic}", topic),
    Route("/live/topics/{topic}", live),
    Route("/api/topics/{topic}/rate", rate),
]
