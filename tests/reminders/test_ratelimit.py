"""The send limiter: a workspace budget and a per-channel budget, booked on an injected clock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from reminders.ratelimit import Pace, RateLimitConfigError, SendLimiter


class FakeClock:
    """A monotonic clock that only moves when sleep() is awaited."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(clock: FakeClock, **kwargs: Any) -> SendLimiter:
    """A limiter on the fake clock."""
    return SendLimiter(clock=clock, sleep=clock.sleep, **kwargs)


BUSY = "busy"


@pytest.mark.parametrize(
    ("settings", "channels", "expected"),
    [
        pytest.param(
            {"workspace_rate": 50, "channel_rate": 1},
            ["D1", "D1"],
            [0.0, (BUSY, 1.0)],
            id="one-channel-one-per-second",
        ),
        pytest.param(
            {"workspace_rate": 4, "channel_rate": 1},
            ["D1", "D2", "D3", "D4", "D5"],
            [0.0, 0.25, 0.5, 0.75, 1.0],
            id="many-channels-at-the-workspace-rate",
        ),
        pytest.param(
            {"workspace_rate": 4, "channel_rate": 1},
            ["D1", "D2", "D1", "D3"],
            [0.0, 0.25, (BUSY, 1.0), 0.5],
            id="a-busy-channel-holds-up-nobody-else",
        ),
        pytest.param(
            {"workspace_rate": 2, "channel_rate": 1, "workspace_burst": 3},
            ["D1", "D2", "D3", "D4", "D5"],
            [0.0, 0.0, 0.0, 0.5, 1.0],
            id="a-workspace-burst-then-the-steady-rate",
        ),
        pytest.param(
            {"workspace_rate": 10, "channel_rate": 1, "channel_burst": 2},
            ["D1", "D1", "D1"],
            [0.0, 0.1, (BUSY, 1.0)],
            id="a-channel-burst",
        ),
    ],
)
def test_reservations_at_one_instant_follow_every_budget(
    settings: dict[str, float], channels: list[str], expected: list[object]
):
    clock = FakeClock()
    paced = limiter(clock, **settings)
    got: list[object] = []
    for channel in channels:
        booked, at = paced.try_reserve(channel, clock.now)
        offset = round(at - clock.now, 6)
        got.append(offset if booked else (BUSY, offset))
    assert got == expected


async def test_acquire_waits_for_the_channel_then_for_its_workspace_slot():
    clock = FakeClock()
    paced = limiter(clock, workspace_rate=50, channel_rate=1)
    waits = [await paced.acquire("D1") for _ in range(3)]
    assert waits == [0.0, 1.0, 1.0] and clock.sleeps == [1.0, 1.0]
    assert paced.waited == 2.0
    assert await paced.acquire("D2") == pytest.approx(0.02), "the workspace budget spaces D2 from D1"


async def test_concurrent_acquires_never_share_a_slot():
    clock = FakeClock()
    paced = limiter(clock, workspace_rate=10, channel_rate=100)
    start = clock.now
    booked = sorted(paced.try_reserve(f"D{i}", start)[1] for i in range(20))
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(booked)]
    assert set(gaps) == {0.1}


def test_a_channel_held_after_a_429_gets_nothing_until_retry_after():
    clock = FakeClock()
    paced = limiter(clock, workspace_rate=50, channel_rate=1)
    paced.hold("D1", 5.0, clock.now)
    assert paced.try_reserve("D1", clock.now) == (False, clock.now + 5.0)
    assert paced.try_reserve("D2", clock.now) == (True, clock.now), "other channels go on"


def test_holding_the_workspace_delays_every_channel():
    clock = FakeClock()
    paced = limiter(clock, workspace_rate=50, channel_rate=1)
    paced.hold(None, 3.0, clock.now)
    assert paced.try_reserve("D9", clock.now) == (True, clock.now + 3.0)


def test_idle_channels_are_forgotten_so_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch):
    import reminders.ratelimit as module

    monkeypatch.setattr(module, "_PRUNE_AT", 10)
    clock = FakeClock()
    paced = limiter(clock, workspace_rate=1000, channel_rate=1)
    for i in range(10):
        paced.try_reserve(f"D{i}", clock.now)
    clock.now += 10
    paced.try_reserve("D99", clock.now)
    assert len(paced._channels) == 1


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"workspace_rate": 0}, "rate"),
        ({"channel_rate": -1}, "rate"),
        ({"workspace_burst": 0.5}, "burst"),
        ({"channel_rate": float("inf")}, "rate"),
    ],
)
def test_nonsense_rates_are_refused_with_the_setting_named(kwargs: dict[str, Any], setting: str):
    with pytest.raises(RateLimitConfigError, match=f"send limiter {setting} must be a positive number"):
        SendLimiter(**kwargs)


def test_a_pace_books_one_interval_after_the_later_of_now_and_its_last_slot():
    pace = Pace(rate=2)
    assert pace.earliest(10.0) == 10.0
    pace.book(10.0)
    assert pace.earliest(10.0) == 10.5
    assert pace.earliest(20.0) == 20.0


class SharedBudget:
    """Stands in for the database booking: a Pace every limiter books from, on the same clock."""

    def __init__(self, clock: FakeClock, rate: float) -> None:
        self.pace = Pace(rate)
        self.clock = clock
        self.fail = False

    async def book(self, now: float) -> float:
        if self.fail:
            raise ConnectionError("database unreachable")
        at = self.pace.earliest(now)
        self.pace.book(at)
        return at


async def test_limiters_sharing_a_budget_take_turns_at_the_workspace_rate():
    """Two instances at 4/s each book from one shared budget, so together they send 4/s, not 8/s."""
    clock = FakeClock()
    shared = SharedBudget(clock, rate=4)
    first, second = (
        limiter(clock, workspace_rate=4, shared=shared.book, wall=clock),
        limiter(clock, workspace_rate=4, shared=shared.book, wall=clock),
    )
    sent_at = []
    for n in range(6):
        await (first if n % 2 else second).acquire(f"D{n}")
        sent_at.append(clock.now - 100.0)
    assert sent_at == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


async def test_a_shared_budget_that_cannot_be_reached_falls_back_to_the_local_one():
    clock = FakeClock()
    shared = SharedBudget(clock, rate=4)
    shared.fail = True
    paced = limiter(clock, workspace_rate=2, shared=shared.book, wall=clock)
    for n in range(3):
        await paced.acquire(f"D{n}")
    assert clock.now - 100.0 == 1.0 and paced.shared_failures == 3


async def test_a_busy_channel_still_waits_its_second_with_a_shared_budget():
    clock = FakeClock()
    paced = limiter(clock, workspace_rate=50, shared=SharedBudget(clock, rate=50).book, wall=clock)
    await paced.acquire("D1")
    await paced.acquire("D1")
    assert clock.now - 100.0 == 1.0


async def test_idle_channels_are_forgotten_with_a_shared_budget_too(monkeypatch: pytest.MonkeyPatch):
    import reminders.ratelimit as module

    monkeypatch.setattr(module, "_PRUNE_AT", 10)
    clock = FakeClock()
    paced = limiter(clock, workspace_rate=1000, shared=SharedBudget(clock, rate=1000).book, wall=clock)
    for i in range(10):
        await paced.acquire(f"D{i}")
    clock.now += 10
    await paced.acquire("D99")
    assert len(paced._channels) == 1
