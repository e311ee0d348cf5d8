"""Request messages built from the caller's values (:mod:`logsvc_client.transport.messages`)."""

from __future__ import annotations

import pytest

from logsvc_client.errors import InvalidRequest
from logsvc_client.transport.messages import build
from logsvc_wire._proto import logsvc_pb2 as pb


def test_a_value_that_fits_its_field_makes_the_message() -> None:
    request = build(pb.ListOffsetsRequest, topic="t", partitions=[0, 2], timestamp_ms=2**63 - 1)
    assert (request.topic, list(request.partitions), request.timestamp_ms) == ("t", [0, 2], 2**63 - 1)


@pytest.mark.parametrize(
    ("message", "fields", "says"),
    [
        (
            pb.CreateTopicRequest,
            {"name": "t", "partitions": 2**32},
            f"partitions={2**32} is out of range: CreateTopicRequest.partitions is a uint32, 0 to 4294967295",
        ),
        (
            pb.ListOffsetsRequest,
            {"topic": "t", "partitions": [0, -1]},
            "partitions=-1 is out of range: ListOffsetsRequest.partitions is a uint32",
        ),
        (
            pb.ListOffsetsRequest,
            {"topic": "t", "timestamp_ms": 2**63},
            f"timestamp_ms={2**63} is out of range: "
            f"ListOffsetsRequest.timestamp_ms is an int64, {-(2**63)} to {2**63 - 1}",
        ),
        (
            pb.FetchPartition,
            {"topic": "t", "offset": 2**64},
            f"offset={2**64} is out of range: FetchPartition.offset is a uint64, 0 to 18446744073709551615",
        ),
        (pb.CreateTopicRequest, {"name": "t", "partitions": "three"}, "cannot build CreateTopicRequest: "),
    ],
)
def test_a_value_its_field_cannot_hold_is_invalid_request_naming_the_field(
    message: type, fields: dict[str, object], says: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        build(message, **fields)
    assert str(raised.value).startswith(says)
