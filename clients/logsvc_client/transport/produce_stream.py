"""A producer's ProduceStream call: Produce requests sent and answered one at a time over one
long-lived call, for a thread that waits for its own record (``Producer.send(...).result()`` at
``linger_ms=0``). A call's set-up and tear-down (HTTP/2 headers and trailers, the broker's call
object and handler dispatch) is about 0.15 ms of a single-record round trip on the reference
machine, a sixth of it; on the stream only the request and its answer cross.

The stream serves one request at a time (:meth:`ProduceStream.call`): a thread that finds it busy,
or a broker without the method (UNIMPLEMENTED, an older broker), gets None and sends with a
Produce call instead. A request's failure is the error the broker answered it with, as a Produce
call's status would have given it (:func:`~logsvc_wire.errors.from_status`); the stream stays
open. A stream that failed while a request waited (connection lost, broker stopping) raises what
the call ended with, as a failed Produce call does; a request never goes on a stream that has
already ended (it opens a new one).

Deadline: a stream is opened with the producer's request timeout as its deadline and is used for
new requests only in the first half of it (then ended and opened again), so no request waits
longer than the request timeout for its answer (it then fails with Timeout, as a Produce call
would, and is retried by the producer).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire.errors import from_status

from ..errors import Unavailable
from . import channel


class ProduceStream:
    """One ProduceStream call at a time over ``method`` (a ProduceStream multicallable taking
    serialized requests, see :class:`~logsvc_client.transport.grpc.GrpcTransport`); see the module
    docstring."""

    def __init__(
        self, method: Callable[..., Any], timeout_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._method = method
        self._timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()  # one request at a time; held while it waits for its answer
        self._requests: queue.SimpleQueue[bytes | None] | None = None
        self._answers: Any = None  # the call: an iterator of ProduceStreamResponse and a grpc.Future
        self._renew_at = 0.0
        self.unsupported = False  # the broker has no ProduceStream: always None

    def call(self, request: bytes) -> pb.ProduceResponse | None:
        """``request``'s ProduceResponse over the stream (``request``: a serialized ProduceRequest,
        as :func:`~logsvc_wire.produce_request.encode_produce_request` writes it); None when the stream cannot take it
        (busy with another thread's request, or the broker lacks the method): send it with
        Produce. Raises the project's exception the request or the stream failed with."""
        if self.unsupported or not self._lock.acquire(blocking=False):
            return None
        try:
            if self._answers is None or self._answers.done() or self._clock() >= self._renew_at:
                self._open()  # none yet, ended while idle (a broker restart), or half its deadline gone
            requests, answers = self._requests, self._answers
            assert requests is not None and answers is not None
            requests.put(request)
            try:
                answer = next(answers)
            except grpc.RpcError as e:
                self._end()
                if e.code() == grpc.StatusCode.UNIMPLEMENTED:
                    self.unsupported = True  # refused before the request was read
                    return None
                raise channel.translate(e) from None
            except StopIteration:
                self._end()
                raise Unavailable("the broker ended the produce stream before answering") from None
        finally:
            self._lock.release()
        if answer.HasField("error"):
            failed = answer.error
            raise from_status(failed.status, failed.message, failed.code, failed.details_json)
        return answer.response

    def close(self) -> None:
        """End the open stream: a request on it still gets its answer (closing the channel
        cancels it, as it does a Produce call)."""
        self._end()

    def _open(self) -> None:
        self._end()
        requests: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._answers = self._method(_until_none(requests), timeout=self._timeout_s)
        self._requests = requests
        self._renew_at = self._clock() + self._timeout_s / 2

    def _end(self) -> None:
        requests, self._requests, self._answers = self._requests, None, None
        if requests is not None:
            requests.put(None)  # half-close: the broker ends the call with OK


def _until_none(requests: queue.SimpleQueue[bytes | None]) -> Iterator[bytes]:
    """The requests put on ``requests``, until None (gRPC's request thread iterates it)."""
    while (request := requests.get()) is not None:
        yield request
