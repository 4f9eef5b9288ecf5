"""Plan files import idempotently with an audit trail, refuse bad files precisely, and export back."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import event, func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, col, select

from domain.cadence import CADENCE_KEYS
from domain.status import ItemStatus
from plans.planfile import (
    CSV_COLUMNS,
    ImportReport,
    PlanDocument,
    PlanFileError,
    export_plan,
    import_plan,
    parse_plan_file,
)
from storage.engine import Sessions, transaction
from storage.items import create_item, get_item, set_status
from storage.models import (
    ActionItem,
    ActionItemCreate,
    AuditEvent,
    CheckInCycle,
    Department,
    Dimension,
    ItemScore,
    Measure,
    MeasureReading,
    Person,
    Plan,
    ScoringCriterion,
    Strategy,
)
from storage.permissions import Actor
from tests.factories import TEAM

DEMO = Path(__file__).resolve().parents[2] / "examples" / "oit-reap.yaml"
README = Path(__file__).resolve().parents[2] / "README.md"
NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
TABLES: tuple[type[SQLModel], ...] = (
    Department,
    Person,
    Plan,
    Strategy,
    ActionItem,
    Measure,
    MeasureReading,
    CheckInCycle,
    Dimension,
    ScoringCriterion,
    ItemScore,
    AuditEvent,
)
DEMO_ROWS = {
    "department": 1,
    "person": 7,
    "plan": 1,
    "strategy": 3,
    "action_item": 17,
    "measure": 8,
    "measure_reading": 24,
    "checkin_cycle": 4,
    "dimension": 2,
    "scoring_criterion": 3,
    "item_score": 9,
}


@pytest.fixture
def demo_text() -> str:
    """The demo plan file, examples/oit-reap.yaml."""
    return DEMO.read_text(encoding="utf-8")


@pytest.fixture
async def imported(sessions: Sessions, demo_text: str) -> ImportReport:
    """The demo plan imported into TEAM at NOW and committed."""
    return await run_import(sessions, demo_text)


async def run_import(
    sessions: Sessions, text: str, *, filename: str = "oit-reap.yaml", now: datetime = NOW, team: str = TEAM
) -> ImportReport:
    async with transaction(sessions) as session:
        document = parse_plan_file(text, filename=filename)
        return await import_plan(session, document=document, team_id=team, now=now)


async def export(sessions: Sessions, fmt: Any, team: str = TEAM) -> str:
    async with sessions() as session:
        return await export_plan(session, team_id=team, fmt=fmt)


async def row_counts(sessions: Sessions) -> dict[str, int]:
    async with sessions() as session:
        return {
            str(model.__tablename__): (await session.exec(select(func.count()).select_from(model))).one()
            for model in TABLES
        }


async def audits_after(sessions: Sessions, last_id: int) -> list[AuditEvent]:
    async with sessions() as session:
        rows = await session.exec(
            select(AuditEvent).where(col(AuditEvent.id) > last_id).order_by(col(AuditEvent.id))
        )
        return list(rows)


async def last_audit_id(sessions: Sessions) -> int:
    async with sessions() as session:
        return (await session.exec(select(func.max(AuditEvent.id)))).one() or 0


async def item(sessions: Sessions, ref: str) -> ActionItem:
    async with sessions() as session:
        return await get_item(session, team_id=TEAM, ref=ref)


def edit(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of `old`, so an edit can never silently miss."""
    assert text.count(old) == 1, f"expected exactly one {old!r}"
    return text.replace(old, new)


def without_refs(document: PlanDocument) -> dict[str, Any]:
    """The document without refs, a plan's flat items moved under their strategies (as export writes)."""
    data = document.model_dump()
    for plan in data["plans"]:
        strategies = {s["key"]: s for s in plan["strategies"]}
        for flat in plan.pop("items"):
            strategies[flat.pop("strategy")]["items"].append(flat)
        for strategy in plan["strategies"]:
            for entry in strategy["items"]:
                entry.pop("ref")
    return data


# --- Importing the demo plan ------------------------------------------------------------------


