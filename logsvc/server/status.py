"""Errors cross the gRPC boundary here, once: a LogsvcError becomes its status code, its message
and the ``logsvc-error`` trailing metadata; anything else becomes INTERNAL with no traceback sent
(the traceback is logged on the broker)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from logsvc.errors import METADATA_KEY, LogsvcError

log = logging.getLogger("logsvc.server")

F = TypeVar("F", bound=Callable[..., Any])


def abort(context: grpc.ServicerContext, exc: LogsvcError) -> None:
    context.set_trailing_metadata(((METADATA_KEY, exc.code),))
    context.abort(exc.status, exc.message)


def translated(method: F) -> F:
    """Decorate a servicer method so every error leaves as a proper gRPC status."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except LogsvcError as e:
            abort(context, e)
        except Exception as e:
            log.exception("unexpected error in %s", method.__name__)
            context.set_trailing_metadata(((METADATA_KEY, "internal"),))
            context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method.__name__}: {type(e).__name__}")

    return wrapper  # type: ignore[return-value]
