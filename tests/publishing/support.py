"""The demo plan with private things planted in it, its FY2027-Q2 frozen, ready to publish."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlmodel import select

from domain.commitments import ChangeKind
from domain.fiscal import FiscalQuarter
from plans.planfile import import_plan, parse_plan_file
from publishing.site import Published, publish
from storage.changes import propose_change
from storage.engine import Sessions, transaction
from storage.items import add_note, update_item
from storage.models import ActionItemUpdate, Person
from storage.permissions import Actor
from storage.snapshots import freeze_quarter

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "oit-reap.yaml"
TEAM = "T0REAP"
ZONE = ZoneInfo("America/New_York")
Q2 = FiscalQuarter(2027, 2)
IMPORTED = datetime(2026, 11, 30, 15, tzinfo=UTC)
PLANTED_AT = datetime(2027, 1, 8, 15, tzinfo=UTC)
CLOSED = datetime(2027, 1, 15, 17, tzinfo=UTC)
TODAY = date(2027, 1, 20)
COORDINATOR = Actor(TEAM, "U0EQUITYPM")

# Things that must never reach the public site unless a plan opts in.
OWNER_NAME = "Zelda Plantedname"
PRIVATE_NOTE = "PRIVATE-NOTE-5d1e the analyst's salary band is under review"
REQUEST_REASON = "REQUEST-REASON-77ab family leave until March"
READING_NOTE = "Piloted on 4 of 20 intake requests."  # a reading's note in the demo plan
HOSTILE_TITLE = '<script>alert("owned")</script> Publish the <b>device</b> map & data'
SLACK_IDS = (
    "U0EQUITYPM",
    "U0PMODIR",
    "U0TALENTLD",
    "U0LEARNDEV",
    "U0DIGEQMGR",
    "U0WIFILEAD",
    "U0GISANLST",
    "C0OITREAP",
    TEAM,
)
SECRETS = (OWNER_NAME, PRIVATE_NOTE, REQUEST_REASON, READING_NOTE, *SLACK_IDS)


async def demo_record(sessions: Sessions) -> None:
    """Import the demo plan, plant an owner's name, a private note, a change request and a hostile
    title, and close FY2027-Q2."""
    document = parse_plan_file(DEMO.read_text(encoding="utf-8"), filename="oit-reap.yaml")
    system = Actor.system(TEAM)
    async with transaction(sessions) as session:
        await import_plan(session, document=document, team_id=TEAM, now=IMPORTED)
    async with transaction(sessions) as session:
        owner = (await session.exec(select(Person).where(Person.user_id == "U0PMODIR"))).one()
        owner.name = OWNER_NAME
        session.add(owner)
        await add_note(session, ref="OIT-2", text=PRIVATE_NOTE, actor=COORDINATOR, now=PLANTED_AT)
        await update_item(
            session, ref="OIT-4", changes=ActionItemUpdate(title=HOSTILE_TITLE), actor=system, now=PLANTED_AT
        )
        await propose_change(
            session,
            actor=Actor(TEAM, "U0PMODIR"),
            ref="OIT-3",
            kind=ChangeKind.REDATE,
            value="2027-06-30",
            reason=REQUEST_REASON,
            today=PLANTED_AT.date(),
            now=PLANTED_AT,
        )
    async with transaction(sessions) as session:
        await freeze_quarter(session, actor=COORDINATOR, quarter=Q2, now=CLOSED, zone=ZONE)


async def publish_demo(sessions: Sessions, folder: Path, *, force: bool = False) -> Published:
    """Publish the workspace's dashboard into `folder` as of TODAY."""
    async with sessions() as session:
        return await publish(
            session, team_id=TEAM, folder=folder, today=TODAY, zone=ZONE, start_month=7, force=force
        )


def site_files(folder: Path) -> dict[str, bytes]:
    """Every file of a published site by its path (the publisher's marker included)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
