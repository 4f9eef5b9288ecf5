"""`reap shell`: the real app on loopback against localslack, driven from a terminal or a script.

The console is a Slack client: it signs each request with the app's signing secret and sends it
through the same HTTP path Slack uses (uvicorn -> create_asgi -> Bolt), then reads what the bot
posted back from localslack and prints it, rendered from Block Kit by localslack.render. Nothing in the
app knows it is being driven by a console.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import shlex
import signal
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from pydantic import SecretStr
from sqlmodel import col, select

from bot.app import ReapApp, create_app
from bot.server import create_asgi
from bot.settings import Settings
from bot.signing import signed_headers
from bot.slack import learn_workspace
from commands import SHORTCUTS
from domain.errors import ReapError
from domain.status import Role
from localslack import payloads
from localslack.render import (
    ControlError,
    Origin,
    Rendered,
    modal_state,
    render_message,
    render_view,
)
from localslack.server import LocalSlack, Message
from storage.engine import Sessions, create_engine, session_factory
from storage.migrate import current_revision, upgrade_async
from storage.models import Department, Installation
from storage.models import Person as PersonRow

log = logging.getLogger(__name__)

DEMO_TEAM = "T0REAP"
# Package data, so `reap shell --demo` works from an installed wheel (examples/oit-reap.yaml is its twin).
DEMO_PLAN = resources.files("plans").joinpath("demo/oit-reap.yaml")
# The demo starts half an hour before reminders go out on Wednesday 6 January 2027, the day the
# demo plan's FY2027-Q2 check-in opens (ten business days before its 21 January DEI meeting), so
# the README's first `:clock 2027-01-06 09:00` brings digests and check-in prompts.
DEMO_START = datetime(2027, 1, 6, 8, 30, tzinfo=ZoneInfo("America/New_York"))
# Rollups go to a DEI channel and each department's channel; the demo has one of each.
DEMO_DEI_ID, DEMO_DEI_NAME = "C0DEI", "dei"
GENERAL_ID, GENERAL_NAME = "C0GENERAL", "general"
DEMO_ADMIN_ID = "U0ADMIN"
# The app's one message shortcut ("Create action item"), which `:shortcut N` uses.
SHORTCUT_ID = next(iter(SHORTCUTS))

HELP = """\
/reap <text>            send a slash command as the current user (e.g. /reap list mine)
:as @name | U123        act as someone else (:users lists everyone and their role)
:click N [option]       press control N of your last message (menus: :click 2 1 week)
:submit field=value ... submit the open modal (quote values with spaces: note="on hold")
:say <text>             post a message as yourself in #general
:shortcut N             run "Create action item" on message N (the number in its heading)
:home                   open the App Home tab and show it
:clock [YYYY-MM-DD HH:MM]  show or move the bot's clock (local time) and run the reminder tick
:users                  list the workspace's people
:help                   this list
:quit                   leave (so does end of input)"""


class ShellError(ReapError):
    """Something typed into the console that it cannot carry out."""


class DemoUnavailable(ShellError):
    """--demo cannot start: the plan loader or the demo plan is missing."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"reap shell --demo is not available: {reason}")


class DatabaseNotReady(ShellError):
    """The configured database has never been migrated."""

    def __init__(self) -> None:
        super().__init__(
            "the database has no tables yet; run `reap db upgrade` (and `reap import plan.yaml`) "
            "first, or try `reap shell --demo`"
        )


class PlanNeedsDemo(ShellError):
    """A plan file was given without --demo, where it would be written into a real database."""

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"a plan file ({path}) is only loaded into the --demo database; "
            "use `reap import` to load it into yours"
        )


class ServerDidNotStart(ShellError):
    """uvicorn never reported that it was listening."""

    def __init__(self) -> None:
        super().__init__("the local server did not start on 127.0.0.1")


class UnknownUser(ShellError):
    """`:as` named nobody (or several people)."""

    def __init__(self, wanted: str, candidates: list[str]) -> None:
        self.wanted = wanted
        self.candidates = candidates
        hint = f"did you mean {', '.join(candidates)}?" if candidates else "type :users to see who is here"
        super().__init__(f"no single person matches '{wanted}'; {hint}")


class NoSuchControl(ShellError):
    """`:click N` with no control N on the current user's last message."""

    def __init__(self, wanted: str, count: int, where: str) -> None:
        super().__init__(f"there is no control '{wanted}' on {where}; its controls are numbered 1 to {count}")


class NothingToPress(ShellError):
    """`:click` when nothing with controls has been shown to the current user."""

    def __init__(self, handle: str) -> None:
        super().__init__(f"nothing clickable has been shown to {handle} yet (:as @name to be someone else)")


class NoSuchMessage(ShellError):
    """`:shortcut N` with no message N."""

    def __init__(self, wanted: str, count: int) -> None:
        shown = f"messages are numbered 1 to {count}" if count else "no message has been shown yet"
        super().__init__(f"there is no message '{wanted}'; {shown} (the number is in each heading)")


class NoOpenModal(ShellError):
    """`:submit` with no modal open."""

    def __init__(self) -> None:
        super().__init__("no modal is open; open one first (e.g. /reap add, or :click an Update button)")


class BadInput(ShellError):
    """A console command was written wrongly; the message shows the right form."""

    def __init__(self, problem: str, usage: str) -> None:
        self.problem = problem
        self.usage = usage
        super().__init__(f"{problem}; usage: {usage}")


class UnknownCommand(ShellError):
    """A line that is neither /reap nor a :command."""

    def __init__(self, line: str) -> None:
        super().__init__(f"'{line[:40]}' is not something I can send; type /reap ... or :help")


# --- pure helpers ---------------------------------------------------------------------------------


