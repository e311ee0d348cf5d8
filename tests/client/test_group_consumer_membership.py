"""Group consumers against a real broker, membership: members in separate processes killed with
SIGKILL, static membership, the poll-interval watchdog."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from logsvc_client import Admin, Consumer, TopicPartition
from logsvc_client.errors import FencedInstance
from tests.client.group_helpers import poll_all, produce, stable_with, tps, wait_until

WORKER = Path(__file__).with_name("group_worker.py")
SESSION_TIMEOUT_MS = 2_000
# A revoke callback that takes a while: the partitions must not move before it is done.
WORKER_OPTIONS = ("--session-timeout-ms", str(SESSION_TIMEOUT_MS), "--revoke-ms", "200")


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


def test_a_second_consumer_with_the_same_instance_id_fences_the_first_which_stops_instead_of_taking_it_back(
    address: str, admin: Admin, consumers: Callable[..., Consumer]
) -> None:
    # Given a static member that owns all 4 partitions
    admin.create_topic("events", 4)
    first = consumers(address, "g", instance_id="worker-1", session_timeout_ms=5_000)
    first.subscribe(["events"])
    wait_until(lambda: len(first.assignment()) == 4, 10, "the partitions", poll_all(first))

    # When a second consumer, configured with the same instance id by mistake, joins while it runs
    second = consumers(address, "g", instance_id="worker-1", session_timeout_ms=5_000)
    second.subscribe(["events"])
    wait_until(lambda: len(second.assignment()) == 4, 10, "the newcomer's partitions", poll_all(second))
    owner = second.group_metadata().member_id

    # Then the first one's polls raise FencedInstance, naming the instance id, again and again
    def fenced() -> FencedInstance | None:
        try:
            first.poll(timeout_ms=20)
        except FencedInstance as e:
            return e
        return None

    error = wait_until(fenced, 10, "the first consumer to be fenced", poll_all(second))
    assert "instance id 'worker-1'" in str(error)
    with pytest.raises(FencedInstance):
        first.poll(timeout_ms=20)
    # And the newcomer keeps the group to itself over many heartbeat intervals (no taking turns)
    for _ in range(40):
        second.poll(timeout_ms=25)
    group = admin.describe_group("g")
    assert [(m.member_id, m.instance_id) for m in group.members] == [(owner, "worker-1")]
    assert second.group_metadata().member_id == owner and len(second.assignment()) == 4
    # And the fenced consumer still closes cleanly
    first.close()


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