async def test_demo_plan_creates_departments_people_items_measures_readings_and_meetings(
    sessions: Sessions, imported: ImportReport
):
    counts = await row_counts(sessions)
    assert {k: v for k, v in counts.items() if k != "audit_event"} == DEMO_ROWS
    assert imported.counts["item_created"] == 17
    assert imported.counts["person_created"] == 7
    assert imported.counts["reading_created"] == 24
    assert (imported.counts["dimension_created"], imported.counts["criterion_created"]) == (2, 3)
    assert imported.counts["score_created"] == 9
    assert "create item OIT-2 'Hire an equity data analyst'" in imported.changes

    analyst = await item(sessions, "OIT-2")
    assert (analyst.import_key, analyst.owner_id, analyst.due, analyst.status, analyst.progress) == (
        "hire-equity-data-analyst",
        "U0EQUITYPM",
        date(2026, 11, 20),
        "at_risk",
        50,
    )
    assert analyst.last_note == "Civil service list has not posted yet; interviews are paused until it does."
    done = await item(sessions, "OIT-6")
    assert (done.status, done.progress, done.completed_at) == ("done", 100, NOW)
    blocked = await item(sessions, "OIT-14")
    assert (blocked.status, blocked.last_note) == (
        "blocked",
        "Fiber permits for six sites are waiting on Streets Department review.",
    )
    async with sessions() as session:
        wifi_lead = (await session.exec(select(Person).where(Person.user_id == "U0WIFILEAD"))).one()
        coordinators = list(await session.exec(select(Person.user_id).where(Person.role == "coordinator")))
        department = (await session.exec(select(Department))).one()
        plan = (await session.exec(select(Plan))).one()
        measure = (await session.exec(select(Measure).where(Measure.key == "days-to-equity-review"))).one()
        reading = (
            await session.exec(
                select(MeasureReading)
                .where(MeasureReading.measure_id == measure.id)
                .where(MeasureReading.quarter == "FY2027-Q1")
            )
        ).one()
        meeting = (await session.exec(select(CheckInCycle).where(CheckInCycle.quarter == "FY2027-Q2"))).one()
    assert (wifi_lead.tz, wifi_lead.department_id, wifi_lead.team_id) == (
        "America/Chicago",
        department.id,
        TEAM,
    )
    assert coordinators == ["U0EQUITYPM"]
    assert (department.key, department.report_channel) == ("OIT", "C0OITREAP")
    assert plan.cadence == {
        "first_days_before": 7,
        "business_days_before": 1,
        "overdue_every": 3,
        "escalate_after": 5,
        "escalate_every": 5,
    }
    assert (measure.baseline, measure.target, measure.direction) == (30, 10, "decrease")
    assert (reading.value, reading.recorded_by) == (24, "system")
    assert meeting.meeting_date == date(2027, 1, 21)


async def test_every_imported_item_has_a_create_audit_event_by_the_system(
    sessions: Sessions, imported: ImportReport
):
    async with sessions() as session:
        creates = list(
            await session.exec(
                select(AuditEvent).where(AuditEvent.entity == "item").where(AuditEvent.action == "create")
            )
        )
    assert len(creates) == 17
    assert {e.actor for e in creates} == {"system"}


async def test_importing_the_same_file_twice_writes_nothing_the_second_time(
    sessions: Sessions, imported: ImportReport, demo_text: str
):
    before = await row_counts(sessions)
    last = await last_audit_id(sessions)
    again = await run_import(sessions, demo_text, now=LATER)
    assert (again.changed, again.changes, again.summary()) == (False, [], "no changes")
    assert await row_counts(sessions) == before
    assert await audits_after(sessions, last) == []
    async with sessions() as session:
        stamps = set(await session.exec(select(ActionItem.updated_at)))
    assert stamps == {NOW}


