"""The one exception tree of logsvc, shared by the broker, the client library and the CLI (which
import it as :mod:`logsvc.errors` and :mod:`logsvc_client.errors`: re-exports of this module).

Every error has a stable ``code``, a gRPC status code, a ``retriable`` flag saying whether the
same request may succeed later, and ``details``: the keyword arguments it was raised with (the
valid offset range, the partition count, the generations, the principal...). The broker raises
these and :mod:`logsvc.server.calls` turns them into a gRPC status once, with the trailing
metadata :func:`trailing_metadata` gives; the client turns a status back into the same class with
the same details with :func:`from_rpc_error`, so ``except OffsetOutOfRange as e:
e.details["log_start_offset"]`` works the same in-process and across the wire.

The trailing metadata (documented for other languages in proto/logsvc/v1/logsvc.proto, ERRORS):

* ``logsvc-error`` (:data:`METADATA_KEY`) — the stable code, e.g. ``offset_out_of_range``;
* ``logsvc-error-details`` (:data:`DETAILS_METADATA_KEY`) — the details as a compact JSON object
  (ASCII, keys sorted), only those whose values are JSON (str, int, float, bool, null, lists and
  objects of them); absent when there are none.

Subtrees follow what the caller should do next:

* :class:`InvalidRequest` — fix the request (bad name, partition, batch, option).
* :class:`NotFound` / :class:`AlreadyExists` — the named thing is missing / already there.
* :class:`OffsetOutOfRange` — seek elsewhere; carries the valid range.
* :class:`ResourceExhausted` — too large, or storage is full.
* :class:`Unavailable` — retry later (broker shutting down, connection lost, timeout).
* :class:`Unauthenticated` — give the broker a valid bearer token.
* :class:`CorruptBatch` — data already stored does not decode: skip it or repair the log.
"""

from __future__ import annotations

import json
import math
from typing import Any

import grpc

__all__ = [
    "DETAILS_METADATA_KEY",
    "METADATA_KEY",
    "AlreadyExists",
    "BatchTooLarge",
    "BufferFull",
    "CorruptBatch",
    "DataDirectoryLocked",
    "FailedPrecondition",
    "FencedInstance",
    "GroupMaxSizeReached",
    "GroupNotEmpty",
    "GroupNotFound",
    "InternalError",
    "InvalidBatch",
    "InvalidConfig",
    "InvalidPartition",
    "InvalidRequest",
    "InvalidTopicName",
    "LogsvcError",
    "NotFound",
    "OffsetOutOfRange",
    "OutOfOrderSequence",
    "PermissionDenied",
    "ProducerFenced",
    "ResourceExhausted",
    "StaleGeneration",
    "StorageFailed",
    "StorageFull",
    "Timeout",
    "TopicAlreadyExists",
    "TopicNotFound",
    "Unauthenticated",
    "Unavailable",
    "UnknownMember",
    "UnknownProducer",
    "for_code",
    "from_rpc_error",
    "from_status",
    "status_values",
    "trailing_metadata",
]

METADATA_KEY = "logsvc-error"
DETAILS_METADATA_KEY = "logsvc-error-details"
#: details longer than this (JSON bytes) are not sent: gRPC's default limit for all metadata is 8 KiB
MAX_DETAILS_BYTES = 4096


class LogsvcError(Exception):
    """Root of every error logsvc raises on purpose."""

    code = "error"
    status: grpc.StatusCode = grpc.StatusCode.INTERNAL
    retriable = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class InvalidRequest(LogsvcError):
    code = "invalid_request"
    status = grpc.StatusCode.INVALID_ARGUMENT


class InvalidTopicName(InvalidRequest):
    code = "invalid_topic_name"


class InvalidPartition(InvalidRequest):
    """A partition the topic does not have, or a partition count out of range; ``details`` carry
    ``topic``, ``partition`` and ``partitions`` (the topic's count) where they apply."""

    code = "invalid_partition"


class InvalidBatch(InvalidRequest):
    """A record batch that does not follow the encoding in proto/logsvc/v1/logsvc.proto."""

    code = "invalid_batch"


class InvalidConfig(InvalidRequest):
    """A configuration key that is unknown or a value that is out of range."""

    code = "invalid_config"


class NotFound(LogsvcError):
    code = "not_found"
    status = grpc.StatusCode.NOT_FOUND


class TopicNotFound(NotFound):
    code = "topic_not_found"


class AlreadyExists(LogsvcError):
    code = "already_exists"
    status = grpc.StatusCode.ALREADY_EXISTS


