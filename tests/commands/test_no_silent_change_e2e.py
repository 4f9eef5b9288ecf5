"""No input is silently changed: every Slack door refuses text over its limit or with control
characters, and numbers that are not finite, naming the problem and writing nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from storage.engine import transaction
from storage.items import get_item
from storage.models import ActionItem, AuditEvent, CheckInResponse, Measure, MeasureReading
from tests.factories import COORDINATOR, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with OIT-1 owned by OWNER and the measure `devices` owned by OWNER."""
    async with running_bot(database_url) as bot:
        for user in (OWNER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan)
            session.add(
                Measure(
                    team_id=bot.team_id,
                    strategy_id=plan.strategies["digital-equity"].id or 0,
                    key="devices",
                    name="Devices distributed",
                    baseline=0,
                    target=4000,
                    target_date=date(2027, 6, 30),
                    owner_id=OWNER,
                )
            )
        yield bot


async def audit_count(bot: Bot) -> int:
    async with bot.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(AuditEvent))).one())


async def item(bot: Bot, ref: str = "OIT-1") -> ActionItem:
    async with bot.sessions() as session:
        return await get_item(session, team_id=bot.team_id, ref=ref)


async def readings(bot: Bot) -> list[MeasureReading]:
    async with bot.sessions() as session:
        return list(await session.exec(select(MeasureReading)))


async def test_a_note_the_grammar_could_carry_but_storage_cannot_is_refused_and_nothing_is_written(bot: Bot):
    before = await audit_count(bot)
    response = await bot.command(OWNER, "note OIT-1 " + "x" * 3980)
    text = response.json()["text"]
    assert "Noted" not in text
    assert "The note is 3,980 characters, which is too long (the limit is 2,000)" in text
    assert (await item(bot)).last_note is None
    assert await audit_count(bot) == before


async def test_a_note_of_exactly_the_limit_is_stored_whole(bot: Bot):
    note = "y" * 1999 + "z"
    response = await bot.command(OWNER, f"note OIT-1 {note}")
    assert "Noted on OIT-1" in response.json()["text"]
    assert (await item(bot)).last_note == note


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ('status OIT-1 at-risk "{long}"', "note"),
        ('done OIT-1 "{long}"', "note"),
        ('measure devices 12 "{long}"', "note"),
        ('add "{title}"', "title"),
    ],
    ids=["status-note", "done-note", "measure-note", "add-title"],
)
async def test_every_slash_command_refuses_an_over_long_field_and_writes_nothing(
    bot: Bot, command: str, field: str
):
    before = await audit_count(bot)
    response = await bot.command(OWNER, command.format(long="n" * 2001, title="t" * 301))
    assert "too long" in response.json()["text"] and f"The {field} is" in response.json()["text"]
    assert (await item(bot)).status == "not_started"
    assert await readings(bot) == []
    assert await audit_count(bot) == before


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\x9b"], ids=lambda c: f"U+{ord(c):04X}")
async def test_a_note_with_a_control_character_is_refused(bot: Bot, char: str):
    response = await bot.command(OWNER, f"note OIT-1 red{char}[31m alert")
    assert f"control character (U+{ord(char):04X})" in response.json()["text"]
    assert (await item(bot)).last_note is None


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999"])
async def test_measure_refuses_a_value_that_is_not_a_finite_number(bot: Bot, value: str):
    response = await bot.command(OWNER, f"measure devices {value}")
    assert "is not a number" in response.json()["text"]
    assert await readings(bot) == []


async def open_update_modal(bot: Bot) -> dict[str, Any]:
    await bot.interact(bot.block_action(OWNER, "item_update", value="OIT-1"))
    return list(bot.slack.views().values())[-1]


async def test_the_update_modal_refuses_a_note_over_the_limit_inline(bot: Bot):
    view = await open_update_modal(bot)
    values = {
        "status": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress": {"value": {"type": "number_input", "value": "10"}},
        "note": {"value": {"type": "plain_text_input", "value": "n" * 2001}},
    }
    response = await bot.interact(bot.view_submission(OWNER, view, values))
    assert response.json()["errors"] == {
        "note": "The note is 2,001 characters, which is too long (the limit is 2,000); nothing was saved."
    }
    assert ((await item(bot)).status, (await item(bot)).last_note) == ("not_started", None)


