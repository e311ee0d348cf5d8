"""librdkafka's errors as the project's exceptions, translated once at the Kafka boundary.

Everything a Kafka client of logsvc raises is a :class:`~logsvc_client.errors.LogsvcError`, with
the same classes the gRPC transport raises for the same situation (TopicNotFound,
TopicAlreadyExists, GroupNotEmpty, FencedInstance, Unavailable...), so code written against
logsvc handles a Kafka cluster's errors unchanged. The librdkafka error name is kept in
``details["kafka_error"]``.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException

from .. import errors

T = TypeVar("T")
_E = KafkaError
# librdkafka error code -> project exception class (anything else: LogsvcError, or Unavailable
# when librdkafka calls it retriable).
_CLASSES: dict[int, type[errors.LogsvcError]] = {
    _E.UNKNOWN_TOPIC_OR_PART: errors.TopicNotFound,
    _E._UNKNOWN_TOPIC: errors.TopicNotFound,
    _E._UNKNOWN_PARTITION: errors.InvalidPartition,
    _E.TOPIC_ALREADY_EXISTS: errors.TopicAlreadyExists,
    _E.TOPIC_EXCEPTION: errors.InvalidTopicName,
    _E.INVALID_PARTITIONS: errors.InvalidPartition,
    _E.INVALID_REPLICATION_FACTOR: errors.InvalidConfig,
    _E.INVALID_CONFIG: errors.InvalidConfig,
    _E.POLICY_VIOLATION: errors.InvalidConfig,
    _E._INVALID_ARG: errors.InvalidConfig,
    _E.INVALID_REQUEST: errors.InvalidRequest,
    _E._UNSUPPORTED_FEATURE: errors.FailedPrecondition,  # the cluster lacks the call
    _E.UNSUPPORTED_VERSION: errors.FailedPrecondition,
    _E.OFFSET_OUT_OF_RANGE: errors.OffsetOutOfRange,
    _E.MSG_SIZE_TOO_LARGE: errors.BatchTooLarge,
    _E.RECORD_LIST_TOO_LARGE: errors.BatchTooLarge,
    _E._QUEUE_FULL: errors.BufferFull,
    _E.GROUP_ID_NOT_FOUND: errors.GroupNotFound,
    _E.NON_EMPTY_GROUP: errors.GroupNotEmpty,
    _E.UNKNOWN_MEMBER_ID: errors.UnknownMember,
    _E.ILLEGAL_GENERATION: errors.StaleGeneration,
    _E.FENCED_INSTANCE_ID: errors.FencedInstance,
    _E.REBALANCE_IN_PROGRESS: errors.StaleGeneration,
    _E.GROUP_MAX_SIZE_REACHED: errors.GroupMaxSizeReached,
    _E.OUT_OF_ORDER_SEQUENCE_NUMBER: errors.OutOfOrderSequence,
    _E.INVALID_PRODUCER_EPOCH: errors.ProducerFenced,
    _E.PRODUCER_FENCED: errors.ProducerFenced,
    _E._FENCED: errors.ProducerFenced,
    _E.UNKNOWN_PRODUCER_ID: errors.UnknownProducer,
    _E.SASL_AUTHENTICATION_FAILED: errors.Unauthenticated,
    _E._AUTHENTICATION: errors.Unauthenticated,
    _E.TOPIC_AUTHORIZATION_FAILED: errors.PermissionDenied,
    _E.GROUP_AUTHORIZATION_FAILED: errors.PermissionDenied,
    _E.CLUSTER_AUTHORIZATION_FAILED: errors.PermissionDenied,
    _E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: errors.PermissionDenied,
    _E._TIMED_OUT: errors.Timeout,
    _E._MSG_TIMED_OUT: errors.Timeout,
    _E.REQUEST_TIMED_OUT: errors.Timeout,
    _E._TRANSPORT: errors.Unavailable,
    _E._ALL_BROKERS_DOWN: errors.Unavailable,
    _E._DESTROY: errors.Unavailable,
    _E.NOT_COORDINATOR: errors.Unavailable,
    _E.COORDINATOR_NOT_AVAILABLE: errors.Unavailable,
    _E.COORDINATOR_LOAD_IN_PROGRESS: errors.Unavailable,
    _E.LEADER_NOT_AVAILABLE: errors.Unavailable,
    _E.NOT_LEADER_FOR_PARTITION: errors.Unavailable,
}


def translate(error: KafkaError | KafkaException | BaseException, what: str, **details: Any) -> errors.LogsvcError:
    """``error`` (librdkafka's, or one already translated) as the project's exception; ``what``
    says what was being done ("create topic 'orders'") and starts the message."""
    if isinstance(error, errors.LogsvcError):
        return error
    kafka_error: KafkaError | None = None
    if isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError):
        kafka_error = error.args[0]
    elif isinstance(error, KafkaError):
        kafka_error = error
    if kafka_error is None:
        return errors.LogsvcError(f"{what}: {error}", **details)
    cls = _CLASSES.get(kafka_error.code())
    if cls is None:
        cls = errors.Unavailable if kafka_error.retriable() else errors.LogsvcError
    return cls(f"{what}: {kafka_error.str()} ({kafka_error.name()})", kafka_error=kafka_error.name(), **details)


def wait(future: Future[T], what: str, timeout_s: float) -> T:
    """The result of an AdminClient future, with librdkafka's error as the project's."""
    try:
        return future.result(timeout_s)
    except KafkaException as e:
        raise translate(e, what) from None
    except TimeoutError:
        raise translate(KafkaError(KafkaError._TIMED_OUT), what) from None
