"""Commitments in the rollup: verified completions apart from those awaiting verification, evidence links,
pending change requests, and "on track" items whose status may be stale, read in bulk per rollup."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.commitments import ChangeKind
from domain.fiscal import FiscalQuarter
from domain.rollup import DepartmentRollup, Rollup
from domain.status import ItemStatus
from messages.rollup import slack_messages
from reports.rollup import render_html, render_json, render_markdown
from storage.changes import decide_request, propose_change
from storage.engine import Sessions, transaction
from storage.items import complete_item, verify_item
from storage.permissions import Actor
from storage.queries.rollup import build_rollup
from tests.factories import COORDINATOR, OTHER, OWNER, TEAM, PlanFixture, make_item, make_plan

NEW_YORK = ZoneInfo("America/New_York")
Q2 = FiscalQuarter(2027, 2)  # October-December 2026
TODAY = date(2026, 11, 20)
SYSTEM = Actor.system(TEAM)
AS_OWNER = Actor(TEAM, OWNER)
AS_COORDINATOR = Actor(TEAM, COORDINATOR)
HIRE_EVIDENCE = "https://city.example/hire?id=2&x=1"


def at(day: str, hour: int = 10) -> datetime:
    """An instant on a New York wall clock."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=NEW_YORK).replace(hour=hour)


@dataclass
class Office:
    """OIT with completions, requests and stale statuses; PPR beside it with a request of its own."""

    oit: PlanFixture
    ppr: PlanFixture


async def _ask(session: Any, ref: str, kind: ChangeKind, value: str | None, reason: str, day: str) -> int:
    outcome = await propose_change(
        session,
        actor=AS_OWNER,
        ref=ref,
        kind=kind,
        value=value,
        reason=reason,
        today=date.fromisoformat(day),
        now=at(day),
    )
    assert outcome.request is not None and outcome.request.id is not None
    return outcome.request.id


@pytest.fixture
async def office(sessions: Sessions) -> Office:
    """OIT-1..OIT-9 (see each comment) and PPR-1, as of 2026-11-20."""
    async with transaction(sessions) as session:
        oit = await make_plan(session)
        ppr = await make_plan(session, key="PPR", coordinator="U0PPRC", people=())
        q1 = at("2026-08-01")
        # OIT-1: the owner finished it with evidence inside the quarter; nobody has verified it.
        await make_item(session, oit, title="Pay equity study", due=date(2026, 12, 15), now=q1)
        await complete_item(
            session, ref="OIT-1", actor=AS_OWNER, now=at("2026-10-05"), evidence="https://city.example/pay"
        )
        # OIT-2: finished by its owner, verified by the coordinator the next day.
        await make_item(session, oit, title="Hire an analyst", now=q1)
        await complete_item(
            session, ref="OIT-2", actor=AS_OWNER, now=at("2026-10-08"), evidence=HIRE_EVIDENCE
        )
        await verify_item(session, ref="OIT-2", actor=AS_COORDINATOR, now=at("2026-10-09"))
        # OIT-3: finished last quarter by the plan file, which vouches for it: verified, not listed.
        await make_item(session, oit, title="Old work", now=q1)
        await complete_item(session, ref="OIT-3", actor=SYSTEM, now=at("2026-08-10"))
        # OIT-4: "on track", updated in October, but ten days past its date.
        await make_item(
            session,
            oit,
            title="Mentoring",
            status=ItemStatus.ON_TRACK,
            due=date(2026, 11, 10),
            now=at("2026-10-01"),
        )
        # OIT-5: "on track" and within its date, but silent since August 1st (more than 91 days).
        await make_item(
            session, oit, title="Wi-Fi sites", status=ItemStatus.ON_TRACK, due=date(2027, 3, 1), now=q1
        )
        # OIT-6: overdue and silent, but typed "at risk": overdue, not flagged as possibly stale.
        await make_item(
            session, oit, title="Device lending", status=ItemStatus.AT_RISK, due=date(2026, 9, 30), now=q1
        )
        # OIT-7: "on track", recent and within its date.
        await make_item(
            session,
            oit,
            title="Digital skills",
            status=ItemStatus.ON_TRACK,
            due=date(2027, 1, 31),
            now=at("2026-10-01"),
        )
        # OIT-8: finished last quarter by its owner and still not verified: listed as awaiting.
        await make_item(session, oit, title="Resident survey", now=q1)
        await complete_item(
            session, ref="OIT-8", actor=AS_OWNER, now=at("2026-08-12"), evidence="https://city.example/survey"
        )
        # OIT-9: "on track", overdue since August 31st and silent since August 1st.
        await make_item(
            session, oit, title="Procurement rules", status=ItemStatus.ON_TRACK, due=date(2026, 8, 31), now=q1
        )
        await make_item(session, ppr, title="Parks equity map", now=q1)

        await _ask(session, "OIT-5", ChangeKind.REASSIGN, OTHER, "On leave until March", "2026-10-20")
        await _ask(
            session, "OIT-7", ChangeKind.REDATE, "2027-03-31", "Vendor <slipped> & delayed", "2026-11-02"
        )
        declined = await _ask(session, "OIT-6", ChangeKind.DROP, None, "No budget", "2026-10-25")
        await decide_request(
            session,
            actor=AS_COORDINATOR,
            request_id=declined,
            approve=False,
            note="Still needed",
            now=at("2026-10-26"),
        )
        await _ask(session, "PPR-1", ChangeKind.DROP, None, "Parks has its own", "2026-11-01")
    return Office(oit=oit, ppr=ppr)


