"""The message browser: one partition of a topic, from an offset, a time, the earliest or the
latest N records, a page at a time, optionally only records with one key; and each record's own
page at a URL that can be shared (``/topics/T/partitions/P/offsets/O``).

The query string is the whole state (``?partition=0&start=time&time=-15m&key=k1``), so a page of
the browser can be shared too; "next page" is the same query from the offset after the last
record read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from logsvc.cli.timespec import parse_time_ms
from logsvc_client.errors import InvalidRequest

from ..pages import blocking, console_of, render
from ..rendering import key_bytes

STARTS = ("earliest", "offset", "time", "latest")


def _int(params: Any, name: str, default: int, minimum: int = 0) -> int:
    text = (params.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequest(f"{name}={text!r} is not a whole number") from None
    if value < minimum:
        raise InvalidRequest(f"{name}={value} must be >= {minimum}")
    return value


async def browse(request: Request) -> HTMLResponse:
    console = console_of(request)
    cfg = console.config
    topic_name = request.path_params["topic"]
    params = request.query_params
    topic = await blocking(console.view.topic, topic_name)
    partition = _int(params, "partition", 0)
    topic.partition(partition)  # InvalidPartition naming the partitions it has
    start = params.get("start") or "earliest"
    if start not in STARTS:
        raise InvalidRequest(f"start={start!r} is not one of {', '.join(STARTS)}")
    part = topic.partition(partition)
    count = _int(params, "n", cfg.page_records, minimum=1)
    limit = min(count, 500)
    time_text = (params.get("time") or "").strip()
    if start == "offset":
        offset = _int(params, "offset", part.log_start_offset)
    elif start == "time":
        if not time_text:
            raise InvalidRequest("start=time needs a time: 2026-01-02T03:04:05Z, epoch ms, or -15m")
        try:
            when = parse_time_ms(time_text, console.clock)
        except ValueError as e:
            raise InvalidRequest(str(e)) from None
        offset = await blocking(console.view.offset_at, topic_name, partition, when)
    elif start == "latest":
        offset = max(part.log_start_offset, part.next_offset - count)
    else:
        offset = part.log_start_offset
    key_text = params.get("key") or ""
    key = key_bytes(key_text) if key_text else None
    page = await blocking(console.view.page, topic_name, partition, offset, limit, key, cfg.filter_scan_records)
    next_query = {"partition": partition, "start": "offset", "offset": page.next_offset, "n": count}
    if key_text:
        next_query["key"] = key_text
    prev_offset = max(page.log_start_offset, page.start - count)
    prev_query = {**next_query, "offset": prev_offset}
    return render(
        request,
        "messages.html",
        {
            "topic": topic,
            "page": page,
            "partition": partition,
            "start": start,
            "offset_value": params.get("offset") or "",
            "time_value": time_text,
            "count": count,
            "key_text": key_text,
            "next_url": f"?{urlencode(next_query)}" if page.next_offset < page.end_offset else None,
            "prev_url": f"?{urlencode(prev_query)}" if page.start > page.log_start_offset and not key_text else None,
        },
    )


async def record(request: Request) -> HTMLResponse:
    console = console_of(request)
    topic = request.path_params["topic"]
    partition = request.path_params["partition"]
    offset = request.path_params["offset"]
    found = await blocking(console.view.record, topic, partition, offset)
    return render(request, "record.html", {"record": found})


routes = [
    Route("/topics/{topic}/messages", browse),
    Route("/topics/{topic}/partitions/{partition:int}/offsets/{offset:int}", record),
]
