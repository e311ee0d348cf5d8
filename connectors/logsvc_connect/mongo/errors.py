"""pymongo's errors translated once into the sink contract's: per-record DataError or TransientSinkError.

* A ``BulkWriteError`` is read write error by write error (:func:`record_failures`): a duplicate
  ``_id`` on an insert means "already written"; a server code that is about the server
  (shutdown, failover, timeout, write conflict), an error that names no operation, or a
  write-concern error makes the whole batch transient; any other error is that record's DataError.
* A document the driver cannot encode (integer over 64 bits, NUL in a name, non-string key, over
  16 MiB) is found by encoding each document alone (:func:`check_encodable`).
* A command refused because the connector's user lacks a privilege (Unauthorized), or because
  the server refuses the collection's name (InvalidNamespace: a name too long for the server,
  characters it does not take), is a configuration error that stops the connector, as missing
  privileges do in PostgreSQL (:func:`translate`); retrying would only fill the log.
* Everything else pymongo raises (connection lost, server selection timeout, not primary,
  execution timeout, authentication failing at connect) is transient (:func:`transient`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import bson
from bson.errors import BSONError
from pymongo.errors import OperationFailure, PyMongoError

from logsvc_client.errors import InvalidConfig, LogsvcError
from logsvc_connect.errors import DataError, TransientSinkError

#: MongoDB's limit on one document (``maxBsonObjectSize``).
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: What encoding a document to BSON raises for a bad value (surrogates raise UnicodeEncodeError).
ENCODE_ERRORS = (BSONError, OverflowError, ValueError, TypeError)

DUPLICATE_KEY = 11000
#: InvalidNamespace: the server refuses the collection's name (reserved, too long, bad characters)
NAMESPACE_CODES = frozenset({73})
NAMESPACE_MESSAGES = ("Invalid identifier", "Invalid collection name", "Invalid namespace")
#: Command codes that say the connector's user may not do what it must (Unauthorized).
PRIVILEGE_CODES = frozenset({13})
# Codes about the server, not the record: HostUnreachable, HostNotFound, LockTimeout,
# MaxTimeMSExpired, WriteConcernFailed, NetworkTimeout, ShutdownInProgress, UnsatisfiableWriteConcern,
# WriteConflict, PrimarySteppedDown, ExceededTimeLimit, SocketException, NotWritablePrimary,
# InterruptedAtShutdown, InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary.
TRANSIENT_CODES = frozenset({6, 7, 24, 50, 64, 89, 91, 100, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436})


def check_encodable(document: Mapping[str, Any]) -> None:
    """DataError when BSON cannot encode ``document`` or it exceeds MongoDB's document limit."""
    try:
        size = len(bson.encode(document))
    except ENCODE_ERRORS as e:
        raise DataError(f"document cannot be encoded as BSON: {e}", type(e).__name__) from None
    if size > MAX_DOCUMENT_BYTES:
        raise DataError(
            f"document of {size} bytes exceeds MongoDB's limit of {MAX_DOCUMENT_BYTES} bytes",
            "DocumentTooLarge",
            size_bytes=size,
        )


def unencodable(ids: Sequence[Any], docs: Sequence[Mapping[str, Any]]) -> dict[int, DataError]:
    """Positions of the operations (``_id`` and document) that BSON cannot carry."""
    found: dict[int, DataError] = {}
    for n, (_id, document) in enumerate(zip(ids, docs, strict=True)):
        try:
            check_encodable({"q": _id, "u": document})
        except DataError as e:
            found[n] = e
    return found


def record_failures(
    details: Mapping[str, Any], collection: str, count: int, inserts: bool
) -> tuple[dict[int, DataError], list[int]]:
    """What a ``BulkWriteError`` over ``count`` operations (``inserts``, or upserts/deletes) says of
    each, by position: the DataError of each failed one, and the inserts whose ``_id`` was already
    there (written, for an insert). TransientSinkError when the database failed, not a record."""
    failed: dict[int, DataError] = {}
    duplicates: list[int] = []
    transient: str | None = None
    for error in details.get("writeErrors") or ():
        n, code, message = error.get("index"), error.get("code"), error.get("errmsg", "")
        if not isinstance(n, int) or not 0 <= n < count or code in TRANSIENT_CODES:
            transient = f"code {code}: {message}"
        elif code == DUPLICATE_KEY and _is_id_duplicate(error):
            if inserts:
                duplicates.append(n)
            else:
                transient = f"concurrent upsert of one _id (code {code}): {message}"  # a retry succeeds
        else:
            failed[n] = DataError(
                f"MongoDB refused the document for {collection!r}: {message} (code {code})",
                f"MongoWriteError{code}" if code is not None else "MongoWriteError",
                code=code,
            )
    for error in details.get("writeConcernErrors") or ():
        transient = f"write concern not satisfied (code {error.get('code')}): {error.get('errmsg', '')}"
    if transient is not None:
        raise TransientSinkError(f"bulk write to {collection!r} failed: {transient}", error_class="BulkWriteError")
    return failed, duplicates


def _is_id_duplicate(error: Mapping[str, Any]) -> bool:
    """A duplicate-key error on ``_id`` (not on another unique index)."""
    pattern = error.get("keyPattern")
    if pattern is not None:
        return bool(pattern == {"_id": 1})
    # A server that sends no keyPattern (nx-27017: "UNIQUE constraint failed: <coll>._id").
    message = str(error.get("errmsg", ""))
    return " _id_ " in message or message.endswith("._id")


def refuses_name(e: PyMongoError) -> bool:
    """Whether the server refused a command because of the collection's name: MongoDB's
    InvalidNamespace (code 73: a reserved or too long name), or a server that sends no code but
    says so (nx-27017: "Invalid identifier ...")."""
    if not isinstance(e, OperationFailure):
        return False
    if e.code in NAMESPACE_CODES:
        return True
    return e.code is None and any(m in str(e) for m in NAMESPACE_MESSAGES)


def transient(e: PyMongoError | Exception) -> TransientSinkError:
    """``e`` as the contract's "retry later" error, with a readable message."""
    text = str(e).split(", Timeout:")[0]  # server selection errors append a long topology dump
    return TransientSinkError(f"MongoDB unavailable: {type(e).__name__}: {text[:300]}", error_class=type(e).__name__)


def translate(e: PyMongoError, collection: str | None = None) -> LogsvcError:
    """A failed command or write (on ``collection``, when it is about one): InvalidConfig when the
    user lacks a privilege or the server refuses the collection's name, else transient."""
    if collection is not None and refuses_name(e):
        message = str(e).split(", full error:")[0]
        return InvalidConfig(
            f"MongoDB refuses the collection name {collection!r}: {message[:300]}; "
            "change the collection template (the collection key)",
            key="collection",
        )
    if isinstance(e, OperationFailure) and e.code in PRIVILEGE_CODES:
        message = str(e).split(", full error:")[0]
        return InvalidConfig(
            f"MongoDB refused the connector's user: {message[:300]} (code {e.code}); "
            "it needs the readWrite role on the database",
            code=e.code,
        )
    return transient(e)
