"""OwedCommits: which offsets a connector still owes its group, and when they are due (a fake
clock; the backoff without jitter)."""

from __future__ import annotations

from logsvc_client import TopicPartition
from logsvc_client.transport.retry import Backoff
from logsvc_connect.owed_commits import OwedCommits

A, B = TopicPartition("orders", 0), TopicPartition("orders", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class NoJitter(Backoff):
    def delay_s(self, attempt: int, rng: object = None) -> float:
        return min(self.max_ms, self.base_ms * 2**attempt) / 1000


def owed(clock: Clock) -> OwedCommits:
    return OwedCommits(NoJitter(base_ms=100, max_ms=1_000), clock)


def test_stored_offsets_ahead_of_the_group_are_due_at_once_and_settled_by_their_commit() -> None:
    clock = Clock()
    commits = owed(clock)
    assert not commits and commits.due() == {}

    commits.owe({A: 10})
    commits.owe({A: 7, B: 3})  # never backwards
    assert commits and commits.due() == {A: 10, B: 3}

    commits.committed({A: 10, B: 3})
    assert not commits and commits.due() == {}


def test_a_refused_commit_is_due_again_after_a_backoff_that_grows_with_each_refusal_in_a_row() -> None:
    clock = Clock()
    commits = owed(clock)

    assert commits.refused({A: 5}) == 0.1
    assert commits.due() == {}
    clock.now += 0.1
    assert commits.due() == {A: 5}

    assert commits.refused({A: 5}) == 0.2
    assert commits.refused({A: 5}) == 0.4
    assert commits.refused({A: 5}) == 0.8
    assert commits.refused({A: 5}) == 1.0  # capped
    clock.now += 0.99
    assert commits.due() == {}
    assert commits.all() == {A: 5}  # the last try before leaving ignores the backoff

    # a commit that goes through starts the count again
    commits.committed({A: 5})
    assert commits.refused({B: 1}) == 0.1


def test_a_commit_settles_only_what_it_covers() -> None:
    clock = Clock()
    commits = owed(clock)
    commits.refused({A: 20, B: 4})
    clock.now += 1

    # a later batch's commit of A up to 12 does not cover the 20 owed; B, not in it, stays owed
    commits.committed({A: 12})
    assert commits.due() == {A: 20, B: 4}
    commits.committed({A: 25, B: 4})
    assert not commits


def test_revoked_partitions_are_dropped_for_their_new_owner() -> None:
    commits = owed(Clock())
    commits.owe({A: 10, B: 3})
    commits.drop([A])
    assert commits.due() == {B: 3}