def handle_for(user_id: str) -> str:
    """A short Slack-style handle for a user id: U0EQUITYPM -> equitypm."""
    lowered = user_id.lower()
    return lowered.removeprefix("u0") if lowered.startswith("u0") and len(lowered) > 2 else lowered


def slack_escape(text: str) -> str:
    """Escape & < > exactly as Slack does in slash-command text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MENTION = re.compile(r"(?<![\w&;<@])@([A-Za-z0-9][\w.\-]*)")
_CHANNEL_REF = re.compile(r"(?<![\w&;<#])#([A-Za-z0-9][\w.\-]*)")


def link_mentions(text: str, *, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """Turn @handle and #channel into Slack's <@U123|handle> and <#C123|name> markup.

    `users` maps user id -> handle and `channels` channel id -> name; unknown names stay as typed,
    as Slack leaves them.
    """
    by_handle = {h.lower(): uid for uid, h in users.items()}
    by_channel = {n.lower(): cid for cid, n in channels.items()}

    def user(match: re.Match[str]) -> str:
        name = match[1].rstrip(".-")
        rest = match[1][len(name) :]
        uid = by_handle.get(name.lower()) or (name.upper() if name.upper() in users else None)
        return f"<@{uid}|{users[uid]}>{rest}" if uid else match[0]

    def channel(match: re.Match[str]) -> str:
        name = match[1].rstrip(".-")
        rest = match[1][len(name) :]
        cid = by_channel.get(name.lower()) or (name.upper() if name.upper() in channels else None)
        return f"<#{cid}|{channels[cid]}>{rest}" if cid else match[0]

    return _CHANNEL_REF.sub(channel, _MENTION.sub(user, text))


def parse_fields(text: str) -> dict[str, str]:
    """`a=1 note="two words"` -> {"a": "1", "note": "two words"} (shell-style quoting)."""
    usage = ':submit field=value ... (quote values with spaces: note="on hold")'
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise BadInput(f"cannot read the values ({exc})", usage) from None
    fields: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name:
            raise BadInput(f"'{word}' is not field=value", usage)
        fields[name] = value
    return fields


def parse_clock(text: str, zone: ZoneInfo) -> datetime:
    """`2027-03-30 09:00` (or just a date, meaning 09:00) in `zone`; an explicit offset wins."""
    usage = ":clock YYYY-MM-DD HH:MM"
    cleaned = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", cleaned):
        cleaned += " 09:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise BadInput(f"'{text.strip()}' is not a date and time", usage) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """Slack's v0 signature headers for exactly these bytes."""
    return signed_headers(body, secret=secret, timestamp=timestamp)


# --- the workspace --------------------------------------------------------------------------------


@dataclass
class Clock:
    """The settable clock the app reads instead of the real one."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Member:
    """Someone in the workspace the console can act as."""

    user_id: str
    handle: str
    name: str
    tz: str
    about: str = ""
    role: str = "member"


@dataclass
class Workspace:
    """Who and what exists: the team, its people, its channels, and who to start as."""

    team_id: str
    people: list[Member]
    channels: dict[str, str]
    admins: list[str]
    start_as: str


@dataclass
class World:
    """The running app and the Slack around it."""

    slack: LocalSlack
    app: ReapApp
    url: str
    http: httpx.AsyncClient
    clock: Clock
    secret: str
    workspace: Workspace
    files: Path


async def _demo_workspace(
    sessions: Sessions, database_url: str, plan_path: Path | Traversable, *, now: datetime, zone: str
) -> Workspace:
    """Migrate a fresh database and load the plan file into it; its people become the workspace.

    The demo's one admin is a person of its own (@admin), so everyone else has exactly the role
    the plan gives them and `:users` shows.
    """
    try:
        from plans.planfile import import_plan, parse_plan_file
    except ImportError as exc:
        raise DemoUnavailable(f"the plan loader (plans.planfile) is not importable: {exc}") from None
    try:
        text = await asyncio.to_thread(plan_path.read_text, encoding="utf-8")
    except OSError as exc:
        raise DemoUnavailable(f"cannot read {plan_path} ({exc.strerror})") from None
    document = parse_plan_file(text, filename=str(plan_path))
    team_id = document.workspace or DEMO_TEAM
    await upgrade_async(database_url)
    async with sessions() as session, session.begin():
        await import_plan(session, document=document, team_id=team_id, now=now)
    admins = [DEMO_ADMIN_ID]
    people = await _members(sessions, team_id=team_id, admins=admins, zone=zone)
    coordinators = [p.user_id for p in people if p.role in (Role.DEI, Role.COORDINATOR)]
    start_as = coordinators[0] if coordinators else DEMO_ADMIN_ID
    departments = await _report_channels(sessions, team_id)
    return Workspace(team_id, people, departments, admins=admins, start_as=start_as)


async def _existing_workspace(sessions: Sessions, settings: Settings) -> Workspace:
    """The people and channels already in the configured database."""
    async with sessions() as session:
        installed = (await session.exec(select(Installation))).first()
        first = (await session.exec(select(Department))).first()
    team_id = installed.team_id if installed else first.team_id if first else DEMO_TEAM
    admins = list(settings.admins)
    people = await _members(sessions, team_id=team_id, admins=admins, zone=settings.timezone)
    if not people:
        people.append(Member(DEMO_ADMIN_ID, handle_for(DEMO_ADMIN_ID), "You", settings.timezone))
    # An admin can try everything, then a coordinator most things.
    ranked = [
        *admins,
        *(p.user_id for r in (Role.ADMIN, Role.DEI, Role.COORDINATOR) for p in people if p.role == r),
    ]
    start_as = ranked[0] if ranked else people[0].user_id
    channels = await _report_channels(sessions, team_id)
    return Workspace(team_id, people, channels, admins=admins, start_as=start_as)


async def _members(sessions: Sessions, *, team_id: str, admins: list[str], zone: str) -> list[Member]:
    """The workspace's people with the rights the app gives them: role and department from the
    database, admin by stored role or REAP_ADMINS (so `:users` says no less than the truth)."""
    async with sessions() as session:
        rows = list(
            await session.exec(
                select(PersonRow).where(PersonRow.team_id == team_id).order_by(col(PersonRow.id))
            )
        )
        keys = {
            d.id: d.key for d in await session.exec(select(Department).where(Department.team_id == team_id))
        }
    people = [
        Member(
            user_id=row.user_id,
            handle=handle_for(row.user_id),
            name=row.name or row.user_id,
            tz=row.tz or zone,
            about=_about(row, keys.get(row.department_id), bootstrap_admin=row.user_id in admins),
            role=row.role,
        )
        for row in rows
        if row.user_id.startswith(("U", "W"))
    ]
    known = {p.user_id for p in people}
    for admin in admins:
        if admin not in known and admin.startswith(("U", "W")):
            name = "REAP admin" if admin == DEMO_ADMIN_ID else admin
            people.append(Member(admin, handle_for(admin), name, zone, "admin", role="admin"))
    return people


def _about(row: PersonRow, department: str | None, *, bootstrap_admin: bool) -> str:
    """`coordinator · OIT · title`: what the app lets someone do, then who they are."""
    rights = []
    # As the app decides: an admin by stored role, or listed in REAP_ADMINS.
    if bootstrap_admin or (row.role == Role.ADMIN.value and row.active):
        rights.append("admin")
    if row.role not in (Role.ADMIN.value, Role.MEMBER.value):
        rights.append(Role(row.role).label)
    if not row.active:
        rights.append("gone from Slack")
    return " · ".join(x for x in (*(rights or [Role.MEMBER.value]), department, row.title) if x)


async def _report_channels(sessions: Sessions, team_id: str) -> dict[str, str]:
    """Each department's report channel id -> a name for it (#oit-reap)."""
    async with sessions() as session:
        departments = list(await session.exec(select(Department).where(Department.team_id == team_id)))
    return {d.report_channel: f"{d.key.lower()}-reap" for d in departments if d.report_channel}


