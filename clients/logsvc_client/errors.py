"""The exception tree is the wire's (:mod:`logsvc_wire.errors`, one tree for the broker and every
client, with its code registry); this module re-exports it unchanged, so
``from logsvc_client.errors import TopicNotFound, from_rpc_error, for_code`` keeps working."""

from logsvc_wire.errors import *  # noqa: F403
from logsvc_wire.errors import __all__ as __all__
