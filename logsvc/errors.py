"""The project's exception tree lives in :mod:`logsvc_wire.errors` (shared by broker and clients,
so one class means the same on both sides of the wire); this module re-exports it for the broker."""

from logsvc_wire.errors import *  # noqa: F403
from logsvc_wire.errors import __all__ as __all__