class TopicAlreadyExists(AlreadyExists):
    code = "topic_already_exists"


class OffsetOutOfRange(LogsvcError):
    """An offset outside ``[log_start_offset, next_offset]``; ``details`` carry ``topic``,
    ``partition``, ``offset`` and both bounds (``log_start_offset``, ``next_offset``)."""

    code = "offset_out_of_range"
    status = grpc.StatusCode.OUT_OF_RANGE


class FailedPrecondition(LogsvcError):
    code = "failed_precondition"
    status = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(LogsvcError):
    code = "resource_exhausted"
    status = grpc.StatusCode.RESOURCE_EXHAUSTED


class BatchTooLarge(ResourceExhausted):
    code = "batch_too_large"


class StorageFull(ResourceExhausted):
    """The disk is full or the LMDB map cannot grow: produce fails, reads keep working."""

    code = "storage_full"


class BufferFull(ResourceExhausted):
    """The client Producer's buffer (``max_buffer_bytes``) is full; raised on the client only."""

    code = "buffer_full"
    retriable = True


class Unavailable(LogsvcError):
    code = "unavailable"
    status = grpc.StatusCode.UNAVAILABLE
    retriable = True


class Timeout(Unavailable):
    code = "timeout"
    status = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(LogsvcError):
    """The broker requires a bearer token (its ``auth_tokens_file``) and the call carried none, or
    one it does not know."""

    code = "unauthenticated"
    status = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(LogsvcError):
    """No ACL allows the caller's principal this operation on this resource (or one denies it);
    the message names the principal, the operation and the resource, and ``details`` carry them:
    ``principal``, ``operation``, ``resource_type`` and (for a named resource) ``resource_name``."""

    code = "permission_denied"
    status = grpc.StatusCode.PERMISSION_DENIED


class StorageFailed(Unavailable):
    """The broker's storage can no longer write (LMDB's MDB_PANIC, a failed fsync). The broker
    stops serving (health NOT_SERVING) and exits non-zero so its supervisor restarts it; a client
    retries against the restarted broker."""

    code = "storage_failed"


class DataDirectoryLocked(LogsvcError):
    """Another process (a running broker, or an offline command that writes) holds the data
    directory's lock; ``details`` carry ``path`` and, where known, the holder's ``pid``."""

    code = "data_dir_locked"
    status = grpc.StatusCode.FAILED_PRECONDITION


class CorruptBatch(LogsvcError):
    """A *stored* batch that does not decode as the specification says (written by an older
    version, or damaged on disk). ``details`` carry ``topic``, ``partition``, ``base_offset`` and
    ``last_offset`` (the offset range the batch covers), so a reader can report it and skip it."""

    code = "corrupt_batch"
    status = grpc.StatusCode.DATA_LOSS


class InternalError(LogsvcError):
    code = "internal"
    status = grpc.StatusCode.INTERNAL


