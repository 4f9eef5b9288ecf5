"""Measures and the scoring matrix from Slack: list, record by group, score, and rank — against localslack."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlmodel import select

from storage.engine import transaction
from storage.models import AuditEvent, Dimension, ItemScore, Measure, MeasureReading, ScoringCriterion
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

RACE = [
    {"key": "black", "name": "Black", "population_share": 0.40},
    {"key": "white", "name": "White", "population_share": 0.35},
    {"key": "other", "name": "Another race"},
]


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A bot (clock 2026-11-30, FY2027-Q2) with two OIT measures, a race dimension and a scoring matrix."""
    async with running_bot(database_url) as bot:
        for user in (OWNER, OTHER, COORDINATOR):
            bot.slack.add_user(user, user.lower())
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            plan_id = plan.plan.id or 0
            await make_item(session, plan, title="Wi-Fi at Hunting Park rec center", due=date(2027, 3, 1))
            await make_item(session, plan, title="Device library in Kensington", due=date(2027, 2, 1))
            await make_item(session, plan, title="Laptop refresh for HQ", due=date(2027, 1, 15))
            session.add(Dimension(team_id=bot.team_id, plan_id=plan_id, key="race", name="Race", groups=RACE))
            session.add(
                Measure(
                    team_id=bot.team_id,
                    strategy_id=plan.strategies["workplace-equity"].id or 0,
                    key="new-hires",
                    name="New hires by race",
                    baseline=0,
                    target=100,
                    target_date=date(2027, 6, 30),
                    baseline_quarter="FY2027-Q1",
                    breakdown_dimension="race",
                    breakdown_kind="representation",
                    owner_id=OWNER,
                )
            )
            session.add(
                Measure(
                    team_id=bot.team_id,
                    strategy_id=plan.strategies["workplace-equity"].id or 0,
                    key="staff-trained",
                    name="Staff trained",
                    unit="%",
                    baseline=35,
                    target=80,
                    target_date=date(2027, 6, 30),
                    baseline_quarter="FY2026-Q4",
                    owner_id=OWNER,
                )
            )
            for position, (key, weight, levels) in enumerate(
                [
                    ("need", 2.0, ["low", "medium", "high", "highest"]),
                    ("reach", 1.0, ["none", "some", "most"]),
                ]
            ):
                session.add(
                    ScoringCriterion(
                        team_id=bot.team_id,
                        plan_id=plan_id,
                        key=key,
                        question=f"How much {key}?",
                        weight=weight,
                        levels=levels,
                        position=position,
                    )
                )
        yield bot


async def rows(bot: Bot, model: type) -> list:
    """Every row of a table."""
    async with bot.sessions() as session:
        return list(await session.exec(select(model)))


async def test_measures_lists_every_key_with_its_owner_latest_value_and_status(bot: Bot):
    await bot.command(OWNER, "measure staff-trained 48 FY2027-Q1")
    await bot.command(OWNER, "measure staff-trained 62")
    listed = await bot.command(OTHER, "measures")
    text = str(listed.json()["blocks"])
    assert "`new-hires`" in text and "`staff-trained`" in text
    assert f"<@{OWNER}>" in text
    assert "latest 62% (FY2027-Q2) · target 80% by FY2027-Q4 · :large_green_circle: on track" in text
    mine = await bot.command(OTHER, "measures mine")
    assert "No measures here yet" in str(mine.json()["blocks"])


async def test_a_broken_down_reading_is_recorded_group_by_group_with_the_total_from_the_groups(bot: Bot):
    response = await bot.command(OWNER, "measure new-hires black=30 white=50 other=20")
    assert "Recorded new-hires = 100 for FY2027-Q2 (black 30, white 50, other 20)." in response.json()["text"]
    (reading,) = await rows(bot, MeasureReading)
    assert reading.groups == {
        "black": {"value": 30, "n": None},
        "white": {"value": 50, "n": None},
        "other": {"value": 20, "n": None},
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("measure new-hires asian=4", "'asian' is not a group of race (groups: black, white, other)"),
        ("measure new-hires black=2.5", "this breakdown counts people"),
        ("measure staff-trained 50 high=3", "it is not broken down by group"),
        ("measure staff-trained 40 FY2026-Q3", "FY2026-Q3 is outside the measure's quarters"),
        ("measure staff-trained -4", "-4 is below zero"),
    ],
)
async def test_a_reading_the_measure_cannot_take_is_refused_and_nothing_is_written(
    bot: Bot, text: str, problem: str
):
    response = await bot.command(OWNER, text)
    assert problem in response.json()["text"]
    assert await rows(bot, MeasureReading) == []


async def test_an_owner_scores_an_item_and_sees_the_weighted_total(bot: Bot):
    response = await bot.command(OWNER, 'score OIT-1 need=highest reach=1 "serves four high-need tracts"')
    text = str(response.json()["blocks"])
    assert "scores *7* of 8" in text  # 3 x 2 + 1 x 1, out of 3 x 2 + 2 x 1
    scores = {s.criterion_key: (s.level, s.weight) for s in await rows(bot, ItemScore)}
    assert scores == {"need": (3, 2.0), "reach": (1, 1.0)}
    events = [e for e in await rows(bot, AuditEvent) if e.action == "score"]
    assert [(e.field, e.new, e.note) for e in events] == [
        ("need", "3 highest (weight 2)", "serves four high-need tracts"),
        ("reach", "1 some (weight 1)", "serves four high-need tracts"),
    ]


