"""The lane policy as a specification: plain data in, a plan out, a fake clock, no broker."""

from __future__ import annotations

import pytest

from logsvc_client.consumer.lanes import LanePolicy, check_options
from logsvc_client.errors import InvalidConfig

LANES = ("critical", "normal", "bulk")


def strict(max_lane_wait_ms: int = 1_000) -> LanePolicy:
    return LanePolicy(LANES, "strict", max_lane_wait_ms=max_lane_wait_ms)


def weighted(*weights: float, max_lane_wait_ms: int = 1_000) -> LanePolicy:
    return LanePolicy(LANES, "weighted", weights, max_lane_wait_ms=max_lane_wait_ms)


def serve(policy: LanePolicy, backlog: dict[str, int], now_ms: int, budget: int) -> dict[str, int]:
    """One poll as a consumer does it: plan, take everything planned, report it served."""
    plan = policy.plan(backlog, now_ms, budget)
    for lane, n in plan.items():
        policy.served(lane, n, now_ms)
        backlog[lane] -= n
    return plan


# -- strict ------------------------------------------------------------------------------------------


def test_strict_gives_the_whole_poll_to_the_highest_lane_with_a_backlog() -> None:
    # Given a backlog in every lane
    policy = strict()
    # When a poll is planned
    plan = policy.plan({"critical": 500, "normal": 500, "bulk": 500}, now_ms=0, budget=100)
    # Then all of it comes from the critical lane
    assert plan == {"critical": 100}


def test_strict_moves_to_the_next_lane_only_for_what_the_higher_one_lacks() -> None:
    # Given a critical lane with fewer records than a poll takes
    policy = strict()
    # When a poll is planned
    plan = policy.plan({"critical": 30, "normal": 50, "bulk": 500}, now_ms=0, budget=100)
    # Then the critical lane is emptied and the rest comes from the next lanes, in order
    assert plan == {"critical": 30, "normal": 50, "bulk": 20}


def test_strict_skips_lanes_without_a_backlog_and_ignores_names_that_are_not_lanes() -> None:
    policy = strict()
    assert policy.plan({"critical": 0, "bulk": 7, "other": 99}, now_ms=0, budget=100) == {"bulk": 7}
    assert policy.plan({}, now_ms=0, budget=100) == {}
    assert policy.plan({"bulk": 7}, now_ms=0, budget=0) == {}


def test_strict_serves_a_lower_lane_once_it_has_waited_max_lane_wait_ms_then_its_wait_starts_again() -> None:
    # Given strict lanes with a 200 ms bound and a backlog everywhere, polled every 50 ms
    policy = strict(max_lane_wait_ms=200)
    backlog = {"critical": 10_000, "normal": 10_000, "bulk": 10_000}
    plans = {now: serve(policy, backlog, now, budget=90) for now in range(0, 450, 50)}

    # Then the lower lanes get nothing before they have waited 200 ms
    assert all(plans[now] == {"critical": 90} for now in (0, 50, 100, 150))
    # And at 200 ms each gets an equal share of the poll, the critical lane the rest
    assert plans[200] == {"critical": 30, "normal": 30, "bulk": 30}
    # And then they wait again, 200 ms from when they were served
    assert all(plans[now] == {"critical": 90} for now in (250, 300, 350))
    assert plans[400] == {"critical": 30, "normal": 30, "bulk": 30}
    assert policy.waiting_since("bulk") == 400


def test_the_wait_clock_starts_when_a_lane_gets_a_backlog_and_stops_when_it_is_gone() -> None:
    # Given a bulk lane that has had nothing to read
    policy = strict(max_lane_wait_ms=200)
    policy.plan({"critical": 100}, now_ms=0, budget=10)
    assert policy.waiting_since("bulk") is None
    # When records arrive in it at 1,000 ms
    policy.plan({"critical": 100, "bulk": 5}, now_ms=1_000, budget=10)
    # Then its wait starts then, not when the consumer started
    assert policy.waiting_since("bulk") == 1_000
    assert policy.plan({"critical": 100, "bulk": 5}, now_ms=1_199, budget=10) == {"critical": 10}
    assert policy.plan({"critical": 100, "bulk": 5}, now_ms=1_200, budget=10) == {"critical": 5, "bulk": 5}
    # And once its backlog is gone, it waits for nothing
    policy.plan({"critical": 100}, now_ms=1_300, budget=10)
    assert policy.waiting_since("bulk") is None