@asynccontextmanager
async def running_world(
    settings: Settings, *, demo: bool, plan_file: Path | None, now: datetime, files: Path
) -> AsyncIterator[World]:
    """Start localslack, the database and the real app under uvicorn; stop them all on exit.

    Files the bot uploads are saved into `files`, which outlives the world so they can be opened.
    """
    if plan_file is not None and not demo:
        raise PlanNeedsDemo(plan_file)
    async with AsyncExitStack() as stack:
        database_url = settings.database_url
        if demo:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="reap-shell-"))
            database_url = f"sqlite+aiosqlite:///{Path(folder) / 'reap.db'}"
        elif await current_revision(database_url) is None:
            raise DatabaseNotReady()
        engine = create_engine(database_url)
        stack.push_async_callback(engine.dispose)
        sessions = session_factory(engine)
        clock = Clock(now)
        if demo:
            workspace = await _demo_workspace(
                sessions, database_url, plan_file or DEMO_PLAN, now=now, zone=settings.timezone
            )
        else:
            workspace = await _existing_workspace(sessions, settings)

        slack = LocalSlack(team_id=workspace.team_id).start()
        stack.callback(slack.stop)
        for person in workspace.people:
            slack.add_user(person.user_id, person.handle, tz=person.tz, real_name=person.name)
        channels = {GENERAL_ID: GENERAL_NAME, **workspace.channels}
        dei_channel = settings.dei_channel or (DEMO_DEI_ID if demo else None)
        if dei_channel and dei_channel.startswith(("C", "G")):
            channels.setdefault(dei_channel, DEMO_DEI_NAME)
        for channel_id, name in channels.items():
            slack.add_channel(channel_id, name)
        workspace.channels = channels

        secret = secrets.token_hex(16)
        app_settings = settings.model_copy(
            update={
                "database_url": database_url,
                "slack_bot_token": SecretStr("xoxb-local"),
                "slack_signing_secret": SecretStr(secret),
                "slack_app_token": None,
                "slack_api_url": slack.base_url,
                "slack_timeout_seconds": 5.0,
                "admins": workspace.admins,
                "dei_channel": dei_channel,
            }
        )
        app = create_app(app_settings, sessions=sessions, clock=clock)
        stack.push_async_callback(app.close)
        await app.learn_identity()
        if demo:
            # Record the installation as a first `reap serve` would, for code that asks for it.
            await learn_workspace(sessions, app.client, now=now)

        server = uvicorn.Server(
            uvicorn.Config(
                create_asgi(app),
                host="127.0.0.1",
                port=0,
                log_level="warning",
                log_config=None,  # uvicorn's lines go where ours do: the session's log file
                lifespan="off",
                ws="none",
            )
        )
        task = asyncio.create_task(server.serve())

        async def stop_server() -> None:
            server.should_exit = True
            await task

        stack.push_async_callback(stop_server)
        for _ in range(1000):  # uvicorn offers no "started" event; poll briefly
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise ServerDidNotStart()
        port = server.servers[0].sockets[0].getsockname()[1]
        http = httpx.AsyncClient(timeout=30)
        stack.push_async_callback(http.aclose)
        yield World(slack, app, f"http://127.0.0.1:{port}", http, clock, secret, workspace, files)


# --- the console ----------------------------------------------------------------------------------