async def test_an_edited_file_updates_exactly_what_changed_with_old_and_new_in_the_audit(
    sessions: Sessions, imported: ImportReport, demo_text: str
):
    text = edit(demo_text, "due: 2026-11-20", "due: 2027-01-15")
    text = edit(
        text,
        "            owner: U0WIFILEAD\n            due: 2026-12-18\n            status: on_track",
        "            owner: U0WIFILEAD\n            due: 2026-12-18\n            status: at-risk",
    )
    text = edit(
        text,
        "            note: Fiber permits for six sites are waiting on Streets Department review.\n",
        "            note: Fiber permits for six sites are waiting on Streets Department review.\n"
        "          - key: device-setup-clinics\n"
        "            title: Train library staff to run device setup clinics\n"
        "            owner: U0DIGEQMGR\n"
        "            due: 2027-03-31\n",
    )
    text = edit(text, "target: 20\n", "target: 25\n")
    text = edit(text, "tz: America/Chicago", "tz: America/Denver")
    last = await last_audit_id(sessions)

    report = await run_import(sessions, text, now=LATER)

    assert report.changes == [
        "update person U0WIFILEAD tz: America/Chicago -> America/Denver",
        "update OIT-2 due: 2026-11-20 -> 2027-01-15",
        "update OIT-13 status: on_track -> at_risk",
        "create item OIT-18 'Train library staff to run device setup clinics'",
        "update measure partnership-hires target: 20 -> 25",
    ]
    assert report.counts == {
        "person_updated": 1,
        "item_updated": 2,
        "item_created": 1,
        "measure_updated": 1,
    }
    events = [
        (e.entity, e.action, e.field, e.old, e.new, e.actor, e.at) for e in await audits_after(sessions, last)
    ]
    assert events == [
        ("person", "update", "tz", "America/Chicago", "America/Denver", "system", LATER),
        ("item", "redate", "due", "2026-11-20", "2027-01-15", "system", LATER),
        ("item", "status", "status", "on_track", "at_risk", "system", LATER),
        ("item", "create", None, None, "Train library staff to run device setup clinics", "system", LATER),
        ("measure", "update", "target", "20", "25", "system", LATER),
    ]
    assert (await item(sessions, "OIT-2")).due == date(2027, 1, 15)
    assert (await item(sessions, "OIT-13")).status == "at_risk"
    clinic = await item(sessions, "OIT-18")
    assert (clinic.import_key, clinic.status, clinic.progress) == ("device-setup-clinics", "not_started", 0)
    untouched = await item(sessions, "OIT-1")
    assert untouched.updated_at == NOW


async def test_a_dry_run_reports_the_changes_and_its_rollback_leaves_the_database_unchanged(
    sessions: Sessions, imported: ImportReport, demo_text: str
):
    text = edit(demo_text, "due: 2026-11-20", "due: 2027-01-15")
    before = await row_counts(sessions)
    async with sessions() as session:
        document = parse_plan_file(text, filename="oit-reap.yaml")
        report = await import_plan(session, document=document, team_id=TEAM, now=LATER)
        await session.rollback()
    assert report.changes == ["update OIT-2 due: 2026-11-20 -> 2027-01-15"]
    assert await row_counts(sessions) == before
    analyst = await item(sessions, "OIT-2")
    assert (analyst.due, analyst.updated_at) == (date(2026, 11, 20), NOW)


async def test_items_missing_from_the_file_are_reported_and_kept(
    sessions: Sessions, imported: ImportReport, demo_text: str
):
    text = edit(
        demo_text,
        "          - key: score-project-portfolio\n"
        "            title: Score the active project portfolio with the equity matrix\n"
        "            created: 2026-06-15\n"
        "            owner: U0PMODIR\n"
        "            due: 2027-03-31\n"
        "            status: not_started\n"
        "            progress: 0\n",
        "",
    )
    report = await run_import(sessions, text, now=LATER)
    assert (report.changed, report.changes, report.counts) == (
        False,
        ["not in file: OIT-3"],
        {"item_not_in_file": 1},
    )
    assert (await item(sessions, "OIT-3")).status == "not_started"


async def test_a_field_left_out_of_the_file_keeps_the_value_an_owner_set_in_slack(
    sessions: Sessions, imported: ImportReport, demo_text: str
):
    async with transaction(sessions) as session:
        await set_status(
            session, ref="OIT-12", status=ItemStatus.AT_RISK, actor=Actor(TEAM, "U0DIGEQMGR"), now=LATER
        )
    text = edit(
        demo_text,
        "            due: 2027-06-30\n            status: on_track\n",
        "            due: 2027-06-30\n",
    )
    report = await run_import(sessions, text, now=LATER)
    assert report.changed is False
    assert (await item(sessions, "OIT-12")).status == "at_risk"


# --- Export -----------------------------------------------------------------------------------


async def test_yaml_export_reproduces_the_imported_document(
    sessions: Sessions, imported: ImportReport, demo_text: str
):
    exported = parse_plan_file(await export(sessions, "yaml"), filename="export.yaml")
    assert without_refs(exported) == without_refs(parse_plan_file(demo_text, filename="oit-reap.yaml"))
    refs = [i.ref for s in exported.plans[0].strategies for i in s.items]
    # Items sit under their strategies, so the candidates listed flat in the file (OIT-15 to 17)
    # come back inside Equity projects.
    assert sorted(refs, key=lambda ref: int(ref.split("-")[1])) == [f"OIT-{n}" for n in range(1, 18)]


