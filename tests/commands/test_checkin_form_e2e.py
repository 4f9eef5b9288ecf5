"""The check-in form is fair and informative: it shows each item's due date and last note and each
measure's last reading, target and expected value, takes values by group, and an untouched form
only counts once the owner says "no change since last quarter"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlmodel import select

from storage.engine import transaction
from storage.items import add_note
from storage.models import CheckInResponse, Dimension, Measure, MeasureReading
from storage.permissions import Actor
from tests.factories import COORDINATOR, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

NEED = [{"key": "high", "name": "High-need tracts"}, {"key": "low", "name": "Low-need tracts"}]


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """An open FY2027-Q2 check-in; OWNER has one item with a note and a measure broken down by need."""
    async with running_bot(database_url) as bot:
        for user in (OWNER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan, title="Translate the permit guide", due=date(2026, 12, 15))
            await add_note(
                session,
                ref="OIT-1",
                text="Vendor has the glossary",
                actor=Actor.system(bot.team_id),
                now=bot.clock.now,
            )
            session.add(
                Dimension(
                    team_id=bot.team_id, plan_id=plan.plan.id or 0, key="need", name="Need", groups=NEED
                )
            )
            measure = Measure(
                team_id=bot.team_id,
                strategy_id=plan.strategies["digital-equity"].id or 0,
                key="home-internet",
                name="Households with home broadband",
                unit="%",
                baseline=83,
                target=90,
                target_date=date(2027, 6, 30),
                baseline_quarter="FY2026-Q4",
                breakdown_dimension="need",
                breakdown_kind="rate",
                owner_id=OWNER,
            )
            session.add(measure)
            await session.flush()
            session.add(
                MeasureReading(
                    team_id=bot.team_id,
                    measure_id=measure.id or 0,
                    quarter="FY2027-Q1",
                    value=85,
                    recorded_by=OWNER,
                    recorded_at=bot.clock.now,
                )
            )
        await bot.command(COORDINATOR, "checkin schedule FY2027-Q2 2027-01-21")
        await bot.command(COORDINATOR, "checkin start FY2027-Q2")
        yield bot


async def open_form(bot: Bot) -> dict:
    """OWNER presses Check in; the form localslack opened."""
    await bot.interact(bot.block_action(OWNER, "checkin_open", value="FY2027-Q2"))
    return list(bot.slack.views().values())[-1]


def unchanged(view: dict, **extra: dict) -> dict:
    """The form's values exactly as it was opened, plus `extra`."""
    return {
        "status:OIT-1": {"value": {"type": "static_select", "selected_option": {"value": "not_started"}}},
        "progress:OIT-1": {"value": {"type": "number_input", "value": "0"}},
        **extra,
    }


async def test_the_form_shows_due_date_last_note_and_where_each_measure_stands(bot: Bot):
    view = await open_form(bot)
    text = str(view["blocks"])
    assert "*OIT-1* Translate the permit guide" in text and "last note: “Vendor has the glossary”" in text
    assert "due <!date^" in text
    hint = next(b for b in view["blocks"] if b.get("block_id") == "measure:home-internet")["hint"]["text"]
    assert hint.startswith("Last reading 85% (FY2027-Q1); target 90% by FY2027-Q4; expected about 86.5")
    blocks = {b.get("block_id") for b in view["blocks"]}
    assert {"group:home-internet:high", "group:home-internet:low", "confirm"} <= blocks


async def test_an_untouched_form_asks_for_no_change_and_then_records_it_as_such(bot: Bot):
    view = await open_form(bot)
    refused = await bot.interact(bot.view_submission(OWNER, view, unchanged(view)))
    assert refused.json()["errors"]["confirm"].startswith("Nothing changed. If that is your answer, tick")
    async with bot.sessions() as session:
        assert list(await session.exec(select(CheckInResponse))) == []
    ticked = {"confirm": {"value": {"type": "checkboxes", "selected_options": [{"value": "no_change"}]}}}
    accepted = await bot.interact(bot.view_submission(OWNER, view, unchanged(view, **ticked)))
    assert accepted.status_code == 200 and accepted.content in (b"", b"{}")
    async with bot.sessions() as session:
        (response,) = list(await session.exec(select(CheckInResponse)))
    assert response.note == "No change since last quarter"


async def test_values_by_group_are_recorded_with_the_reading(bot: Bot):
    view = await open_form(bot)
    values = unchanged(
        view,
        **{
            "measure:home-internet": {"value": {"type": "number_input", "value": "86"}},
            "group:home-internet:high": {"value": {"type": "number_input", "value": "78"}},
            "group:home-internet:low": {"value": {"type": "number_input", "value": "93"}},
        },
    )
    response = await bot.interact(bot.view_submission(OWNER, view, values))
    assert response.status_code == 200 and response.content in (b"", b"{}")
    async with bot.sessions() as session:
        reading = (
            await session.exec(select(MeasureReading).where(MeasureReading.quarter == "FY2027-Q2"))
        ).one()
    assert (reading.value, reading.groups) == (
        86,
        {"high": {"value": 78, "n": None}, "low": {"value": 93, "n": None}},
    )