@dataclass
class Seen:
    """What of localslack's record has already been printed."""

    responses: int = 0
    ephemerals: int = 0
    messages: dict[tuple[str, str], int] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)
    homes: dict[str, str] = field(default_factory=dict)


@dataclass
class OpenModal:
    """The modal on screen and whose screen it is on."""

    view: dict[str, Any]
    user_id: str


@dataclass
class Shown:
    """A message that was given a number, so `:shortcut N` can name it."""

    channel: str
    where: str
    message: dict[str, Any]  # as Slack puts it in a shortcut's payload


@dataclass
class Part:
    """One labelled thing a step printed: who sees it, and its number if it is a message."""

    label: str
    rendered: Rendered
    audience: str | None  # the one person who sees it; None in a channel, where anyone may press
    number: int | None = None

    @property
    def heading(self) -> str:
        """The label, and the message number `:shortcut` takes."""
        return f"{self.label} · message {self.number}" if self.number else self.label


@dataclass
class Batch:
    """What one step printed, in order."""

    parts: list[Part] = field(default_factory=list)

    def add(self, label: str, rendered: Rendered, audience: str | None, number: int | None = None) -> None:
        """One labelled part; its controls are numbered from 1."""
        self.parts.append(Part(label, rendered, audience, number))


class Shell:
    """One console session: who you are, what is on screen, and how to say it to the bot."""

    def __init__(self, world: World, out: TextIO, *, color: bool, log: LogFile | None = None) -> None:
        self.world = world
        self.out = out
        self.color = color
        self.log = log
        self.user = world.workspace.start_as
        self.modal: OpenModal | None = None
        self.seen = Seen()
        self.shown: list[Shown] = []  # message N is shown[N - 1]
        self._numbers: dict[tuple[str, str], int] = {}
        # Each person's latest part with controls (None: a channel's), and when it was printed:
        # `:click N` presses only the current person's, so a script never reaches someone else's.
        self._pressable: dict[str | None, tuple[int, Part]] = {}
        self._order = itertools.count(1)
        self._saved: dict[tuple[str, bytes], Path] = {}
        self._events = itertools.count(1)
        self._mark_seen()

    # -- people -------------------------------------------------------------------------------

    @property
    def handles(self) -> dict[str, str]:
        """User id -> handle for everyone in the workspace."""
        return {p.user_id: p.handle for p in self.world.workspace.people}

    @property
    def names(self) -> dict[str, str]:
        """Ids of people and channels -> how they are shown."""
        return {**self.handles, **self.world.workspace.channels}

    def at(self, user_id: str) -> str:
        """@handle for a user id."""
        return "@" + self.handles.get(user_id, user_id)

    def find_person(self, wanted: str) -> Member:
        """The one person `wanted` names: an id, a handle, a name, or a unique part of one.

        An unknown user id (U...) joins the workspace, so first contact can be tried.
        """
        raw = wanted.strip().removeprefix("@")
        key = raw.lower()
        people = self.world.workspace.people
        for same in (
            lambda p: p.user_id.lower() == key,
            lambda p: p.handle.lower() == key,
            lambda p: p.name.lower() == key,
        ):
            found = [p for p in people if same(p)]
            if len(found) == 1:
                return found[0]
        starts = [p for p in people if key and p.handle.lower().startswith(key)]
        if len(starts) == 1:
            return starts[0]
        partial = [p for p in people if key and (key in p.handle.lower() or key in p.name.lower())]
        if len(partial) == 1:
            return partial[0]
        if not partial and re.fullmatch(r"[UW][A-Z0-9]{2,}", raw):
            newcomer = Member(raw, handle_for(raw), raw, self.world.app.settings.timezone, "new here")
            self.world.slack.add_user(newcomer.user_id, newcomer.handle, tz=newcomer.tz)
            people.append(newcomer)
            return newcomer
        raise UnknownUser(wanted, [f"@{p.handle}" for p in partial[:5]])

    # -- output -------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        """Write text and a newline to the output."""
        self.out.write(text + "\n")
        self.out.flush()

    def show(self, label: str, text: str) -> None:
        """A labelled, indented block of output."""
        head = f"\x1b[36m── {label}\x1b[0m" if self.color else f"── {label}"
        body = text.strip("\n") or "(empty)"
        self.say(head + "\n" + "\n".join("   " + line if line else "" for line in body.split("\n")))

    def _mark_seen(self) -> None:
        slack = self.world.slack
        self.seen.responses = len(slack.responses())
        self.seen.ephemerals = len(slack.ephemerals())
        self.seen.messages = {(m.channel, m.ts): m.edits for m in slack.messages()}
        self.seen.views = {vid: v["hash"] for vid, v in slack.views().items()}
        for person in self.world.workspace.people:
            home = slack.home_view(person.user_id)
            if home is not None:
                self.seen.homes[person.user_id] = home["hash"]

    def _dm_owner(self, channel: str) -> str | None:
        slack = self.world.slack
        return next(
            (p.user_id for p in self.world.workspace.people if slack.dm_channel(p.user_id) == channel), None
        )

    def _where(self, channel: str) -> str:
        owner = self._dm_owner(channel)
        if owner is not None:
            return f"DM to {self.at(owner)}"
        return "#" + self.world.workspace.channels.get(channel, channel)

    def _message_json(self, m: Message) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "message",
            "user": m.user,
            "bot_id": self.world.slack.bot_id,
            "ts": m.ts,
            "text": m.text,
            "blocks": m.blocks,
        }
        if m.thread_ts:
            data["thread_ts"] = m.thread_ts
        return data

    def _number(self, channel: str, where: str, message: dict[str, Any]) -> int:
        """The message's number, given the first time it is shown and kept through edits."""
        key = (channel, str(message.get("ts")))
        if key not in self._numbers:
            self.shown.append(Shown(channel, where, message))
            self._numbers[key] = len(self.shown)
        return self._numbers[key]

    def _message(self, m: Message, files: Mapping[str, dict[str, Any]]) -> Rendered:
        origin = Origin(channel=m.channel, ts=m.ts, message=self._message_json(m))
        rendered = render_message(m.blocks, text=m.text, names=self.names, origin=origin, color=self.color)
        shared = [self._shared_file(file_id, files.get(file_id)) for file_id in m.files]
        return Rendered("\n".join(x for x in (rendered.text, *shared) if x), rendered.controls)

    def _shared_file(self, file_id: str, upload: dict[str, Any] | None) -> str:
        """What a file share shows: its alt text, and where the console saved it."""
        if upload is None:
            return f"[file {file_id}: not uploaded]"
        data = upload.get("bytes") or b""
        name = Path(str(upload.get("filename") or file_id)).name  # a name, never a path, from the bot
        path = self._saved.get((name, data))
        if path is None:
            path = _unused(self.world.files / name)
            path.write_bytes(data)
            self._saved[(name, data)] = path
        alt = upload.get("alt_txt") or upload.get("title") or name
        return f"[{alt}]\nsaved to {path}"

    def _reply(self, body: dict[str, Any], *, ephemeral: bool) -> Rendered:
        return render_message(
            body.get("blocks") or [],
            text=str(body.get("text") or ""),
            names=self.names,
            origin=Origin(channel=GENERAL_ID, ts=_fake_ts(), ephemeral=ephemeral),
            color=self.color,
        )

    def _view(self, view: dict[str, Any]) -> Rendered:
        return render_view(view, names=self.names, color=self.color)

    def report(self, ack: httpx.Response | None = None) -> bool:
        """Print the HTTP answer and everything new the bot posted; False if the app answered an error."""
        batch = Batch()
        ok = True
        if ack is not None:
            ok = self._ack(ack, batch)
        self._collect(batch)
        for part in batch.parts:
            self.show(part.heading, part.rendered.text)
            if part.rendered.controls:
                self._pressable[part.audience] = (next(self._order), part)
        if ack is not None and not batch.parts and ok:
            self.say("   (no reply)")
        return ok

    def last_pressable(self, user_id: str) -> Part | None:
        """The latest thing with controls that this person sees: their own, or one in a channel."""
        found = [p for p in (self._pressable.get(user_id), self._pressable.get(None)) if p is not None]
        return max(found, key=lambda shown: shown[0])[1] if found else None

    def _ack(self, ack: httpx.Response, batch: Batch) -> bool:
        if ack.status_code >= 400:
            self.show(f"HTTP {ack.status_code} from the app", ack.text)
            return False
        if not ack.content:
            return True
        try:
            body = ack.json()
        except ValueError:
            self.show("answer", ack.text)
            return True
        if not isinstance(body, dict):
            return True
        action = body.get("response_action")
        if action == "errors":
            errors = body.get("errors") or {}
            self.show("the modal says", "\n".join(f"{k}: {v}" for k, v in errors.items()))
        elif action == "clear":
            self.modal = None
        elif action in ("update", "push") and isinstance(body.get("view"), dict):
            view = body["view"]
            if self.modal is not None:
                self.modal.view = {**self.modal.view, **view}
            viewer = self.modal.user_id if self.modal is not None else self.user
            batch.add(f"modal {action}d", self._view(view), viewer)
        elif "text" in body or "blocks" in body:
            everyone = body.get("response_type") == "in_channel"
            label = (
                "reply, everyone in #general sees it"
                if everyone
                else f"reply, only {self.at(self.user)} sees it"
            )
            batch.add(label, self._reply(body, ephemeral=not everyone), None if everyone else self.user)
        return True

    def _is_new(self, m: Message) -> bool:
        before = self.seen.messages.get((m.channel, m.ts))
        return before is None or before < m.edits

    def _in_order(self, messages: list[Message]) -> list[Message]:
        """One step's messages by recipient (people, then channels, each in workspace order), so a
        script's message numbers are the same every run however the bot's sends interleaved;
        within one DM or channel they stay in the order they were posted."""
        people = [p.user_id for p in self.world.workspace.people]
        channels = list(self.world.workspace.channels)

        def place(m: Message) -> tuple[int, int]:
            owner = self._dm_owner(m.channel)
            if owner is not None:
                return (0, people.index(owner))
            return (1, channels.index(m.channel) if m.channel in channels else len(channels))

        return sorted(messages, key=place)

    def _collect(self, batch: Batch) -> None:
        slack = self.world.slack
        responses = slack.responses()
        for body in responses[self.seen.responses :]:
            if body.get("delete_original"):
                batch.add("reply deleted", Rendered("(the original message is gone)"), self.user)
                continue
            everyone = body.get("response_type") == "in_channel"
            label = "reply (replaces the original)" if body.get("replace_original") else "reply"
            batch.add(label, self._reply(body, ephemeral=not everyone), None if everyone else self.user)
        self.seen.responses = len(responses)

        ephemerals = slack.ephemerals()
        for eph in ephemerals[self.seen.ephemerals :]:
            origin = Origin(channel=eph["channel"], ts=eph["ts"], ephemeral=True)
            batch.add(
                f"only {self.at(eph['user'])} sees, in {self._where(eph['channel'])}",
                render_message(
                    eph["blocks"], text=eph["text"], names=self.names, origin=origin, color=self.color
                ),
                eph["user"],
            )
        self.seen.ephemerals = len(ephemerals)

        files = {f["id"]: f for f in slack.files()}
        for m in self._in_order([m for m in slack.messages() if self._is_new(m)]):
            before = self.seen.messages.get((m.channel, m.ts))
            self.seen.messages[(m.channel, m.ts)] = m.edits
            where = self._where(m.channel)
            label = where
            if m.thread_ts and m.thread_ts != m.ts:
                label += ", in a thread"
            if m.files:
                label += ", file " + ", ".join(str(files.get(f, {}).get("title") or f) for f in m.files)
            if before is not None:
                label += " (updated)"
            number = self._number(m.channel, where, self._message_json(m))
            batch.add(label, self._message(m, files), self._dm_owner(m.channel), number)

        for view_id, view in slack.views().items():
            if view.get("type") != "modal" or self.seen.views.get(view_id) == view.get("hash"):
                continue
            updated = view_id in self.seen.views
            self.seen.views[view_id] = view["hash"]
            if updated and self.modal is not None and self.modal.view.get("id") == view_id:
                self.modal.view = view
            else:
                self.modal = OpenModal(view, self.user)
            title = "modal updated" if updated else "modal opened"
            viewer = self.modal.user_id
            batch.add(f"{title} for {self.at(viewer)}", self._view(view), viewer)

        for person in self.world.workspace.people:
            home = slack.home_view(person.user_id)
            if home is None or self.seen.homes.get(person.user_id) == home["hash"]:
                continue
            self.seen.homes[person.user_id] = home["hash"]
            self.seen.views[home["id"]] = home["hash"]
            batch.add(f"App Home of @{person.handle}", self._view(home), person.user_id)

    # -- talking to the app --------------------------------------------------------------------

    async def post(self, body: bytes, content_type: str) -> httpx.Response:
        """POST signed bytes to /slack/events, then wait for the app's follow-up work."""
        headers = {"Content-Type": content_type, **sign(self.world.secret, body, int(time.time()))}
        response = await self.world.http.post(f"{self.world.url}/slack/events", content=body, headers=headers)
        await self.world.app.tasks.drain()
        return response

    def _user_json(self, user_id: str) -> dict[str, Any]:
        handle = self.handles.get(user_id, user_id.lower())
        return {"id": user_id, "username": handle, "name": handle, "team_id": self.world.workspace.team_id}

    def _team_json(self) -> dict[str, Any]:
        return {"id": self.world.workspace.team_id, "domain": "reap-shell"}

    async def interact(self, payload: dict[str, Any]) -> httpx.Response:
        """Send an interactivity payload as Slack does: form-encoded `payload=<json>`."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post(body, "application/x-www-form-urlencoded")

    async def slash(self, text: str) -> bool:
        """Send `/reap <text>` as the current user from #general."""
        slack = self.world.slack
        escaped = link_mentions(
            slack_escape(text), users=self.handles, channels=self.world.workspace.channels
        )
        fields = payloads.slash_command(
            team_id=self.world.workspace.team_id,
            team_domain="reap-shell",
            channel_id=GENERAL_ID,
            channel_name=GENERAL_NAME,
            user_id=self.user,
            user_name=self.handles.get(self.user, self.user.lower()),
            text=escaped,
            api_app_id=slack.app_id,
            response_url=slack.response_url(),
            trigger_id=slack.new_trigger_id(),
        )
        response = await self.post(payloads.form_body(fields), "application/x-www-form-urlencoded")
        return self.report(response)

    async def click(self, args: str) -> bool:
        """Press control N of the current person's last message, with a menu option or picker value."""
        number, _, choice = args.strip().partition(" ")
        if not number:
            raise BadInput("which control?", ":click N [option]")
        part = self.last_pressable(self.user)
        if part is None:
            raise NothingToPress(self.at(self.user))
        controls = part.rendered.controls
        if not number.isdigit() or not 1 <= int(number) <= len(controls):
            raise NoSuchControl(number, len(controls), part.heading)
        control = controls[int(number) - 1]
        action = control.action(choice.strip() or None, action_ts=_fake_ts(), users=self.handles)
        self.say(f"   pressing [{control.number} {control.label}] on: {part.heading}")
        slack = self.world.slack
        payload: dict[str, Any] = {
            "type": "block_actions",
            "token": "legacy",
            "api_app_id": slack.app_id,
            "team": self._team_json(),
            "user": self._user_json(self.user),
            "enterprise": None,
            "is_enterprise_install": False,
            "trigger_id": slack.new_trigger_id(),
            "actions": [action],
            "state": {"values": {}},
        }
        origin = control.origin
        if origin.view is not None:
            view = slack.views().get(str(origin.view.get("id")), origin.view)
            payload["container"] = {"type": "view", "view_id": view.get("id")}
            payload["view"] = view
        else:
            channel = origin.channel or GENERAL_ID
            payload["container"] = {
                "type": "message",
                "message_ts": origin.ts or _fake_ts(),
                "channel_id": channel,
                "is_ephemeral": origin.ephemeral,
            }
            payload["channel"] = {"id": channel, "name": self.world.workspace.channels.get(channel, channel)}
            payload["response_url"] = slack.response_url()
            if not origin.ephemeral and origin.message is not None:
                # Slack sends the message as it is now, which may have been edited since it was shown.
                current = next(
                    (m for m in slack.messages(channel) if m.ts == origin.ts),
                    None,
                )
                payload["message"] = self._message_json(current) if current else origin.message
        return self.report(await self.interact(payload))

    async def shortcut(self, args: str) -> bool:
        """Run the app's message shortcut ("Create action item") on message N, as the current person."""
        wanted = args.strip()
        if not wanted:
            raise BadInput("on which message?", ":shortcut N (the number in the message's heading)")
        if not wanted.isdigit() or not 1 <= int(wanted) <= len(self.shown):
            raise NoSuchMessage(wanted, len(self.shown))
        shown = self.shown[int(wanted) - 1]
        slack = self.world.slack
        self.say(f"   Create action item from message {wanted} ({shown.where})")
        payload = payloads.message_shortcut(
            team=self._team_json(),
            user=self._user_json(self.user),
            channel={"id": shown.channel, "name": self.world.workspace.channels.get(shown.channel, "")},
            message=shown.message,
            trigger_id=slack.new_trigger_id(),
            response_url=slack.response_url(),
            callback_id=SHORTCUT_ID,
            api_app_id=slack.app_id,
        )
        return self.report(await self.interact(payload))

    def say_in_general(self, text: str) -> None:
        """`:say text`: a message from the current person in #general, for `:shortcut` to act on.

        The bot is not told (it reads no channel messages); Slack would store it like this.
        """
        if not text.strip():
            raise BadInput("say what?", ":say <text>")
        typed = link_mentions(
            slack_escape(text.strip()), users=self.handles, channels=self.world.workspace.channels
        )
        message = {"type": "message", "user": self.user, "ts": _fake_ts(), "text": typed}
        number = self._number(GENERAL_ID, f"{self.at(self.user)} in #{GENERAL_NAME}", message)
        part = Part(
            self.shown[number - 1].where, render_message([], text=typed, names=self.names), None, number
        )
        self.show(part.heading, part.rendered.text)

    async def submit(self, args: str) -> bool:
        """Submit the open modal with field=value pairs (other fields keep what they show)."""
        if self.modal is None:
            raise NoOpenModal()
        view = self.modal.view
        values = modal_state(view, parse_fields(args), users=self.handles)
        payload: dict[str, Any] = {
            "type": "view_submission",
            "token": "legacy",
            "api_app_id": self.world.slack.app_id,
            "team": self._team_json(),
            "user": self._user_json(self.modal.user_id),
            "enterprise": None,
            "is_enterprise_install": False,
            "trigger_id": self.world.slack.new_trigger_id(),
            "view": {**view, "state": {"values": values}},
            "response_urls": [],
        }
        submitted = self.modal
        response = await self.interact(payload)
        if response.status_code < 400 and not _keeps_modal_open(response) and self.modal is submitted:
            self.modal = None
        return self.report(response)

    async def home(self) -> bool:
        """Open the App Home tab as the current user."""
        slack = self.world.slack
        team = self.world.workspace.team_id
        event = {
            "type": "app_home_opened",
            "user": self.user,
            "channel": slack.dm_channel(self.user),
            "tab": "home",
            "event_ts": _fake_ts(),
        }
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": team,
                "api_app_id": slack.app_id,
                "type": "event_callback",
                "event_id": f"Ev0SHELL{next(self._events):06d}{secrets.token_hex(3).upper()}",
                "event_time": int(time.time()),
                "event": event,
            }
        ).encode()
        response = await self.post(body, "application/json")
        ok = self.report(response)
        if ok and slack.home_view(self.user) is None:
            self.say("   (the bot published no App Home)")
        return ok

    async def set_clock(self, args: str) -> bool:
        """Show the clock, or move it and run one reminder tick."""
        zone = self.world.app.settings.zone
        if not args.strip():
            self.say(f"   clock: {_shown_time(self.world.clock.now, zone)}")
            return True
        moment = parse_clock(args, zone)
        self.world.clock.now = moment.astimezone(UTC)
        self.say(f"   clock: {_shown_time(moment, zone)}")
        ticker = self.world.app.ticker
        if ticker is None:
            self.say("   reminders are not wired in this build")
            return True
        await ticker(self.world.clock.now)
        await self.world.app.tasks.drain()
        self.report()
        return True

    async def list_users(self) -> None:
        """Everyone the console can act as, with the roles the database gives them now."""
        workspace = self.world.workspace
        current = await _members(
            self.world.app.sessions,
            team_id=workspace.team_id,
            admins=workspace.admins,
            zone=self.world.app.settings.timezone,
        )
        fresh = {p.user_id: p for p in current}
        for p in workspace.people:
            if p.user_id in fresh:
                p.about, p.role = fresh[p.user_id].about, fresh[p.user_id].role
        width = max(len(p.handle) for p in workspace.people) + 1
        for p in workspace.people:
            you = "  ← you" if p.user_id == self.user else ""
            about = f"  ({p.about})" if p.about else ""
            self.say(f"   @{p.handle:<{width}} {p.user_id:<12} {p.name}{about}  {p.tz}{you}")

    def switch_user(self, args: str) -> None:
        """`:as @name`: act as someone else from now on."""
        if not args.strip():
            raise BadInput("as whom?", ":as @name or :as U123")
        person = self.find_person(args)
        self.user = person.user_id
        self.say(f"   you are now @{person.handle} ({person.name})")

    # -- one line -----------------------------------------------------------------------------

    async def run_line(self, line: str) -> bool | None:
        """Carry out one line: True if it worked, False if it failed, None to quit."""
        text = line.strip()
        command, _, args = text.partition(" ")
        lowered = command.lower()
        if lowered == "/reap":
            return await self.slash(args.strip())
        if lowered in (":quit", ":q", ":exit"):
            return None
        if lowered == ":help":
            self.say(HELP)
        elif lowered == ":users":
            await self.list_users()
        elif lowered == ":as":
            self.switch_user(args)
        elif lowered == ":click":
            return await self.click(args)
        elif lowered == ":submit":
            return await self.submit(args)
        elif lowered == ":home":
            return await self.home()
        elif lowered == ":say":
            self.say_in_general(args)
        elif lowered == ":shortcut":
            return await self.shortcut(args)
        elif lowered == ":clock":
            return await self.set_clock(args)
        else:
            raise UnknownCommand(text)
        return True

    async def attempt(self, line: str) -> bool | None:
        """run_line, telling the person about any failure instead of stopping."""
        logged = self.log.count if self.log is not None else 0
        try:
            return await self.run_line(line)
        except (ReapError, ControlError) as exc:  # the console's own refusals included
            self.say(f"   ! {exc}")
        except (httpx.HTTPError, OSError) as exc:
            self.say(f"   ! the request failed: {type(exc).__name__}: {exc}")
        except Exception as exc:
            log.exception("console line failed: %s", line)
            self.say(f"   ! unexpected error: {type(exc).__name__}: {exc}")
        finally:
            if self.log is not None and self.log.count > logged:
                new = self.log.count - logged
                errors = "an error" if new == 1 else f"{new} errors"
                self.say(f"   (the bot logged {errors}; see {self.log.path})")
        return False


