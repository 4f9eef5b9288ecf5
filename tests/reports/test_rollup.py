"""The quarterly rollup: per-department and per-strategy facts from the database, and renderings of them."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from domain.errors import NotFinite, NotFound
from domain.fiscal import FiscalQuarter
from domain.rollup import (
    STATUSES,
    Changes,
    DepartmentRollup,
    ItemLine,
    MeasureLine,
    RankedLine,
    Rollup,
    StrategyRollup,
)
from domain.status import ItemStatus, MeasureStatus
from messages.primitives import (
    MAX_MESSAGE_BLOCKS,
    MESSAGE_BUDGET,
    build_list_sections,
    escape,
    slack_len,
    split_text,
)
from messages.rollup import slack_messages
from reports.rollup import render_html, render_json, render_markdown, template_env
from storage.engine import Sessions, transaction
from storage.items import (
    add_note,
    complete_item,
    drop_item,
    redate_item,
    set_progress,
    set_status,
)
from storage.models import (
    ActionItem,
    CheckInCycle,
    CheckInResponse,
    Measure,
    MeasureReading,
    Notification,
    Person,
)
from storage.permissions import Actor
from storage.queries.rollup import build_rollup
from tests.factories import COORDINATOR, OTHER, OWNER, TEAM, PlanFixture, make_item, make_person, make_plan

NEW_YORK = ZoneInfo("America/New_York")
Q2 = FiscalQuarter(2027, 2)  # October-December 2026
TODAY = date(2026, 11, 20)
GONE = "U0GONE"
NOBODY = "U0NOBODY"
TRICKY = "Waiting on <!channel> & vendor {{ 7*7 }} <script>alert(1)</script>"
SYSTEM = Actor.system(TEAM)


def at(day: str, hour: int = 10) -> datetime:
    """An instant on a New York wall clock."""
    return datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=NEW_YORK).replace(hour=hour)


@dataclass
class Office:
    """The OIT plan with items in every interesting state, and the PPR plan beside it."""

    oit: PlanFixture
    ppr: PlanFixture


def saved(row_id: int | None) -> int:
    """The id of a flushed row."""
    assert row_id is not None
    return row_id


async def _measure(
    session: Any, plan: PlanFixture, *, strategy: str, readings: dict[str, float], **fields: Any
) -> None:
    measure = Measure(team_id=TEAM, strategy_id=saved(plan.strategies[strategy].id), **fields)
    session.add(measure)
    await session.flush()
    for quarter, value in readings.items():
        session.add(
            MeasureReading(
                team_id=TEAM,
                measure_id=saved(measure.id),
                quarter=quarter,
                value=value,
                recorded_by=OWNER,
                recorded_at=at("2026-10-05"),
            )
        )


@pytest.fixture
async def office(sessions: Sessions) -> Office:
    """OIT-1..OIT-9 built through the storage functions at chosen times across FY2027-Q1 and Q2."""
    async with transaction(sessions) as session:
        oit = await make_plan(session)
        ppr = await make_plan(session, key="PPR", coordinator="U0PPRC", people=())
        gone = await make_person(session, user_id=GONE, name="Gone Person", department_id=oit.department.id)
        gone.active = False
        q1 = at("2026-08-03")
        q2 = at("2026-10-02")
        # OIT-1: overdue inside the quarter, moved to at risk, then blocked with a note.
        await make_item(session, oit, title="Equity scoring matrix", due=date(2026, 10, 15), now=q1)
        await set_status(session, ref="OIT-1", status=ItemStatus.AT_RISK, actor=SYSTEM, now=at("2026-10-05"))
        await set_status(
            session, ref="OIT-1", status=ItemStatus.BLOCKED, actor=SYSTEM, now=at("2026-10-20"), note=TRICKY
        )
        # OIT-2: done at 23:30 New York on its due date, which is already October 1st in UTC.
        await make_item(session, oit, title="Hire an analyst", owner=OTHER, due=date(2026, 9, 30), now=q1)
        await complete_item(session, ref="OIT-2", actor=SYSTEM, now=at("2026-09-30", 23).replace(minute=30))
        # OIT-3: done two days late, inside the quarter.
        await make_item(
            session,
            oit,
            title="Pay equity study",
            strategy="workplace-equity",
            due=date(2026, 10, 10),
            now=q1,
        )
        await complete_item(session, ref="OIT-3", actor=SYSTEM, now=at("2026-10-12"))
        # OIT-4: new this quarter, on track at 40%, re-dated.
        await make_item(
            session,
            oit,
            title="Mentoring",
            owner=OTHER,
            strategy="workplace-equity",
            due=date(2026, 12, 15),
            now=q2,
        )
        await set_status(session, ref="OIT-4", status=ItemStatus.ON_TRACK, actor=SYSTEM, now=at("2026-10-06"))
        await set_progress(session, ref="OIT-4", percent=40, actor=SYSTEM, now=at("2026-10-06"))
        await redate_item(session, ref="OIT-4", due=date(2027, 1, 31), actor=SYSTEM, now=at("2026-11-01"))
        # OIT-5: its owner left; untouched since August.
        await make_item(
            session,
            oit,
            title="Wi-Fi sites",
            owner=GONE,
            strategy="digital-equity",
            due=date(2027, 3, 1),
            now=q1,
        )
        # OIT-6 and OIT-7: nobody owns them, or an owner the bot has never heard of.
        await make_item(session, oit, title="Device lending", owner=None, strategy="digital-equity", now=q2)
        await make_item(
            session,
            oit,
            title="Digital skills",
            owner=NOBODY,
            strategy="digital-equity",
            status=ItemStatus.ON_TRACK,
            now=q2,
        )
        # OIT-8: dropped this quarter.
        await make_item(session, oit, title="Retired idea", now=q1)
        await drop_item(session, ref="OIT-8", actor=SYSTEM, now=at("2026-10-07"))
        # OIT-9: off track since June, so overdue but not newly.
        await make_item(
            session,
            oit,
            title="Procurement rules",
            owner=OTHER,
            due=date(2026, 6, 30),
            status=ItemStatus.OFF_TRACK,
            now=q1,
        )
        await make_item(session, ppr, title="Parks equity map", owner=None, now=q2)

        await _measure(
            session,
            oit,
            strategy="equity-projects",
            key="mwbe",
            name="Contracts to M/WBE firms",
            unit="%",
            baseline=10,
            target=30,
            target_date=date(2027, 6, 30),
            readings={"FY2027-Q1": 24, "FY2027-Q2": 27},
        )
        await _measure(
            session,
            oit,
            strategy="workplace-equity",
            key="fill",
            name="Days to fill equity roles",
            unit="days",
            baseline=90,
            target=60,
            target_date=date(2027, 6, 30),
            direction="decrease",
            readings={"FY2027-Q1": 80, "FY2027-Q2": 78},
        )
        await _measure(
            session,
            oit,
            strategy="digital-equity",
            key="homes",
            name="Households connected",
            baseline=1000,
            target=5000,
            target_date=date(2027, 6, 30),
            readings={"FY2027-Q1": 2500},
        )
        cycle = CheckInCycle(
            team_id=TEAM, quarter="FY2027-Q2", meeting_date=date(2026, 12, 10), opened_at=at("2026-11-02")
        )
        session.add(cycle)
        # The prompts reached both owners; only people asked can be "not yet responded".
        for owner in (OWNER, OTHER):
            session.add(
                Notification(
                    team_id=TEAM,
                    key=f"{TEAM}:checkin_prompt:FY2027-Q2:{owner}",
                    kind="checkin_prompt",
                    recipient=owner,
                    payload={"quarter": "FY2027-Q2"},
                    state="sent",
                    send_after=at("2026-11-02"),
                    created_at=at("2026-11-02"),
                )
            )
        await session.flush()
        item_1 = (await session.exec(select(ActionItem).where(ActionItem.ref == "OIT-1"))).one()
        session.add(
            CheckInResponse(
                team_id=TEAM,
                cycle_id=saved(cycle.id),
                item_id=saved(item_1.id),
                responder=OWNER,
                status="blocked",
                progress=0,
                responded_at=at("2026-11-10"),
            )
        )
    return Office(oit=oit, ppr=ppr)


async def rollup_of(sessions: Sessions, quarter: FiscalQuarter = Q2, **kwargs: Any) -> Rollup:
    async with sessions() as session:
        return await build_rollup(
            session, team_id=TEAM, quarter=quarter, as_of=TODAY, zone=NEW_YORK, **kwargs
        )


def strategies(department: DepartmentRollup) -> dict[str, StrategyRollup]:
    return {s.key: s for s in department.strategies}


def counts(**nonzero: int) -> dict[str, int]:
    return {status: nonzero.get(status, 0) for status in STATUSES}


async def test_items_are_counted_by_status_per_strategy_department_and_overall(
    sessions: Sessions, office: Office
):
    rollup = await rollup_of(sessions)
    oit, ppr = rollup.departments
    assert (oit.key, ppr.key) == ("OIT", "PPR")
    by_key = strategies(oit)
    assert list(by_key) == ["equity-projects", "workplace-equity", "digital-equity"]
    assert by_key["equity-projects"].counts == counts(blocked=1, done=1, dropped=1, off_track=1)
    assert by_key["workplace-equity"].counts == counts(done=1, on_track=1)
    assert by_key["digital-equity"].counts == counts(not_started=2, on_track=1)
    assert oit.counts == counts(not_started=2, on_track=2, off_track=1, blocked=1, done=2, dropped=1)
    assert ppr.counts == counts(not_started=1)
    assert rollup.counts == counts(not_started=3, on_track=2, off_track=1, blocked=1, done=2, dropped=1)
    assert rollup.total == 10


async def test_percent_complete_averages_progress_leaving_dropped_items_out(
    sessions: Sessions, office: Office
):
    by_key = strategies((await rollup_of(sessions)).departments[0])
    assert by_key["equity-projects"].percent_complete == pytest.approx(33.3)  # 0, 100, 0
    assert by_key["workplace-equity"].percent_complete == 70.0  # 100 and 40
    assert by_key["digital-equity"].percent_complete == 0.0


async def test_on_time_rate_compares_the_local_completion_date_with_the_due_date(
    sessions: Sessions, office: Office
):
    rollup = await rollup_of(sessions)
    by_key = strategies(rollup.departments[0])
    # OIT-2 was done at 23:30 in New York on its due date (already the next day in UTC): on time.
    assert by_key["equity-projects"].on_time_rate == 1.0
    assert by_key["workplace-equity"].on_time_rate == 0.0  # OIT-3, two days late
    assert by_key["digital-equity"].on_time_rate is None  # nothing done yet
    assert rollup.departments[0].on_time_rate == 0.5
    assert rollup.on_time_rate == 0.5


async def test_overdue_items_show_owner_and_days_overdue_longest_first(sessions: Sessions, office: Office):
    overdue = strategies((await rollup_of(sessions)).departments[0])["equity-projects"].overdue
    assert [(i.ref, i.owner_name, i.days_overdue, i.due) for i in overdue] == [
        ("OIT-9", "u0other", 143, date(2026, 6, 30)),
        ("OIT-1", "u0owner", 36, date(2026, 10, 15)),
    ]


async def test_blocked_items_carry_their_last_note(sessions: Sessions, office: Office):
    blocked = strategies((await rollup_of(sessions)).departments[0])["equity-projects"].blocked
    assert [(i.ref, i.status, i.last_note) for i in blocked] == [("OIT-1", "blocked", TRICKY)]


async def test_changes_since_last_quarter_come_from_audit_events_inside_the_quarter(
    sessions: Sessions, office: Office
):
    changes = (await rollup_of(sessions)).departments[0].changes
    assert replace(changes, titles={}, notes={}, attention=[]) == Changes(
        status_transitions=[
            ("OIT-1", "not_started", "blocked"),  # net of not started -> at risk -> blocked
            ("OIT-3", "not_started", "done"),
            ("OIT-4", "not_started", "on_track"),
            ("OIT-8", "not_started", "dropped"),
        ],
        completed=["OIT-3"],  # OIT-2 was done on September 30th, New York time
        newly_overdue=["OIT-1"],
        new_items=["OIT-4", "OIT-6", "OIT-7"],
        redated=[("OIT-4", date(2026, 12, 15), date(2027, 1, 31))],
    )


async def test_a_past_quarter_is_reported_as_of_its_last_day(sessions: Sessions, office: Office):
    rollup = await rollup_of(sessions, quarter=Q2.previous(), department_key="OIT")
    assert (rollup.quarter, rollup.as_of, rollup.previous_quarter) == (
        "FY2027-Q1",
        date(2026, 9, 30),
        "FY2026-Q4",
    )
    changes = rollup.departments[0].changes
    assert changes.completed == ["OIT-2"]
    assert changes.new_items == ["OIT-1", "OIT-2", "OIT-3", "OIT-5", "OIT-8", "OIT-9"]
    assert changes.status_transitions == [("OIT-2", "not_started", "done")]


async def test_measure_lines_show_baseline_latest_target_status_and_change(
    sessions: Sessions, office: Office
):
    by_key = strategies((await rollup_of(sessions)).departments[0])
    lines = [m for s in by_key.values() for m in s.measures]
    assert [(m.key, m.baseline, m.latest, m.latest_quarter, m.target, m.status, m.change) for m in lines] == [
        # expected by Dec 31 2026 is 1279/1460 of the way: 27 of 10->30 is 97% of that
        ("mwbe", 10, 27, "FY2027-Q2", 30, MeasureStatus.ON_TRACK, 3),
        # 78 of 90->60 is 40% of the way against 88% expected
        ("fill", 90, 78, "FY2027-Q2", 60, MeasureStatus.OFF_TRACK, -2),
        # no Q2 reading: the Q1 one is the latest, and the status says so
        ("homes", 1000, 2500, "FY2027-Q1", 5000, MeasureStatus.NO_DATA, None),
    ]
    assert lines[0].progress == pytest.approx(0.85)
    assert lines[0].expected == pytest.approx(1279 / 1460)


async def test_response_rate_counts_active_owners_of_open_items_who_answered(
    sessions: Sessions, office: Office
):
    rollup = await rollup_of(sessions)
    oit, ppr = rollup.departments
    assert (oit.response_rate, oit.checkin_responded, oit.checkin_asked) == (0.5, 1, 2)
    assert oit.non_responders == [OTHER]
    assert (ppr.response_rate, ppr.non_responders) == (None, [])  # nobody there to ask
    assert rollup.response_rate == 0.5


async def test_without_a_check_in_cycle_there_is_no_response_rate(sessions: Sessions, office: Office):
    rollup = await rollup_of(sessions, quarter=Q2.previous())
    assert rollup.response_rate is None
    assert all(d.response_rate is None and d.non_responders == [] for d in rollup.departments)


async def test_stale_and_orphaned_items_are_routed_to_the_coordinators(sessions: Sessions, office: Office):
    oit = (await rollup_of(sessions)).departments[0]
    assert oit.coordinators == [COORDINATOR]
    assert [(i.ref, i.updated_on) for i in oit.stale] == [
        ("OIT-5", date(2026, 8, 3)),
        ("OIT-9", date(2026, 8, 3)),
    ]
    assert [(i.ref, i.owner_state, i.owner_name) for i in oit.orphaned] == [
        ("OIT-5", "deactivated", "Gone Person"),
        ("OIT-6", "none", "no owner"),
        ("OIT-7", "unknown", NOBODY),
    ]


async def test_a_note_today_takes_an_item_off_the_stale_list(sessions: Sessions, office: Office):
    async with transaction(sessions) as session:
        await add_note(session, ref="OIT-9", text="Drafting now", actor=SYSTEM, now=at("2026-11-19"))
    oit = (await rollup_of(sessions)).departments[0]
    assert [i.ref for i in oit.stale] == ["OIT-5"]
    assert [i.ref for i in (await rollup_of(sessions, stale_days=5)).departments[0].stale] == [
        "OIT-5",  # August
        "OIT-6",  # October 2nd
        "OIT-7",
        "OIT-1",  # October 20th
        "OIT-4",  # November 1st
    ]


async def test_one_department_can_be_asked_for_and_an_unknown_one_is_named(
    sessions: Sessions, office: Office
):
    rollup = await rollup_of(sessions, department_key="ppr")
    assert [d.key for d in rollup.departments] == ["PPR"]
    assert rollup.total == 1
    with pytest.raises(NotFound, match=r"^I can't find department NOPE\.$"):
        await rollup_of(sessions, department_key="nope")


async def test_the_fixture_rollup_renders_in_every_format(sessions: Sessions, office: Office):
    rollup = await rollup_of(sessions)
    markdown = render_markdown(rollup)
    assert "| Equity projects | 4 | 0 | 0 | 0 | 1 | 1 | 1 | 1 | 33% | 100% |" in markdown
    overdue = "- **OIT-9** Procurement rules — u0other — 143 days overdue (due 2026-06-30, marked off track)"
    assert overdue in markdown
    assert (
        "  > Waiting on &lt;!channel&gt; &amp; vendor {{ 7*7 }} &lt;script&gt;alert(1)&lt;/script&gt;"
        in markdown
    )
    # What changed names the item, and says why where a note was given.
    assert "- Re-dated OIT-4 Mentoring: 2026-12-15 → 2027-01-31" in markdown
    assert "- New: OIT-6 Device lending" in markdown
    assert "Response rate 50% (1 of 2 owners). Not yet responded: u0other." in markdown
    html = render_html(rollup)
    assert "&lt;!channel&gt; &amp; vendor {{ 7*7 }} &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    data = json.loads(render_json(rollup))
    assert data["quarter"] == "FY2027-Q2"
    assert data["departments"][0]["changes"]["redated"] == [["OIT-4", "2026-12-15", "2027-01-31"]]
    summary, replies = slack_messages(rollup)
    assert_within_block_kit(summary, *replies)
    thread = all_text(replies)
    assert "&lt;!channel&gt; &amp; vendor {{ 7*7 }} &lt;script&gt;" in thread
    assert f"<@{COORDINATOR}>" in thread  # stale and orphaned items are put in front of the coordinator


# --- Slack Block Kit limits -----------------------------------------------------------------------


def texts_of(block: dict[str, Any]) -> list[str]:
    found = []
    if isinstance(block.get("text"), dict):
        found.append(block["text"]["text"])
    found += [e["text"] for e in block.get("elements", []) if isinstance(e, dict) and "text" in e]
    return found


def all_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(t for m in messages for b in m["blocks"] for t in texts_of(b))


def assert_within_block_kit(*messages: dict[str, Any]) -> None:
    """Every message: fallback text, 1-50 blocks, sections under 3,000, headers under 150, size budget."""
    for message in messages:
        assert message["text"].strip() and slack_len(message["text"]) <= 40_000
        assert 1 <= len(message["blocks"]) <= MAX_MESSAGE_BLOCKS
        assert sum(slack_len(t) for b in message["blocks"] for t in texts_of(b)) <= MESSAGE_BUDGET
        for block in message["blocks"]:
            assert block["type"] in {"header", "section", "context", "divider"}
            if block["type"] == "section":
                assert 0 < slack_len(block["text"]["text"]) < 3000
            if block["type"] == "header":
                assert slack_len(block["text"]["text"]) <= 150
            if block["type"] == "context":
                assert 1 <= len(block["elements"]) <= 10


@pytest.fixture
async def big_plan(sessions: Sessions) -> PlanFixture:
    """A 2,000-item plan with long titles and notes full of Slack control characters, inserted in bulk."""
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        keys = list(plan.strategies)
        statuses = [s.value for s in ItemStatus]
        rows = []
        for n in range(1, 2001):
            status = statuses[n % len(statuses)]
            rows.append(
                ActionItem(
                    team_id=TEAM,
                    department_id=saved(plan.department.id),
                    strategy_id=saved(plan.strategies[keys[n % 3]].id),
                    number=n,
                    ref=f"OIT-{n}",
                    title=(f"Item {n} <!channel> & 😀 " * 20)[:300],
                    owner_id=[OWNER, OTHER, GONE][n % 3],
                    due=date(2026, 1, 1) + timedelta(days=n % 400),
                    status=status,
                    progress=n % 101,
                    last_note=("Blocked by <@U0X> & more " * 100)[:2000] if status == "blocked" else None,
                    completed_at=datetime(2026, 6, 1, tzinfo=UTC) if status == "done" else None,
                    created_by="system",
                    created_at=datetime(2026, 1, 5, tzinfo=UTC),
                    updated_at=datetime(2026, 2, 5, tzinfo=UTC),
                )
            )
        session.add_all(rows)
        department = plan.department
        department.next_number = 2000
    return plan


async def test_a_2000_item_plan_fits_block_kit_in_a_summary_and_threaded_detail(
    sessions: Sessions, big_plan: PlanFixture
):
    rollup = await rollup_of(sessions)
    assert rollup.total == 2000
    summary, replies = slack_messages(rollup)
    assert_within_block_kit(summary, *replies)
    assert summary["blocks"][0]["text"]["text"] == "REAP rollup FY2027-Q2"
    thread = all_text(replies)
    # Nothing is cut: every overdue, blocked, stale and orphaned item is listed somewhere in the thread.
    listed = {i.ref for s in rollup.departments[0].strategies for i in s.overdue + s.blocked}
    listed |= {i.ref for i in rollup.departments[0].stale + rollup.departments[0].orphaned}
    assert len(listed) > 1400
    assert all(f"*{ref}*" in thread for ref in listed)
    assert "<!channel>" not in thread and "<@U0X>" not in thread
    assert thread.count("Blocked by &lt;@U0X&gt; &amp; more") > 200


def department(key: str, *, name: str | None = None) -> DepartmentRollup:
    """A department rollup with one strategy and nothing to flag."""
    strategy = StrategyRollup(
        key="s",
        name="Strategy",
        counts=counts(on_track=3),
        percent_complete=50.0,
        on_time_rate=None,
        overdue=[],
        blocked=[],
        measures=[],
    )
    return DepartmentRollup(
        key=key,
        name=name or f"{key} department",
        report_channel=None,
        coordinators=[],
        strategies=[strategy],
        changes=Changes([], [], [], [], []),
        response_rate=None,
        non_responders=[],
        stale=[],
        orphaned=[],
        counts=counts(on_track=3),
        percent_complete=50.0,
    )


def test_a_summary_with_more_departments_than_fit_continues_them_in_the_thread():
    departments = [
        department(f"D{n:03d}", name="Department of " + "very long names " * 10) for n in range(400)
    ]
    rollup = Rollup(
        quarter="FY2027-Q2",
        as_of=TODAY,
        departments=departments,
        counts=counts(on_track=1200),
        percent_complete=50.0,
        on_time_rate=None,
        response_rate=None,
    )
    summary, replies = slack_messages(rollup)
    assert_within_block_kit(summary, *replies)
    assert "continue in the thread" in summary["blocks"][-1]["elements"][0]["text"]
    everything = all_text([summary, *replies])
    assert all(f"*D{n:03d}*" in everything for n in range(400))


@pytest.mark.parametrize("units", [7, 40, 2900])
def test_long_text_is_split_at_spaces_without_breaking_an_escape(units: int):
    text = "word &amp; 😀 &lt;tag&gt; " * 300
    pieces = split_text(text, units)
    assert all(slack_len(p) <= units for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")  # only split-point spaces go
    if units >= 40:
        assert " ".join(pieces).split() == text.split()  # words stay whole when they fit
    assert all("&" not in p or p.count("&") == p.count(";") for p in pieces)


def test_a_long_list_becomes_several_sections_each_with_its_heading():
    sections = build_list_sections("Overdue (300)", [f"• *OIT-{n}* " + "x" * 80 for n in range(300)])
    texts = [s["text"]["text"] for s in sections]
    assert len(texts) > 5
    assert texts[0].startswith("*Overdue (300)*\n")
    assert all(t.startswith("*Overdue (300) (continued)*\n") for t in texts[1:])
    assert all(slack_len(t) < 3000 for t in texts)


# --- Rendering user text ---------------------------------------------------------------------------


@pytest.fixture
def tricky_rollup() -> Rollup:
    """A one-department rollup whose user text tries to template, ping and script."""
    line = ItemLine(
        ref="OIT-1",
        title="Fix <script>alert('x')</script> & {{ 7*7 }}",
        owner_id=OWNER,
        owner_name="Ana <!channel>",
        status="blocked",
        progress=10,
        due=date(2026, 10, 1),
        days_overdue=50,
        last_note="<!channel> {% raw %} & |pipe|",
        strategy="S",
    )
    measure = MeasureLine(
        key="m",
        name="Share <b>bold</b> & {{ 7*7 }}",
        unit="%",
        baseline=1,
        latest=2.5,
        target=10,
        status=MeasureStatus.AT_RISK,
        change=0.5,
    )
    strategy = StrategyRollup(
        key="s",
        name="Digital | equity {{ 7*7 }}",
        counts=counts(blocked=1),
        percent_complete=10.0,
        on_time_rate=None,
        overdue=[line],
        blocked=[line],
        measures=[measure],
    )
    dept = replace(
        department("OIT"),
        strategies=[strategy],
        stale=[line],
        orphaned=[line],
        counts=counts(blocked=1),
        coordinators=[COORDINATOR],
    )
    return Rollup(
        quarter="FY2027-Q2",
        as_of=TODAY,
        departments=[dept],
        counts=counts(blocked=1),
        percent_complete=10.0,
        on_time_rate=None,
        response_rate=None,
        previous_quarter="FY2027-Q1",
        names={COORDINATOR: "Coord & <Co>"},
    )


def test_markdown_shows_user_text_literally(tricky_rollup: Rollup):
    markdown = render_markdown(tricky_rollup)
    # Markdown viewers pass raw HTML through; as entities the text shows exactly as typed.
    assert "Fix &lt;script&gt;alert('x')&lt;/script&gt; &amp; {{ 7*7 }}" in markdown
    assert "> &lt;!channel&gt; {% raw %} &amp; |pipe|" in markdown
    assert "| Digital \\| equity {{ 7*7 }} |" in markdown  # a pipe cannot break the table
    assert "| Share &lt;b&gt;bold&lt;/b&gt; &amp; {{ 7*7 }} (%) |" in markdown
    assert "Coordinators: Coord &amp; &lt;Co&gt;" in markdown
    assert "49" not in markdown


HOSTILE = "<img src=x onerror=alert(1)> & <script>alert(2)</script>"


def test_markdown_never_passes_raw_html_from_any_user_text(tricky_rollup: Rollup):
    line = replace(tricky_rollup.departments[0].strategies[0].overdue[0], title=HOSTILE, owner_name=HOSTILE)
    line = replace(line, last_note=HOSTILE)
    strategy = replace(
        tricky_rollup.departments[0].strategies[0],
        name=HOSTILE,
        overdue=[line],
        blocked=[line],
        measures=[
            replace(tricky_rollup.departments[0].strategies[0].measures[0], name=HOSTILE, unit=HOSTILE)
        ],
    )
    dept = replace(
        tricky_rollup.departments[0], name=HOSTILE, strategies=[strategy], stale=[line], orphaned=[line]
    )
    rollup = replace(tricky_rollup, departments=[dept], names={COORDINATOR: HOSTILE})
    markdown = render_markdown(rollup)
    assert "<" not in markdown, "the template writes no HTML, so any < would be user text"
    assert (
        markdown.count("&lt;img src=x onerror=alert(1)&gt; &amp; &lt;script&gt;alert(2)&lt;/script&gt;") >= 9
    )


def test_html_escapes_user_text_and_shows_it_literally(tricky_rollup: Rollup):
    html = render_html(tricky_rollup)
    assert "Fix &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; {{ 7*7 }}" in html
    assert "Share &lt;b&gt;bold&lt;/b&gt; &amp; {{ 7*7 }}" in html
    assert "<script>" not in html and "<b>" not in html
    assert "Coord &amp; &lt;Co&gt;" in html
    assert html.startswith("<!DOCTYPE html>")


def test_slack_text_is_escaped_for_mrkdwn_and_nothing_else(tricky_rollup: Rollup):
    summary, replies = slack_messages(tricky_rollup)
    thread = all_text(replies)
    assert "Fix &lt;script&gt;alert('x')&lt;/script&gt; &amp; {{ 7*7 }}" in thread
    assert "Ana &lt;!channel&gt;" in thread
    assert "<!channel>" not in thread + all_text([summary])
    assert f"<@{COORDINATOR}>" in thread


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),  # & goes first, so existing entities stay visible as typed
        ("{{ 7*7 }} 'quoted' \"double\"", "{{ 7*7 }} 'quoted' \"double\""),
    ],
)
def test_slack_escaping_touches_only_ampersand_and_angle_brackets(text: str, escaped: str):
    """The one escape every Slack text goes through (the rollup's lines included)."""
    assert escape(text) == escaped


def test_the_template_environment_is_strict_and_built_once():
    from jinja2 import UndefinedError

    assert template_env() is template_env()
    with pytest.raises(UndefinedError):
        template_env().from_string("{{ missing }}").render()


def test_json_is_valid_and_keeps_the_numbers(tricky_rollup: Rollup):
    data = json.loads(render_json(tricky_rollup))
    item = data["departments"][0]["strategies"][0]["overdue"][0]
    assert item["title"] == "Fix <script>alert('x')</script> & {{ 7*7 }}"
    assert item["due"] == "2026-10-01"
    assert data["departments"][0]["strategies"][0]["measures"][0]["status"] == "at_risk"
    assert data["total"] == 1


async def test_people_are_named_from_the_person_table(sessions: Sessions, office: Office):
    async with transaction(sessions) as session:
        person = (await session.exec(select(Person).where(Person.user_id == OTHER))).one()
        person.name = "Olu Other"
    oit = (await rollup_of(sessions)).departments[0]
    assert strategies(oit)["equity-projects"].overdue[0].owner_name == "Olu Other"


@pytest.mark.parametrize("value", [float("-inf"), float("inf"), float("nan")], ids=str)
def test_json_never_carries_a_number_json_cannot_hold(tricky_rollup: Rollup, value: float):
    strategy = tricky_rollup.departments[0].strategies[0]
    measure = replace(strategy.measures[0], latest=value)
    dept = replace(tricky_rollup.departments[0], strategies=[replace(strategy, measures=[measure])])
    with pytest.raises(NotFinite) as refused:
        render_json(replace(tricky_rollup, departments=[dept]))
    assert refused.value.field == "rollup.departments[0].strategies[0].measures[0].latest"
    assert "must be a finite number" in str(refused.value)


def test_json_of_finite_numbers_is_strict_json(tricky_rollup: Rollup):
    text = render_json(tricky_rollup)
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))


def test_a_ranked_candidate_past_its_date_shows_overdue_with_its_typed_status(tricky_rollup: Rollup):
    department = tricky_rollup.departments[0]
    late = RankedLine(
        rank=1,
        ref="OIT-4",
        title="Map Wi-Fi gaps",
        score=7,
        top=9,
        due=date(2026, 11, 1),
        status="on_track",
        days_overdue=19,
    )
    rollup = replace(tricky_rollup, departments=[replace(department, ranked=[late])])
    markdown = render_markdown(rollup)
    assert (
        "| 1 | OIT-4 Map Wi-Fi gaps | 7 of 9 | 2026-11-01 | 🔴 overdue 19 days (marked on track) |"
        in markdown
    )
    page = render_html(rollup)
    assert '<span class="badge off_track">🔴 overdue 19 days</span> (marked on track)' in page
    assert json.loads(render_json(rollup))["departments"][0]["ranked"][0]["days_overdue"] == 19