@pytest.mark.parametrize(
    ("user", "text", "problem"),
    [
        (
            OWNER,
            "score OIT-1 need=9",
            "'9' is not a level of need (levels: 0 low, 1 medium, 2 high, 3 highest)",
        ),
        (OWNER, "score OIT-1 cost=1", "'cost' is not a criterion of this plan (criteria: need, reach)"),
        (OTHER, "score OIT-1 need=1", "You can't score OIT-1"),
    ],
)
async def test_a_score_that_does_not_fit_is_refused_and_nothing_is_written(
    bot: Bot, user: str, text: str, problem: str
):
    response = await bot.command(user, text)
    assert problem in response.json()["text"]
    assert await rows(bot, ItemScore) == []


async def score_form(bot: Bot, user: str, ref: str) -> dict:
    """`/reap score <ref>` from `user`: the Score form Slack was asked to open."""
    response = await bot.command(user, f"score {ref}")
    assert response.status_code == 200 and not response.text, "acked quietly; the form opens"
    return list(bot.slack.views().values())[-1]


def chosen(view: dict, levels: dict[str, str], note: str = "") -> dict:
    """The form's state with `levels` chosen by criterion key, as Slack submits it."""
    values: dict = {
        block["block_id"]: {"value": {"type": "static_select", "selected_option": None}}
        for block in view["blocks"]
        if block.get("block_id", "").startswith("criterion:")
    }
    for key, level in levels.items():
        values[f"criterion:{key}"]["value"]["selected_option"] = {"value": level}
    values["note"] = {"value": {"type": "plain_text_input", "value": note or None}}
    return values


async def test_the_score_form_lists_every_criterion_and_scores_what_was_chosen(bot: Bot):
    view = await score_form(bot, OWNER, "OIT-1")
    questions = [b["label"]["text"] for b in view["blocks"] if b.get("block_id", "").startswith("criterion:")]
    assert questions == ["How much need?", "How much reach?"]

    answer = await bot.interact(
        bot.view_submission(OWNER, view, chosen(view, {"need": "3"}, note="serves four high-need tracts"))
    )

    assert answer.status_code == 200 and not answer.text, "the form closes"
    scores = {s.criterion_key: (s.level, s.weight, s.note) for s in await rows(bot, ItemScore)}
    assert scores == {"need": (3, 2.0, "serves four high-need tracts")}, "reach was left empty: no score"
    told = bot.slack.dms_to(OWNER)[-1]
    assert told.text == "OIT-1 scores 6" and "scores *6* of 8" in str(told.blocks), "by DM"

    again = await score_form(bot, OWNER, "OIT-1")
    need = next(b for b in again["blocks"] if b.get("block_id") == "criterion:need")
    assert need["element"]["initial_option"]["value"] == "3", "it opens at the item's current levels"


async def test_the_score_form_is_not_opened_for_someone_who_may_not_score_the_item(bot: Bot):
    opened = len(bot.slack.views())
    response = await bot.command(OTHER, "score OIT-1")
    assert "You can't score OIT-1" in response.json()["text"]
    assert len(bot.slack.views()) == opened


async def test_a_score_form_sent_back_empty_asks_for_a_level_and_writes_nothing(bot: Bot):
    view = await score_form(bot, OWNER, "OIT-1")

    answer = await bot.interact(bot.view_submission(OWNER, view, chosen(view, {})))

    assert answer.json() == {
        "response_action": "errors",
        "errors": {"criterion:need": "Choose a level for at least one criterion."},
    }
    assert await rows(bot, ItemScore) == []


async def test_list_ranked_orders_candidates_by_score_then_due_date(bot: Bot):
    await bot.command(OWNER, "score OIT-1 need=2 reach=2")  # 6, due March
    await bot.command(OWNER, "score OIT-2 need=3 reach=0")  # 6, due February: ahead on the tie
    await bot.command(OWNER, "score OIT-3 need=0 reach=1")  # 1
    ranked = str((await bot.command(OTHER, "list ranked")).json()["blocks"])
    first, second, third = (ranked.index(f"*OIT-{n}*") for n in (2, 1, 3))
    assert first < second < third
    assert "1. *OIT-2*" in ranked and "2. *OIT-1*" in ranked and "3. *OIT-3*" in ranked
    assert "score 6 of 8" in ranked


async def test_a_scored_items_card_shows_its_equity_score(bot: Bot):
    await bot.command(OWNER, "score OIT-1 need=2 reach=2")
    shown = str((await bot.command(OTHER, "show OIT-1")).json()["blocks"])
    assert ":bar_chart: Equity score 6 of 8" in shown
    listed = str((await bot.command(OWNER, "list mine")).json()["blocks"])
    assert listed.count(":bar_chart: Equity score") == 1