def add_values(view: dict[str, Any], *, title: str, description: str) -> dict[str, Any]:
    strategy = view["blocks"][1]["element"]["options"][0]["value"]
    return {
        "title": {"value": {"type": "plain_text_input", "value": title}},
        "strategy": {"value": {"type": "static_select", "selected_option": {"value": strategy}}},
        "owner": {"value": {"type": "users_select", "selected_user": OWNER}},
        "description": {"value": {"type": "plain_text_input", "value": description}},
    }


async def test_the_add_modal_keeps_a_long_description_whole(bot: Bot):
    await bot.command(COORDINATOR, "add")
    view = list(bot.slack.views().values())[-1]
    description = "line one\n\tindented\n" + "d" * 3500
    await bot.interact(
        bot.view_submission(COORDINATOR, view, add_values(view, title="New", description=description))
    )
    assert (await item(bot, "OIT-2")).description == description


@pytest.mark.parametrize(
    ("title", "description", "block", "says"),
    [
        ("Fix \x1b[31mred", "", "title", "control character (U+001B)"),
        ("two\nlines", "", "title", "line break (U+000A)"),
        ("ok", "d" * 4001, "description", "the limit is 4,000"),
        ("ok", "nul \x00 here", "description", "control character (U+0000)"),
    ],
    ids=["escape-in-title", "newline-in-title", "description-over-limit", "nul-in-description"],
)
async def test_the_add_modal_refuses_bad_text_inline_and_creates_nothing(
    bot: Bot, title: str, description: str, block: str, says: str
):
    await bot.command(COORDINATOR, "add")
    view = list(bot.slack.views().values())[-1]
    values = add_values(view, title=title, description=description)
    response = await bot.interact(bot.view_submission(COORDINATOR, view, values))
    errors = response.json()["errors"]
    assert list(errors) == [block] and says in errors[block]
    async with bot.sessions() as session:
        assert int((await session.exec(select(func.count()).select_from(ActionItem))).one()) == 1


async def open_checkin_modal(bot: Bot) -> dict[str, Any]:
    await bot.command(COORDINATOR, "checkin start FY2027-Q2")
    await bot.interact(bot.block_action(OWNER, "checkin_open", value="FY2027-Q2"))
    return list(bot.slack.views().values())[-1]


def checkin_values(*, note: str = "fine", measure: str = "") -> dict[str, Any]:
    return {
        "status:OIT-1": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress:OIT-1": {"value": {"type": "number_input", "value": "50"}},
        "note:OIT-1": {"value": {"type": "plain_text_input", "value": note}},
        "measure:devices": {"value": {"type": "plain_text_input", "value": measure}},
    }


@pytest.mark.parametrize("measure", ["inf", "-inf", "nan", "NaN", "1e999", "Infinity"])
async def test_the_checkin_form_refuses_a_measure_that_is_not_a_finite_number(bot: Bot, measure: str):
    view = await open_checkin_modal(bot)
    response = await bot.interact(bot.view_submission(OWNER, view, checkin_values(measure=measure)))
    assert response.status_code == 200
    assert "must be a finite number" in response.json()["errors"]["measure:devices"]
    assert await readings(bot) == []
    async with bot.sessions() as session:
        assert list(await session.exec(select(CheckInResponse))) == []


async def test_the_checkin_form_refuses_a_note_over_the_limit(bot: Bot):
    view = await open_checkin_modal(bot)
    response = await bot.interact(bot.view_submission(OWNER, view, checkin_values(note="n" * 2001)))
    assert "the limit is 2,000" in response.json()["errors"]["note:OIT-1"]
    assert (await item(bot)).last_note is None


async def test_the_checkin_form_still_takes_a_real_number(bot: Bot):
    view = await open_checkin_modal(bot)
    await bot.interact(bot.view_submission(OWNER, view, checkin_values(measure="1,250.5")))
    assert [r.value for r in await readings(bot)] == [1250.5]
