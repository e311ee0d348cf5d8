"""A Kafka cluster as a client address: ``kafka://host:port[,host:port...][?librdkafka.property=value&...]``.

Every client object (:class:`~logsvc_client.Producer`, :class:`~logsvc_client.Consumer`,
:class:`~logsvc_client.Admin`), the CLI's ``--server`` and a connector's ``server`` take such an
address where they take a logsvc broker's ``host:port``; :func:`is_kafka` tells which one was given.

The part after ``kafka://`` is librdkafka's ``bootstrap.servers``. A query string passes further
librdkafka properties through unchanged (``kafka://b1:9092?client.rack=eu1``); security settings
usually come from the environment instead (:mod:`logsvc_client.kafka.settings`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from ..errors import InvalidConfig

SCHEME = "kafka://"

_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$")


def is_kafka(address: object) -> bool:
    """True when ``address`` names a Kafka cluster (``kafka://...``), not a logsvc broker."""
    return isinstance(address, str) and address.lower().startswith(SCHEME)


@dataclass(frozen=True)
class KafkaAddress:
    """A parsed ``kafka://`` address."""

    #: librdkafka's ``bootstrap.servers``: ``host:port`` pairs joined by commas
    bootstrap_servers: str
    #: the query string's librdkafka properties, in the order given
    properties: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.properties.items())
        return SCHEME + self.bootstrap_servers + (f"?{query}" if query else "")


def parse(address: str) -> KafkaAddress:
    """Parse ``kafka://h1:9092,h2:9092[?prop=value&...]``.

    Raises:
      InvalidConfig: not a ``kafka://`` address, no broker, a broker without a port or with a
        port outside 1..65535, or a malformed query string (the message names the bad part).
    """
    if not is_kafka(address):
        raise InvalidConfig(f"{address!r} is not a Kafka address (kafka://host:port,...)", key="server")
    rest = address[len(SCHEME) :]
    servers, _, query = rest.partition("?")
    hosts = [h.strip() for h in servers.split(",") if h.strip()]
    if not hosts:
        raise InvalidConfig(f"{address!r} names no Kafka broker (kafka://host:port,...)", key="server")
    for host in hosts:
        m = _HOST_PORT.match(host)
        if m is None or not 1 <= int(m.group(2)) <= 65535:
            raise InvalidConfig(
                f"Kafka broker {host!r} in {address!r} must be host:port with a port in 1..65535", key="server"
            )
    properties: dict[str, str] = {}
    if query:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise InvalidConfig(
                f"the query string {query!r} of {address!r} must be librdkafka property=value pairs joined by &",
                key="server",
            ) from None
        for name, value in pairs:
            if not re.fullmatch(r"[a-z][a-z0-9._]*", name):
                raise InvalidConfig(f"{name!r} in {address!r} is not a librdkafka property name", key="server")
            properties[name] = value
    return KafkaAddress(",".join(hosts), properties)
