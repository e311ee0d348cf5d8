"""Group consumers against a real broker, committed offsets: fenced commits, offset resets when
the committed offset was trimmed away, commits that survive a broker SIGKILL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from logsvc_client import Admin, Consumer, TopicPartition
from logsvc_client.errors import FailedPrecondition, OffsetOutOfRange, StaleGeneration, UnknownMember
from tests.client.group_helpers import poll_all, produce, wait_until
from tests.conftest import BrokerProcess


def test_a_commit_from_a_stale_generation_or_a_departed_member_is_refused(
    address: str, admin: Admin, consumers: Callable[..., Consumer]
) -> None:
    # Given a member that committed offset 3 and whose generation then moved on
    admin.create_topic("t", 2)
    produce(address, "t", 20)
    first = consumers(address, "g", enable_auto_commit=False)
    first.subscribe("t")
    first.poll(timeout_ms=500)
    first.commit({TopicPartition("t", 0): 3})
    old = first.group_metadata()
    second = consumers(address, "g", enable_auto_commit=False)
    second.subscribe("t")
    wait_until(
        lambda: admin.describe_group("g").state == "Stable" and first.group_metadata().generation > old.generation,
        10,
        "the next generation",
        poll_all(first, second),
    )

    # When a commit carries the old generation
    # Then it is refused (a FailedPrecondition), and the committed offset stays 3
    with pytest.raises(StaleGeneration, match=str(old.generation)) as refused:
        admin.commit_offsets("g", {TopicPartition("t", 0): 9}, member=old)
    assert isinstance(refused.value, FailedPrecondition)
    assert first.committed(TopicPartition("t", 0)) == 3

    # And once the member has left, its commits are refused as an unknown member
    current = first.group_metadata()
    first.close()
    with pytest.raises(UnknownMember):
        admin.commit_offsets("g", {TopicPartition("t", 0): 9}, member=current)
    assert admin.committed_offsets("g")[TopicPartition("t", 0)].offset == 3


@pytest.mark.parametrize("reset", ["earliest", "latest", "none"])
def test_a_committed_offset_below_the_log_start_follows_auto_offset_reset(
    address: str, admin: Admin, consumers: Callable[..., Consumer], reset: str
) -> None:
    # Given a group that committed offset 5, and a partition trimmed to start at 10 (of 20)
    admin.create_topic("t", 1)
    produce(address, "t", 20)
    admin.commit_offsets("g", {TopicPartition("t", 0): 5})
    assert admin.trim("t", 0, 10) == 10

    # When a member of the group starts
    consumer = consumers(address, "g", auto_offset_reset=reset)
    consumer.subscribe(["t"])

    # Then it starts at the log start (earliest), at the end (latest), or says why it cannot (none)
    if reset == "none":
        with pytest.raises(OffsetOutOfRange, match=r"committed offset 5 .* below the log start offset .*'none'"):
            consumer.poll(timeout_ms=2_000)
        with pytest.raises(OffsetOutOfRange):  # every poll, until the application seeks
            consumer.poll(timeout_ms=100)
        consumer.seek(TopicPartition("t", 0), 15)
        assert consumer.poll(timeout_ms=2_000)[0].offset == 15
        return
    got = wait_until(lambda: consumer.poll(timeout_ms=300) or reset == "latest", 5, "a first poll")
    if reset == "earliest":
        assert got[0].offset == 10
    else:
        produce(address, "t", 1, start=20)
        got = wait_until(lambda: consumer.poll(timeout_ms=300), 5, "the new record")
        assert [r.offset for r in got] == [20]


def test_committed_offsets_survive_a_broker_sigkill_and_a_new_member_resumes_there(data_dir: Path) -> None:
    # Given a broker process and a group member that read 30 of 50 records and committed them
    broker = BrokerProcess(data_dir).start()
    try:
        with Admin(broker.address) as admin:
            admin.create_topic("t", 1)
        produce(broker.address, "t", 50)
        with Consumer(broker.address, "g", enable_auto_commit=False) as consumer:
            consumer.subscribe("t")
            got = wait_until(lambda: consumer.poll(timeout_ms=500, max_records=30), 10, "records")
            assert len(got) == 30
            consumer.commit()
    finally:
        # When the broker is killed with SIGKILL and started again
        broker.kill()
    restarted = BrokerProcess(data_dir).start()
    try:
        # Then a new member of the group resumes at offset 30
        with Consumer(restarted.address, "g") as consumer:
            consumer.subscribe("t")
            got = wait_until(lambda: consumer.poll(timeout_ms=500), 10, "records after the restart")
            assert got[0].offset == 30
            assert consumer.committed(TopicPartition("t", 0)) == 30
    finally:
        restarted.kill()
