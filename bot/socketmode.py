"""`reap socket`: Bolt over Socket Mode, watched so a quiet connection cannot leave the bot deaf.

slack_sdk's own monitor reconnects when pongs stop, but Slack's and others' trackers show it
failing quietly: a monitor task that is gone or stuck in teardown, `is_connected()` saying yes
over a closed session, handlers that stop receiving after an idle reconnect (python-slack-sdk
#1110, #1379, #1462; bolt-python #1529). The watchdog here runs beside it and trusts only the
pong clock: when no pong has come back for longer than the SDK's own limit plus a margin, it
reconnects to a fresh URL from apps.connections.open, within a time bound. When reconnecting
keeps failing it gives up, so the process exits and its supervisor starts a clean one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient

log = logging.getLogger(__name__)

# slack_sdk calls a session stale after 4 ping intervals without a pong; the watchdog waits a
# little longer so the SDK's own reconnect always gets the first chance.
STALE_AFTER_PINGS = 6


class SocketModeDead(Exception):
    """Socket Mode cannot be (re)connected; only a fresh process, or a fixed setting, will help."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Socket Mode: {reason}")


def quiet_for(last_pong: float | None, *, now: float, quiet_since: float) -> float:
    """Seconds since the connection last proved alive: its last pong, else since we last looked."""
    return now - (last_pong if last_pong is not None else quiet_since)


@dataclass
class SocketWatchdog:
    """Reconnects `client` when its pongs go quiet, and gives up after `max_failures` in a row."""

    client: SocketModeClient
    interval: float = 10.0
    reconnect_timeout: float = 30.0
    max_failures: int = 5
    clock: Callable[[], float] = time.time  # the SDK stamps pongs with time.time()
    reconnects: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)
    quiet_since: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.quiet_since = self.clock()

    @property
    def stale_after(self) -> float:
        """How long without a pong the watchdog tolerates."""
        return self.client.ping_interval * STALE_AFTER_PINGS

    def quiet(self, now: float) -> float:
        """Seconds since the connection last proved alive."""
        last_pong = self.client.last_ping_pong_time
        if last_pong is not None:
            self.quiet_since = now
        return quiet_for(last_pong, now=now, quiet_since=self.quiet_since)

    async def health(self) -> str | None:
        """The "socket_mode" entry of /healthz: None while pongs come back."""
        quiet = self.quiet(self.clock())
        if quiet <= self.stale_after:
            return None
        failing = f", {self.failures} reconnects failed" if self.failures else ""
        return f"no pong for {quiet:.0f} s{failing}"

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Watch until `stop` is set; raises SocketModeDead when reconnecting keeps failing."""
        stop = stop or asyncio.Event()
        self.quiet_since = self.clock()
        self.failures = 0
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
                return
            except TimeoutError:
                pass
            quiet = self.quiet(self.clock())
            if quiet <= self.stale_after:
                self.failures = 0
                continue
            log.warning("Socket Mode quiet for %.0f s; reconnecting to a fresh URL", quiet)
            await self._reconnect()

    async def _reconnect(self) -> None:
        try:
            await asyncio.wait_for(self.client.connect_to_new_endpoint(force=True), self.reconnect_timeout)
        except Exception as exc:  # any failure to reconnect counts toward giving up
            self.failures += 1
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.error("Socket Mode reconnect %d of %d failed: %s", self.failures, self.max_failures, reason)
            if self.failures >= self.max_failures:
                raise SocketModeDead(f"{self.failures} reconnects in a row failed (last: {reason})") from exc
            return
        self.reconnects += 1
        self.failures = 0
        # The new session has to earn its first pong; count quiet time from now.
        self.client.last_ping_pong_time = None
        self.quiet_since = self.clock()


async def serve_socket_mode(
    handler: AsyncSocketModeHandler,
    watchdog: SocketWatchdog,
    *,
    connect_timeout: float = 60.0,
    close_timeout: float = 10.0,
) -> None:
    """Connect and watch until the watchdog gives up (SocketModeDead) or the task is cancelled."""
    client = handler.client
    try:
        try:
            # Ask for the first URL ourselves: a refused token or an app without Socket Mode is a
            # clear, lasting error here, where the SDK's connect() would log it and retry forever.
            client.wss_uri = await asyncio.wait_for(client.issue_new_wss_url(), connect_timeout)
            await asyncio.wait_for(handler.connect_async(), connect_timeout)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise SocketModeDead(f"Slack refused apps.connections.open ({error or exc})") from exc
        except TimeoutError as exc:
            raise SocketModeDead(f"no connection within {connect_timeout:.0f} s") from exc
        await watchdog.run()
    finally:
        # A broken session can hang on close; never let teardown keep the process alive.
        try:
            await asyncio.wait_for(handler.close_async(), close_timeout)
        except Exception as exc:
            log.warning("closing Socket Mode took too long or failed: %s", type(exc).__name__)
