"""What a connector waits for before it joins its group: its database, its broker and its topics.

A connector started before any of them (docker compose and supervisors start everything at once)
waits, saying so, instead of exiting: the database and the broker with capped, jittered backoff
(a warning per try), each missing topic with a warning once and then every
:data:`MISSING_TOPIC_REPEAT_S`, as a Kafka consumer does. Both waits end early when the runtime is
stopped (``stopping``), and sleep with the runtime's own ``wait``/``sleep``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from logsvc_client import Admin
from logsvc_client.errors import TopicNotFound, Unavailable
from logsvc_client.transport.retry import Backoff
from logsvc_connect.sink import Sink, TransientSinkError

log = logging.getLogger("logsvc.connect")

#: how often a connector started before its topics exist looks again, and repeats its warning
MISSING_TOPIC_POLL_S = 2.0
MISSING_TOPIC_REPEAT_S = 60.0


def open_sink(sink: Sink, stopping: threading.Event, sleep: Callable[[float], Any], backoff: Backoff) -> None:
    """``sink.open()``, tried again while the database cannot be reached (until ``stopping``)."""
    attempt = 0
    while not stopping.is_set():
        try:
            sink.open()
            return
        except TransientSinkError as e:
            log.warning("cannot reach the %s sink yet (%s); retrying", sink.kind, e)
            sleep(backoff.delay_s(attempt))
            attempt += 1


def wait_for_topics(
    admin: Admin, topics: Sequence[str], stopping: threading.Event, wait: Callable[[float], Any], backoff: Backoff
) -> bool:
    """Wait until every one of ``topics`` exists, and the broker answers (False: stopped first)."""
    said: dict[str, float] = {}
    attempt = 0
    while not stopping.is_set():
        missing = []
        try:
            for topic in topics:
                try:
                    admin.describe_topic(topic)
                except TopicNotFound:
                    missing.append(topic)
        except Unavailable as e:
            log.warning("cannot reach the broker yet (%s); retrying", e)
            wait(backoff.delay_s(attempt))
            attempt += 1
            continue
        if not missing:
            return True
        now = time.monotonic()
        for topic in missing:
            if now - said.get(topic, -MISSING_TOPIC_REPEAT_S) >= MISSING_TOPIC_REPEAT_S:
                log.warning("topic %r does not exist yet: waiting for it to be created", topic)
                said[topic] = now
        wait(min(backoff.delay_s(attempt), MISSING_TOPIC_POLL_S))
        attempt += 1
    return False
