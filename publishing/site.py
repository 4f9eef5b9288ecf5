"""Publish the public site: the published quarters from the database, rendered, written whole.

A site is written into a fresh folder beside its destination and swapped in only once every file
is there, so a failure part-way leaves the last good site serving. A folder that holds anything
but a site this publisher wrote is refused unless the operator says --force.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.errors import InvalidChange, ReapError
from domain.fiscal import FiscalQuarter
from domain.public import Edition
from reports.site import render_site
from storage.engine import Sessions
from storage.measures import parse_quarter
from storage.queries.public import frozen_quarters, public_edition, public_settings, record_changed_at

log = logging.getLogger(__name__)

# Written last into every site this publisher makes: what it holds, so the tick knows when the
# record has moved on, and so republishing over our own site needs no --force.
MARKER = ".reap-dashboard.json"


class FolderNotEmpty(ReapError):
    """The destination holds files this publisher did not write."""

    exit_code = 2

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        super().__init__(
            f"{folder} already holds files that are not a published dashboard; "
            "choose an empty folder, or --force to replace everything in it"
        )


@dataclass(frozen=True)
class Published:
    """What a publish wrote: where, which quarter its pages show, and how much."""

    folder: Path
    quarter: str
    quarters: list[str]
    current: str | None  # the provisional "as of" quarter, if one was published
    files: int
    size: int
    largest_page: int

    def summary(self) -> str:
        """One line for the operator."""
        current = f", and {self.current} so far" if self.current else ""
        return (
            f"published {self.quarter}{current} to {self.folder}: {self.files} files, "
            f"{self.size / 1024:.0f} KiB (largest page {self.largest_page / 1024:.0f} KiB); "
            f"data for {', '.join(self.quarters)}"
        )


async def load_editions(
    session: AsyncSession,
    *,
    team_id: str,
    today: date,
    zone: ZoneInfo,
    start_month: int,
    quarter: FiscalQuarter | None = None,
) -> list[Edition]:
    """The closed quarters to publish (up to `quarter`, if given) and, with no `quarter` asked for,
    the current one "as of" today when a plan opts in to that."""
    closed = await frozen_quarters(session, team_id=team_id)
    if quarter is not None:
        if quarter.label not in closed:
            raise InvalidChange(
                f"{quarter.label} is not closed, so it has no frozen record to publish"
                + (f" (closed: {', '.join(closed)})" if closed else "")
            )
        closed = [label for label in closed if label <= quarter.label]
    editions: list[Edition] = []
    for label in closed:
        edition = await public_edition(
            session,
            team_id=team_id,
            quarter=parse_quarter(label, start_month=start_month),
            today=today,
            zone=zone,
        )
        if edition is not None:
            editions.append(edition)
    if quarter is None:
        now = FiscalQuarter.containing(today, start_month)
        settings = await public_settings(session, team_id=team_id, as_of=today)
        if now.label not in closed and any(s.as_of for s in settings.values()):
            current = await public_edition(
                session, team_id=team_id, quarter=now, today=today, zone=zone, provisional=True
            )
            if current is not None and current.departments:
                editions.append(current)
    if not editions:
        raise InvalidChange(
            "no quarter has been closed yet, so there is nothing to publish "
            "(closing a quarter's check-in freezes it)"
        )
    return editions


def _marker(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _foreign(folder: Path) -> bool:
    """Whether `folder` exists with something in it that is not our own published site."""
    if not folder.exists():
        return False
    if not folder.is_dir():
        return True
    return any(folder.iterdir()) and _marker(folder) is None


def _relative(path: str) -> PurePosixPath:
    found = PurePosixPath(path)
    if found.is_absolute() or ".." in found.parts or not found.parts:
        raise ValueError(f"refusing to write {path!r} outside the site")
    return found


def write_site(
    files: Mapping[str, bytes], folder: Path, *, marker: Mapping[str, object], force: bool
) -> None:
    """Write every file into a new folder beside `folder`, then swap it in (the old one is removed)."""
    folder = folder.absolute()
    if _foreign(folder) and not force:
        raise FolderNotEmpty(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new-", dir=folder.parent))
    try:
        os.chmod(fresh, 0o755)
        for path, content in sorted(files.items()):
            target = fresh.joinpath(*_relative(path).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        (fresh / MARKER).write_text(json.dumps(dict(marker), sort_keys=True) + "\n", encoding="utf-8")
        old: Path | None = None
        if folder.exists() or folder.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            old.rmdir()
            folder.rename(old)
        fresh.rename(folder)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


async def publish(
    session: AsyncSession,
    *,
    team_id: str,
    folder: Path,
    today: date,
    zone: ZoneInfo,
    start_month: int,
    quarter: FiscalQuarter | None = None,
    force: bool = False,
) -> Published:
    """Publish the site for the workspace into `folder`: the newest closed quarter (or `quarter`)."""
    editions = await load_editions(
        session, team_id=team_id, today=today, zone=zone, start_month=start_month, quarter=quarter
    )
    changed = await record_changed_at(session, team_id=team_id)
    daily = quarter is None and any(
        s.as_of for s in (await public_settings(session, team_id=team_id, as_of=today)).values()
    )
    # Rendering is CPU work on plain values: a thread, so a serving process keeps answering.
    files = await asyncio.to_thread(render_site, editions)
    current = next((e for e in editions if e.provisional), None)
    shown = next((e for e in reversed(editions) if not e.provisional), editions[-1])
    marker = {
        "quarter": shown.quarter,
        "record": changed.isoformat() if changed else None,
        # Only a plan publishing its quarter "as of" makes the site depend on the day.
        "day": today.isoformat() if daily else None,
        "asked": quarter.label if quarter else None,
    }
    await asyncio.to_thread(write_site, files, folder, marker=marker, force=force)
    pages = [len(content) for path, content in files.items() if path.endswith(".html")]
    return Published(
        folder=folder,
        quarter=shown.quarter,
        quarters=[e.quarter for e in editions if not e.provisional],
        current=current.quarter if current else None,
        files=len(files),
        size=sum(len(content) for content in files.values()),
        largest_page=max(pages, default=0),
    )


async def publish_if_due(
    sessions: Sessions,
    *,
    team_id: str,
    folder: Path,
    now: datetime,
    zone: ZoneInfo,
    start_month: int,
) -> Published | None:
    """The tick's step: republish when the record changed since the copy in `folder` was written
    (a quarter closed or was amended), or once a day while a plan publishes its quarter "as of"."""
    today = now.astimezone(zone).date()
    async with sessions() as session:
        changed = await record_changed_at(session, team_id=team_id)
        settings = await public_settings(session, team_id=team_id, as_of=today)
    daily = any(s.as_of for s in settings.values())
    if changed is None and not daily:
        return None
    marker = await asyncio.to_thread(_marker, folder)
    if marker is not None and marker.get("asked"):
        return None  # an operator pinned a quarter with `reap publish --quarter`; leave it
    recorded = changed.isoformat() if changed else None
    stale = (
        marker is None
        or marker.get("record") != recorded
        or (daily and marker.get("day") != today.isoformat())
    )
    if not stale:
        return None
    async with sessions() as session:
        try:
            return await publish(
                session, team_id=team_id, folder=folder, today=today, zone=zone, start_month=start_month
            )
        except InvalidChange:
            return None  # nothing closed and nothing "as of" yet
