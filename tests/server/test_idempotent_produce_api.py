"""Idempotent Produce over the wire, with the generated stub only, as a client in another language
would implement it from the proto ("IDEMPOTENT PRODUCE")."""

from __future__ import annotations

import grpc

from logsvc_wire._proto import logsvc_pb2 as pb
from logsvc_wire._proto import logsvc_pb2_grpc as pb_grpc
from tests.server.test_broker_api import error_code, make_batch, rpc_error


def produce(pid: int, epoch: int, *batches: tuple[int, int, int]) -> pb.ProduceRequest:
    """A request of ``(partition, record count, base sequence)`` batches."""
    return pb.ProduceRequest(
        topic="orders",
        producer_id=pid,
        producer_epoch=epoch,
        batches=[pb.PartitionBatch(partition=p, batch=make_batch(n), base_sequence=s) for p, n, s in batches],
    )


def test_a_producer_id_dedups_retries_and_refuses_gaps_and_old_epochs(stub: pb_grpc.BrokerStub) -> None:
    # Given a topic and a producer id from InitProducer
    stub.CreateTopic(pb.CreateTopicRequest(name="orders", partitions=2))
    init = stub.InitProducer(pb.InitProducerRequest())
    pid, epoch = init.producer_id, init.producer_epoch
    assert pid >= 1 and epoch == 0 and init.producer_id_expiration_ms == 86_400_000
    # When a request is sent twice (the first answer lost)
    first = stub.Produce(produce(pid, epoch, (0, 3, 0), (1, 2, 0), (0, 2, 3)))
    again = stub.Produce(produce(pid, epoch, (0, 3, 0), (1, 2, 0), (0, 2, 3)))
    # Then the second answer repeats the first, and the partitions hold the records once
    assert [(a.partition, a.base_offset) for a in first.appends] == [(0, 0), (1, 0), (0, 3)]
    assert again == first
    described = stub.DescribeTopic(pb.DescribeTopicRequest(name="orders"))
    assert [p.next_offset for p in described.partitions] == [5, 2]
    # And a gap is FAILED_PRECONDITION "out_of_order_sequence", naming both sequences
    err = rpc_error(stub.Produce, produce(pid, epoch, (0, 1, 9)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_code(err) == "out_of_order_sequence" and "sent sequence 9 to orders/0; expected 5" in err.details()
    # And after moving to the next epoch, the old one is fenced
    bumped = stub.InitProducer(pb.InitProducerRequest(producer_id=pid, producer_epoch=epoch))
    assert (bumped.producer_id, bumped.producer_epoch) == (pid, 1)
    stub.Produce(produce(pid, 1, (0, 1, 0)))
    err = rpc_error(stub.Produce, produce(pid, epoch, (0, 1, 5)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and error_code(err) == "producer_fenced"


def test_unknown_producer_ids_and_stray_fields_are_refused(stub: pb_grpc.BrokerStub) -> None:
    stub.CreateTopic(pb.CreateTopicRequest(name="orders", partitions=1))
    # An id the broker never issued
    err = rpc_error(stub.Produce, produce(99, 0, (0, 1, 0)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and error_code(err) == "unknown_producer_id"
    err = rpc_error(stub.InitProducer, pb.InitProducerRequest(producer_id=99))
    assert error_code(err) == "unknown_producer_id" and "99" in err.details()
    # Sequences without a producer id
    err = rpc_error(stub.Produce, produce(0, 0, (0, 1, 4)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "without a producer_id" in err.details()
    # And old clients (no producer fields) keep working
    assert stub.Produce(produce(0, 0, (0, 1, 0))).appends[0].base_offset == 0
