"""The handler adapter: a user's Python function or class as the sink (``logsvc connect python``).

==============================  =================================================================
:func:`configure`               the ``[python]`` table (and ``--handler``) → an
                                :class:`~logsvc_connect.registry.Adapter`
:class:`HandlerConfig`          ``handler = "module:function"`` and a class's ``options``
:func:`load_handler`            import ``module:attr`` and check it (:func:`make_handler`)
:class:`HandlerSink`            the :class:`~logsvc_connect.sink.Sink` around a handler (:mod:`.sink`)
:class:`RecordError`            raise or return it: that record is dead-lettered, the batch goes on
:class:`RecordErrors`           several of them at once
:class:`HandlerContractError`   the handler returned something else: the connector stops
:class:`HandlerConnector`       run a handler from Python, in a background thread (:mod:`.connector`)
:func:`run_handler`             run one in this thread until SIGTERM, as ``logsvc connect python``
==============================  =================================================================

What a handler says about a batch, and the rest of its contract: :mod:`.sink`.
"""

from .connector import HandlerConnector, run_handler
from .sink import (
    HandlerConfig,
    HandlerContractError,
    HandlerSink,
    RecordError,
    RecordErrors,
    configure,
    load_handler,
    make_handler,
)

__all__ = [
    "HandlerConfig",
    "HandlerConnector",
    "HandlerContractError",
    "HandlerSink",
    "RecordError",
    "RecordErrors",
    "configure",
    "load_handler",
    "make_handler",
    "run_handler",
]