def test_a_lane_planned_but_not_served_keeps_waiting() -> None:
    # Given an overdue bulk lane whose records were not there to take (still being fetched)
    policy = strict(max_lane_wait_ms=100)
    policy.plan({"critical": 100, "bulk": 50}, now_ms=0, budget=10)
    assert policy.plan({"critical": 100, "bulk": 50}, now_ms=100, budget=10) == {"critical": 5, "bulk": 5}
    policy.served("critical", 5, 100)
    policy.served("bulk", 0, 100)
    # Then it is still overdue in the next poll
    assert policy.waiting_since("bulk") == 0
    assert policy.plan({"critical": 100, "bulk": 50}, now_ms=110, budget=10) == {"critical": 5, "bulk": 5}


def test_overdue_lanes_get_at_least_one_record_and_the_longest_waiting_goes_first() -> None:
    # Given two overdue lanes and a poll of a single record
    policy = strict(max_lane_wait_ms=100)
    assert serve(policy, {"critical": 5, "bulk": 5}, now_ms=0, budget=1) == {"critical": 1}
    assert serve(policy, {"critical": 5, "normal": 5, "bulk": 5}, now_ms=50, budget=1) == {"critical": 1}
    # When the next poll is planned, when every lane has waited 100 ms or more
    plan = policy.plan({"critical": 5, "normal": 5, "bulk": 5}, now_ms=150, budget=1)
    # Then the single record comes from the lane waiting longest
    assert plan == {"bulk": 1}


def test_strict_gives_lower_lanes_nothing_while_a_higher_lane_waits_for_its_records() -> None:
    # Given a critical lane whose records are still being fetched (none or some buffered)
    policy = strict()
    # When a poll is planned
    waiting = policy.plan({"critical": 500, "normal": 500}, now_ms=0, budget=100, ready={"normal": 500})
    partly = policy.plan({"critical": 30, "normal": 500}, now_ms=0, budget=100, ready={"critical": 10, "normal": 500})
    # Then the lanes below it get nothing (the consumer waits for the critical records instead)
    assert waiting == {"critical": 100}
    assert partly == {"critical": 30}
    # But once all of the critical lane's records are there, the rest of the poll goes on down
    ready = {"critical": 30, "normal": 500}
    assert policy.plan({"critical": 30, "normal": 500}, now_ms=0, budget=100, ready=ready) == {
        "critical": 30,
        "normal": 70,
    }


def test_an_overdue_lane_is_served_even_while_a_higher_lane_waits_for_its_records() -> None:
    policy = strict(max_lane_wait_ms=100)
    policy.plan({"critical": 500, "bulk": 500}, now_ms=0, budget=90)
    plan = policy.plan({"critical": 500, "bulk": 500}, now_ms=100, budget=90, ready={"bulk": 500})
    assert plan == {"critical": 45, "bulk": 45}


def test_strict_fetches_the_emptiest_lane_first() -> None:
    policy = strict()
    assert policy.fetch_order({"critical": 50, "normal": 0, "bulk": 10}) == ["normal", "bulk", "critical"]
    assert policy.fetch_order({}) == ["critical", "normal", "bulk"]


# -- weighted ----------------------------------------------------------------------------------------


def test_weighted_splits_each_poll_by_the_weights_of_the_lanes_with_a_backlog() -> None:
    policy = weighted(3, 2, 1)
    assert policy.plan({"critical": 1_000, "normal": 1_000, "bulk": 1_000}, now_ms=0, budget=600) == {
        "critical": 300,
        "normal": 200,
        "bulk": 100,
    }
    # Lanes without a backlog are left out of the split
    assert policy.plan({"normal": 1_000, "bulk": 1_000}, now_ms=0, budget=600) == {"normal": 400, "bulk": 200}


def test_weighted_passes_the_unused_share_of_a_short_lane_to_the_others() -> None:
    # Given a critical lane holding less than its share
    policy = weighted(3, 2, 1)
    # When a poll is planned
    plan = policy.plan({"critical": 60, "normal": 1_000, "bulk": 1_000}, now_ms=0, budget=600)
    # Then it gets all it has and the others split the rest 2:1
    assert plan == {"critical": 60, "normal": 360, "bulk": 180}