def _keeps_modal_open(response: httpx.Response) -> bool:
    if not response.content:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("response_action") in ("errors", "update", "push")


def _unused(path: Path) -> Path:
    """`path`, or `name-2.ext`, `name-3.ext`... if it is taken."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _fake_ts() -> str:
    """A Slack-style timestamp for things the console itself invents (action_ts, ephemeral ts)."""
    return f"{time.time():.6f}"


def _shown_time(moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return local.strftime("%A %Y-%m-%d %H:%M %Z")


# --- the loop -------------------------------------------------------------------------------------


def _lines(script: TextIO) -> Iterator[str]:
    for raw in script:
        yield raw.rstrip("\r\n")


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Let Ctrl-C interrupt a blocking read (asyncio.run's own handler would only cancel later)."""
    try:
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _prompt(shell: Shell) -> str | None:
    """One line from the terminal, or None at end of input."""
    with _interruptible():
        try:
            return input(f"{shell.at(shell.user)}> ")
        except EOFError:
            return None
        except KeyboardInterrupt:
            return ""


async def _interactive(shell: Shell) -> int:
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    shell.say("Type /reap help, or :help for the console's own commands.")
    while True:
        # Blocking here is deliberate: the app only works when asked, and every request has
        # finished (tasks drained) before the prompt comes back.
        line = _prompt(shell)
        if line is None:
            shell.say("")
            return 0
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if await shell.attempt(line) is None:
            return 0


