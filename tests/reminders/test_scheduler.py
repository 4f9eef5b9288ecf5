"""The ticker: explicit APScheduler settings, a tick that never kills it, and a graceful stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from reminders.scheduler import JOB_ID, MISFIRE_GRACE_SECONDS, ReminderScheduler


async def wait_for(condition: Callable[[], bool], *, limit: float = 10.0) -> None:
    """Poll until `condition()` holds (fails the test after `limit` seconds)."""
    for _ in range(int(limit / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition never became true")


async def test_the_tick_job_has_explicit_coalesce_grace_and_single_instance_settings():
    async def job() -> None:
        return None

    ticker = ReminderScheduler(job)
    await ticker.start()
    try:
        job_object = ticker.job
        assert job_object is not None and job_object.id == JOB_ID
        assert job_object.coalesce is True
        assert job_object.max_instances == 1
        assert job_object.misfire_grace_time == MISFIRE_GRACE_SECONDS == 30
        assert isinstance(job_object.trigger, IntervalTrigger)
        assert job_object.trigger.interval == timedelta(seconds=60)
        assert type(ticker.scheduler._jobstores["default"]).__name__ == "MemoryJobStore"
    finally:
        await ticker.stop()
    assert not ticker.running


async def test_the_first_tick_runs_at_start_and_ticks_repeat():
    calls: list[int] = []

    async def job() -> None:
        calls.append(len(calls))

    ticker = ReminderScheduler(job, interval=0.05)
    await ticker.start()
    try:
        await wait_for(lambda: len(calls) >= 3)
    finally:
        await ticker.stop()
    assert ticker.ticks >= 3 and ticker.last_tick_at is not None


async def test_a_failing_tick_is_logged_and_the_ticker_keeps_going(caplog: pytest.LogCaptureFixture):
    calls: list[int] = []

    async def job() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")

    ticker = ReminderScheduler(job, interval=0.05)
    with caplog.at_level(logging.ERROR, logger="reminders.scheduler"):
        await ticker.start()
        try:
            await wait_for(lambda: len(calls) >= 3)
        finally:
            await ticker.stop()
    assert ticker.failures == 1 and ticker.ticks >= 2
    assert "reminder tick failed; the ticker keeps going" in caplog.text
    assert "database went away" in caplog.text


async def test_stop_lets_a_tick_in_progress_finish_and_asks_it_to_wind_down():
    finished: list[str] = []
    stopping = asyncio.Event()
    started = asyncio.Event()

    async def job() -> None:
        started.set()
        await stopping.wait()
        finished.append("wound down")

    ticker = ReminderScheduler(job, on_stop=stopping.set)
    await ticker.start()
    await asyncio.wait_for(started.wait(), 5)
    await ticker.stop()
    assert finished == ["wound down"] and not ticker.running


async def test_a_tick_that_will_not_stop_is_given_up_on_after_the_grace(caplog: pytest.LogCaptureFixture):
    started = asyncio.Event()

    async def job() -> None:
        started.set()
        await asyncio.sleep(30)

    ticker = ReminderScheduler(job)
    await ticker.start()
    await asyncio.wait_for(started.wait(), 5)
    with caplog.at_level(logging.WARNING, logger="reminders.scheduler"):
        await ticker.stop(grace=0.05)
    assert "still running after" in caplog.text and not ticker.running


async def test_starting_twice_keeps_one_job():
    async def job() -> None:
        return None

    ticker = ReminderScheduler(job)
    await ticker.start()
    await ticker.start()
    try:
        assert [job.id for job in ticker.scheduler.get_jobs()] == [JOB_ID]
    finally:
        await ticker.stop()
