"""Workflow Builder steps (Slack's custom steps for Bolt apps): each step's inputs become the /reap
command it stands for, run by the same service call with the same permission checks, as the person
the workflow runs for; the step completes with what the command said, or fails with why."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from datetime import date
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.context.complete.async_complete import AsyncComplete
from slack_bolt.context.fail.async_fail import AsyncFail
from slack_sdk.web.async_client import AsyncWebClient

from commands import grammar as g
from commands import service as sv
from commands.handlers import reap_of, team_of
from domain.errors import PermissionDenied, ReapError
from domain.text import NOTE_MAX, trimmed_problem
from messages import primitives as ui
from storage.engine import reading
from storage.items import department_by_key
from storage.models import ActionItem
from storage.queries.items import ItemFilter, find_items

log = logging.getLogger(__name__)

START_CHECKIN = "reap_start_checkin"
POST_ROLLUP = "reap_post_rollup"
UPDATE_ITEM = "reap_update_item"
LIST_OVERDUE = "reap_list_overdue"

NO_PERSON = (
    "This step acts as a person: set its \u201cRun as\u201d input to the person who used the workflow."
)
# Workflow Builder shows a step's error in a line; a refusal's usage text is for /reap, not here.
ERROR_MAX = 1000
# One step output is one string; past this many items the list points at /reap list overdue.
OVERDUE_SHOWN = 50

# A single grammar word: anything with spaces or quotes would be read as more than one argument.
_WORD = re.compile(r"[^\s\"\u201c\u201d\u201e]{1,64}")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{1,31}", re.ASCII)


class StepInputError(g.ReapInputError):
    """A step input we cannot read; the message says which and how to fix it."""


Parse = Callable[[dict[str, Any], date, int], g.Command]


def invoker(inputs: dict[str, Any]) -> str | None:
    """The Slack user the workflow runs for, from the step's user_context input (Slack fills it in
    and vouches for it); None when the workflow gave none (a scheduled run with no person)."""
    context = inputs.get("user_context")
    user = context.get("id") if isinstance(context, dict) else None
    return user if isinstance(user, str) and g.USER_ID.fullmatch(user) else None


def _word(inputs: dict[str, Any], name: str, *, required: bool = False) -> str:
    raw = inputs.get(name)
    value = raw.strip() if isinstance(raw, str) else ""
    if not value:
        if required:
            raise StepInputError(f"The step needs its \u201c{name}\u201d input.")
        return ""
    if not _WORD.fullmatch(value):
        raise StepInputError(f"\u201c{name}\u201d should be one word, like Q3 or OIT-7.")
    return value


def _parse(text: str, today: date, start_month: int) -> g.Command:
    try:
        return g.parse_command(text, today=today, fiscal_start_month=start_month)
    except g.UsageError as exc:
        # The /reap usage line would mislead in Workflow Builder; the problem itself stands.
        raise StepInputError(exc.problem) from None


def start_checkin(inputs: dict[str, Any], today: date, start_month: int) -> g.Command:
    """`/reap checkin start [quarter]`."""
    command = _parse(f"checkin start {_word(inputs, 'quarter')}".strip(), today, start_month)
    if not isinstance(command, g.CheckIn) or command.action != "start":
        raise StepInputError("\u201cquarter\u201d should be a quarter, like Q3 or FY2027-Q1.")
    return command


def post_rollup(inputs: dict[str, Any], today: date, start_month: int) -> g.Command:
    """`/reap rollup [quarter] [department] [#channel]`."""
    words = [_word(inputs, "quarter"), _word(inputs, "department")]
    channel = inputs.get("channel")
    if isinstance(channel, str) and channel:
        if not _CHANNEL_ID.fullmatch(channel):
            raise StepInputError("\u201cchannel\u201d should be a channel picked in Workflow Builder.")
        words.append(f"<#{channel}>")
    command = _parse(" ".join(["rollup", *[w for w in words if w]]), today, start_month)
    if not isinstance(command, g.Rollup):
        raise StepInputError("The step's inputs do not make a rollup.")
    return command


def update_item(inputs: dict[str, Any], today: date, start_month: int) -> g.Command:
    """`/reap status <ref> <status> [note]`."""
    ref = _word(inputs, "ref", required=True)
    if not g.REF.fullmatch(ref):
        raise StepInputError(f"\u201c{ref}\u201d is not an item ref; refs look like OIT-7.")
    command = _parse(f"status {ref} {_word(inputs, 'status', required=True)}", today, start_month)
    if not isinstance(command, g.SetStatus):
        raise StepInputError("The step's inputs do not make a status update.")
    raw = inputs.get("note")
    note = raw if isinstance(raw, str) else ""
    if problem := trimmed_problem(note, field="note", limit=NOTE_MAX, multiline=True):
        raise StepInputError(problem)
    return dataclasses.replace(command, note=note.strip() or None)


@dataclasses.dataclass(frozen=True)
class Overdue:
    """`List overdue REAP items`: the department (None for all) whose overdue items to list."""

    department: str | None


def list_overdue(inputs: dict[str, Any], today: date, start_month: int) -> Overdue:
    """The department to list, upper-cased as /reap takes it."""
    department = _word(inputs, "department")
    if department and not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,15}", department):
        raise StepInputError(f"\u201c{department}\u201d is not a department key, like OIT.")
    return Overdue(department.upper() or None)


def overdue_text(items: list[ActionItem], *, today: date, department: str | None) -> str:
    """The overdue items as plain lines a later workflow step can post (Slack mrkdwn)."""
    where = f" in {department}" if department else ""
    if not items:
        return f"No overdue REAP items{where}."
    lines = [f"{len(items)} overdue REAP item{'s' if len(items) != 1 else ''}{where}:"]
    for item in items[:OVERDUE_SHOWN]:
        late = (today - item.due).days if item.due else 0
        owner = f"<@{item.owner_id}>" if item.owner_id else "no owner"
        title = ui.escape(item.title)
        days = f"{late} day{'s' if late != 1 else ''} late"
        lines.append(f"\u2022 *{item.ref}* {title} \u00b7 {owner} \u00b7 {days}")
    if len(items) > OVERDUE_SHOWN:
        lines.append(f"\u2026and {len(items) - OVERDUE_SHOWN} more: /reap list overdue shows them all.")
    return "\n".join(lines)


async def overdue_items(reap: sv.Reap, *, caller: sv.Caller, department: str | None) -> list[ActionItem]:
    """What `/reap list overdue` lists, for one department or all, in the caller's workspace."""
    team_id = caller.actor.team_id
    async with reading(reap.sessions) as session:
        department_id = None
        if department:
            department_id = (await department_by_key(session, team_id=team_id, key=department)).id
        where = ItemFilter(overdue_as_of=caller.today, department_id=department_id)
        return await find_items(session, team_id=team_id, where=where, today=caller.today)