async def _scripted(shell: Shell, script: TextIO) -> int:
    failed = False
    for line in _lines(script):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        shell.say(f"> {line}")
        result = await shell.attempt(line)
        if result is None:
            break
        failed = failed or not result
    return 1 if failed else 0


def _wants_color(out: TextIO) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


async def run_shell(
    settings: Settings,
    *,
    demo: bool,
    script: TextIO | None,
    out: TextIO,
    plan_file: Path | None = None,
    now: datetime | None = None,
    files: Path | None = None,
) -> int:
    """Run the console: interactive on a terminal, or through `script` (or piped stdin) and exit.

    The demo's clock starts at DEMO_START unless `now` says otherwise. Uploaded files and the log
    go into `files` (default: a new folder in the temporary directory, kept afterwards); log lines
    never reach `out`. Returns 0, or 1 if a scripted line could not be carried out (a console
    error, an HTTP error from the app, or a crash). What the bot itself refuses is output, not a
    failure.
    """
    start = now or (DEMO_START if demo else datetime.now(UTC))
    if script is None and not sys.stdin.isatty():
        script = sys.stdin
    folder = files or Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="reap-shell-"))
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    with _quiet("httpx"), _logging_to(folder / LOG_NAME) as log_file:
        return await _run(
            settings, demo=demo, script=script, out=out, plan_file=plan_file, start=start, log=log_file
        )