def test_weighted_rounds_so_the_plan_fills_the_poll_exactly() -> None:
    policy = weighted(3, 2, 1)
    plan = policy.plan({"critical": 100, "normal": 100, "bulk": 100}, now_ms=0, budget=10)
    assert plan == {"critical": 5, "normal": 3, "bulk": 2}
    assert sum(policy.plan({"critical": 9, "normal": 9, "bulk": 9}, now_ms=0, budget=25).values()) == 25
    # Never more than there is
    assert policy.plan({"critical": 2, "normal": 1, "bulk": 1}, now_ms=0, budget=100) == {
        "critical": 2,
        "normal": 1,
        "bulk": 1,
    }


def test_weighted_accepts_fractional_weights() -> None:
    policy = weighted(0.5, 0.25, 0.25)
    assert policy.plan({"critical": 100, "normal": 100, "bulk": 100}, now_ms=0, budget=40) == {
        "critical": 20,
        "normal": 10,
        "bulk": 10,
    }


def test_weighted_keeps_the_share_of_a_lane_whose_records_are_not_fetched_yet() -> None:
    # Given a normal lane with nothing buffered yet
    policy = weighted(3, 2, 1)
    backlog = {"critical": 1_000, "normal": 1_000, "bulk": 1_000}
    # When a poll is planned
    plan = policy.plan(backlog, now_ms=0, budget=60, ready={"critical": 1_000, "bulk": 1_000})
    # Then its share is not handed to the others
    assert plan == {"critical": 30, "normal": 20, "bulk": 10}


def test_weighted_fetches_the_lane_that_would_run_out_first_first() -> None:
    # 60 buffered records last a lane of weight 3 as long as 20 last one of weight 1
    policy = weighted(3, 2, 1)
    assert policy.fetch_order({"critical": 60, "normal": 60, "bulk": 30}) == ["critical", "normal", "bulk"]
    assert policy.fetch_order({"critical": 90, "normal": 50, "bulk": 20}) == ["bulk", "normal", "critical"]


def test_weighted_serves_a_lane_whose_share_rounds_to_nothing_within_max_lane_wait_ms() -> None:
    # Given weights so uneven that the bulk lane's share of a small poll is below one record
    policy = weighted(100, 100, 1, max_lane_wait_ms=300)
    backlog = {"critical": 10_000, "normal": 10_000, "bulk": 10_000}
    # When polls of 10 records run every 100 ms
    plans = {now: serve(policy, backlog, now, budget=10) for now in range(0, 700, 100)}
    # Then the bulk lane gets a record every 300 ms
    assert [now for now, plan in plans.items() if "bulk" in plan] == [300, 600]
    assert plans[300] == {"critical": 5, "normal": 4, "bulk": 1}


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "key", "words"),
    [
        ({"mode": "fastest"}, "priority", "must be 'strict' or 'weighted'"),
        ({"mode": "weighted", "weights": None}, "lane_weights", "needs lane_weights"),
        ({"mode": "weighted", "weights": [3, 2]}, "lane_weights", "2 weight(s) for 3 lane(s)"),
        ({"mode": "weighted", "weights": [3, 0, 1]}, "lane_weights", "positive"),
        ({"mode": "weighted", "weights": [3, -1, 1]}, "lane_weights", "positive"),
        ({"mode": "weighted", "weights": [3, "2", 1]}, "lane_weights", "positive"),
        ({"mode": "weighted", "weights": [3, float("nan"), 1]}, "lane_weights", "positive"),
        ({"mode": "strict", "weights": [3, 2, 1]}, "lane_weights", "only for priority='weighted'"),
        ({"mode": "strict", "max_lane_wait_ms": 0}, "max_lane_wait_ms", ">= 1"),
        ({"mode": "strict", "lanes": []}, "topics", "one or more"),
        ({"mode": "strict", "lanes": ["a", "b", "a"]}, "topics", "twice"),
    ],
)
def test_a_bad_lane_setting_is_an_invalid_config_naming_the_key(
    kwargs: dict[str, object], key: str, words: str
) -> None:
    args: dict[str, object] = {"lanes": LANES, **kwargs}
    with pytest.raises(InvalidConfig) as raised:
        LanePolicy(**args)  # type: ignore[arg-type]
    assert raised.value.details["key"] == key
    assert words in str(raised.value)


def test_options_without_lanes_are_checked_on_their_own() -> None:
    check_options("none", None, 1_000)
    check_options("weighted", [1, 2], 1_000)
    with pytest.raises(InvalidConfig, match="priority='ultra'"):
        check_options("ultra", None, 1_000)
    with pytest.raises(InvalidConfig, match="only for priority='weighted'"):
        check_options("none", [1.0], 1_000)