async def rollup_of(sessions: Sessions) -> Rollup:
    async with sessions() as session:
        return await build_rollup(session, team_id=TEAM, quarter=Q2, as_of=TODAY, zone=NEW_YORK)


def oit(rollup: Rollup) -> DepartmentRollup:
    return next(d for d in rollup.departments if d.key == "OIT")


async def test_verified_completions_are_counted_apart_from_those_awaiting_verification(
    sessions: Sessions, office: Office
):
    rollup = await rollup_of(sessions)
    department = oit(rollup)
    # Verified: OIT-2 (by the coordinator) and OIT-3 (the plan file). Awaiting: OIT-1 and OIT-8.
    assert (department.verified, department.awaiting_verification) == (2, 2)
    assert (rollup.verified, rollup.awaiting_verification) == (2, 2)
    assert department.counts["done"] == 4


async def test_completed_items_are_listed_with_their_evidence_and_who_verified_them(
    sessions: Sessions, office: Office
):
    department = oit(await rollup_of(sessions))
    # Completed this quarter (OIT-1, OIT-2) and, from earlier, what still awaits verification (OIT-8).
    assert [
        (i.ref, i.completed_on, i.evidence_url, i.verified_on, i.verified_by) for i in department.completed
    ] == [
        ("OIT-8", date(2026, 8, 12), "https://city.example/survey", None, None),
        ("OIT-1", date(2026, 10, 5), "https://city.example/pay", None, None),
        ("OIT-2", date(2026, 10, 8), HIRE_EVIDENCE, date(2026, 10, 9), COORDINATOR),
    ]


async def test_pending_requests_are_listed_oldest_first_with_what_who_why_and_since_when(
    sessions: Sessions, office: Office
):
    rollup = await rollup_of(sessions)
    requests = oit(rollup).requests
    # The declined drop of OIT-6 is decided, and PPR-1's request belongs to PPR.
    assert [(r.ref, r.kind, r.requested_by, r.requested_on, r.days_waiting, r.reason) for r in requests] == [
        ("OIT-5", "reassign", OWNER, date(2026, 10, 20), 31, "On leave until March"),
        ("OIT-7", "redate", OWNER, date(2026, 11, 2), 18, "Vendor <slipped> & delayed"),
    ]
    assert [r.what(rollup.name_of) for r in requests] == [
        "reassign from u0owner to u0other",
        "move the due date from 2027-01-31 to 2027-03-31",
    ]
    assert [r.ref for r in next(d for d in rollup.departments if d.key == "PPR").requests] == ["PPR-1"]
    assert rollup.pending_requests == 3


async def test_on_track_items_overdue_or_silent_for_a_quarter_are_flagged_as_possibly_stale(
    sessions: Sessions, office: Office
):
    department = oit(await rollup_of(sessions))
    assert [(f.item.ref, f.reason) for f in department.stale_status] == [
        ("OIT-4", "10 days overdue"),
        ("OIT-5", "no update since 2026-08-01"),
        ("OIT-9", "81 days overdue and no update since 2026-08-01"),
    ]
    overdue = {
        line.ref: (line.status, line.days_overdue) for s in department.strategies for line in s.overdue
    }
    assert overdue == {"OIT-4": ("on_track", 10), "OIT-6": ("at_risk", 51), "OIT-9": ("on_track", 81)}


