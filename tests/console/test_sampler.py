"""The console's sampler and history: pure code, a fake clock, fake facts."""

from __future__ import annotations

import pytest

from logsvc.console.sampler import Facts, History, Sampler, chart_data
from logsvc_client.errors import Unavailable

HOUR_MS = 3_600_000


def test_history_keeps_an_hour_of_samples_and_forgets_older_ones() -> None:
    # Given a history kept for an hour, sampled every minute for two hours
    history = History(HOUR_MS)
    for minute in range(121):
        history.add(minute * 60_000, {"group:g": minute})
    # Then it holds exactly the last hour, oldest first
    points = history.points("group:g")
    assert points[0] == (60 * 60_000, 60.0)
    assert points[-1] == (120 * 60_000, 120.0)
    assert len(points) == 61


def test_a_counter_gives_per_second_rates_and_none_across_a_reset() -> None:
    # Given a counter that grows by 50 a second, then restarts from 0
    history = History(HOUR_MS)
    for t_ms, value in ((0, 100), (2_000, 200), (4_000, 300), (6_000, 10)):
        history.add(t_ms, {"topic:t": value})
    # Then each step's rate is 50/s and the reset gives no (negative) rate
    assert history.rates("topic:t") == [(2_000, 50.0), (4_000, 50.0)]
    assert history.rate("topic:t") == 50.0
    assert history.rate("topic:unknown") is None


def test_a_series_no_longer_reported_ends_once_its_samples_age_out() -> None:
    history = History(HOUR_MS)
    history.add(0, {"topic:gone": 1, "topic:kept": 1})
    history.add(HOUR_MS + 1, {"topic:kept": 2})
    assert history.names() == ["topic:kept"]


def test_a_clock_stepping_back_does_not_unorder_a_series() -> None:
    history = History(HOUR_MS)
    history.add(5_000, {"s": 1})
    history.add(4_000, {"s": 2})
    assert history.points("s") == [(5_000, 1.0)]


def test_the_sampler_records_at_the_injected_clock_and_survives_a_broker_outage() -> None:
    # Given a sampler whose broker fails on its second reading
    now = [1_000]
    readings: list[Facts | Exception] = [
        Facts({"group:g": 5}),
        Unavailable("broker unavailable: connection refused"),
        Facts({"group:g": 7}, {"http://x/metrics"}),
    ]

    def read() -> Facts:
        got = readings.pop(0)
        if isinstance(got, Exception):
            raise got
        return got

    sampler = Sampler(History(HOUR_MS), read, lambda: now[0])
    # When it samples three times, a second apart
    results = []
    for _ in range(3):
        results.append(sampler.sample())
        now[0] += 1_000
    # Then the failed sample is skipped (and said why while failing), the others recorded
    assert results == [True, False, True]
    assert sampler.failing is None
    assert sampler.unreachable == {"http://x/metrics"}
    assert sampler.history.points("group:g") == [(1_000, 5.0), (3_000, 7.0)]


def test_chart_columns_share_one_time_axis_with_gaps_as_none() -> None:
    history = History(HOUR_MS)
    history.add(1_000, {"a": 1})
    history.add(2_000, {"a": 2, "b": 10})
    data = chart_data(history, [("a", False), ("b", False), ("missing", True)])
    assert data == {"t": [1.0, 2.0], "a": [1.0, 2.0], "b": [None, 10.0], "missing": [None, None]}


@pytest.mark.parametrize("keep_ms", [HOUR_MS - 1, 0])
def test_the_config_refuses_less_than_an_hour_of_history(keep_ms: int) -> None:
    from logsvc.console.config import ConsoleConfig
    from logsvc_client.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match="history_ms"):
        ConsoleConfig(server="127.0.0.1:1", history_ms=keep_ms)