async def test_the_readmes_cadence_example_imports_exports_and_reimports_unchanged(
    sessions: Sessions, demo_text: str
):
    """Every Cadence setting, escalate_every included, is accepted by the file and kept by export."""
    readme = README.read_text(encoding="utf-8")
    line = next(x for x in readme.splitlines() if x.strip().startswith("cadence: {"))
    flow = yaml.safe_load(line.strip())["cadence"]
    assert set(flow) == set(CADENCE_KEYS), "the README example shows every setting"
    text = edit(demo_text, "      escalate_after: 5\n      escalate_every: 5\n", "")
    text = edit(
        text,
        "    cadence:\n      first_days_before: 7\n      business_days_before: 1\n      overdue_every: 3\n",
        "    " + line.strip() + "\n",
    )
    await run_import(sessions, text)
    exported = parse_plan_file(await export(sessions, "yaml"), filename="export.yaml")
    assert exported.plans[0].cadence == flow
    before = await row_counts(sessions)
    again = await run_import(sessions, await export(sessions, "yaml"), filename="export.yaml")
    assert not again.changed and await row_counts(sessions) == before


async def test_a_cadence_setting_that_is_not_one_is_refused_by_name(demo_text: str):
    """A typo in the cadence names the setting and lists the real ones."""
    text = edit(demo_text, "      escalate_every: 5\n", "      escalate_evry: 5\n")
    with pytest.raises(PlanFileError) as refused:
        parse_plan_file(text, filename="oit-reap.yaml")
    assert "escalate_evry" in str(refused.value) and "escalate_every" in str(refused.value)


async def test_yaml_export_then_import_is_a_no_op_even_with_items_added_in_slack(
    sessions: Sessions, imported: ImportReport
):
    async with transaction(sessions) as session:
        strategy = (await session.exec(select(Strategy).where(Strategy.key == "digital-equity"))).one()
        await create_item(
            session,
            data=ActionItemCreate(
                title="Translate device request forms into Spanish and Vietnamese",
                owner_id="U0DIGEQMGR",
                strategy_id=strategy.id or 0,
            ),
            actor=Actor(TEAM, "U0EQUITYPM"),
            now=LATER,
        )
        await set_status(
            session, ref="OIT-3", status=ItemStatus.ON_TRACK, actor=Actor(TEAM, "U0PMODIR"), now=LATER
        )
    before = await row_counts(sessions)

    report = await run_import(sessions, await export(sessions, "yaml"), filename="export.yaml", now=LATER)

    assert (report.changed, report.changes) == (False, [])
    assert await row_counts(sessions) == before


async def test_a_plan_exported_from_one_workspace_imports_identically_into_another(
    sessions: Sessions, imported: ImportReport
):
    text = await export(sessions, "yaml")
    report = await run_import(sessions, text, filename="export.yaml", team="T0OTHER")
    assert report.counts["item_created"] == 17
    assert await export(sessions, "yaml", team="T0OTHER") == text


async def test_json_export_is_json_and_a_valid_plan_file(sessions: Sessions, imported: ImportReport):
    text = await export(sessions, "json")
    data = json.loads(text)
    assert data["version"] == 1
    assert data["meetings"]["FY2027-Q1"] == "2026-10-22"
    assert data["plans"][0]["strategies"][2]["items"][3]["status"] == "blocked"
    yaml_document = parse_plan_file(await export(sessions, "yaml"), filename="export.yaml")
    assert parse_plan_file(text, filename="export.json").model_dump() == yaml_document.model_dump()


