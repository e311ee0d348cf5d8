"""How pymongo's errors are read (``logsvc_connect.mongo.errors``): a ``BulkWriteError`` error by
error (``record_failures``), and a failed command as a configuration error or a retry (``translate``).

The wire-protocol server the suite runs on (nx-27017) never reports a write-concern error or a
server-side code like NotWritablePrimary inside a bulk write, so those answers are spelled out
here as MongoDB sends them (``BulkWriteError.details``).
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.errors import AutoReconnect, OperationFailure, PyMongoError, ServerSelectionTimeoutError

from logsvc_client.errors import InvalidConfig
from logsvc_connect.mongo.errors import DUPLICATE_KEY, record_failures, translate
from logsvc_connect.sink import TransientSinkError


def write_error(index: Any, code: int, message: str = "refused", **extra: Any) -> dict[str, Any]:
    return {"index": index, "code": code, "errmsg": message, **extra}


def details(*write_errors: dict[str, Any], write_concern_errors: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"writeErrors": list(write_errors), "writeConcernErrors": list(write_concern_errors), "nInserted": 0}


ID_DUPLICATE = {"keyPattern": {"_id": 1}, "keyValue": {"_id": "orders-0-1"}}


def test_a_record_the_server_refuses_is_a_data_error_at_its_position_naming_the_code() -> None:
    # Given a bulk write of 4 documents where the third fails validation (code 121)
    failed, duplicates = record_failures(
        details(write_error(2, 121, "Document failed validation")), "orders", 4, inserts=False
    )
    # Then only that record failed, as a data error that names the collection, message and code
    assert list(failed) == [2] and duplicates == []
    assert str(failed[2]) == "MongoDB refused the document for 'orders': Document failed validation (code 121)"
    assert failed[2].error_class == "MongoWriteError121"


def test_a_duplicate_id_on_insert_counts_as_already_written() -> None:
    failed, duplicates = record_failures(
        details(write_error(0, DUPLICATE_KEY, "E11000 duplicate key", **ID_DUPLICATE), write_error(3, 121)),
        "orders",
        4,
        inserts=True,
    )
    assert duplicates == [0] and list(failed) == [3]


def test_a_duplicate_on_another_unique_index_is_the_records_data_error() -> None:
    failed, duplicates = record_failures(
        details(write_error(1, DUPLICATE_KEY, "E11000 dup", keyPattern={"email": 1})), "users", 2, inserts=True
    )
    assert duplicates == [] and list(failed) == [1]


def test_a_duplicate_id_from_concurrent_upserts_is_retried_not_dead_lettered() -> None:
    with pytest.raises(TransientSinkError, match="concurrent upsert of one _id"):
        record_failures(details(write_error(0, DUPLICATE_KEY, **ID_DUPLICATE)), "orders", 1, inserts=False)


@pytest.mark.parametrize(
    ("code", "name"), [(10107, "NotWritablePrimary"), (11600, "InterruptedAtShutdown"), (112, "WriteConflict")]
)
def test_a_server_side_code_makes_the_whole_batch_transient(code: int, name: str) -> None:
    # Given one record refused for a reason about the server, next to one refused for its data
    with pytest.raises(TransientSinkError, match=f"code {code}: {name}"):
        record_failures(details(write_error(0, 121), write_error(1, code, name)), "orders", 2, inserts=False)


def test_an_unsatisfied_write_concern_makes_the_whole_batch_transient() -> None:
    # Given every write applied on the primary but not acknowledged by the majority in time
    answer = details(write_concern_errors=({"code": 64, "errmsg": "waiting for replication timed out"},))
    # Then nothing is dead-lettered: the batch is written again (idempotently) after a backoff
    with pytest.raises(TransientSinkError, match=r"write concern not satisfied \(code 64\)") as raised:
        record_failures(answer, "orders", 3, inserts=False)
    assert raised.value.details == {"error_class": "BulkWriteError"}


@pytest.mark.parametrize("index", [None, -1, 5, "0"])
def test_an_error_that_names_no_operation_of_the_batch_is_transient(index: Any) -> None:
    with pytest.raises(TransientSinkError, match="bulk write to 'orders' failed"):
        record_failures(details(write_error(index, 121)), "orders", 5, inserts=False)


def test_a_command_the_user_is_not_allowed_to_run_stops_the_connector_as_a_configuration_error() -> None:
    # Given MongoDB refusing a write because the connector's user lacks the privilege
    refused = OperationFailure("not authorized on shop to execute command { insert: ... }", code=13)
    # Then it is a configuration error naming the role it needs, not a retry forever
    error = translate(refused)
    assert isinstance(error, InvalidConfig)
    assert str(error).startswith("MongoDB refused the connector's user: not authorized on shop")
    assert "readWrite" in str(error)


@pytest.mark.parametrize(
    "failure",
    [
        OperationFailure("Authentication failed.", code=18),  # at connect: a password being rotated
        OperationFailure("not primary", code=10107),
        AutoReconnect("connection reset"),
        ServerSelectionTimeoutError("no servers found, Timeout: 30s, Topology Description: ..."),
    ],
)
def test_other_command_failures_are_retried(failure: PyMongoError) -> None:
    error = translate(failure)
    assert isinstance(error, TransientSinkError)
    assert "Topology Description" not in str(error)