def reason(exc: Exception) -> str:
    """Why a step failed, in a line Workflow Builder can show."""
    return ui.clip(str(exc), ERROR_MAX)


# --- listeners ---------------------------------------------------------------------------------


async def _caller(
    context: AsyncBoltContext, body: dict[str, Any], inputs: dict[str, Any], fail: AsyncFail
) -> sv.Caller | None:
    user = invoker(inputs)
    if user is None:
        reap_of(context).spawn(fail(NO_PERSON))
        return None
    return await sv.caller_for(reap_of(context), team_id=team_of(body), user_id=user)


def _refused(reap: sv.Reap, body: dict[str, Any], exc: Exception, fail: AsyncFail) -> None:
    if isinstance(exc, PermissionDenied):
        log.warning("step refused in %s: %s", team_of(body), exc.action)
    reap.spawn(fail(reason(exc)))


async def _finish(reply: sv.Reply, complete: AsyncComplete, client: AsyncWebClient) -> None:
    await complete({"message": ui.clip(reply.text, ERROR_MAX)})
    for followup in reply.followups:
        await followup(client)


def command_step(parse: Parse) -> Callable[..., Any]:
    """The listener for a step that stands for one /reap command."""

    async def on_step(
        inputs: dict[str, Any],
        body: dict[str, Any],
        context: AsyncBoltContext,
        client: AsyncWebClient,
        complete: AsyncComplete,
        fail: AsyncFail,
    ) -> None:
        reap = reap_of(context)
        caller = await _caller(context, body, inputs, fail)
        if caller is None:
            return
        try:
            command = parse(inputs, caller.today, reap.org.fiscal_year_start_month)
            reply = await sv.run_command(reap, caller=caller, command=command)
        except (g.ReapInputError, ReapError) as exc:
            _refused(reap, body, exc, fail)
            return
        # Completing is a Slack call: it follows the ack, like every other.
        reap.spawn(_finish(reply, complete, client))

    on_step.__doc__ = f"The workflow step for {parse.__doc__}"
    return on_step


async def on_list_overdue(
    inputs: dict[str, Any],
    body: dict[str, Any],
    context: AsyncBoltContext,
    complete: AsyncComplete,
    fail: AsyncFail,
) -> None:
    """The "List overdue REAP items" step: the list as text, and how many."""
    reap = reap_of(context)
    caller = await _caller(context, body, inputs, fail)
    if caller is None:
        return
    try:
        wanted = list_overdue(inputs, caller.today, reap.org.fiscal_year_start_month)
        items = await overdue_items(reap, caller=caller, department=wanted.department)
    except (g.ReapInputError, ReapError) as exc:
        _refused(reap, body, exc, fail)
        return
    text = overdue_text(items, today=caller.today, department=wanted.department)
    reap.spawn(complete({"overdue_list": text, "overdue_count": len(items)}))