async def test_the_json_report_carries_counts_evidence_links_requests_and_stale_flags(
    sessions: Sessions, office: Office
):
    data = json.loads(render_json(await rollup_of(sessions)))
    (department,) = [d for d in data["departments"] if d["key"] == "OIT"]
    assert (department["verified"], department["awaiting_verification"]) == (2, 2)
    assert (data["verified"], data["awaiting_verification"], data["pending_requests"]) == (2, 2, 3)
    completed = {c["ref"]: c for c in department["completed"]}
    assert completed["OIT-2"]["evidence_url"] == HIRE_EVIDENCE
    assert (completed["OIT-2"]["verified"], completed["OIT-2"]["verified_on"]) == (True, "2026-10-09")
    assert (completed["OIT-1"]["verified"], completed["OIT-1"]["verified_on"]) == (False, None)
    first = department["requests"][0]
    assert (first["ref"], first["kind"], first["what"], first["requested_by_name"]) == (
        "OIT-5",
        "reassign",
        "reassign from u0owner to u0other",
        "u0owner",
    )
    assert (first["requested_on"], first["days_waiting"], first["old_owner"], first["new_owner"]) == (
        "2026-10-20",
        31,
        OWNER,
        OTHER,
    )
    assert [(f["item"]["ref"], f["silent_since"], f["reason"]) for f in department["stale_status"]] == [
        ("OIT-4", None, "10 days overdue"),
        ("OIT-5", "2026-08-01", "no update since 2026-08-01"),
        ("OIT-9", "2026-08-01", "81 days overdue and no update since 2026-08-01"),
    ]


async def test_markdown_html_and_slack_show_evidence_links_requests_and_stale_statuses(
    sessions: Sessions, office: Office
):
    rollup = await rollup_of(sessions)
    markdown = render_markdown(rollup)
    assert (
        "- **OIT-2** Hire an analyst — u0owner — completed 2026-10-08"
        " — [evidence](<https://city.example/hire?id=2&amp;x=1>) — ✅ verified by u0coord 2026-10-09"
    ) in markdown
    assert (
        "- **OIT-1** Pay equity study — u0owner — completed 2026-10-05 — [evidence](<https://city.example/pay>)"
        " — ⏳ done, awaiting verification" in markdown
    )
    assert "Completions to date: 2 verified, 2 done and awaiting verification." in markdown
    assert (
        "- **#2** OIT-7 Digital skills — u0owner asks to move the due date from 2027-01-31 to 2027-03-31"
        " — since 2026-11-02 (18 days)\n  > Vendor &lt;slipped&gt; &amp; delayed"
    ) in markdown
    assert "- **OIT-9** Procurement rules — u0owner — marked on track, but 81 days overdue" in markdown
    assert "- **OIT-4** Mentoring — u0owner — 10 days overdue (due 2026-11-10, marked on track)" in markdown
    page = render_html(rollup)
    assert '<a href="https://city.example/hire?id=2&amp;x=1">evidence</a>' in page
    assert "u0owner asks to reassign from u0owner to u0other — since 2026-10-20 (31 days)" in page
    assert "Vendor &lt;slipped&gt; &amp; delayed" in page and "<slipped>" not in page
    _, replies = slack_messages(rollup)
    thread = str([reply["blocks"] for reply in replies])
    assert f"<{HIRE_EVIDENCE}|evidence>" in thread
    assert (
        "u0owner asks to move the due date from 2027-01-31 to 2027-03-31, since 2026-11-02 (18 days)"
        in thread
    )


async def test_a_stored_evidence_value_that_is_not_a_link_never_reaches_a_report(
    sessions: Sessions, office: Office
):
    async with transaction(sessions) as session:
        # Written around every check, the way a hand edit of the database would be.
        await (await session.connection()).execute(
            text("UPDATE action_item SET evidence_url = :bad WHERE ref = 'OIT-8'"),
            {"bad": "javascript:alert(1)"},
        )
    rollup = await rollup_of(sessions)
    (survey,) = [i for i in oit(rollup).completed if i.ref == "OIT-8"]
    assert survey.evidence_url is None
    outputs = [render_markdown(rollup), render_html(rollup), render_json(rollup), str(slack_messages(rollup))]
    assert all("javascript:" not in output for output in outputs)
    assert "- **OIT-8** Resident survey — u0owner — completed 2026-08-12 — no evidence link" in outputs[0]


async def test_the_rollup_reads_commitments_in_bulk_not_per_item(
    engine: AsyncEngine, sessions: Sessions, office: Office
):
    async def statements() -> int:
        seen: list[str] = []

        def count(*args: Any) -> None:
            seen.append(args[2])

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        try:
            await rollup_of(sessions)
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", count)
        return len(seen)

    before = await statements()
    async with transaction(sessions) as session:
        for n in range(10):
            item = await make_item(session, office.oit, title=f"More work {n}", now=at("2026-08-01"))
            await complete_item(
                session,
                ref=item.ref,
                actor=AS_OWNER,
                now=at("2026-10-10"),
                evidence=f"https://city.example/{n}",
            )
        for n in range(10):
            item = await make_item(session, office.oit, title=f"Later work {n}", now=at("2026-10-01"))
            await _ask(session, item.ref, ChangeKind.DROP, None, "Not needed", "2026-11-03")
    assert await statements() == before
    department = oit(await rollup_of(sessions))
    assert (department.awaiting_verification, len(department.requests)) == (12, 12)