LOG_NAME = "reap-shell.log"


class LogFile(logging.Handler):
    """Counts the errors written to the session's log file, so the console can point at the file
    when one happens instead of printing the line (warnings, such as refusals, are routine)."""

    def __init__(self, path: Path) -> None:
        super().__init__(logging.ERROR)
        self.path = path
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[LogFile]:
    """Every log line goes to `path` for the session, not to the terminal the transcript is on."""
    root = logging.getLogger()
    previous = root.handlers[:]
    handler = logging.FileHandler(path, encoding="utf-8")
    # Keep the operator's format and the secret-masking filter (bot.logs.configure_logging).
    template = next((h for h in previous if h.formatter is not None), None)
    handler.setFormatter(
        template.formatter
        if template is not None
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    for each in template.filters if template is not None else []:
        handler.addFilter(each)
    tally = LogFile(path)
    root.handlers[:] = [handler, tally]
    try:
        yield tally
    finally:
        root.handlers[:] = previous
        handler.close()


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Keep a chatty library's INFO lines (one per HTTP request) from burying the console's output."""
    logger = logging.getLogger(name)
    previous = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


async def _run(
    settings: Settings,
    *,
    demo: bool,
    script: TextIO | None,
    out: TextIO,
    plan_file: Path | None,
    start: datetime,
    log: LogFile,
) -> int:
    files = log.path.parent
    async with running_world(settings, demo=demo, plan_file=plan_file, now=start, files=files) as world:
        shell = Shell(world, out, color=script is None and _wants_color(out), log=log)
        me = next(p for p in world.workspace.people if p.user_id == shell.user)
        what = "demo workspace" if demo else "workspace"
        shell.say(
            f"REAP shell: {what} {world.workspace.team_id}, {len(world.workspace.people)} people, "
            f"clock {_shown_time(start, world.app.settings.zone)}; you are @{me.handle} ({me.name})."
        )
        shell.say(f"Files the bot uploads, and its log ({LOG_NAME}), are saved in {files}")
        if script is None:
            return await _interactive(shell)
        return await _scripted(shell, script)
