"""librdkafka settings of a client on a Kafka cluster, made in one place.

:func:`client_config` is what every Kafka client of logsvc (producer, consumer, admin) starts
from: ``bootstrap.servers`` and the query-string properties of the address
(:mod:`logsvc_client.kafka.address`), security, and librdkafka's log lines routed to the
``logsvc_client.kafka`` logger instead of stderr. The producer and consumer add their own
settings on top (idempotence, partitioner, group settings).

Security comes from the same :class:`~logsvc_client.security.Security` the gRPC transport uses
(TLS: ``LOGSVC_TLS``, ``LOGSVC_TLS_CA``, ``LOGSVC_TLS_CLIENT_CERT``, ``LOGSVC_TLS_CLIENT_KEY``)
plus SASL, which only Kafka has:

===============================  ==================================================================
``LOGSVC_KAFKA_SASL_MECHANISM``  ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` (turns SASL on)
``LOGSVC_KAFKA_SASL_USERNAME``   the SASL user name
``LOGSVC_KAFKA_SASL_PASSWORD``   its password
===============================  ==================================================================

They map onto librdkafka's ``security.protocol`` (``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or
``SASL_SSL``), ``ssl.ca.location``, ``ssl.certificate.location``, ``ssl.key.location``,
``sasl.mechanism``, ``sasl.username`` and ``sasl.password``. A property given in the address's
query string wins over all of these. ``LOGSVC_TOKEN`` (a logsvc bearer token) is not used on Kafka.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidConfig
from ..security import Security
from .address import KafkaAddress, parse

ENV_SASL_MECHANISM = "LOGSVC_KAFKA_SASL_MECHANISM"
ENV_SASL_USERNAME = "LOGSVC_KAFKA_SASL_USERNAME"
ENV_SASL_PASSWORD = "LOGSVC_KAFKA_SASL_PASSWORD"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

#: librdkafka's own log lines (connection failures, rebalances) go here, not to stderr.
LOGGER = logging.getLogger("logsvc_client.kafka")


def security_config(security: Security | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """librdkafka's security properties for ``security`` (None: from the environment) and the
    ``LOGSVC_KAFKA_SASL_*`` variables.

    Raises:
      InvalidConfig: an unknown SASL mechanism, or a mechanism without user name or password.
    """
    env = os.environ if environ is None else environ
    security = Security.from_env(env) if security is None else security
    config: dict[str, str] = {}
    mechanism = env.get(ENV_SASL_MECHANISM, "").strip().upper()
    if mechanism:
        if mechanism not in SASL_MECHANISMS:
            raise InvalidConfig(
                f"{ENV_SASL_MECHANISM}={env[ENV_SASL_MECHANISM]!r} must be one of {', '.join(SASL_MECHANISMS)}",
                key=ENV_SASL_MECHANISM,
            )
        for name in (ENV_SASL_USERNAME, ENV_SASL_PASSWORD):
            if not env.get(name):
                raise InvalidConfig(f"{ENV_SASL_MECHANISM}={mechanism} needs {name}", key=name)
        config["sasl.mechanism"] = mechanism
        config["sasl.username"] = env[ENV_SASL_USERNAME]
        config["sasl.password"] = env[ENV_SASL_PASSWORD]
    tls = security.uses_tls
    config["security.protocol"] = (
        ("SASL_SSL" if tls else "SASL_PLAINTEXT") if mechanism else ("SSL" if tls else "PLAINTEXT")
    )
    if security.ca_file:
        config["ssl.ca.location"] = security.ca_file
    if security.cert_file and security.key_file:
        config["ssl.certificate.location"] = security.cert_file
        config["ssl.key.location"] = security.key_file
    return config


def client_config(
    address: str | KafkaAddress,
    security: Security | None = None,
    *,
    client_id: str = "",
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The settings every librdkafka client of logsvc starts from (see the module docstring)."""
    kafka = address if isinstance(address, KafkaAddress) else parse(address)
    config: dict[str, Any] = {"bootstrap.servers": kafka.bootstrap_servers}
    config.update(security_config(security, environ))
    config["client.id"] = client_id or "logsvc"
    config["logger"] = LOGGER
    config.update(kafka.properties)
    return config
