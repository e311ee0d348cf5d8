"""Kafka-style throttling (logsvc/server/quotas.py), with an injected clock: no sleeps, no timing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from logsvc import settings as settings_mod
from logsvc.acl import QuotaOverride
from logsvc.server.quotas import FETCH, MAX_DELAY_S, PRODUCE, Quotas, throttle_time_ms

QUOTA = 1_000_000  # bytes per second
CHUNK = 50_000  # bytes per request


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now


def simulate(
    quotas: Quotas, clock: FakeClock, principal: str, wanted_rate: float, seconds: float, in_flight: int = 1
) -> tuple[float, list[float]]:
    """A producer that would send CHUNK-byte requests at ``wanted_rate`` bytes/s over
    ``in_flight`` connections, each waiting for its response before it sends again; the bytes per
    second it achieved over ``seconds`` and the delays it got."""
    start = clock.now
    interval = in_flight * CHUNK / wanted_rate  # per connection
    next_send = [start + i * interval / in_flight for i in range(in_flight)]
    sent = 0
    delays = []
    while True:
        connection = min(range(in_flight), key=next_send.__getitem__)
        if next_send[connection] >= start + seconds:
            break
        clock.now = next_send[connection]
        delay = quotas.produce_delay_s(principal, CHUNK)
        sent += CHUNK
        delays.append(delay)
        next_send[connection] = clock.now + max(interval, delay)  # the response is held `delay`
    clock.now = start + seconds
    return sent / seconds, delays


@pytest.mark.parametrize("in_flight", [1, 8])
def test_a_producer_sending_at_twice_its_quota_is_held_back_to_its_quota(in_flight: int) -> None:
    # Given a principal with a quota of 1 MB/s
    clock = FakeClock()
    quotas = Quotas(QUOTA, 0, clock)
    # When it tries to produce 2 MB/s for two minutes, over one connection or eight at once
    achieved, delays = simulate(quotas, clock, "User:alice", 2 * QUOTA, 120, in_flight)
    # Then its responses were held back, and its rate came down to the quota within 5 %
    assert max(delays) > 0
    assert achieved == pytest.approx(QUOTA, rel=0.05)
    assert quotas.rate("User:alice", PRODUCE) == pytest.approx(QUOTA, rel=0.05)
    # And no single delay exceeded the cap
    assert max(delays) <= MAX_DELAY_S


def test_a_producer_within_its_quota_is_never_held_back() -> None:
    clock = FakeClock()
    quotas = Quotas(QUOTA, 0, clock)
    achieved, delays = simulate(quotas, clock, "User:alice", 0.9 * QUOTA, 60, in_flight=4)
    assert set(delays) == {0.0}
    assert achieved == pytest.approx(0.9 * QUOTA, rel=0.01)
    assert quotas.rate("User:alice", PRODUCE) == pytest.approx(0.9 * QUOTA, rel=0.05)


def test_a_burst_of_one_seconds_quota_passes_after_a_quiet_spell_and_more_is_held() -> None:
    clock = FakeClock()
    quotas = Quotas(QUOTA, 0, clock)
    # Given an idle principal, when it sends its quota's worth at once, nothing is held
    assert quotas.produce_delay_s("User:alice", QUOTA) == 0.0
    # And the next half second's worth sent at the same instant is held half a second
    assert quotas.produce_delay_s("User:alice", QUOTA // 2) == pytest.approx(0.5)
    # And after a quiet spell the allowance is back
    clock.now += 30
    assert quotas.produce_delay_s("User:alice", QUOTA) == 0.0


def test_concurrent_requests_of_one_principal_are_delayed_cumulatively() -> None:
    # Given a principal without a burst allowance
    clock = FakeClock()
    quotas = Quotas(QUOTA, 0, clock, burst_s=0)
    # When four requests of 100 KB arrive at the same instant
    delays = [quotas.produce_delay_s("User:alice", 100_000) for _ in range(4)]
    # Then each waits for the ones before it too: the aggregate, not each request, is bounded
    assert delays == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_one_delay_is_capped_and_debt_beyond_the_cap_is_forgiven() -> None:
    clock = FakeClock()
    quotas = Quotas(QUOTA, 0, clock)
    # When one request carries a minute of quota
    assert quotas.produce_delay_s("User:alice", 60 * QUOTA) == MAX_DELAY_S
    # Then once the cap (and the burst) has passed the principal is back to normal
    clock.now += MAX_DELAY_S + 1
    assert quotas.produce_delay_s("User:alice", QUOTA // 10) == 0.0


def test_two_principals_are_throttled_independently_and_produce_apart_from_fetch() -> None:
    clock = FakeClock()
    quotas = Quotas(QUOTA, QUOTA, clock)
    # Given alice far over her produce quota
    for _ in range(5):
        quotas.produce_delay_s("User:alice", QUOTA)
    assert quotas.produce_delay_s("User:alice", CHUNK) > 3
    # Then bob, at the same instant, is not held back, and neither are alice's fetches
    assert quotas.produce_delay_s("User:bob", CHUNK) == 0.0
    assert quotas.fetch_delay_s("User:alice", CHUNK) == 0.0
    assert quotas.rate("User:bob", PRODUCE) == pytest.approx(CHUNK)
    assert quotas.rate("User:alice", FETCH) == pytest.approx(CHUNK)


def test_an_override_beats_the_default_none_keeps_it_and_zero_lifts_the_limit() -> None:
    clock = FakeClock()
    quotas = Quotas(QUOTA, 2 * QUOTA, clock)
    quotas.set_overrides(
        [
            QuotaOverride("User:slow", 1_000, None),
            QuotaOverride("User:free", 0, 0),
        ]
    )
    assert quotas.limit("User:slow", PRODUCE) == 1_000
    assert quotas.limit("User:slow", FETCH) == 2 * QUOTA  # None: the default applies
    assert quotas.limit("User:free", PRODUCE) == 0
    assert quotas.limit("User:other", PRODUCE) == QUOTA
    # slow is held back for 10 KB (9 s beyond its 1 s burst); free never, whatever it sends
    assert quotas.produce_delay_s("User:slow", 10_000) == pytest.approx(9.0)
    assert quotas.produce_delay_s("User:free", 100 * QUOTA) == 0.0
    # And replacing the overrides (slow's removed) puts the default back
    quotas.set_overrides([QuotaOverride("User:free", 0, 0)])
    assert quotas.limit("User:slow", PRODUCE) == QUOTA


def test_a_principal_without_a_limit_costs_no_clock_read_and_no_state() -> None:
    clock = FakeClock()
    quotas = Quotas(0, 0, clock)
    quotas.set_overrides([QuotaOverride("User:free", 0, 0), QuotaOverride("User:half", None, 0)])
    for principal in ("User:anyone", "User:free", "User:half"):
        assert quotas.produce_delay_s(principal, 10 * QUOTA) == 0.0
        assert quotas.fetch_delay_s(principal, 10 * QUOTA) == 0.0
    assert (clock.reads, len(quotas)) == (0, 0)
    assert quotas.rate("User:anyone", PRODUCE) == 0.0


def test_idle_principals_are_forgotten() -> None:
    clock = FakeClock()
    quotas = Quotas(QUOTA, QUOTA, clock)
    for i in range(100):
        quotas.produce_delay_s(f"User:u{i}", CHUNK)
        quotas.fetch_delay_s(f"User:u{i}", CHUNK)
    assert len(quotas) == 200
    # When a window passes in which only one of them is active
    clock.now += 11
    quotas.produce_delay_s("User:u0", CHUNK)
    # Then only its state is left
    assert len(quotas) == 1
    assert quotas.rate("User:u1", PRODUCE) == 0.0


def test_many_threads_of_one_principal_lose_no_bytes() -> None:
    # Given a frozen clock and no burst, so every byte shows in the delays
    quotas = Quotas(QUOTA, 0, FakeClock(), burst_s=0, max_delay_s=1_000)
    delays: list[float] = []
    lock = threading.Lock()

    def produce() -> None:
        mine = [quotas.produce_delay_s("User:alice", 1_000) for _ in range(500)]
        with lock:
            delays.extend(mine)

    # When 8 threads record 500 requests of 1 KB each at once
    threads = [threading.Thread(target=produce) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then the delays are exactly 1 ms apart, one per request: none was lost or counted twice
    assert sorted(delays) == pytest.approx([n / 1_000 for n in range(1, 4_001)])
    assert quotas.rate("User:alice", PRODUCE) == pytest.approx(4_000_000)


def test_quotas_come_from_the_settings_and_delays_become_throttle_time_ms(tmp_path: Path) -> None:
    s = settings_mod.load(
        environ={"LOGSVC_QUOTA_PRODUCE_BYTES_PER_SECOND": "1000"},
        overrides={"data_dir": str(tmp_path), "quota_fetch_bytes_per_second": 2000},
    )
    quotas = Quotas.from_settings(s, FakeClock())
    assert (quotas.limit("User:x", PRODUCE), quotas.limit("User:x", FETCH)) == (1000, 2000)
    assert [throttle_time_ms(d) for d in (0.0, 0.0004, 0.0006, 1.5, 10.0)] == [0, 0, 1, 1500, 10_000]
    with pytest.raises(ValueError, match="must not be negative"):
        Quotas(-1, 0)
