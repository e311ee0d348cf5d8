"""The one door every call to the broker passes through, on the server's event loop.

:class:`BrokerCalls` is the gRPC server's only handler: the Broker, health and reflection services
are registered with it (:meth:`BrokerCalls.register`), not with the server, and the server asks it
for each call's handler. It is a plain generic handler rather than an interceptor because grpc.aio
runs interceptors as a chain of coroutines on every call (about 0.1 ms of a single produce's
latency on the reference machine); a generic handler's ``service`` is one plain call. For each
call it decides, in order:

1. a method the broker does not have: UNIMPLEMENTED, counted under ``method="unknown"`` (the
   made-up name is never a label), its request never read;
2. health checks pass untouched (load balancers need no token);
3. authentication (:class:`~logsvc.server.principals.Principals`): when tokens are required, a
   call without a known one is refused *before its request is read*
   (:func:`~logsvc.server.refusals.refusing_handler`), logged once per client address per
   interval and counted in ``logsvc_unauthenticated_calls_total``; otherwise its principal comes
   from its client certificate, or is ``User:ANONYMOUS``. Reflection is served to any
   authenticated caller;
4. a Broker method: its request is parsed leniently (a body that is not protobuf becomes
   INVALID_ARGUMENT, :mod:`logsvc.server.malformed`); the ACLs are checked against what the method
   needs (:mod:`logsvc.server.authorization`; a refusal is PERMISSION_DENIED and an audit line);
   then the servicer method runs — a plain method on the bounded worker pool (``workers``
   threads), a coroutine (Produce, waiting for the storage writer's commit, and the long-polling
   Fetch) on the loop itself, so a waiting call holds no thread; ListTopics / ListGroups answers
   lose what the caller may not describe; a produce or fetch over its principal's quota is held
   back on the loop (:mod:`logsvc.server.quotas`, ``throttle_time_ms`` says how long); a change of
   state is written to the audit log (:mod:`logsvc.server.audit`);
5. ProduceStream (:meth:`BrokerCalls._streaming`): the principal is the call's; each request
   goes through 4. as a Produce call and is answered in order, one at a time, with its response
   or its error as the answer's ``ProduceError``; the stream's own status is for the whole stream
   (UNAUTHENTICATED before any request is read, UNAVAILABLE when the broker stops:
   :meth:`BrokerCalls.close_streams` ends idle streams at once, busy ones once answered);
6. errors leave here, once: a :class:`~logsvc.errors.LogsvcError` becomes its status code, its
   message and its trailing metadata (:func:`~logsvc_wire.errors.trailing_metadata`: the
   ``logsvc-error`` code and the ``logsvc-error-details`` JSON); anything else is INTERNAL with no traceback
   sent (it is logged here); every call is timed into ``logsvc_request_seconds{method, code}``.

Servicer methods get a :class:`Call` (who is calling) instead of a gRPC context: they raise
errors, never abort.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from logsvc.acl import ANONYMOUS
from logsvc.authorizer import Authorizer
from logsvc.errors import (
    InternalError,
    LogsvcError,
    PermissionDenied,
    Unauthenticated,
    status_values,
    trailing_metadata,
)
from logsvc.server import audit, authorization, fetch_answer, malformed
from logsvc.server.metrics import BrokerMetrics
from logsvc.server.principals import Principals
from logsvc.server.quotas import FETCH, PRODUCE, Quotas, fetched_bytes, produced_bytes, throttle_time_ms
from logsvc.server.refusals import RefusalLog, refusing_handler
from logsvc.server.security import OPEN_METHOD_PREFIXES
from logsvc.settings import Settings
from logsvc.storage.base import Store
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire.produce_request import decode_produce_request


class Served(Protocol):
    """What the door reads of the servicer on every call (:class:`~logsvc.server.service.BrokerService`)."""

    store: Store
    settings: Settings

    @property
    def authorizer(self) -> Authorizer: ...

    @property
    def quotas(self) -> Quotas: ...


log = logging.getLogger("logsvc.server")

#: The ``method`` label of calls to methods the broker does not have: one series, not one per name.
UNKNOWN_METHOD = "unknown"


@dataclass(frozen=True)
class Call:
    """What a servicer method knows of its caller."""

    principal: str = ANONYMOUS
    """``User:NAME`` (see the proto's ACCESS CONTROL section)."""
    peer: str = ""
    """The client's address as gRPC gives it (``ipv4:10.0.0.7:53124``)."""


Handler = Callable[[Any, Call], Any]
PRODUCE_METHODS = ("Produce", "ProduceRecords", "ProduceStream")
#: The one streaming Broker method: each of its requests is served as a Produce call.
STREAM_METHOD = "ProduceStream"
#: Requests not read by the generated code (the rest: the generated deserializer). Produce requests
#: (ProduceStream's too) are read from their bytes by :mod:`logsvc_wire.produce_request`, each batch
#: a view into them, into a value with the message's field names.
REQUEST_DESERIALIZERS: dict[str, Callable[[bytes], Any]] = {"Produce": decode_produce_request}
#: Answers that are not the generated message type, and how they are sent (the rest: the
#: generated serializer). Fetch answers are written as bytes by :mod:`~logsvc.server.fetch_answer`.
RESPONSE_SERIALIZERS: dict[str, Callable[[Any], bytes]] = {"Fetch": fetch_answer.serialize}


class _Details:
    """``grpc.HandlerCallDetails`` for asking a registered generic handler about a method."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata: tuple[tuple[str, str | bytes], ...] = ()


class BrokerCalls(grpc.GenericRpcHandler):
    """Authentication, lenient parsing, thread-or-loop dispatch, error translation and timing for
    every call (see the module docstring). Services are added with :meth:`register` (it takes the
    place of the server in generated ``add_XServicer_to_server`` functions), then the door is the
    one generic handler added to the server."""

    def __init__(
        self,
        service_name: str,
        service: Served,
        metrics: BrokerMetrics,
        executor: Executor,
        principals: Principals,
        refusals: RefusalLog | None = None,
    ) -> None:
        self._prefix = f"/{service_name}/"
        self._service_name = service_name
        self._service = service
        self._metrics = metrics
        self._executor = executor
        self._principals = principals
        self.refusals = refusals if refusals is not None else RefusalLog()
        self._unknown = metrics.request_seconds.labels(UNKNOWN_METHOD, grpc.StatusCode.UNIMPLEMENTED.name)
        # full method name -> the registered service's handler
        self._registered: dict[str, grpc.RpcMethodHandler] = {}
        self._generic: list[grpc.GenericRpcHandler] = []
        # full method name -> its dispatching handler for calls whose principal is only known in
        # the call (no tokens): built once per method, not once per call
        self._dispatchers: dict[str, grpc.RpcMethodHandler] = {}
        # open ProduceStream calls' tasks -> whether one is serving a request now
        self._streams: dict[asyncio.Task[Any], bool] = {}
        self._closing = False

    # -- what the generated add_XServicer_to_server functions call on "the server" ---------------

    def register(self, add_to_server: Callable[[Any, Any], None], servicer: Any) -> None:
        """Serve ``servicer`` through the door: ``add_to_server`` is the generated
        ``add_XServicer_to_server`` function."""
        add_to_server(servicer, self)

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        for name, handler in handlers.items():
            self._registered[f"/{service_name}/{name}"] = handler

    def add_generic_rpc_handlers(self, handlers: tuple[grpc.GenericRpcHandler, ...]) -> None:
        self._generic.extend(handlers)

    def _handler(self, method: str) -> grpc.RpcMethodHandler | None:
        handler = self._registered.get(method)
        if handler is None and self._generic:  # code generated before registered methods
            details = _Details(method)
            for generic in self._generic:
                handler = generic.service(details)
                if handler is not None:
                    self._registered[method] = handler
                    break
        return handler

    # -- the door -------------------------------------------------------------------------------

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = details.method
        handler = self._handler(method)
        if handler is None:
            return self._unimplemented(method)
        if method.startswith(OPEN_METHOD_PREFIXES):
            return handler
        principal = None  # from the client certificate, once the call's context exists
        if self._principals.requires_token:
            try:
                principal = self._principals.authenticate(details.invocation_metadata)
            except Unauthenticated as e:
                return self._refused(e, method)
        if method == self._prefix + STREAM_METHOD:
            return self._streaming(STREAM_METHOD, principal)
        if not method.startswith(self._prefix) or handler.unary_unary is None:
            return handler  # reflection
        if principal is not None:
            return self._dispatching(method[len(self._prefix) :], handler, principal)
        dispatcher = self._dispatchers.get(method)
        if dispatcher is None:
            dispatcher = self._dispatchers[method] = self._dispatching(method[len(self._prefix) :], handler, None)
        return dispatcher

    def _refused(self, error: Unauthenticated, method: str) -> grpc.RpcMethodHandler:
        def count(context: grpc.aio.ServicerContext) -> None:
            self._metrics.unauthenticated_calls.inc()
            self.refusals.refused(context.peer(), f"a call to {method}", error.message)

        return refusing_handler(error, count)

    def _dispatching(self, name: str, handler: grpc.RpcMethodHandler, principal: str | None) -> grpc.RpcMethodHandler:
        serve = self._serving(name, handler.unary_unary)
        timed = self._timer(name)

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            start = time.perf_counter()
            code = "OK"
            try:
                try:
                    return await serve(request, self._caller(principal, context))
                except LogsvcError as e:
                    code = e.status.name
                    context.set_trailing_metadata(trailing_metadata(e))
                    await context.abort(e.status, e.message)
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED.name
                    raise
            finally:
                timed(code, start)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=malformed.lenient(REQUEST_DESERIALIZERS.get(name, handler.request_deserializer), name),
            response_serializer=RESPONSE_SERIALIZERS.get(name, handler.response_serializer),
        )

    def _streaming(self, name: str, principal: str | None) -> grpc.RpcMethodHandler:
        """ProduceStream: each request served as a Produce call (:meth:`_serving`), answered in
        order with its response or its error, one at a time; the stream's status is for the whole
        stream only (see the proto's PRODUCE STREAM)."""
        unary = self._handler(self._prefix + "Produce")
        assert unary is not None
        serve = self._serving(name, unary.unary_unary)
        timed = self._timer(name)
        streams = self._streams

        async def call(requests: Any, context: grpc.aio.ServicerContext) -> None:
            try:
                who = self._caller(principal, context)
            except LogsvcError as e:  # no principal for this connection: the whole stream fails
                context.set_trailing_metadata(trailing_metadata(e))
                await context.abort(e.status, e.message)
            task = asyncio.current_task()
            assert task is not None
            streams[task] = False  # open, idle: cancelled when the broker stops
            try:
                while not self._closing:
                    try:
                        request = await context.read()
                    except asyncio.CancelledError:  # idle at shutdown, or the client went away
                        if self._closing:
                            break
                        raise
                    if request is grpc.aio.EOF:
                        return
                    streams[task] = True  # busy: answered before the stream ends
                    start = time.perf_counter()
                    code = "OK"
                    try:
                        answer = pb.ProduceStreamResponse(response=await serve(request, who))
                    except LogsvcError as e:
                        code = e.status.name
                        status, message, error_code, details = status_values(e)
                        answer = pb.ProduceStreamResponse(
                            error=pb.ProduceError(status=status, message=message, code=error_code, details_json=details)
                        )
                    except asyncio.CancelledError:  # the client went away while it was served
                        code = grpc.StatusCode.CANCELLED.name
                        raise
                    finally:
                        timed(code, start)
                    await context.write(answer)
                    streams[task] = False
            finally:
                streams.pop(task, None)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the broker is shutting down")

        return grpc.stream_stream_rpc_method_handler(
            call,
            request_deserializer=malformed.lenient(REQUEST_DESERIALIZERS["Produce"], name),
            response_serializer=pb.ProduceStreamResponse.SerializeToString,
        )

    def _timer(self, name: str) -> Callable[[str, float], None]:
        """``timed(code, start)``: observe a ``name`` request that began at ``start``
        (``time.perf_counter()``) and ended with ``code`` in ``logsvc_request_seconds``; the OK
        series is looked up once (most requests end so), another per observation."""
        histogram = self._metrics.request_seconds
        ok = histogram.labels(name, "OK")

        def timed(code: str, start: float) -> None:
            (ok if code == "OK" else histogram.labels(name, code)).observe(time.perf_counter() - start)

        return timed

    def close_streams(self) -> None:
        """On the loop, as the broker stops: every open ProduceStream ends with UNAVAILABLE, an
        idle one at once, a busy one once its request is answered."""
        self._closing = True
        for task, busy in list(self._streams.items()):
            if not busy:
                task.cancel()

    def _caller(self, principal: str | None, context: grpc.aio.ServicerContext) -> Call:
        return Call(
            principal=principal or self._principals.authenticate(None, context.auth_context()), peer=context.peer()
        )

    def _serving(self, name: str, inner: Handler) -> Callable[[Any, Call], Awaitable[Any]]:
        """One request of method ``name`` for ``who``, whose servicer method is ``inner``: its
        response, or the LogsvcError it fails with (anything else is logged and becomes
        InternalError)."""
        on_loop = inspect.iscoroutinefunction(inner)
        executor = self._executor

        async def serve(request: Any, who: Call) -> Any:
            try:
                if isinstance(request, malformed.Malformed):
                    raise request.error()
                authorizer = self._authorize(name, request, who)
                if on_loop:
                    response = await inner(request, who)
                else:
                    response = await asyncio.get_running_loop().run_in_executor(executor, inner, request, who)
                response = authorization.visible(name, response, who.principal, authorizer)
                delay_s = self._throttle(name, who.principal, request, response)
                if delay_s > 0:
                    response.throttle_time_ms = throttle_time_ms(delay_s)
                    await asyncio.sleep(delay_s)
                audit.changed(who.principal, who.peer, name, request)
                return response
            except (LogsvcError, asyncio.CancelledError):
                raise
            except Exception as e:
                log.exception("unexpected error in %s", name)
                raise InternalError(f"internal error in {name}: {type(e).__name__}") from None

        return serve

    def _authorize(self, name: str, request: Any, who: Call) -> Any:
        """Check the ACLs for ``name`` with ``request``; the authorizer that decided (for
        :func:`~logsvc.server.authorization.visible`)."""
        service = self._service
        authorizer = service.authorizer
        try:
            authorizer.check(who.principal, authorization.needs(name, request, service.store, service.settings))
        except PermissionDenied as e:
            audit.denied(who.principal, who.peer, name, e.message)
            raise
        return authorizer

    def _throttle(self, name: str, principal: str, request: Any, response: Any) -> float:
        """Seconds to hold ``response`` back for the principal's produce or fetch quota."""
        quotas = self._service.quotas
        if name in PRODUCE_METHODS and quotas.limit(principal, PRODUCE):
            return quotas.produce_delay_s(principal, produced_bytes(request))
        if name == "Fetch" and quotas.limit(principal, FETCH):
            return quotas.fetch_delay_s(principal, fetched_bytes(response))
        return 0.0

    def _unimplemented(self, method: str) -> grpc.RpcMethodHandler:
        shown = method if len(method) <= 100 else method[:100] + "..."
        message = f"method {shown!r} is not a method of this broker ({self._service_name}, health, reflection)"
        unknown = self._unknown

        async def refuse(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
            unknown.observe(0.0)
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

        return grpc.stream_unary_rpc_method_handler(refuse)
