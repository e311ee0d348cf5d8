"""Group consumers against a real broker: members in separate processes killed with SIGKILL,
static membership, fenced commits, commit on revoke, the poll-interval watchdog, offset resets."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from logsvc_client import Admin, Consumer, Producer, Record, TopicPartition
from logsvc_client.errors import (
    FailedPrecondition,
    GroupNotFound,
    OffsetOutOfRange,
    StaleGeneration,
    UnknownMember,
)
from logsvc_client.groups import GroupDescription
from tests.conftest import BrokerProcess

WORKER = Path(__file__).with_name("group_worker.py")
SESSION_TIMEOUT_MS = 2_000
# A revoke callback that takes a while: the partitions must not move before it is done.
WORKER_OPTIONS = ("--session-timeout-ms", str(SESSION_TIMEOUT_MS), "--revoke-ms", "200")


def wait_until(
    condition: Callable[[], Any], timeout_s: float, what: str, step: Callable[[], None] | None = None
) -> Any:
    """Call ``step`` (or sleep a little) until ``condition()`` is truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if step is None:
            time.sleep(0.02)
        else:
            step()


def stable_with(admin: Admin, group: str, members: int) -> GroupDescription | None:
    """The group's description once it is Stable with ``members`` members, else None."""
    try:
        desc = admin.describe_group(group)
    except GroupNotFound:
        return None
    return desc if desc.state == "Stable" and len(desc.members) == members else None


def poll_all(*consumers: Consumer) -> Callable[[], None]:
    def step() -> None:
        for c in consumers:
            c.poll(timeout_ms=20)

    return step


def produce(address: str, topic: str, count: int, start: int = 0) -> None:
    with Producer(address, linger_ms=1) as producer:
        for i in range(start, start + count):
            producer.send(topic, b"value-%d" % i, key=b"key-%d" % i)
        producer.flush()


def tps(topic: str, partitions: Sequence[int]) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in partitions]


@pytest.fixture
def consumers() -> Iterator[Callable[..., Consumer]]:
    """A factory of consumers that are closed at the end of the test."""
    with ExitStack() as stack:

        def make(*args: Any, **kwargs: Any) -> Consumer:
            return stack.enter_context(Consumer(*args, **kwargs))

        yield make


# -- members in separate processes --------------------------------------------------------------


