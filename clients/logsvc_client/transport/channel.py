"""The gRPC boundary of the client: one channel factory, one place where calls are made.

Every call to the broker goes through :func:`call` (blocking), :func:`call_with_retry` (blocking,
retried while the broker is UNAVAILABLE; only for operations that are safe to repeat) or
:func:`call_async` (a callback gets the response or the error). Each translates
:class:`grpc.RpcError` into the project's exception with
:func:`~logsvc_client.errors.from_rpc_error` exactly once, so nothing above this module ever sees
a gRPC exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..errors import LogsvcError, Timeout, Unavailable, from_rpc_error
from ..security import Security
from .base import MAX_MESSAGE_BYTES
from .retry import RetryPolicy

CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Keepalive pings only while calls are active, well above the server's ping-abuse floor.
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect soon after a broker restart instead of gRPC's default 1 s .. 120 s backoff.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)

# A unary-unary stub method (``BrokerStub(channel).Fetch`` and friends).
Method = Any
Callback = Callable[[Any, LogsvcError | None], None]


def connect(address: str, options: Sequence[tuple[str, Any]] = (), security: Security | None = None) -> grpc.Channel:
    """A channel to ``address`` (``host:port``) with the client's options: TLS and a bearer token as
    ``security`` says (None: as the environment says, :meth:`Security.from_env`).

    ``options`` are added to (and override) :data:`CHANNEL_OPTIONS`.
    """
    security = Security.from_env() if security is None else security
    merged = dict(CHANNEL_OPTIONS)
    merged.update(dict(options))
    if security.uses_tls:
        plain = grpc.secure_channel(address, security.channel_credentials(), options=list(merged.items()))
    else:
        plain = grpc.insecure_channel(address, options=list(merged.items()))
    return security.secure(plain)


def translate(err: grpc.RpcError) -> LogsvcError:
    """The project exception for a failed call (the one translation point)."""
    return from_rpc_error(err)


def call(method: Method, request: Any, timeout_s: float | None = None) -> Any:
    """Call ``method(request)``; a failure raises the project's exception (never ``grpc.RpcError``)."""
    try:
        return method(request, timeout=timeout_s)
    except grpc.RpcError as e:
        raise translate(e) from None


def call_with_retry(
    method: Method,
    request: Any,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """:func:`call`, repeated while the broker is unavailable (up to ``policy.retries`` times and
    ``policy.timeout_ms`` in all). Use only for operations that are safe to repeat."""
    deadline = time.monotonic() + policy.timeout_ms / 1000
    attempt = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout(f"call did not succeed within {policy.timeout_ms:g} ms")
        try:
            return call(method, request, timeout_s=left)
        except Unavailable as e:
            if attempt >= policy.retries:
                raise
            delay = policy.backoff.delay_s(attempt)
            if time.monotonic() + delay >= deadline:
                raise e from None
            attempt += 1
            sleep(delay)


def start(method: Method, request: Any, timeout_s: float | None = None) -> grpc.Future:
    """Start ``method(request)`` without blocking; collect it with :func:`result_of`."""
    try:
        return method.future(request, timeout=timeout_s)
    except grpc.RpcError as e:
        raise translate(e) from None


def call_async(method: Method, request: Any, timeout_s: float | None, callback: Callback) -> grpc.Future:
    """Start ``method(request)`` without blocking; ``callback(response, None)`` or
    ``callback(None, error)`` runs on a gRPC thread when it completes. Returns the call (cancellable)."""
    future = start(method, request, timeout_s)

    def done(f: grpc.Future) -> None:
        if f.cancelled():
            callback(None, Unavailable("call cancelled (the client is closing)"))
            return
        err = f.exception()
        if err is None:
            callback(f.result(), None)
        elif isinstance(err, grpc.RpcError):
            callback(None, translate(err))
        else:  # not a status: a bug in the serializer or the like, still reported as ours
            callback(None, LogsvcError(f"call failed: {err!r}"))

    future.add_done_callback(done)
    return future


def result_of(future: grpc.Future, timeout_s: float | None = None) -> Any:
    """The response of a :func:`call_async`-style future, raising the project exception on failure."""
    try:
        return future.result(timeout=timeout_s)
    except grpc.FutureCancelledError:
        raise Unavailable("call cancelled (the client is closing)") from None
    except grpc.FutureTimeoutError:
        raise Timeout("call did not complete in time") from None
    except grpc.RpcError as e:
        raise translate(e) from None


def wait_done(future: grpc.Future, timeout_s: float | None) -> bool:
    """Wait up to ``timeout_s`` for a call started with ``method.future``; True when it is done."""
    try:
        future.exception(timeout=timeout_s)
    except grpc.FutureTimeoutError:
        return False
    except grpc.FutureCancelledError:
        return True
    return True


class CallThreadKeeper:
    """Keeps the thread that completes a channel's non-blocking calls alive between calls.

    gRPC's Python channel completes ``method.future(...)`` calls (a consumer's fetches, a
    producer's requests) on a thread it starts when such a call begins while none is in progress,
    and that ends when the last one completes. A client whose calls do not overlap — one fetch at
    a time, one request per batch — started a thread per call: about a tenth of a millisecond of
    CPU and of latency each, a tenth of a consumer's time per record. One open health ``Watch``
    stream (answered once by the broker, then idle: a waiting coroutine on its side, never a
    thread) keeps a call in progress, so the thread stays. :meth:`ensure` opens it again after
    it ended (the broker restarted); :meth:`close` cancels it.
    """

    __slots__ = ("_call", "_stub")

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = health_pb2_grpc.HealthStub(channel)
        self._call: Any = None

    def ensure(self) -> None:
        call = self._call
        if call is None or call.done():
            self._call = self._stub.Watch(health_pb2.HealthCheckRequest(service=""))

    def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None
