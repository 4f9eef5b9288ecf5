"""A closed quarter is frozen: its report reads the same whatever happens to the plan afterwards,
and a late correction is an amendment beside the frozen value, never a rewrite."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from domain.errors import InvalidChange, PermissionDenied
from domain.fiscal import FiscalQuarter
from domain.measures import ReadingRefused
from domain.status import ItemStatus
from plans.planfile import import_plan, parse_plan_file
from reports.rollup import render_json, render_markdown
from storage.amendments import amend_quarter
from storage.engine import Sessions, transaction
from storage.items import set_status
from storage.measures import record_reading
from storage.models import AuditEvent, QuarterSnapshot
from storage.permissions import Actor
from storage.snapshots import freeze_quarter, frozen_quarter

DEMO = Path(__file__).resolve().parents[2] / "examples" / "oit-reap.yaml"
TEAM = "T0REAP"
Q2 = FiscalQuarter(2027, 2)
CLOSED = datetime(2027, 1, 15, 17, tzinfo=UTC)
LATER = datetime(2027, 2, 3, 15, tzinfo=UTC)
COORDINATOR = Actor(TEAM, "U0EQUITYPM")


@pytest.fixture
async def demo(sessions: Sessions) -> None:
    """The demo plan imported on 2026-11-30."""
    document = parse_plan_file(DEMO.read_text(encoding="utf-8"), filename="oit-reap.yaml")
    async with transaction(sessions) as session:
        await import_plan(
            session, document=document, team_id=TEAM, now=datetime(2026, 11, 30, 15, tzinfo=UTC)
        )


async def reports(sessions: Sessions) -> tuple[str, str]:
    """The frozen FY2027-Q2 report as JSON and Markdown."""
    async with sessions() as session:
        frozen = await frozen_quarter(session, team_id=TEAM, quarter=Q2.label)
    assert frozen is not None
    return render_json(frozen.rollup), render_markdown(frozen.rollup)


async def test_a_frozen_quarter_reads_the_same_bytes_after_the_plan_moves_on(sessions: Sessions, demo: None):
    async with transaction(sessions) as session:
        await freeze_quarter(session, actor=COORDINATOR, quarter=Q2, now=CLOSED)
    before = await reports(sessions)
    async with transaction(sessions) as session:
        await set_status(
            session, ref="OIT-2", status=ItemStatus.OFF_TRACK, actor=Actor.system(TEAM), now=LATER
        )
        await record_reading(
            session,
            actor=Actor.system(TEAM),
            key="staff-equity-trained",
            quarter="FY2027-Q3",
            value=70,
            note=None,
            now=LATER,
        )
    assert await reports(sessions) == before
    data, markdown = before
    assert '"quarter": "FY2027-Q2"' in data
    assert '"basis": "frozen on 2027-01-15 by Equity Program Manager"' in data
    assert "_This report is frozen on 2027-01-15 by Equity Program Manager._" in markdown


async def test_freezing_twice_keeps_the_first_snapshot(sessions: Sessions, demo: None):
    async with transaction(sessions) as session:
        first = await freeze_quarter(session, actor=COORDINATOR, quarter=Q2, now=CLOSED)
    async with transaction(sessions) as session:
        second = await freeze_quarter(session, actor=Actor.system(TEAM), quarter=Q2, now=LATER)
    assert (second.id, second.frozen_at, second.frozen_by) == (first.id, CLOSED, "U0EQUITYPM")
    async with sessions() as session:
        assert len(list(await session.exec(select(QuarterSnapshot)))) == 1
        freezes = list(await session.exec(select(AuditEvent).where(AuditEvent.action == "freeze")))
    assert [(e.actor, e.field) for e in freezes] == [("U0EQUITYPM", "FY2027-Q2")]


async def test_an_amendment_is_recorded_beside_the_frozen_value(sessions: Sessions, demo: None):
    async with transaction(sessions) as session:
        await freeze_quarter(session, actor=COORDINATOR, quarter=Q2, now=CLOSED)
    async with transaction(sessions) as session:
        await amend_quarter(
            session,
            actor=COORDINATOR,
            quarter=Q2.label,
            subject="measure staff-equity-trained",
            old="62",
            new="64",
            reason="Two December completions were logged in January",
            now=LATER,
        )
    async with sessions() as session:
        frozen = await frozen_quarter(session, team_id=TEAM, quarter=Q2.label)
    assert frozen is not None
    (amendment,) = frozen.amendments
    assert (amendment.subject, amendment.old, amendment.new, amendment.amended_by) == (
        "measure staff-equity-trained",
        "62",
        "64",
        "U0EQUITYPM",
    )
    staff = next(m for _, m in frozen.rollup.measure_lines() if m.key == "staff-equity-trained")
    assert staff.latest == 62, "the frozen value stays; the amendment sits beside it"
    markdown = render_markdown(frozen.rollup)
    assert "| 62 (FY2027-Q2) (amended, see below) |" in markdown
    assert (
        "- Amended on 2027-02-03 by Equity Program Manager: measure staff-equity-trained 62 → 64."
        " Two December completions were logged in January" in markdown
    )


async def test_amending_a_quarter_that_is_not_closed_is_refused(sessions: Sessions, demo: None):
    with pytest.raises(InvalidChange, match="FY2027-Q3 is not closed"):
        async with transaction(sessions) as session:
            await amend_quarter(
                session,
                actor=COORDINATOR,
                quarter="FY2027-Q3",
                subject="x",
                old=None,
                new="y",
                reason="z",
                now=LATER,
            )


async def test_only_coordinators_amend_and_always_with_a_reason(sessions: Sessions, demo: None):
    async with transaction(sessions) as session:
        await freeze_quarter(session, actor=COORDINATOR, quarter=Q2, now=CLOSED)
    with pytest.raises(PermissionDenied):
        async with transaction(sessions) as session:
            await amend_quarter(
                session,
                actor=Actor(TEAM, "U0PMODIR"),
                quarter=Q2.label,
                subject="x",
                old=None,
                new="y",
                reason="z",
                now=LATER,
            )
    with pytest.raises(InvalidChange, match="Say why"):
        async with transaction(sessions) as session:
            await amend_quarter(
                session,
                actor=COORDINATOR,
                quarter=Q2.label,
                subject="x",
                old=None,
                new="y",
                reason=" ",
                now=LATER,
            )


async def test_a_reading_for_a_closed_quarter_is_an_amendment_with_its_reason(sessions: Sessions, demo: None):
    async with transaction(sessions) as session:
        await freeze_quarter(session, actor=COORDINATOR, quarter=Q2, now=CLOSED)
    owner = Actor(TEAM, "U0LEARNDEV")
    with pytest.raises(ReadingRefused, match="FY2027-Q2 is closed, so a correction needs a reason"):
        async with transaction(sessions) as session:
            await record_reading(
                session,
                actor=owner,
                key="staff-equity-trained",
                quarter="FY2027-Q2",
                value=64,
                note=None,
                now=LATER,
            )
    async with transaction(sessions) as session:
        await record_reading(
            session,
            actor=owner,
            key="staff-equity-trained",
            quarter="FY2027-Q2",
            value=64,
            note="late LMS sync",
            now=LATER,
        )
    async with sessions() as session:
        frozen = await frozen_quarter(session, team_id=TEAM, quarter=Q2.label)
    assert frozen is not None
    assert [(a.subject, a.old, a.new, a.reason, a.amended_by) for a in frozen.amendments] == [
        ("measure staff-equity-trained", "62", "64", "late LMS sync", "U0LEARNDEV")
    ]
