"""Measures in the rollup: the line from the baseline quarter, series, breakdowns, bad data never fatal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text

from domain.fiscal import FiscalQuarter
from domain.rollup import MeasureLine, Rollup
from domain.status import MeasureStatus
from reports.rollup import render_html, render_json, render_markdown
from storage.engine import Sessions, transaction
from storage.models import Dimension, Measure, MeasureReading
from storage.queries.rollup import build_rollup
from tests.factories import OWNER, TEAM, PlanFixture, make_plan

Q2 = FiscalQuarter(2027, 2)
AT = datetime(2026, 10, 5, 14, tzinfo=UTC)
RACE = [
    {"key": "black", "name": "Black", "population_share": 0.40},
    {"key": "white", "name": "White", "population_share": 0.35},
    {"key": "hispanic", "name": "Hispanic or Latino", "population_share": 0.15},
    {"key": "asian", "name": "Asian", "population_share": 0.07},
    {"key": "other", "name": "Another race"},
]


async def add_measure(
    session: Any,
    plan: PlanFixture,
    *,
    readings: dict[str, Any],
    strategy: str = "workplace-equity",
    **fields: Any,
) -> Measure:
    """A measure with readings: a number, or (value, {group: {"value", "n"}}) for a broken-down one."""
    fields.setdefault("name", fields["key"])
    fields.setdefault("target_date", date(2027, 6, 30))
    measure = Measure(team_id=TEAM, strategy_id=plan.strategies[strategy].id, **fields)
    session.add(measure)
    await session.flush()
    assert measure.id is not None
    for quarter, given in readings.items():
        value, groups = given if isinstance(given, tuple) else (given, None)
        session.add(
            MeasureReading(
                team_id=TEAM,
                measure_id=measure.id,
                quarter=quarter,
                value=value,
                groups=groups,
                recorded_by=OWNER,
                recorded_at=AT,
            )
        )
    await session.flush()
    return measure


async def measures_of(sessions: Sessions) -> dict[str, MeasureLine]:
    """Every measure line of the OIT rollup at FY2027-Q2, by key."""
    rollup = await rollup_of(sessions)
    return {m.key: m for s in rollup.departments[0].strategies for m in s.measures}


async def rollup_of(sessions: Sessions) -> Rollup:
    """The FY2027-Q2 rollup as of mid-December 2026."""
    async with sessions() as session:
        return await build_rollup(session, team_id=TEAM, quarter=Q2, as_of=date(2026, 12, 15))


@pytest.fixture
async def plan(sessions: Sessions) -> PlanFixture:
    """The OIT plan (started 2023-07-01) with a race dimension."""
    async with transaction(sessions) as session:
        fixture = await make_plan(session)
        assert fixture.plan.id is not None
        session.add(
            Dimension(
                team_id=TEAM, plan_id=fixture.plan.id, key="race", name="Race and ethnicity", groups=RACE
            )
        )
    return fixture


async def test_a_measure_progressing_from_its_baseline_quarter_is_on_track_with_its_series(
    sessions: Sessions, plan: PlanFixture
):
    async with transaction(sessions) as session:
        await add_measure(
            session,
            plan,
            key="staff-trained",
            baseline=35,
            target=80,
            baseline_quarter="FY2026-Q4",
            readings={"FY2026-Q4": 35, "FY2027-Q1": 48, "FY2027-Q2": 62},
        )
    line = (await measures_of(sessions))["staff-trained"]
    assert line.status == MeasureStatus.ON_TRACK
    assert (line.baseline_quarter, line.target_quarter) == ("FY2026-Q4", "FY2027-Q4")
    assert [(p.quarter, p.value) for p in line.series] == [
        ("FY2026-Q4", 35),
        ("FY2027-Q1", 48),
        ("FY2027-Q2", 62),
    ]
    # The expected line: 35 at the baseline, then 45 * days-since-2026-06-30 / 365.
    assert [p.expected for p in line.series] == [
        35,
        pytest.approx(35 + 45 * 92 / 365),
        pytest.approx(35 + 45 * 184 / 365),
    ]


async def test_a_representation_breakdown_reaches_the_json_report_with_hand_computed_gaps(
    sessions: Sessions, plan: PlanFixture
):
    q1 = {
        "black": {"value": 24},
        "white": {"value": 60},
        "hispanic": {"value": 14},
        "asian": {"value": 12},
        "other": {"value": 10},
    }
    q2 = {
        "black": {"value": 30},
        "white": {"value": 50},
        "hispanic": {"value": 15},
        "asian": {"value": 5},
        "other": {"value": 20},
    }
    async with transaction(sessions) as session:
        await add_measure(
            session,
            plan,
            key="new-hires",
            baseline=100,
            target=100,
            direction="maintain",
            baseline_quarter="FY2027-Q1",
            breakdown_dimension="race",
            breakdown_kind="representation",
            readings={"FY2027-Q1": (120, q1), "FY2027-Q2": (120, q2)},
        )
    data = json.loads(render_json(await rollup_of(sessions)))
    measure = data["departments"][0]["strategies"][1]["measures"][0]
    assert measure["breakdown"]["dimension"] == "race"
    assert measure["breakdown"]["kind"] == "representation"
    assert measure["breakdown"]["largest_gap"] == "black"
    groups = {g["key"]: g for g in measure["groups"]}
    assert groups["black"]["value"] == 30
    assert groups["black"]["gap"] == pytest.approx(-15.0)  # 25% of hires against 40% of residents
    assert groups["black"]["index"] == pytest.approx(0.625)
    assert groups["white"]["gap"] == pytest.approx(50 / 120 * 100 - 35)
    assert groups["other"]["gap"] is None and groups["other"]["index"] is None  # no population share
    # Asian (5) is below 10, and Hispanic (15) goes with it so 5 cannot be subtracted out.
    assert groups["asian"] == {"key": "asian", "name": "Asian", "suppressed": True}
    assert groups["hispanic"] == {"key": "hispanic", "name": "Hispanic or Latino", "suppressed": True}
    # Last quarter Black hires were 20% against 40%: the gap narrowed from 20 points to 15.
    assert groups["black"]["gap_change_since_last"] == pytest.approx(-5.0)
    assert measure["breakdown"]["narrowed_since_last"] is True


async def test_one_measure_with_corrupted_data_shows_needs_attention_and_every_other_line_prints(
    sessions: Sessions, plan: PlanFixture
):
    async with transaction(sessions) as session:
        await add_measure(session, plan, key="good", baseline=0, target=100, readings={"FY2027-Q2": 90})
        await add_measure(session, plan, key="backwards", baseline=40, target=12, readings={"FY2027-Q2": 20})
        await add_measure(
            session, plan, key="garbled", baseline=0, target=10, baseline_quarter="FY20X", readings={}
        )
        await add_measure(
            session,
            plan,
            key="no-dimension",
            baseline=0,
            target=10,
            breakdown_dimension="zip",
            readings={"FY2027-Q2": (5, {"19104": {"value": 5}})},
        )
        broken = await add_measure(
            session, plan, key="infinite", baseline=0, target=10, readings={"FY2027-Q2": 1}
        )
        # Written around every check, the way a hand edit of the database would be.
        await (await session.connection()).execute(
            text("UPDATE measure_reading SET value = :v WHERE measure_id = :m"),
            {"v": float("inf"), "m": broken.id},
        )
    lines = await measures_of(sessions)
    assert lines["good"].status == MeasureStatus.ON_TRACK
    problems = {key: lines[key].problem for key in ("backwards", "garbled", "no-dimension", "infinite")}
    assert all(lines[key].status == MeasureStatus.NEEDS_ATTENTION for key in problems)
    assert (
        problems["backwards"]
        == "Measure backwards: target: a measure meant to increase from 40 needs a target above it, not 12"
    )
    assert "FY20X" in (problems["garbled"] or "")
    assert "dimension 'zip'" in (problems["no-dimension"] or "")
    assert "not a number" in (problems["infinite"] or "")
    rollup = await rollup_of(sessions)
    markdown, page, data = render_markdown(rollup), render_html(rollup), json.loads(render_json(rollup))
    assert "needs attention" in markdown and "needs attention" in page
    statuses = {m["key"]: m["status"] for s in data["departments"][0]["strategies"] for m in s["measures"]}
    assert statuses["good"] == "on_track" and statuses["infinite"] == "needs_attention"


async def test_the_reports_show_the_trend_and_the_gaps_in_words_and_numbers_not_colour_alone(
    sessions: Sessions, plan: PlanFixture
):
    q2 = {
        "black": {"value": 30},
        "white": {"value": 50},
        "hispanic": {"value": 15},
        "asian": {"value": 5},
        "other": {"value": 20},
    }
    async with transaction(sessions) as session:
        await add_measure(
            session,
            plan,
            key="staff-trained",
            name="Staff trained",
            unit="%",
            baseline=35,
            target=80,
            baseline_quarter="FY2026-Q4",
            readings={"FY2026-Q4": 35, "FY2027-Q1": 48, "FY2027-Q2": 62},
        )
        await add_measure(
            session,
            plan,
            key="new-hires",
            name="New hires",
            baseline=100,
            target=100,
            direction="maintain",
            breakdown_dimension="race",
            breakdown_kind="representation",
            readings={"FY2027-Q2": (120, q2)},
        )
    rollup = await rollup_of(sessions)
    markdown = render_markdown(rollup)
    assert (
        "- Staff trained: ▁▄█ 35 (FY2026-Q4) → 48 (FY2027-Q1) → 62 (FY2027-Q2); expected 57.68 by FY2027-Q2"
        in markdown
    )
    assert "#### New hires by Race and ethnicity" in markdown
    assert "| Black | 30 | 25% | −15 pts | 0.62 | — |" in markdown
    assert "| Asian | n<10 | — | — | — | — |" in markdown
    assert "Largest gap: Black, −15 pts; no figure last quarter; no baseline figure." in markdown
    page = render_html(rollup)
    alt = (
        "Staff trained: from 35% in FY2026-Q4 to 62% in FY2027-Q2, 57.68% expected by FY2027-Q2,"
        " target 80% by FY2027-Q4. Status: on track."
    )
    assert (
        f'role="img" width="420" height="150" viewBox="0 0 420 150" aria-label="{alt}"><title>{alt}</title>'
        in page
    )
    assert f"<figcaption>{alt}</figcaption>" in page
    assert '<th scope="row">Asian</th><td class="n">n&lt;10</td>' in page
