"""librdkafka settings of a Kafka consumer, made from the consumer's options in one place.

On top of :func:`~logsvc_client.kafka.settings.client_config` (servers, security, logger): the
group (``group.id``, ``group.instance.id``, the assignor, session and poll-interval timeouts),
where a partition without an offset starts, and the fetch sizes. librdkafka's auto-commit and
offset store are off: the consumer commits the positions it handed out itself. Properties in the
address's query string win over all of these.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidConfig
from ..security import Security
from .address import parse
from .settings import client_config

#: the consumer's assignor -> librdkafka's partition.assignment.strategy: "sticky" is
#: cooperative-sticky (incremental rebalances), "range" is range (eager)
ASSIGNORS = {"sticky": "cooperative-sticky", "range": "range"}
#: auto_offset_reset -> librdkafka's auto.offset.reset ("error": an error message, then nothing)
RESETS = {"earliest": "earliest", "latest": "latest", "none": "error"}
#: librdkafka needs a group.id even for a consumer that only assigns; such a one never joins it
NO_GROUP = "logsvc-assign-only"


def consumer_config(
    address: str,
    security: Security | None,
    *,
    group_id: str | None,
    instance_id: str | None,
    client_id: str,
    assignor: str,
    auto_offset_reset: str,
    session_timeout_ms: int,
    max_poll_interval_ms: int,
    fetch_max_bytes: int,
    fetch_max_wait_ms: int,
    check_crcs: bool,
    request_timeout_ms: int,
    retry_backoff_ms: int,
) -> dict[str, Any]:
    """The settings of a librdkafka consumer with these options (already checked by the consumer,
    but for ``assignor``: InvalidConfig naming it). ``max_poll_interval_ms`` below
    ``session_timeout_ms`` is raised to it (librdkafka requires it); the prefetch queue holds about
    ``fetch_max_bytes``."""
    if assignor not in ASSIGNORS:
        raise InvalidConfig(f"assignor={assignor!r} must be 'sticky' or 'range'", key="assignor")
    config = client_config(address, security, client_id=client_id)
    config.update(
        {
            "group.id": group_id or NO_GROUP,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "auto.offset.reset": RESETS[auto_offset_reset],
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(1, min(3_000, session_timeout_ms // 3)),
            "max.poll.interval.ms": max(max_poll_interval_ms, session_timeout_ms),
            "partition.assignment.strategy": ASSIGNORS[assignor],
            "fetch.max.bytes": max(1_000, fetch_max_bytes),
            # one partition may fill a whole fetch, as on logsvc (librdkafka's default, 1 MiB per
            # partition, makes a consumer of few partitions wait on round trips: 4-5x slower)
            "max.partition.fetch.bytes": max(1_000, fetch_max_bytes),
            "message.max.bytes": max(1_000, min(1_000_000, fetch_max_bytes)),
            "queued.max.messages.kbytes": max(1_024, fetch_max_bytes // 1_024),
            "fetch.wait.max.ms": fetch_max_wait_ms,
            "check.crcs": check_crcs,
            "socket.timeout.ms": min(max(request_timeout_ms, 10), 300_000),
            "retry.backoff.ms": min(max(retry_backoff_ms, 1), 300_000),
        }
    )
    if instance_id:
        config["group.instance.id"] = instance_id
    config.update(parse(address).properties)  # the address's own librdkafka properties win
    return config
