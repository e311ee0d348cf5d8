"""The overview: topics (partitions, records, bytes, produce rate), groups (state, members,
total lag) and the connectors seen, with their write and dead-letter rates when their metrics
are reachable. The page polls ``/live/overview`` for its tables."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from ..pages import blocking, console_of, render
from ..sampler import dead_series, topic_series, written_series


async def _context(request: Request) -> dict[str, Any]:
    console = console_of(request)
    overview = await blocking(console.view.overview)
    history = console.history
    topics = [
        {
            "name": t.name,
            "partitions": t.partition_count,
            "records": sum(p.record_count for p in t.partitions),
            "bytes": t.known_bytes,  # None (shown as "-") when the broker does not tell
            "rate": history.rate(topic_series(t.name)),
        }
        for t in overview.topics
    ]
    groups = [
        {
            "name": s.group,
            "state": d.state if d else s.state,
            "members": len(d.members) if d else s.members,
            "lag": sum(p.lag for p in d.partitions) if d else None,
        }
        for s, d in overview.groups
    ]
    connectors = [
        {
            "name": c.name,
            "kind": c.kind,
            "members": c.members,
            "written": history.rate(written_series(c.name)),
            "dead": history.rate(dead_series(c.name)),
            "measured": history.latest(written_series(c.name)) is not None,
        }
        for c in overview.connectors
    ]
    return {"topics": topics, "groups": groups, "connectors": connectors}


async def overview(request: Request) -> HTMLResponse:
    return render(request, "overview.html", await _context(request))


async def live(request: Request) -> HTMLResponse:
    return render(request, "_overview_live.html", await _context(request))


routes = [Route("/", overview), Route("/live/overview", live)]
