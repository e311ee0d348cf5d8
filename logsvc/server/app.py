"""The broker process: store + gRPC server (with health checking and reflection) + /metrics.

:func:`create_server` builds and starts everything and returns a :class:`Broker` with the bound
port (tests bind port 0); :func:`serve` runs one until SIGTERM/SIGINT (SIGHUP re-reads the tokens
file, :meth:`Broker.reload_credentials`) and shuts it down gracefully: health goes NOT_SERVING,
new calls are refused with UNAVAILABLE, in-flight calls get ``shutdown_grace_ms`` to finish, long
polls return early, then the store drains its writer.

When the store can no longer write (:class:`~logsvc.errors.StorageFailed`: MDB_PANIC, a failed
fsync), health goes NOT_SERVING at once, every write fails with StorageFailed, and :func:`serve`
shuts down the same way and raises the failure, so ``logsvc serve`` exits with status 74
(``logsvc.cli.main.EXIT_STORAGE_FAILED``) for its supervisor to restart it. A fresh process
reopens the environment from what is on disk; the broker does not try to reopen it in place.

The server is ``grpc.aio`` on an event loop of its own thread (:class:`EventLoop`): short calls run
on a pool of ``workers`` threads, while produces waiting for their commit, long-polling fetches
and health watches wait on the loop without a thread each, so how many clients may wait at once
does not depend on the thread count (``max_concurrent_rpcs`` bounds it;
``max_streams_per_connection`` bounds one connection). Every call passes through
:mod:`logsvc.server.calls`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from logsvc.errors import InvalidConfig, LogsvcError, StorageFailed
from logsvc.server import allocator, malformed
from logsvc.server.calls import BrokerCalls
from logsvc.server.long_polls import LongPolls
from logsvc.server.metrics import BrokerMetrics
from logsvc.server.principals import Principals
from logsvc.server.security import server_credentials
from logsvc.server.service import BrokerService
from logsvc.settings import Settings
from logsvc.storage.base import Store
from logsvc.storage.lmdb_store import LmdbStore
from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from logsvc_wire.metrics_http import load_metrics_token

log = logging.getLogger("logsvc.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Broker"].full_name
T = TypeVar("T")


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A new loop of ``kind`` (Settings.event_loop): uvloop's, asyncio's, or for "auto" uvloop's
    when it is installed. grpc.aio runs on any asyncio loop; on uvloop a call's hand-offs between
    gRPC's poller thread, the storage writer and the loop cost less (bench/single_latency.py)."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise InvalidConfig(
                    "event_loop='uvloop' but uvloop is not installed (pip install uvloop); "
                    "set event_loop='asyncio' or 'auto'",
                    key="event_loop",
                ) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class EventLoop:
    """The loop the gRPC server runs on (:func:`new_event_loop`), in its own thread
    (``logsvc-io``), so :func:`create_server` and :meth:`Broker.stop` stay plain calls for the CLI
    and tests."""

    def __init__(self, kind: str = "auto") -> None:
        self.loop = new_event_loop(kind)
        self._thread = threading.Thread(target=self._run, name="logsvc-io", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Start ``coroutine`` on the loop without waiting (safe from the loop's own callbacks)."""
        asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Broker:
    """A running broker: its gRPC server, bound port, store, servicer and metrics."""

    def __init__(
        self,
        settings: Settings,
        io: EventLoop,
        server: grpc.aio.Server,
        port: int,
        store: Store,
        service: BrokerService,
        metrics: BrokerMetrics,
        health_servicer: health.aio.HealthServicer,
        executor: ThreadPoolExecutor,
        principals: Principals,
        door: BrokerCalls,
    ) -> None:
        self.settings = settings
        self.principals = principals
        self.io = io
        self.server = server
        self.port = port
        self.store = store
        self.service = service
        self.metrics = metrics
        self.health = health_servicer
        self.executor = executor
        self.door = door  # every call's handler; ends open ProduceStreams at stop
        self.address = f"{settings.listen.rsplit(':', 1)[0]}:{port}"
        self.failure: StorageFailed | None = None  # set once the store can no longer write
        self._stopped = threading.Event()
        self._terminated = threading.Event()
        store.on_failure(self._storage_failed)
        self._group_expiry = threading.Thread(target=self._expire_groups, name="logsvc-group-expiry", daemon=True)

    def _expire_groups(self) -> None:
        """Every retention_check_interval_ms: forget consumer groups idle past offsets_retention_minutes."""
        while not self._stopped.wait(self.settings.retention_check_interval_ms / 1000):
            if self.failure is not None:
                return
            try:
                self.service.expire_groups()
            except LogsvcError as e:
                log.warning("consumer group expiry failed: %s", e)
            except Exception:
                log.exception("consumer group expiry failed")

    def _storage_failed(self, failure: StorageFailed) -> None:
        """On the writer thread, before any write is failed: stop claiming to serve."""
        self.failure = failure
        for name in ("", SERVICE_NAME):
            self.io.spawn(self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING))

    def stop(self, grace_s: float | None = None) -> None:
        """Graceful shutdown; safe to call twice."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self._group_expiry.ident is not None:
            self._group_expiry.join()
        grace = self.settings.shutdown_grace_ms / 1000 if grace_s is None else grace_s
        self.service.stopping.set()
        self.io.run(self._stop(grace))
        self.io.close()
        self.executor.shutdown(wait=True)
        self.metrics.stop_http()
        self.store.close()
        self._terminated.set()

    async def _stop(self, grace_s: float) -> None:
        await self.health.enter_graceful_shutdown()
        if self.service.long_polls is not None:
            self.service.long_polls.release_all()
        self.door.close_streams()
        await self.server.stop(grace_s)

    def reload_credentials(self) -> bool:
        """SIGHUP: re-read the tokens file; connections stay up. A broken file is one ERROR line
        and the tokens loaded before keep working (False)."""
        if not self.principals.requires_token:
            log.info("SIGHUP: no auth_tokens_file to re-read")
            return True
        return self.principals.try_reload()

    def wait(self) -> None:
        """Block until :meth:`stop` has finished."""
        self._terminated.wait()


def open_store(settings: Settings) -> LmdbStore:
    return LmdbStore.open(
        settings.data_dir,
        durability=settings.durability,
        map_size_bytes=settings.map_size_bytes,
        max_map_size_bytes=settings.max_map_size_bytes,
        max_partitions=settings.max_partitions,
        retention_check_interval_ms=settings.retention_check_interval_ms,
        producer_id_expiration_ms=settings.producer_id_expiration_ms,
        validate_records=settings.validate_records,
    )


def create_server(settings: Settings, store: Store | None = None) -> Broker:
    """Open the store, start the gRPC server and /metrics; return the running :class:`Broker`."""
    credentials = server_credentials(settings)  # configuration errors before the store is opened
    principals = Principals.from_settings(settings)
    metrics_token = load_metrics_token(settings.metrics_token_file) if settings.metrics_token_file else None
    store = store if store is not None else open_store(settings)
    malformed.install_log_filter()
    io = EventLoop(settings.event_loop)
    executor = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="logsvc-rpc")
    try:
        metrics = BrokerMetrics(store)
        service = BrokerService(store, settings, metrics)
        service.executor = executor
        server, port, health_servicer, door = io.run(
            _start(settings, service, metrics, executor, principals, credentials, io)
        )
        broker = Broker(
            settings, io, server, port, store, service, metrics, health_servicer, executor, principals, door
        )
        _warn_of_batches_too_large(store, settings)
        if settings.metrics_port >= 0:
            try:
                metrics.serve_http(settings.metrics_host, settings.metrics_port, metrics_token)
            except OSError as e:
                io.run(server.stop(0))
                raise InvalidConfig(
                    f"cannot serve /metrics on {settings.metrics_host}:{settings.metrics_port}: {e}",
                    key="metrics_port",
                ) from None
    except BaseException:
        io.close()
        executor.shutdown(wait=False)
        store.close()
        raise
    broker._group_expiry.start()
    return broker


async def _start(
    settings: Settings,
    service: BrokerService,
    metrics: BrokerMetrics,
    executor: ThreadPoolExecutor,
    principals: Principals,
    credentials: grpc.ServerCredentials | None,
    io: EventLoop,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer, BrokerCalls]:
    """On the loop: build the aio server, its one handler the door (:mod:`logsvc.server.calls`)
    serving Broker, health and reflection; bind and start it."""
    service.long_polls = LongPolls(service.store, io.loop, on_count=metrics.fetches_waiting.set)
    door = BrokerCalls(SERVICE_NAME, service, metrics, executor, principals)
    door.register(pb_grpc.add_BrokerServicer_to_server, service)
    health_servicer = health.aio.HealthServicer()
    door.register(health_pb2_grpc.add_HealthServicer_to_server, health_servicer)
    door.register(
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server,
        reflection.aio.ReflectionServicer(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME)
        ),
    )
    server = grpc.aio.server(
        migration_thread_pool=executor,
        handlers=[door],
        options=[
            ("grpc.max_send_message_length", settings.max_response_bytes),
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_concurrent_streams", settings.max_streams_per_connection),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    try:
        if credentials is None:
            port = server.add_insecure_port(settings.listen)
        else:
            port = server.add_secure_port(settings.listen, credentials)
    except RuntimeError as e:
        raise InvalidConfig(f"cannot listen on {settings.listen}: {e}", key="listen") from None
    if port == 0:
        raise InvalidConfig(f"cannot listen on {settings.listen}: address in use or not available", key="listen")
    await server.start()
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer, door


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _warn_of_batches_too_large(store: Store, settings: Settings) -> None:
    """A topic created under a larger max_message_bytes may allow batches no request can carry now."""
    for meta in store.list_topics():
        if meta.config.max_batch_bytes > settings.max_batch_bytes:
            log.warning(
                "topic %s allows batches of %d bytes but max_message_bytes=%d admits at most %d: "
                "lower its max_batch_bytes (logsvc topics alter) or raise max_message_bytes",
                meta.name,
                meta.config.max_batch_bytes,
                settings.max_message_bytes,
                settings.max_batch_bytes,
            )


def serve(settings: Settings, ready: Callable[[Broker], None] | None = None) -> None:
    """Run a broker until SIGTERM or SIGINT, then shut it down gracefully. When its store fails
    (it can no longer write), shut down the same way and raise that StorageFailed. The process's
    heap keeps its freed buffers for reuse (:func:`~logsvc.server.allocator.keep_freed_memory`)."""
    allocator.keep_freed_memory()
    broker = create_server(settings)
    stop = threading.Event()
    broker.store.on_failure(lambda failure: stop.set())

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, lambda signum, frame: broker.reload_credentials())
    tls = "off" if not settings.tls_cert_file else "mutual" if settings.tls_client_ca_file else "on"
    log.info(
        "logsvc broker listening on %s (data dir %s, durability %s, tls %s, tokens %s, metrics %s)",
        broker.address,
        settings.data_dir,
        settings.durability,
        tls,
        "required" if settings.auth_tokens_file else "off",
        f"http://{_url_host(settings.metrics_host)}:{broker.metrics.port}/metrics" if broker.metrics.port else "off",
    )
    if ready is not None:
        ready(broker)
    while not stop.wait(1.0):
        pass
    if broker.failure is not None:
        log.error("stopping: the storage can no longer write; the broker must be restarted")
    broker.stop()
    log.info("logsvc broker stopped")
    if broker.failure is not None:
        raise broker.failure
