"""What only the client on a Kafka cluster has: address, SASL and TLS settings and their errors,
librdkafka's errors as the project's, the calls refused on Kafka, and the log read back as logsvc
batches. Against the session's Kafka cluster (Tansu, or LOGSVC_TEST_KAFKA_BOOTSTRAP) where a
broker is needed; what behaves the same on both transports is in the tests taking ``cluster``."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer, ProducerRecord, TopicPartition
from logsvc_client.errors import (
    FailedPrecondition,
    GroupNotEmpty,
    InvalidConfig,
    InvalidPartition,
    LogsvcError,
    OffsetOutOfRange,
    TopicNotFound,
    Unavailable,
)
from logsvc_client.group.descriptions import GroupMetadata
from logsvc_client.kafka.admin import kafka_topic_config
from logsvc_client.kafka.errors import translate
from logsvc_client.kafka.producer import KafkaProducer
from logsvc_client.kafka.settings import client_config, security_config
from logsvc_client.security import Security
from logsvc_wire.batch import decode_records
from logsvc_wire.partitioner import partition_for_key
from tests.client.stored import stored_records
from tests.fixtures.kafka import KafkaCluster

T0 = 1_700_000_000_000


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "named"),
    [
        ("kafka://", "names no Kafka broker"),
        ("kafka://b1:99999", "'b1:99999'"),
        ("kafka://b1", "'b1'"),
        ("kafka://b1:9092?Bad-Name=1", "'Bad-Name'"),
        ("kafka://127.0.0.1:1?no.such.property=1", "no.such.property"),
    ],
)
def test_a_bad_kafka_address_is_invalid_config_naming_the_bad_part(address: str, named: str) -> None:
    with pytest.raises(InvalidConfig, match=named):
        Producer(address)
    with pytest.raises(InvalidConfig, match=named):
        Admin(address)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"LOGSVC_KAFKA_SASL_MECHANISM": "KERBEROS"}, "LOGSVC_KAFKA_SASL_MECHANISM='KERBEROS'"),
        ({"LOGSVC_KAFKA_SASL_MECHANISM": "PLAIN", "LOGSVC_KAFKA_SASL_USERNAME": "u"}, "LOGSVC_KAFKA_SASL_PASSWORD"),
    ],
)
def test_incomplete_sasl_settings_are_invalid_config_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], named: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InvalidConfig, match=named):
        Producer("kafka://127.0.0.1:1")
    with pytest.raises(InvalidConfig, match=named):
        Admin("kafka://127.0.0.1:1")


def test_tls_and_sasl_map_onto_librdkafkas_security_settings() -> None:
    sasl = {
        "LOGSVC_KAFKA_SASL_MECHANISM": "scram-sha-512",
        "LOGSVC_KAFKA_SASL_USERNAME": "alice",
        "LOGSVC_KAFKA_SASL_PASSWORD": "secret",
    }
    tls = Security(tls=True, ca_file="/ca.pem", cert_file="/c.pem", key_file="/k.pem")
    assert security_config(Security(), {}) == {"security.protocol": "PLAINTEXT"}
    assert security_config(tls, {}) == {
        "security.protocol": "SSL",
        "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/c.pem",
        "ssl.key.location": "/k.pem",
    }
    assert security_config(tls, sasl)["security.protocol"] == "SASL_SSL"
    assert security_config(Security(), sasl) == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "alice",
        "sasl.password": "secret",
    }
    # A property in the address wins over the environment's
    config = client_config("kafka://b1:9092?security.protocol=SSL", Security(), environ=sasl)
    assert (config["bootstrap.servers"], config["security.protocol"]) == ("b1:9092", "SSL")


def test_whoami_is_the_sasl_user_or_anonymous(monkeypatch: pytest.MonkeyPatch) -> None:
    with Admin("kafka://127.0.0.1:1") as admin:
        assert admin.whoami() == "User:ANONYMOUS"
    monkeypatch.setenv("LOGSVC_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("LOGSVC_KAFKA_SASL_USERNAME", "alice")
    monkeypatch.setenv("LOGSVC_KAFKA_SASL_PASSWORD", "secret")
    with Admin("kafka://127.0.0.1:1") as admin:
        assert admin.whoami() == "User:alice"


@pytest.mark.parametrize(
    ("options", "named"),
    [({"max_in_flight": 6}, "max_in_flight=6"), ({"linger_ms": 1_000_000}, "linger_ms=1000000")],
)
def test_options_beyond_librdkafkas_limits_are_invalid_config_naming_the_option(
    options: dict[str, int], named: str
) -> None:
    with pytest.raises(InvalidConfig, match=named):
        Producer("kafka://127.0.0.1:1", **options)  # type: ignore[arg-type]


def test_logsvc_topic_config_names_map_to_kafkas_and_the_others_are_refused_naming_the_key() -> None:
    assert kafka_topic_config(
        {"retention_ms": "60000", "max_batch_bytes": "1048576", "cleanup.policy": "delete", "partitioner": "murmur2"}
    ) == {"retention.ms": "60000", "max.message.bytes": "1048576", "cleanup.policy": "delete"}
    with pytest.raises(InvalidConfig, match="max_uncompressed_batch_bytes"):
        kafka_topic_config({"max_uncompressed_batch_bytes": "1"})
    with pytest.raises(InvalidConfig, match="partitioner"):
        kafka_topic_config({"partitioner": "random"})


# -- errors -----------------------------------------------------------------------------------


def test_librdkafka_errors_become_the_projects_exceptions_naming_what_was_done() -> None:
    error = translate(KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)), "send to 'orders'")
    assert isinstance(error, TopicNotFound)
    assert str(error).startswith("send to 'orders': ")
    assert error.details["kafka_error"] == "UNKNOWN_TOPIC_OR_PART"
    assert isinstance(translate(KafkaError(KafkaError._ALL_BROKERS_DOWN), "x"), Unavailable)
    assert isinstance(translate(KafkaError(KafkaError._UNSUPPORTED_FEATURE), "x"), FailedPrecondition)
    retriable = KafkaError(KafkaError.NETWORK_EXCEPTION, retriable=True)
    assert isinstance(translate(retriable, "x"), Unavailable)
    assert type(translate(KafkaError(KafkaError.UNKNOWN), "x")) is LogsvcError
    already = TopicNotFound("t")
    assert translate(already, "x") is already


def test_acl_and_quota_calls_are_refused_naming_kafkas_tool() -> None:
    with Admin("kafka://127.0.0.1:1") as admin:
        with pytest.raises(FailedPrecondition, match=r"describe_acls .* kafka-acls"):
            admin.describe_acls()
        with pytest.raises(FailedPrecondition, match=r"create_acls .* kafka-acls"):
            admin.create_acls([])
        with pytest.raises(FailedPrecondition, match="delete_acls"):
            admin.delete_acls([])
        with pytest.raises(FailedPrecondition, match=r"alter_quotas .* kafka-configs"):
            admin.alter_quotas()
        with pytest.raises(FailedPrecondition, match=r"describe_quotas .* kafka-configs"):
            admin.describe_quotas()


# -- against the Kafka cluster ------------------------------------------------------------------


def test_a_kafka_address_gives_a_kafka_producer_with_the_producers_type(kafka_cluster: KafkaCluster) -> None:
    with Producer(kafka_cluster.address) as producer:
        assert isinstance(producer, KafkaProducer) and isinstance(producer, Producer)


def test_a_keyed_record_lands_on_the_same_partition_on_logsvc_and_on_kafka(
    broker: Broker, kafka_cluster: KafkaCluster
) -> None:
    # Given an 8-partition topic on each
    keys = [b"user-%d" % i for i in range(64)] + ["clé-ünicode".encode(), b"", b"\x00" * 40]
    where: dict[str, list[int]] = {}
    for name, address in (("logsvc", broker.address), ("kafka", kafka_cluster.address)):
        topic = kafka_cluster.name("keyed")
        with Admin(address) as admin:
            admin.create_topic(topic, 8)
        # When the same keys are produced (librdkafka partitions them by murmur2_random on Kafka)
        with Producer(address, linger_ms=1) as producer:
            futures = [producer.send(topic, b"v", key) for key in keys]
            producer.flush(timeout=10)
        where[name] = [f.result().partition for f in futures]
    # Then every key is on the same partition on both, Kafka's murmur2 partition
    assert where["logsvc"] == where["kafka"] == [partition_for_key(k, 8) for k in keys]


def test_the_log_reads_back_as_logsvc_batches_keeping_kafkas_offsets(kafka_cluster: KafkaCluster) -> None:
    # Given 30 records with headers and timestamps on one partition of a Kafka topic
    topic = kafka_cluster.name()
    with Admin(kafka_cluster.address) as admin:
        admin.create_topic(topic, 2)
        admin.produce_records(
            topic,
            [ProducerRecord(b"v%d" % i, b"k", {"n": b"%d" % i}, T0 + i, partition=1) for i in range(30)],
        )
        # When it is read from offset 10
        fetched = admin.read_batches(topic, 1, 10)
        # Then the batches decode with the wire's codec into the records, at their offsets
        assert fetched.next_offset == 30 and fetched.batches[0][0] == 10
        records = [r for base, data in fetched.batches for r in decode_records(topic, 1, base, data)]
        assert [(r.offset, r.key, r.value, r.headers, r.timestamp_ms) for r in records] == [
            (i, b"k", b"v%d" % i, (("n", b"%d" % i),), T0 + i) for i in range(10, 30)
        ]
        assert stored_records(admin, topic, 1, 29)[0].value == b"v29"
        # And the end of the partition, past it, and a missing partition are the admin's answers
        assert admin.read_batches(topic, 1, 30).batches == []
        with pytest.raises(OffsetOutOfRange, match="offset 31"):
            admin.read_batches(topic, 1, 31)
        with pytest.raises(InvalidPartition, match="partition 2"):
            admin.read_batches(topic, 2, 0)


def test_a_members_commit_through_the_admin_is_refused_naming_the_consumers_commit(
    kafka_cluster: KafkaCluster,
) -> None:
    member = GroupMetadata(kafka_cluster.name("g"), "member-1", 3)
    with Admin(kafka_cluster.address) as admin, pytest.raises(FailedPrecondition, match=r"Consumer\.commit"):
        admin.commit_offsets(member.group_id, {TopicPartition("t", 0): 1}, member)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_records_are_stored_and_read_back_on_kafka(kafka_cluster: KafkaCluster, compression: str) -> None:
    topic = kafka_cluster.name()
    with Admin(kafka_cluster.address) as admin:
        admin.create_topic(topic, 1)
        with Producer(kafka_cluster.address, compression=compression) as producer:
            futures = producer.send_many(topic, [b'{"qty": %d}' % i for i in range(500)])
            producer.flush(timeout=10)
        assert [f.result().offset for f in futures] == list(range(500))
        assert [r.value for r in stored_records(admin, topic)] == [b'{"qty": %d}' % i for i in range(500)]


def test_a_group_with_a_live_member_is_described_with_its_assignment_and_not_reset_or_deleted(
    kafka_cluster: KafkaCluster,
) -> None:
    # Given a librdkafka consumer in a group, owning both partitions of a topic
    topic, group = kafka_cluster.name(), kafka_cluster.name("g")
    with Admin(kafka_cluster.address) as admin:
        admin.create_topic(topic, 2)
        member = Consumer(
            {
                "bootstrap.servers": kafka_cluster.bootstrap,
                "group.id": group,
                "client.id": "live-member",
                "session.timeout.ms": 6_000,
                "max.poll.interval.ms": 6_000,  # a long one makes Tansu's join hang (slow_join)
            }
        )
        try:
            member.subscribe([topic])
            deadline = time.monotonic() + 20
            while not member.assignment() and time.monotonic() < deadline:
                member.poll(0.2)
            assert member.assignment(), "the consumer never joined the group"
            # When the admin describes the group, then tries to change it
            described = admin.describe_group(group)
            # Then the member owns both partitions, and reset, commit and delete are refused
            assert described.state == "Stable"
            if "group_members" not in kafka_cluster.quirks:  # Tansu lists no members
                (info,) = described.members
                assert info.client_id == "live-member"
                assert info.assignment == (TopicPartition(topic, 0), TopicPartition(topic, 1))
                assert [p.owner for p in described.partitions] == [info.member_id] * 2
            with pytest.raises(GroupNotEmpty, match=group):
                admin.reset_offsets(group, topic, spec="earliest")
            with pytest.raises(GroupNotEmpty, match=group):
                admin.commit_offsets(group, {TopicPartition(topic, 0): 0})
            with pytest.raises(GroupNotEmpty, match=group):
                admin.delete_group(group)
        finally:
            member.close()
