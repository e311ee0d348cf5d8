"""kcat's ``-X property=value`` for ``produce`` and ``consume``: librdkafka/Kafka client property
names mapped to the keyword arguments of :class:`~logsvc_client.Producer` and
:class:`~logsvc_client.Consumer`, where logsvc has an equivalent. A property without one is a
usage error naming it (never silently dropped). A ``-X`` value wins over the matching flag
(``-X compression.codec=gzip`` over ``--compression``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{text!r} is not true or false")


#: property -> (keyword, parse)
PRODUCER: Mapping[str, tuple[str, Callable[[str], Any]]] = {
    "linger.ms": ("linger_ms", int),
    "queue.buffering.max.ms": ("linger_ms", int),
    "batch.size": ("max_batch_bytes", int),
    "compression.codec": ("compression", str),
    "compression.type": ("compression", str),
    "retries": ("retries", int),
    "message.send.max.retries": ("retries", int),
    "retry.backoff.ms": ("retry_backoff_ms", int),
    "request.timeout.ms": ("request_timeout_ms", int),
    "max.in.flight.requests.per.connection": ("max_in_flight", int),
    "max.in.flight": ("max_in_flight", int),
    "enable.idempotence": ("enable_idempotence", _bool),
    "metadata.max.age.ms": ("metadata_max_age_ms", int),
}

CONSUMER: Mapping[str, tuple[str, Callable[[str], Any]]] = {
    "client.id": ("client_id", str),
    "group.instance.id": ("instance_id", str),
    "session.timeout.ms": ("session_timeout_ms", int),
    "max.poll.interval.ms": ("max_poll_interval_ms", int),
    "max.poll.records": ("max_poll_records", int),
    "fetch.max.bytes": ("fetch_max_bytes", int),
    "fetch.wait.max.ms": ("fetch_max_wait_ms", int),
    "fetch.max.wait.ms": ("fetch_max_wait_ms", int),
    "check.crcs": ("check_crcs", _bool),
    "request.timeout.ms": ("request_timeout_ms", int),
    "retry.backoff.ms": ("retry_backoff_ms", int),
}


def overrides(pairs: Sequence[str], table: Mapping[str, tuple[str, Callable[[str], Any]]]) -> dict[str, Any]:
    """``-X`` pairs as client keyword arguments; a usage error naming a pair that is not
    ``property=value``, a property without an equivalent, or a value of the wrong type."""
    kwargs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not property=value", param_hint="'-X'")
        if name not in table:
            raise click.BadParameter(
                f"{name!r} has no logsvc equivalent here; properties taken: {', '.join(sorted(table))}",
                param_hint="'-X'",
            )
        keyword, parse = table[name]
        try:
            kwargs[keyword] = parse(text.strip())
        except ValueError as e:
            raise click.BadParameter(f"{name}={text!r}: {e}", param_hint="'-X'") from None
    return kwargs


def x_option(table: Mapping[str, tuple[str, Callable[[str], Any]]], what: str) -> Callable[[Any], Any]:
    """The ``-X PROPERTY=VALUE`` option (repeatable) for the properties of ``table``."""
    return click.option(
        "-X",
        "x_pairs",
        metavar="PROPERTY=VALUE",
        multiple=True,
        help=f"A Kafka/librdkafka {what} property where logsvc has an equivalent (kcat's -X), repeatable; "
        f"it wins over the matching flag. Taken: {', '.join(table)}.",
    )
