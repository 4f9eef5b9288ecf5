"""Client-side pacing of chat.postMessage: a workspace-wide budget and about one message/s per channel.

Slack answers a burst of DMs with 429s; pacing before sending means 2,000 owed reminders go out
as fast as the limits allow without a 429 storm. Each budget is a GCRA ("virtual scheduling")
pace. A send waits until its channel is free, then books the earliest workspace slot, and
booking moves each budget's theoretical arrival time on by one interval. Booking is synchronous,
so concurrent senders on one event loop never book the same slot twice.

Several instances sharing one PostgreSQL also share one workspace budget: with `shared` set, the
workspace slot is booked in the database (storage.outbox.book_send) instead of in this process,
so N instances together still send at 50/s rather than N x 50/s. Channels stay per process: each
outbox row is claimed by one instance, so one channel's messages come from one place.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from domain.errors import ReapError

DEFAULT_WORKSPACE_RATE = 50.0
DEFAULT_CHANNEL_RATE = 1.0
# Forget idle channels once this many are tracked, so the table stays bounded.
_PRUNE_AT = 10_000


class RateLimitConfigError(ReapError, ValueError):
    """A send rate or burst is not a positive number; the message names the setting."""

    def __init__(self, setting: str, value: float) -> None:
        self.setting = setting
        self.value = value
        super().__init__(f"send limiter {setting} must be a positive number, not {value!r}")


@dataclass
class Pace:
    """One budget: `rate` sends per second with `burst` sends allowed back to back."""

    rate: float
    burst: float = 1.0
    tat: float = -math.inf  # theoretical arrival time of the next conforming send

    def __post_init__(self) -> None:
        if not self.rate > 0 or not math.isfinite(self.rate):
            raise RateLimitConfigError("rate", self.rate)
        if not self.burst >= 1 or not math.isfinite(self.burst):
            raise RateLimitConfigError("burst", self.burst)

    @property
    def interval(self) -> float:
        """Seconds between sends at the steady rate."""
        return 1.0 / self.rate

    def earliest(self, now: float) -> float:
        """The first instant at or after `now` that this budget allows a send."""
        return max(now, self.tat - (self.burst - 1) * self.interval)

    def book(self, at: float) -> None:
        """Record a send at `at` (which must be at or after earliest())."""
        self.tat = max(self.tat, at) + self.interval

    def hold_until(self, at: float) -> None:
        """Allow nothing before `at` (Slack said Retry-After)."""
        self.tat = max(self.tat, at + (self.burst - 1) * self.interval)


# Books a workspace slot shared with other instances: wall-clock now in, wall-clock slot out.
SharedBooking = Callable[[float], Awaitable[float]]


class SendLimiter:
    """Books chat.postMessage slots under a workspace budget and a per-channel budget."""

    def __init__(
        self,
        *,
        workspace_rate: float = DEFAULT_WORKSPACE_RATE,
        channel_rate: float = DEFAULT_CHANNEL_RATE,
        workspace_burst: float = 1.0,
        channel_burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        shared: SharedBooking | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.workspace = Pace(workspace_rate, workspace_burst)
        Pace(channel_rate, channel_burst)  # validate now rather than at the first send
        self.channel_rate = channel_rate
        self.channel_burst = channel_burst
        self._channels: dict[str, Pace] = {}
        self._clock = clock
        self._sleep = sleep
        self._shared = shared
        self._wall = wall
        self.waited = 0.0
        self.shared_failures = 0

    def _channel(self, channel: str) -> Pace:
        pace = self._channels.get(channel)
        if pace is None:
            pace = self._channels[channel] = Pace(self.channel_rate, self.channel_burst)
        return pace

    def _prune(self, now: float) -> None:
        if len(self._channels) >= _PRUNE_AT:
            idle = [name for name, pace in self._channels.items() if pace.tat < now]
            for name in idle:
                del self._channels[name]

    def try_reserve(self, channel: str, now: float) -> tuple[bool, float]:
        """Book a send to `channel` if the channel is free at `now`.

        Returns (True, when it may go) after booking both budgets, or (False, when the channel
        frees up) without booking anything. A message waiting for its channel never holds a
        workspace slot, so it cannot hold up messages to other channels.
        """
        self._prune(now)
        pace = self._channel(channel)
        free = pace.earliest(now)
        if free > now:
            return False, free
        at = self.workspace.earliest(now)
        self.workspace.book(at)
        pace.book(at)
        return True, at

    def hold(self, channel: str | None, seconds: float, now: float) -> None:
        """After a 429: nothing to `channel` (every channel, if None) for `seconds` from `now`."""
        until = now + max(0.0, seconds)
        if channel is None:
            self.workspace.hold_until(until)
        else:
            self._channel(channel).hold_until(until)

    async def acquire(self, channel: str) -> float:
        """Wait until a message may be posted to `channel`; returns the seconds waited."""
        if self._shared is not None:
            return await self._acquire_shared(channel, self._shared)
        return await self._acquire_local(channel)

    async def _acquire_shared(self, channel: str, shared: SharedBooking) -> float:
        started = self._clock()
        self._prune(started)
        pace = self._channel(channel)
        while True:
            now = self._clock()
            free = pace.earliest(now)
            if free <= now:
                break
            await self._sleep(free - now)
        pace.book(now)  # hold the channel against this process's other senders meanwhile
        wall_now = self._wall()
        try:
            slot = await shared(wall_now)
        except Exception:
            # The database is unreachable: keep to this process's own budget rather than stall.
            self.shared_failures += 1
            at = self.workspace.earliest(now)
            self.workspace.book(at)
        else:
            at = now + max(0.0, slot - wall_now)
        pace.tat = max(pace.tat, at + pace.interval)
        if at > now:
            await self._sleep(at - now)
        waited = max(0.0, self._clock() - started)
        self.waited += waited
        return waited

    async def _acquire_local(self, channel: str) -> float:
        started = self._clock()
        while True:
            now = self._clock()
            booked, at = self.try_reserve(channel, now)
            if at > now:
                await self._sleep(at - now)
            if booked:
                waited = max(0.0, self._clock() - started)
                self.waited += waited
                return waited

    def now(self) -> float:
        """The limiter's clock reading (monotonic seconds)."""
        return self._clock()