class Worker:
    """tests/client/group_worker.py as a child process, logging to a file."""

    def __init__(self, address: str, group: str, topic: str, log_file: Path, *extra: str) -> None:
        self.log_file = log_file
        self.stderr_file = log_file.with_suffix(".stderr")
        with self.stderr_file.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, str(WORKER), address, group, topic, str(log_file), *extra],
                stdin=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "PYTHONWARNINGS": "error"},
            )
        self.killed_at: float | None = None

    def events(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        out = []
        for line in self.log_file.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by SIGKILL
        return out

    def kill(self) -> None:
        self.killed_at = time.time()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        """SIGTERM and wait; the worker's stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        return self.stderr_file.read_text(errors="replace")


def consumed(workers: Sequence[Worker]) -> set[tuple[int, int]]:
    out: set[tuple[int, int]] = set()
    for w in workers:
        for e in w.events():
            if e["ev"] == "records":
                first, last = e["offsets"]
                out.update((e["partition"], o) for o in range(first, last + 1))
    return out


def ownership(worker: Worker) -> dict[int, list[list[float]]]:
    """{partition: [[from, to], ...]} from the worker's assign/revoke events (open until it died)."""
    spans: dict[int, list[list[float]]] = defaultdict(list)
    end = worker.killed_at or float("inf")
    for e in worker.events():
        for p in e.get("partitions", ()):
            if e["ev"] == "assign":
                spans[p].append([e["t"], end])
            elif e["ev"] == "revoke":
                assert spans[p] and spans[p][-1][1] == end, f"revoke of {p} without an assign: {e}"
                spans[p][-1][1] = e["t"]
    return spans


def test_three_members_share_twelve_partitions_and_survivors_take_over_from_a_sigkilled_one(
    address: str, admin: Admin, tmp_path: Path
) -> None:
    # Given 12 partitions with records and three group members in three processes
    admin.create_topic("orders", 12)
    produce(address, "orders", 3_000)
    # (the first alone, so the two others take partitions from it: revokes happen)
    workers = [Worker(address, "billing", "orders", tmp_path / "w0.log", *WORKER_OPTIONS)]
    victim: Worker | None = None
    try:
        wait_until(lambda: stable_with(admin, "billing", 1), 20, "the first member")
        workers += [Worker(address, "billing", "orders", tmp_path / f"w{i}.log", *WORKER_OPTIONS) for i in (1, 2)]
        stable = wait_until(lambda: stable_with(admin, "billing", 3), 20, "three members sharing the partitions")
        assert sorted(tp for m in stable.members for tp in m.assignment) == tps("orders", range(12))
        assert all(len(m.assignment) == 4 for m in stable.members)
        produce(address, "orders", 3_000, start=3_000)
        victim = next(w for w in workers if any(e["ev"] == "records" for e in w.events()))

        # When one of them is killed with SIGKILL while records keep coming
        victim.kill()
        produce(address, "orders", 3_000, start=6_000)

        # Then the two others own all 12 partitions within the session timeout and a few heartbeats
        took_over = wait_until(
            lambda: stable_with(admin, "billing", 2), SESSION_TIMEOUT_MS / 1000 + 5, "the survivors to take over"
        )
        assert victim.killed_at is not None and time.time() - victim.killed_at < SESSION_TIMEOUT_MS / 1000 + 1.5
        assert sorted(tp for m in took_over.members for tp in m.assignment) == tps("orders", range(12))

        # And every produced record is consumed at least once
        produced = {(p.partition, o) for p in admin.describe_topic("orders").partitions for o in range(p.next_offset)}
        assert len(produced) == 9_000
        wait_until(lambda: produced <= consumed(workers), 20, "every record to be consumed")
    finally:
        errors = [w.stop() for w in workers if w is not victim]
    assert victim is not None

    # And the survivors closed cleanly, without a traceback
    assert all("Traceback" not in e for e in errors), errors
    assert all(w.events()[-1]["ev"] == "closed" for w in workers if w is not victim)

    # And no partition ever had two owners at once (so never two in one generation either), and
    # every member read a partition only while it owned it
    spans = {i: ownership(w) for i, w in enumerate(workers)}
    for p in range(12):
        held = sorted((start, end, i) for i, owned in spans.items() for start, end in owned.get(p, ()))
        for (_, end, a), (start, _, b) in itertools.pairwise(held):
            assert end <= start, f"partition {p} owned by worker {a} until {end} and by {b} from {start}"
    for i, w in enumerate(workers):
        for e in w.events():
            if e["ev"] == "records":
                assert any(s <= e["t"] <= t for s, t in spans[i][e["partition"]]), f"worker {i} read unowned {e}"
    assert victim.events()[-1]["ev"] != "closed"


def test_a_static_member_restarted_within_its_session_gets_its_partitions_back_and_others_see_no_change(
    address: str, admin: Admin, consumers: Callable[..., Consumer]
) -> None:
    # Given a static member and a dynamic one sharing 4 partitions
    admin.create_topic("events", 4)
    static = consumers(address, "g", instance_id="worker-1", session_timeout_ms=5_000)
    other = consumers(address, "g")
    static.subscribe(["events"])
    other.subscribe(["events"])
    wait_until(
        lambda: len(static.assignment()) == 2 and len(other.assignment()) == 2, 10, "a split", poll_all(static, other)
    )
    before = admin.describe_group("g")
    static_partitions, other_partitions = static.assignment(), other.assignment()
    other_generation = other.group_metadata().generation

    # When the static member closes (without leaving) and a new process with its instance id joins
    static.close()
    restarted = consumers(address, "g", instance_id="worker-1", session_timeout_ms=5_000)
    restarted.subscribe(["events"])

    # Then it gets the same partitions back, at once
    wait_until(lambda: restarted.assignment() == static_partitions, 5, "the partitions back", poll_all(restarted))
    # And the other member's generation and assignment do not change
    for _ in range(10):
        other.poll(timeout_ms=30)
    assert other.assignment() == other_partitions
    assert other.group_metadata().generation == other_generation
    after = admin.describe_group("g")
    assert after.generation == before.generation and len(after.members) == 2
    assert {m.instance_id for m in after.members} == {"worker-1", None}


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


def test_revoked_partitions_are_committed_before_their_next_owner_starts_from_there(
    address: str, admin: Admin, consumers: Callable[..., Consumer]
) -> None:
    # Given a member that read all of 4 partitions (auto-commit far away) and a revoke callback
    admin.create_topic("t", 4)
    produce(address, "t", 400)
    revoked: list[tuple[list[TopicPartition], dict[TopicPartition, int | None]]] = []
    first: Consumer = consumers(
        address,
        "g",
        auto_commit_interval_ms=600_000,
        on_revoke=lambda ps: revoked.append((list(ps), {tp: first.committed(tp) for tp in ps})),
    )
    first.subscribe("t")
    read: list[Record] = []
    wait_until(lambda: len(read) == 400, 10, "400 records", lambda: read.extend(first.poll(timeout_ms=100)))

    # When a second member joins
    second = consumers(address, "g")
    second.subscribe("t")
    wait_until(lambda: len(second.assignment()) == 2, 10, "a split", poll_all(first, second))

    # Then the first was called back with what it gave up, before anything of it was committed,
    # and after the callback their positions were committed
    assert len(revoked) == 1
    given_up, committed_in_callback = revoked[0]
    assert given_up == second.assignment()
    assert all(offset is None for offset in committed_in_callback.values())
    ends = admin.list_offsets("t", "latest")
    assert {tp: second.committed(tp) for tp in given_up} == {tp: ends[tp.partition] for tp in given_up}
    # And the new owner reads only what comes next (nothing twice)
    produce(address, "t", 40, start=400)
    later = admin.list_offsets("t", "latest")
    expected = sum(later[tp.partition] - ends[tp.partition] for tp in given_up)
    new: list[Record] = []
    wait_until(lambda: len(new) >= expected, 10, "the new records", lambda: new.extend(second.poll(timeout_ms=100)))
    assert len(new) == expected and all(r.offset >= ends[r.partition] for r in new)


def test_records_buffered_for_a_revoked_partition_are_never_returned(
    address: str, admin: Admin, consumers: Callable[..., Consumer]
) -> None:
    # Given a member with records of all 4 partitions fetched ahead, handing out 10 per poll
    admin.create_topic("t", 4)
    produce(address, "t", 4_000)
    revoked: list[TopicPartition] = []
    first = consumers(address, "g", on_revoke=revoked.extend)
    first.subscribe("t")
    wait_until(lambda: first.poll(timeout_ms=100, max_records=10), 5, "a first poll")

    # When a second member joins and the first gives up 2 partitions
    second = consumers(address, "g")
    second.subscribe("t")
    after_revoke: list[Record] = []
    while len(second.assignment()) < 2:
        got = first.poll(timeout_ms=20, max_records=10)
        if revoked:
            after_revoke += got
        second.poll(timeout_ms=20)
    for _ in range(5):  # then everything it still has
        after_revoke += first.poll(timeout_ms=50)

    # Then nothing of those 2 partitions comes out of the first member after the revoke
    assert len(revoked) == 2 and after_revoke
    assert not [r for r in after_revoke if TopicPartition(r.topic, r.partition) in revoked]


def test_a_member_that_stops_polling_gives_its_partitions_up_and_the_next_poll_joins_again(
    address: str, admin: Admin, consumers: Callable[..., Consumer]
) -> None:
    # Given two members sharing 4 partitions, one with a 1 s processing timeout
    admin.create_topic("t", 4)
    lost: list[list[TopicPartition]] = []
    slow = consumers(address, "g", max_poll_interval_ms=1_000, on_revoke=lambda ps: lost.append(list(ps)))
    busy = consumers(address, "g")
    slow.subscribe("t")
    busy.subscribe("t")
    wait_until(lambda: len(slow.assignment()) == 2 and len(busy.assignment()) == 2, 10, "a split", poll_all(slow, busy))
    held = slow.assignment()
    lost.clear()

    # When the slow one does not poll for longer than that (its heartbeats go on meanwhile)
    started = time.monotonic()
    wait_until(lambda: len(busy.assignment()) == 4, 5, "the busy member to own everything", poll_all(busy))

    # Then the other member owns all 4 partitions soon after the timeout
    assert 0.9 <= time.monotonic() - started < 3
    assert len(admin.describe_group("g").members) == 1

    # And when the slow one polls again it drops what it had, joins again, and the two share again
    wait_until(
        lambda: len(slow.assignment()) == 2 and len(busy.assignment()) == 2, 10, "a new split", poll_all(slow, busy)
    )
    assert lost == [held]


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