async def test_csv_export_has_a_header_and_one_row_per_item(sessions: Sessions, imported: ImportReport):
    rows = list(csv.reader(io.StringIO(await export(sessions, "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r[0] for r in rows[1:]] == [f"OIT-{n}" for n in range(1, 18)]
    by_ref = {r["ref"]: r for r in csv.DictReader(io.StringIO(await export(sessions, "csv")))}
    assert by_ref["OIT-1"]["title"] == (
        "Develop an equity scoring matrix for project intake "
        "with the Office of Diversity, Equity and Inclusion"
    )
    assert by_ref["OIT-14"] == {
        "ref": "OIT-14",
        "department": "OIT",
        "strategy": "Digital equity",
        "title": "Deploy public-access Wi-Fi at recreation centers and libraries based on need",
        "owner": "U0WIFILEAD",
        "owner_name": "Wireless Infrastructure Lead",
        "due": "2027-04-30",
        "status": "blocked",
        "progress": "30",
        "last_note": "Fiber permits for six sites are waiting on Streets Department review.",
        "updated_at": NOW.isoformat(),
    }


async def test_csv_export_defuses_cells_a_spreadsheet_would_run_as_formulas(
    sessions: Sessions, imported: ImportReport
):
    async with transaction(sessions) as session:
        await set_status(
            session,
            ref="OIT-1",
            status=ItemStatus.AT_RISK,
            actor=Actor(TEAM, "U0EQUITYPM"),
            now=LATER,
            note='=HYPERLINK("http://example.invalid","click")',
        )
    by_ref = {r["ref"]: r for r in csv.DictReader(io.StringIO(await export(sessions, "csv")))}
    assert by_ref["OIT-1"]["last_note"] == '\'=HYPERLINK("http://example.invalid","click")'


# --- Bad files --------------------------------------------------------------------------------

FLAT_ITEM = (
    "    items:\n"
    "      - {key: hotspot-lending, title: Lend hotspots, strategy: digital, owner: U0DIGEQMGR}\n"
    "      - key: candidate-library-hotspots\n"
)

BAD_FILES = [
    pytest.param(
        "title: OIT Racial Equity Action Plan, FY2024-FY2027",
        "title: OIT: Racial Equity Action Plan",
        "line {line}",
        "invalid YAML: mapping values are not allowed",
        id="invalid-yaml",
    ),
    pytest.param(
        "    items:\n      - key: candidate-library-hotspots\n",
        FLAT_ITEM,
        "plans[0].items[0].strategy",
        "unknown strategy 'digital' in plan OIT-REAP "
        "(known: equity-projects, workplace-equity, digital-equity)",
        id="unknown-strategy",
    ),
    pytest.param(
        "due: 2026-11-25",
        "due: 2026-11-31",
        "plans[0].strategies[2].items[0].due",
        "'2026-11-31' is not a valid date; write it as YYYY-MM-DD",
        id="bad-date",
    ),
    pytest.param(
        "due: 2026-11-25",
        "due: 11/25/2026",
        "plans[0].strategies[2].items[0].due",
        "'11/25/2026' is not a valid date; write it as YYYY-MM-DD",
        id="us-date",
    ),
    pytest.param(
        "key: score-project-portfolio",
        "key: hire-equity-data-analyst",
        "plans[0].strategies[0].items[2].key",
        "duplicate item key 'hire-equity-data-analyst' in department OIT "
        "(first at plans[0].strategies[0].items[1].key)",
        id="duplicate-item-key",
    ),
    pytest.param(
        "key: workplace-equity",
        "key: equity-projects",
        "plans[0].strategies[1].key",
        "duplicate strategy key 'equity-projects' (first at plans[0].strategies[0].key)",
        id="duplicate-strategy-key",
    ),
    pytest.param(
        "key: wifi-sites-high-need",
        "key: devices-high-need-tracts",
        "plans[0].strategies[2].measures[2].key",
        "duplicate measure key 'devices-high-need-tracts' (first at plans[0].strategies[2].measures[0].key)",
        id="duplicate-measure-key",
    ),
    pytest.param(
        "user_id: U0GISANLST",
        "user_id: U0PMODIR",
        "people[6].user_id",
        "duplicate user_id 'U0PMODIR' (first at people[1].user_id)",
        id="duplicate-person",
    ),
    pytest.param(
        "department: OIT\n    role: coordinator",
        "department: DEI\n    role: coordinator",
        "people[0].department",
        "unknown department 'DEI'",
        id="unknown-department",
    ),
    pytest.param(
        "owner: U0GISANLST\n            due: 2027-06-15",
        "owner: U0NOBODY\n            due: 2027-06-15",
        "plans[0].strategies[0].items[3].owner",
        "missing owner: U0NOBODY is not declared under people",
        id="missing-owner",
    ),
    pytest.param(
        "owner: U0WIFILEAD\n            source",
        "owner: U0NOBODY\n            source",
        "plans[0].strategies[2].measures[2].owner",
        "missing owner: U0NOBODY is not declared under people",
        id="missing-measure-owner",
    ),
    pytest.param(
        "status: blocked",
        "status: stuck",
        "plans[0].strategies[2].items[3].status",
        "'stuck' is not a status; "
        "use one of not_started, on_track, at_risk, off_track, blocked, done, dropped",
        id="bad-status",
    ),
    pytest.param(
        "progress: 90",
        "progress: 150",
        "plans[0].strategies[2].items[0].progress",
        "progress must be between 0 and 100, not 150",
        id="progress-150",
    ),
    pytest.param(
        "progress: 100\n            evidence:",
        "progress: 80\n            evidence:",
        "plans[0].strategies[1].items[0].progress",
        "a done item is 100% complete, not 80%",
        id="done-but-not-100",
    ),
    pytest.param(
        "tz: America/Chicago",
        "tz: America/Gotham",
        "people[5].tz",
        "'America/Gotham' is not an IANA time zone name (like America/New_York)",
        id="unknown-tz",
    ),
    pytest.param(
        "direction: decrease",
        "direction: down",
        "plans[0].strategies[0].measures[1].direction",
        "'down' is not a direction; use one of increase, decrease",
        id="bad-direction",
    ),
    pytest.param(
        "FY2027-Q3: 2027-04-22",
        "FY27-Q3: 2027-04-22",
        "meetings.FY27-Q3",
        "'FY27-Q3' is not a fiscal quarter label (like FY2027-Q2)",
        id="bad-quarter",
    ),
    pytest.param(
        "FY2027-Q3: 2027-04-22",
        "FY2027-Q2: 2027-04-22",
        "line {line}",
        "invalid YAML: duplicate key 'FY2027-Q2' (first at line",
        id="duplicate-yaml-key",
    ),
    pytest.param(
        "    role: coordinator\n",
        "    role: coordinator\n    department: OIT\n",
        "line {line}",
        "invalid YAML: duplicate key 'department'",
        id="duplicate-field",
    ),
    pytest.param(
        "title: Select the next 20 public Wi-Fi sites using the need index",
        "titel: Select the next 20 public Wi-Fi sites using the need index",
        "plans[0].strategies[2].items[2].title",
        "required field is missing",
        id="missing-title",
    ),
    pytest.param(
        "progress: 70",
        "progres: 70",
        "plans[0].strategies[1].items[1].progres",
        "unknown field (check the spelling)",
        id="misspelt-field",
    ),
    pytest.param(
        "baseline: 15",
        "baseline: twelve",
        "plans[0].strategies[2].measures[2].baseline",
        "expected a number, not the text 'twelve'",
        id="text-for-number",
    ),
    pytest.param(
        "report_channel: C0OITREAP",
        "report_channel: '#oit-reap'",
        "departments[0].report_channel",
        "'#oit-reap' is not a Slack channel id (like C0123ABCD)",
        id="channel-name-not-id",
    ),
    pytest.param(
        "end: 2027-06-30",
        "end: 2023-06-30",
        "plans[0].end",
        "the plan ends (2023-06-30) before it starts (2023-07-01)",
        id="ends-before-start",
    ),
    pytest.param(
        "version: 1\n",
        "version: 2\n",
        "version",
        "unsupported version 2; this REAP Tracker reads version 1",
        id="future-version",
    ),
    # Text is refused whole, never cut or cleaned: YAML escapes can carry any control character,
    # which PostgreSQL refuses (NUL) without naming the file, and SQLite would store into CSV exports.
    *(
        pytest.param(
            "title: Hire an equity data analyst",
            f'title: "Hire an equity{escape} data analyst"',
            "plans[0].strategies[0].items[1].title",
            f"The text contains an invisible control character (U+{code:04X}); please retype it",
            id=f"control-U+{code:04X}-in-title",
        )
        for escape, code in (("\\0", 0), ("\\e[31m", 0x1B), ("\\x7f", 0x7F), ("\\x9b", 0x9B))
    ),
    pytest.param(
        "title: Hire an equity data analyst",
        'title: "Hire an equity\\ndata analyst"',
        "plans[0].strategies[0].items[1].title",
        "The text contains a line break (U+000A)",
        id="line-break-in-title",
    ),
    pytest.param(
        "note: Civil service list has not posted yet; interviews are paused until it does.",
        'note: "Civil service list \\x1b[2J"',
        "plans[0].strategies[0].items[1].note",
        "The text contains an invisible control character (U+001B)",
        id="escape-in-note",
    ),
    pytest.param(
        "title: Hire an equity data analyst",
        "title: " + "x" * 301,
        "plans[0].strategies[0].items[1].title",
        "The text is 301 characters, which is too long (the limit is 300)",
        id="title-301",
    ),
    # YAML reads .inf and .nan as numbers; a measure's numbers must be real ones.
    pytest.param(
        "baseline: 15",
        "baseline: .inf",
        "plans[0].strategies[2].measures[2].baseline",
        "The value must be a finite number, not inf",
        id="infinite-baseline",
    ),
    pytest.param(
        "baseline: 30",
        "baseline: -.inf",
        "plans[0].strategies[0].measures[1].baseline",
        "The value must be a finite number, not -inf",
        id="negative-infinite-baseline",
    ),
    pytest.param(
        "target: 40\n",
        "target: .nan\n",
        "plans[0].strategies[2].measures[2].target",
        "The value must be a finite number, not nan",
        id="nan-target",
    ),
    pytest.param(
        "FY2026-Q4: {value: 30}",
        "FY2026-Q4: {value: .NaN}",
        "plans[0].strategies[0].measures[1].readings.FY2026-Q4.value",
        "The value must be a finite number, not nan",
        id="nan-reading",
    ),
    pytest.param(
        "FY2026-Q4: {value: 30}",
        "FY2026-Q4: .inf",
        "plans[0].strategies[0].measures[1].readings.FY2026-Q4.value",
        "The value must be a finite number, not inf",
        id="infinite-short-reading",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "reason"), BAD_FILES)
async def test_a_bad_file_names_the_file_path_and_reason_and_writes_nothing(
    sessions: Sessions, imported: ImportReport, demo_text: str, old: str, new: str, path: str, reason: str
):
    text = edit(demo_text, old, new)
    # YAML problems are reported by line: the last line of the edit is the offending one.
    line = text[: text.index(new) + len(new.rstrip("\n"))].count("\n") + 1
    expected_path = path.format(line=line)
    before = await row_counts(sessions)
    with pytest.raises(PlanFileError) as refused:
        await run_import(sessions, text, filename="plans/oit-reap-edited.yaml", now=LATER)
    assert (refused.value.filename, refused.value.path) == ("plans/oit-reap-edited.yaml", expected_path)
    assert str(refused.value).startswith(f"plans/oit-reap-edited.yaml: {expected_path}: {reason}")
    assert await row_counts(sessions) == before


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected a mapping starting with `version: 1`"),
        ("- version: 1\n", "expected a mapping starting with `version: 1`"),
    ],
)
def test_a_file_that_is_not_a_mapping_is_refused_without_a_path(text: str, reason: str):
    with pytest.raises(PlanFileError) as refused:
        parse_plan_file(text, filename="empty.yaml")
    assert str(refused.value) == f"empty.yaml: {reason}"


async def test_an_import_refused_halfway_rolls_back_what_it_had_already_written(
    sessions: Sessions, imported: ImportReport
):
    text = (
        "version: 1\n"
        "people:\n"
        "  - {user_id: U0DEICOORD, name: DEI Coordinator, department: DEI, role: coordinator}\n"
        "departments:\n"
        "  - {key: DEI, name: 'Office of Diversity, Equity and Inclusion'}\n"
        "plans:\n"
        "  - {key: OIT-REAP, department: DEI, title: Borrowed key, start: 2026-07-01, end: 2027-06-30}\n"
    )
    before = await row_counts(sessions)
    with pytest.raises(PlanFileError) as refused:
        await run_import(sessions, text, filename="dei.yaml", now=LATER)
    assert (
        str(refused.value)
        == "dei.yaml: plans[0].department: plan OIT-REAP already belongs to department OIT, not DEI"
    )
    assert await row_counts(sessions) == before


def test_yaml_words_like_no_stay_text_and_dates_may_be_quoted(demo_text: str):
    text = edit(demo_text, "FY2027-Q1: {value: 19}", "FY2027-Q1: {value: 19, note: no}")
    text = edit(text, "due: 2027-02-26", "due: '2027-02-26'")
    document = parse_plan_file(text, filename="oit-reap.yaml")
    assert document.plans[0].strategies[2].measures[2].readings["FY2027-Q1"].note == "no"
    assert document.plans[0].strategies[1].items[4].due == date(2027, 2, 26)


# --- Efficiency -------------------------------------------------------------------------------


def generated_plan(items: int) -> str:
    """A plan of `items` items in the flat plan-level list, as a generator would write it."""
    return yaml.safe_dump(
        {
            "version": 1,
            "people": [{"user_id": "U0OWNER", "name": "Item Owner"}],
            "departments": [{"key": "GEN", "name": "Generated department"}],
            "plans": [
                {
                    "key": "GEN-REAP",
                    "department": "GEN",
                    "title": "Generated plan",
                    "start": "2026-07-01",
                    "end": "2027-06-30",
                    "strategies": [{"key": "only", "name": "The only strategy"}],
                    "items": [
                        {
                            "key": f"item-{n}",
                            "title": f"Generated item {n}",
                            "strategy": "only",
                            "owner": "U0OWNER",
                            "due": "2027-01-15",
                            "status": "on_track",
                            "progress": n % 101,
                        }
                        for n in range(items)
                    ],
                }
            ],
        }
    )


async def statements_to_reimport(engine: AsyncEngine, sessions: Sessions, team: str, text: str) -> int:
    await run_import(sessions, text, team=team)
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        report = await run_import(sessions, text, team=team, now=LATER)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert report.changed is False
    return len(statements)


async def test_reimporting_loads_rows_in_bulk_so_200_items_cost_no_more_queries_than_20(
    engine: AsyncEngine, sessions: Sessions
):
    small = await statements_to_reimport(engine, sessions, "T0SMALL", generated_plan(20))
    large = await statements_to_reimport(engine, sessions, "T0LARGE", generated_plan(200))
    assert large == small
    async with sessions() as session:
        stored = (
            await session.exec(
                select(func.count()).select_from(ActionItem).where(ActionItem.team_id == "T0LARGE")
            )
        ).one()
    assert stored == 200


# --- Progress ---------------------------------------------------------------------------------


async def import_with_progress(sessions: Sessions, text: str, **kwargs: Any) -> list[tuple[str, int, int]]:
    steps: list[tuple[str, int, int]] = []
    async with transaction(sessions) as session:
        document = parse_plan_file(text, filename="generated.yaml")
        await import_plan(
            session,
            document=document,
            team_id=TEAM,
            now=kwargs.get("now", NOW),
            progress=lambda what, done, total: steps.append((what, done, total)),
        )
    return steps


async def test_progress_counts_every_part_of_the_file_once_and_ends_at_the_total(
    sessions: Sessions, demo_text: str
):
    steps = await import_with_progress(sessions, demo_text)
    total = steps[-1][2]
    # 1 department, 7 people, 1 plan + 3 strategies, 17 items, 8 measures + 24 readings, 4 meetings
    assert total == 1 + 7 + 4 + 17 + 32 + 4
    phases = ["departments", "people", "plans", "items", "measures", "meetings"]
    assert [what for what, _, _ in steps] == phases
    assert [done for _, done, _ in steps] == sorted(done for _, done, _ in steps)
    assert steps[-1][1] == total
    again = await import_with_progress(sessions, demo_text, now=LATER)
    assert again[-1][1:] == (total, total), "a re-import counts the compared items too"


async def test_new_items_are_written_in_batches_with_refs_in_file_order(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("plans.planfile.ITEM_BATCH", 4)
    steps = await import_with_progress(sessions, generated_plan(10))
    assert [(what, done) for what, done, _ in steps if what == "items"] == [
        ("items", 8),  # after 1 department, 1 person, 1 plan and its 1 strategy
        ("items", 12),
        ("items", 14),
    ]
    async with sessions() as session:
        items = list(await session.exec(select(ActionItem).order_by(col(ActionItem.number))))
        created = list(
            await session.exec(
                select(AuditEvent).where(AuditEvent.action == "create", AuditEvent.entity == "item")
            )
        )
    assert [(i.ref, i.import_key) for i in items] == [(f"GEN-{n + 1}", f"item-{n}") for n in range(10)]
    assert sorted(e.item_id for e in created) == sorted(i.id for i in items)
