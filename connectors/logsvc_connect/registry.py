"""The adapters by kind: ``kind -> package``, each package exposing the same :data:`Configure`.

A package is imported only when its kind is asked for, so a Mongo connector does not need psycopg
and the other way round. Every adapter package (:mod:`logsvc_connect.postgres`,
:mod:`logsvc_connect.mongo`, :mod:`logsvc_connect.handler`) has a ``configure(values, runtime)``:
it validates its config table (``values``: the file's ``[kind]`` table, then the environment and
flags) against the runtime config and returns an :class:`Adapter`: its config and a factory for
its :class:`~logsvc_connect.sink.Sink`. Adding an adapter is one line here and one package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

from logsvc_client.errors import InvalidConfig
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.sink import Sink

KINDS = {
    "postgres": "logsvc_connect.postgres",
    "mongo": "logsvc_connect.mongo",
    "python": "logsvc_connect.handler",
}


class Adapter(NamedTuple):
    """A configured adapter: its validated config, and how to make its sink."""

    config: Any
    sink_factory: Callable[[], Sink]


#: ``configure(values, runtime)``: the adapter's config table validated (InvalidConfig naming the
#: key otherwise) into an :class:`Adapter`
Configure = Callable[[dict[str, Any], RuntimeConfig], Adapter]


def configure_for(kind: str) -> Configure:
    """The ``configure`` of ``kind``'s package; InvalidConfig for an unknown kind."""
    if kind not in KINDS:
        raise InvalidConfig(f"unknown connector kind {kind!r}; known: {', '.join(KINDS)}")
    configure: Configure = importlib.import_module(KINDS[kind]).configure
    return configure
