"""The ticker: APScheduler 3's AsyncIOScheduler with the in-memory job store, one job, every minute.

APScheduler is only a clock here. The database says what is owed, so nothing is stored in the
job store and nothing is pickled; each instance runs its own ticker and the outbox keys and
leases keep sends exactly-once. The settings are explicit because the 3.x defaults lose runs:
a 1-second misfire grace silently skips a late tick. Here a late tick still runs within 30 s,
missed runs coalesce into one (the tick catches up by itself), only one tick runs at a time,
and missed or failed runs are logged. The job catches everything, so the ticker never dies.
This is the only module that imports apscheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.job import Job
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

JOB_ID = "reap-reminder-tick"
TICK_SECONDS = 60.0
MISFIRE_GRACE_SECONDS = 30
STOP_TIMEOUT_SECONDS = 15.0


def job_defaults(misfire_grace_time: int = MISFIRE_GRACE_SECONDS) -> dict[str, object]:
    """The explicit job settings (never APScheduler's defaults)."""
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": misfire_grace_time}


class ReminderScheduler:
    """Runs `job()` every `interval` seconds on the running event loop, starting right away."""

    def __init__(
        self,
        job: Callable[[], Awaitable[object]],
        *,
        interval: float = TICK_SECONDS,
        misfire_grace_time: int = MISFIRE_GRACE_SECONDS,
        clock: Callable[[], datetime] | None = None,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self._job = job
        self.interval = interval
        self._clock = clock or (lambda: datetime.now(UTC))
        self._on_stop = on_stop
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": AsyncIOExecutor()},
            job_defaults=job_defaults(misfire_grace_time),
            timezone=UTC,
        )
        self.scheduler.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self.started_at: datetime | None = None
        self.ticks = 0
        self.failures = 0
        self.last_tick_at: datetime | None = None
        self._current: asyncio.Task[object] | None = None

    @property
    def running(self) -> bool:
        """Whether the scheduler is started and not shut down."""
        return bool(self.scheduler.running)

    @property
    def job(self) -> Job | None:
        """The tick job, once started."""
        return self.scheduler.get_job(JOB_ID)

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("reminder tick due at %s was missed (event loop too busy?)", event.scheduled_run_time)
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.warning("reminder tick skipped: the previous tick is still running")
        else:
            log.error("reminder tick failed: %r", event.exception)

    async def _tick(self) -> None:
        self._current = asyncio.current_task()
        try:
            await self._job()
            self.ticks += 1
        except Exception:
            self.failures += 1
            log.exception("reminder tick failed; the ticker keeps going")
        finally:
            self.last_tick_at = self._clock()
            self._current = None

    async def start(self) -> None:
        """Start ticking on the running loop; the first tick runs immediately."""
        if self.running:
            return
        self.scheduler.add_job(
            self._tick,
            trigger=IntervalTrigger(seconds=self.interval, timezone=UTC),
            id=JOB_ID,
            name="REAP reminder tick (plan, then deliver)",
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
        self.scheduler.start()
        self.started_at = self._clock()

    async def stop(self, grace: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop ticking; a tick in progress is asked to wind down and given `grace` seconds."""
        if not self.running:
            return
        self.scheduler.pause()
        if self._on_stop is not None:
            self._on_stop()
        current = self._current
        if current is not None and not current.done():
            done, _ = await asyncio.wait({current}, timeout=grace)
            if not done:
                log.warning("reminder tick still running after %.0f s; cancelling it", grace)
        self.scheduler.shutdown(wait=False)
        # AsyncIOScheduler shuts down via call_soon; let it run before reporting stopped.
        await asyncio.sleep(0)
