"""Connectors as the console sees them: groups whose members' client id says
``logsvc-connect/<kind>/<name>`` (set by :mod:`logsvc_connect.runtime`), and their counters read
from the ``/metrics`` URLs given with ``--connector-metrics``.

The broker does not know where a connector's metrics port is, so the console is told; each
scraped page names its connector in the ``connector`` label, which is how a URL is matched to a
group. A page that cannot be read is reported as unreachable, never as an error of the console.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from logsvc_client import GroupDescription
from logsvc_connect.runtime import CLIENT_ID_PREFIX

WRITTEN = "logsvc_connect_records_written"
DEAD_LETTERED = "logsvc_connect_records_dead_lettered"
SCRAPE_TIMEOUT_S = 2.0
MAX_METRICS_BYTES = 4 << 20


@dataclass(frozen=True)
class ConnectorSeen:
    name: str  # the connector's name = its group
    kind: str  # postgres, mongo, handler, ...
    members: int


def connector_of(client_id: str) -> tuple[str, str] | None:
    """``(kind, name)`` from a connector member's client id; None for any other client."""
    if not client_id.startswith(CLIENT_ID_PREFIX):
        return None
    kind, sep, name = client_id[len(CLIENT_ID_PREFIX) :].partition("/")
    return (kind, name) if sep and kind and name else None


def connectors_in(groups: list[GroupDescription]) -> list[ConnectorSeen]:
    """The groups that are connectors (one member with a connector client id is enough)."""
    seen = []
    for group in groups:
        kinds = [c[0] for c in map(connector_of, (m.client_id for m in group.members)) if c is not None]
        if kinds:
            seen.append(ConnectorSeen(group.group, kinds[0], len(group.members)))
    return seen


def parse_counters(text: str) -> dict[str, tuple[float, float]]:
    """``{connector: (records written, records dead-lettered)}`` from a Prometheus text page."""
    slots = {f"{WRITTEN}_total": 0, f"{DEAD_LETTERED}_total": 1}
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            slot = slots.get(sample.name)
            name = sample.labels.get("connector")
            if slot is not None and name:
                out.setdefault(name, [0.0, 0.0])[slot] += sample.value
    return {name: (v[0], v[1]) for name, v in out.items()}


def scrape(url: str, timeout_s: float = SCRAPE_TIMEOUT_S) -> dict[str, tuple[float, float]]:
    """Read one connector's ``/metrics``; OSError (with the reason) when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read(MAX_METRICS_BYTES).decode("utf-8", errors="replace")
    except (urllib.error.URLError, TimeoutError, ValueError) as e:
        raise OSError(f"cannot read {url}: {getattr(e, 'reason', e)}") from None
    try:
        return parse_counters(text)
    except ValueError as e:
        raise OSError(f"{url} is not a Prometheus metrics page: {e}") from None
