"""The project's exception tree lives in :mod:`logsvc_client.errors` (shared by broker and clients,
so one class means the same on both sides of the wire); this module re-exports it for the broker."""

from logsvc_client.errors import *  # noqa: F403
from logsvc_client.errors import LogsvcError, for_code, from_rpc_error  # noqa: F401