def _all_subclasses(cls: type[LogsvcError]) -> list[type[LogsvcError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


_BY_CODE: dict[str, type[LogsvcError]] = {}
_BY_STATUS: dict[grpc.StatusCode, type[LogsvcError]] = {
    grpc.StatusCode.CANCELLED: Unavailable,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.UNIMPLEMENTED: InvalidRequest,
    grpc.StatusCode.ABORTED: Unavailable,
}


def _register() -> None:
    for cls in _all_subclasses(LogsvcError):
        _BY_CODE[cls.code] = cls
        # The first (most general) class seen for a status is the fallback for that status.
        _BY_STATUS.setdefault(cls.status, cls)


def for_code(code: str) -> type[LogsvcError]:
    """The exception class registered under a stable error code (LogsvcError when unknown)."""
    if not _BY_CODE:
        _register()
    return _BY_CODE.get(code, LogsvcError)


def trailing_metadata(error: LogsvcError) -> tuple[tuple[str, str], ...]:
    """The trailing metadata a broker sends with ``error``'s status: its code, and its JSON-safe
    details as compact JSON when it has any (see the module docstring)."""
    metadata = [(METADATA_KEY, error.code)]
    details = {key: value for key, value in error.details.items() if _json_safe(value)}
    if details:
        encoded = json.dumps(details, separators=(",", ":"), sort_keys=True)
        if len(encoded) <= MAX_DETAILS_BYTES:
            metadata.append((DETAILS_METADATA_KEY, encoded))
    return tuple(metadata)


def _json_safe(value: object) -> bool:
    """Whether ``value`` comes back from JSON as it went in (a tuple would come back a list, and
    NaN or infinity is not JSON other languages read)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v) for k, v in value.items())
    return False


def _details(value: str | bytes) -> dict[str, Any]:
    """The details a ``logsvc-error-details`` value carries ({} when it is not a JSON object)."""
    try:
        details = json.loads(value)
    except ValueError:
        return {}
    return details if isinstance(details, dict) else {}


def from_rpc_error(err: grpc.RpcError) -> LogsvcError:
    """Rebuild the project's exception from a failed call: the class its ``logsvc-error`` code
    names (else the one for its status code), with the details ``logsvc-error-details`` carries."""
    status = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    message = (err.details() if hasattr(err, "details") else None) or str(status)
    code = None
    details: dict[str, Any] = {}
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == METADATA_KEY:
            code = value if isinstance(value, str) else value.decode()
        elif key == DETAILS_METADATA_KEY:
            details = _details(value)
    return _rebuilt(status, message, code, details)


_STATUS_BY_NUMBER = {status.value[0]: status for status in grpc.StatusCode}


def from_status(status: int, message: str, code: str, details_json: str) -> LogsvcError:
    """The project's exception from what a failed call's status would carry, given as values (a
    ProduceStream request's ``ProduceError``: status number, message, ``logsvc-error`` code and
    ``logsvc-error-details`` JSON, empty strings when absent), as :func:`from_rpc_error` builds it."""
    details = _details(details_json) if details_json else {}
    return _rebuilt(_STATUS_BY_NUMBER.get(status, grpc.StatusCode.UNKNOWN), message, code or None, details)


def status_values(error: LogsvcError) -> tuple[int, str, str, str]:
    """What :func:`from_status` takes, for ``error``: the status number, the message, the code and
    the details JSON ("" when none), exactly as the status and :func:`trailing_metadata` carry them."""
    trailing = dict(trailing_metadata(error))
    return error.status.value[0], error.message, trailing[METADATA_KEY], trailing.get(DETAILS_METADATA_KEY, "")


def _rebuilt(status: grpc.StatusCode, message: str, code: str | None, details: dict[str, Any]) -> LogsvcError:
    if not _BY_CODE:
        _register()
    cls = _BY_CODE.get(code) if code else None
    if cls is None:
        cls = _BY_STATUS.get(status, LogsvcError)
    if status == grpc.StatusCode.UNAVAILABLE and code is None:
        message = f"broker unavailable: {message}"
    exc = cls(message)
    exc.details = details
    exc.status = status
    return exc


# -- consumer groups (the coordinator: logsvc.groups) ----------------------------------------------


class UnknownMember(FailedPrecondition):
    """The member id is not (or no longer) in the group: its session expired or it left. Join again."""

    code = "unknown_member"


class FencedInstance(FailedPrecondition):
    """A newer member joined with this member's static ``instance_id`` and took its place (Kafka's
    FENCED_INSTANCE_ID). Fatal for the fenced consumer: joining again would fence the newer one in
    turn, so two processes configured with one instance id would take turns forever."""

    code = "fenced_instance"


class StaleGeneration(FailedPrecondition):
    """A commit or heartbeat carries a generation the member has moved past, or one the group never
    had; ``details`` carry ``group``, ``member_id``, ``generation`` (the one sent),
    ``member_generation`` and ``group_generation``."""

    code = "stale_generation"


class GroupNotFound(NotFound):
    code = "group_not_found"


class GroupMaxSizeReached(ResourceExhausted):
    """The group already has the broker's ``max_members_per_group`` members, so a new member was not
    added (Kafka's GROUP_MAX_SIZE_REACHED). Not retriable: add fewer consumers, or raise the limit."""

    code = "group_max_size_reached"


class GroupNotEmpty(FailedPrecondition):
    """The group still has live members (delete, offset reset, or a commit without membership)."""

    code = "group_not_empty"


# -- the idempotent producer -------------------------------------------------------------------------


class ProducerFenced(FailedPrecondition):
    """A batch carries a producer epoch older than the broker's for that producer id: a newer
    session of the same producer exists. Fatal for this producer (Kafka's PRODUCER_FENCED)."""

    code = "producer_fenced"


class OutOfOrderSequence(FailedPrecondition):
    """A batch's base sequence is neither the next expected one nor one of the last five the broker
    remembers: records between them are missing (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER)."""

    code = "out_of_order_sequence"


class UnknownProducer(FailedPrecondition):
    """The broker has no state for the producer id (never issued, or expired after
    ``producer_id_expiration_ms``); the producer must ask for a new id (Kafka's UNKNOWN_PRODUCER_ID)."""

    code = "unknown_producer_id"
