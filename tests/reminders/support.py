"""Shared pieces for the reminder mechanism tests: a plan with owners, localslack, and a tick."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.settings import Settings
from domain.calendar import BusinessCalendar, build_calendar
from domain.status import ItemStatus
from localslack.server import LocalSlack
from reminders.delivery import DeliveryConfig, DeliveryReport, deliver
from reminders.digest import default_kinds, riders
from reminders.planner import PlanConfig, PlanReport, fold_riders, plan_tick
from reminders.ratelimit import SendLimiter
from storage.engine import Sessions, transaction
from storage.models import ActionItem, Notification, Person
from tests.factories import COORDINATOR, OTHER, OWNER, TEAM, PlanFixture, make_item, make_plan

NEW_YORK = ZoneInfo("America/New_York")
# Monday 2 November 2026, 09:00 in New York (EST, the day after DST ended).
MONDAY_9AM = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
TUESDAY_9AM = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
TOKEN = "xoxb-reminders-test"
SECRET = "reminders-signing-secret"


@cache
def pa_calendar() -> BusinessCalendar:
    """US-PA holidays around the test dates, built once."""
    return build_calendar(["US-PA"], years=range(2024, 2029))


def plan_config(**overrides: Any) -> PlanConfig:
    """New York, 09:00-18:00, US-PA holidays, the default cadence."""
    values: dict[str, Any] = {"zone": NEW_YORK, "calendar": pa_calendar()}
    values.update(overrides)
    return PlanConfig(**values)


def fast_limiter() -> SendLimiter:
    """A limiter loose enough never to slow a test that is not about pacing."""
    return SendLimiter(workspace_rate=10_000, channel_rate=10_000)


def settings_for(database_url: str, slack: LocalSlack, **overrides: Any) -> Settings:
    """Settings pointing at the test database and localslack."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": slack.base_url,
        "slack_timeout_seconds": 5,
        "timezone": "America/New_York",
        "holidays": ["US-PA"],
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[LocalSlack]:
    """localslack with the factory people (all in New York) as workspace members."""
    with LocalSlack(team_id=TEAM) as fake:
        for user_id in (OWNER, OTHER, COORDINATOR):
            fake.add_user(user_id, user_id.lower())
        yield fake


@pytest.fixture(name="client")
def client_fixture(slack: LocalSlack) -> AsyncWebClient:
    """A Web API client on localslack without automatic retries, as delivery requires."""
    return AsyncWebClient(token=TOKEN, base_url=slack.base_url, timeout=5, retry_handlers=[])


@pytest.fixture(name="plan")
async def plan_fixture(sessions: Sessions) -> PlanFixture:
    """The OIT plan: coordinator U0COORD, members U0OWNER and U0OTHER, nothing due yet."""
    async with transaction(sessions) as session:
        return await make_plan(session)


@dataclass
class Owed:
    """Items created for a test, by a short name."""

    items: dict[str, ActionItem]

    def id(self, name: str) -> int:
        """The database id of the item called `name`."""
        return self.items[name].id or 0


async def add_items(sessions: Sessions, plan: PlanFixture, **specs: dict[str, Any]) -> Owed:
    """Create items named by keyword: add_items(s, p, a={"due": date(...), "owner": ...})."""
    made: dict[str, ActionItem] = {}
    async with transaction(sessions) as session:
        for name, spec in specs.items():
            spec = dict(spec)
            snoozed = spec.pop("snoozed_until", None)
            item = await make_item(session, plan, title=spec.pop("title", f"Item {name}"), **spec)
            if snoozed is not None:
                item.snoozed_until = snoozed
            made[name] = item
    return Owed(made)


async def run_plan(sessions: Sessions, now: datetime, **overrides: Any) -> PlanReport:
    """One planning pass for the factory workspace."""
    return await plan_tick(sessions, team_id=TEAM, now=now, config=plan_config(**overrides))


async def run_fold(sessions: Sessions, now: datetime, **overrides: Any) -> int:
    """Fold the riders waiting at `now` into their readers' digests (the tick's third step)."""
    return await fold_riders(
        sessions, team_id=TEAM, now=now, config=plan_config(**overrides), kinds=riders(default_kinds())
    )


async def run_delivery(
    sessions: Sessions,
    client: AsyncWebClient,
    now: datetime,
    *,
    owner: str = "worker-1",
    limiter: SendLimiter | None = None,
    **config: Any,
) -> DeliveryReport:
    """One delivery run at `now`."""
    return await deliver(
        sessions,
        client,
        owner=owner,
        now=now,
        limiter=limiter or fast_limiter(),
        config=DeliveryConfig(**config),
        default_zone=NEW_YORK,
    )


async def outbox_rows(sessions: Sessions) -> list[Notification]:
    """Every outbox row, oldest first."""
    async with sessions() as session:
        return list(await session.exec(select(Notification).order_by(col(Notification.id))))


def item_refs(row: Notification) -> dict[str, str]:
    """A row's items as {ref: why}."""
    return {entry["ref"]: entry["why"] for entry in row.payload["items"]}


def refs_in(message_blocks: list[dict[str, Any]]) -> list[str]:
    """The item refs whose cards a message shows, in order."""
    return [
        b["block_id"].split(":", 1)[1]
        for b in message_blocks
        if str(b.get("block_id", "")).startswith("item:")
    ]


async def person(sessions: Sessions, user_id: str) -> Person:
    """The stored person."""
    async with sessions() as session:
        found = (await session.exec(select(Person).where(Person.user_id == user_id))).one()
        return found


async def set_status(sessions: Sessions, item_id: int, status: ItemStatus) -> None:
    """Change an item's status directly (as if someone pressed Done or dropped it)."""
    async with transaction(sessions) as session:
        item = await session.get(ActionItem, item_id)
        assert item is not None
        item.status = status.value


DUE = date.fromisoformat
