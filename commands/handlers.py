"""Thin Bolt listeners: ack, parse, one service call, respond. Slack calls happen after the ack."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import nullcontext
from datetime import date, datetime
from typing import Any, TypeVar, cast

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel.ext.asyncio.session import AsyncSession

from commands import grammar as g
from commands import measures, quarterly
from commands import service as sv
from commands.telling import tell_privately
from domain.commitments import EvidenceRequired, ReasonRequired
from domain.errors import PermissionDenied, ReapError
from domain.status import ItemStatus
from domain.text import NOTE_MAX, trimmed_problem
from messages import blocks as bk
from messages import checkin as ck
from messages import primitives as ui
from messages import requests as rq
from storage.engine import RequestUnit, commit_first_write, first_write, request_unit, transaction
from storage.models import ActionItem, ProcessedEvent
from storage.queries.checkins import CheckInSubject

log = logging.getLogger(__name__)

T = TypeVar("T")


def reap_of(context: AsyncBoltContext) -> sv.Reap:
    """The services the app factory put into every request's context."""
    reap: sv.Reap = context["reap"]
    return reap


def team_of(body: dict[str, Any]) -> str:
    """The workspace a Slack payload comes from, wherever that payload type keeps it."""
    return str(
        body.get("team_id") or (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    )


def _user(body: dict[str, Any]) -> str:
    return str(body.get("user_id") or (body.get("user") or {}).get("id"))


def _spawn_followups(reap: sv.Reap, reply: sv.Reply, client: AsyncWebClient) -> None:
    for followup in reply.followups:
        reap.spawn(_run(followup, client))


async def _run(followup: sv.FollowUp, client: AsyncWebClient) -> None:
    await followup(client)


# --- middleware --------------------------------------------------------------------------------

DATABASE_DOWN = (
    "REAP Tracker cannot reach its database right now; nothing was changed \u2014 try again in a minute."
)
DATABASE_UNCONFIRMED = (
    "REAP Tracker lost its database while saving your change and cannot confirm it was saved "
    "\u2014 check with /reap show before trying again."
)
# The context key under which a request keeps when its database time runs out (event loop time).
DEADLINE = "reap_deadline"


class CommitUnconfirmed(Exception):
    """The database went silent or away while a request's COMMIT was in flight: whether the change
    was saved only the server knows, so the person must not be told that nothing was."""

    def __init__(self) -> None:
        super().__init__("the database did not confirm a request's commit")


# What an unreachable, refusing or silent database raises: SQLAlchemy's wrapped driver errors, a
# full pool, a connection refused before the driver wraps it, our own time bound, and a commit
# lost on its way.
DATABASE_UNREACHABLE: tuple[type[BaseException], ...] = (
    DBAPIError,
    PoolTimeout,
    ConnectionError,
    TimeoutError,
    CommitUnconfirmed,
)


def delivery_key(body: dict[str, Any]) -> str | None:
    """What makes one delivery unique: an event's event_id, or a command's or interaction's trigger_id.

    A signed request stays valid for five minutes, so a replayed slash command or button press
    would otherwise act again. Slack mints a fresh trigger_id for every command and interaction;
    it is hashed to fit ProcessedEvent's bounded column (and marked so it never meets an event id).
    """
    event_id = body.get("event_id")
    if body.get("type") == "event_callback" and event_id:
        return str(event_id)
    trigger_id = body.get("trigger_id")
    if isinstance(trigger_id, str) and trigger_id:
        return "trigger-" + hashlib.sha256(trigger_id.encode()).hexdigest()[:48]
    return None


class AlreadyHandled(Exception):
    """This delivery (event id or trigger id) was handled before: a retry or a replay."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"delivery {key} was already handled")


_EVENTS = cast(Table, ProcessedEvent.__table__)  # type: ignore[attr-defined]
# Built once: a duplicate is a row not inserted, not an error (which PostgreSQL would log).
_RECORD = {
    "postgresql": postgresql.insert(_EVENTS).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(_EVENTS).on_conflict_do_nothing(),
}
# The context key under which a slash command's record waits for on_reap to fold it in.
DELIVERY = "reap_delivery"

Record = Callable[[AsyncSession], Awaitable[None]]


def record_delivery(team_id: str, key: str, at: datetime) -> Record:
    """The write that marks a delivery handled, raising AlreadyHandled if it already was."""

    async def write(session: AsyncSession) -> None:
        connection = await session.connection()
        inserted = await connection.execute(
            _RECORD[connection.dialect.name], {"team_id": team_id, "event_id": key, "received_at": at}
        )
        if inserted.rowcount == 0:
            raise AlreadyHandled(key)

    return write


async def record_alone(reap: sv.Reap, record: Record) -> None:
    """Write a delivery's record in a transaction of its own."""
    async with transaction(reap.sessions) as session:
        await record(session)


async def skip_duplicate_events(
    body: dict[str, Any],
    context: AsyncBoltContext,
    next: Any,
) -> BoltResponse | None:
    """Handle each delivery once: drop an event Slack retries and a command or interaction replayed.

    A slash command's record is left to on_reap, which writes it in the command's own first
    transaction (one statement, committed or rolled back with what the command did); every
    other delivery is recorded here, before its handler acks and goes on after the ack.
    """
    deadline = request_deadline(context)  # the request's database time starts as commands first sees it
    key = delivery_key(body)
    if key is None:
        await next()
        return None
    reap = reap_of(context)
    record = record_delivery(team_of(body), key, reap.clock())
    if "command" in body:
        context[DELIVERY] = record
        await next()
        return None
    try:
        # The first database touch of the request: an outage shows here, bounded, before any action.
        await in_time(reap, deadline, record_alone(reap, record))
    except AlreadyHandled:
        log.info("duplicate delivery %s ignored", key)
        return BoltResponse(status=200, body="")
    await next()
    return None


def request_deadline(context: AsyncBoltContext) -> float:
    """When this request's database time runs out, on the event loop's clock (set on first ask).

    All the database time an interactive request gets (Reap.database_seconds, 2.5 s by default)
    counts from here: what is left of Slack's 3 seconds answers it (a command's reply, a form's
    errors, a press's message).
    """
    deadline = context.get(DEADLINE)
    if deadline is None:
        seconds = reap_of(context).database_seconds
        deadline = context[DEADLINE] = asyncio.get_running_loop().time() + seconds
    return float(deadline)


async def in_time(reap: sv.Reap, deadline: float, work: Coroutine[Any, Any, T]) -> T:
    """Run `work`, raising TimeoutError if it is not done by `deadline` (see request_deadline).

    Past it the work is cancelled but its clean-up is not waited for: SQLAlchemy gives a silent
    PostgreSQL connection two more seconds to close politely, which Slack cannot spare.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=max(deadline - asyncio.get_running_loop().time(), 0.0))
    if task in done:
        return task.result()
    task.cancel()
    reap.spawn(_settle(task))
    raise TimeoutError(f"the database did not answer within {reap.database_seconds:g} s of the request")


async def unit_in_time(reap: sv.Reap, deadline: float, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` as the request's unit of work (see request_unit), committed by `deadline`.

    If the database fails it or the deadline passes, nothing it did is kept (TimeoutError or the
    database's error) unless its COMMIT had gone out: then whether it took is unknown, and
    CommitUnconfirmed says so.
    """
    units: list[RequestUnit] = []

    async def unit_of_work() -> T:
        async with request_unit(reap.sessions, spawn=reap.spawn) as unit:
            units.append(unit)
            return await work()

    try:
        return await in_time(reap, deadline, unit_of_work())
    except DATABASE_UNREACHABLE as exc:
        if isinstance(exc, IntegrityError) or not (units and units[0].commit_sent):
            raise
        raise CommitUnconfirmed() from exc


async def _settle(task: asyncio.Future[Any]) -> None:
    await asyncio.wait({task})
    if not task.cancelled() and task.exception() is not None:
        log.info("a timed-out database call ended with %r", task.exception())


async def on_error(error: Exception, body: dict[str, Any], client: AsyncWebClient) -> BoltResponse | None:
    """Answer a request the database could not serve, in the way its kind of request is answered;
    anything else keeps Bolt's logged 500."""
    if isinstance(error, IntegrityError) or not isinstance(error, DATABASE_UNREACHABLE):
        log.error("request failed", exc_info=error)
        return None
    text = database_failed(error, body)
    if "command" in body:
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    if body.get("type") == "view_submission":
        values = ((body.get("view") or {}).get("state") or {}).get("values") or {}
        return BoltResponse(
            status=200,
            body={"response_action": "errors", "errors": {next(iter(values), "title"): text}},
        )
    # A press or a shortcut: through its response_url, or by DM where it has none (the App Home).
    if body.get("type") in ("block_actions", "message_action", "shortcut") and body.get("user"):
        await _say(client, body, text)
        return BoltResponse(status=200, body="")
    # An event is left to Slack's retries; anything else has no one to tell.
    return None


def database_failed(error: BaseException, body: dict[str, Any]) -> str:
    """What to tell the person whose request the database failed, logged."""
    if isinstance(error, CommitUnconfirmed):
        log.warning(
            "the database went silent or away during a commit (%s); told %s to check whether it took",
            type(error.__cause__).__name__,
            _user(body),
        )
        return DATABASE_UNCONFIRMED
    if isinstance(error, TimeoutError):
        # Silent or only busy (a lock, a long transaction on SQLite's writer): the operator reading
        # this needs to know it did not answer in time, not that it refused.
        log.warning("%s; told %s", str(error) or "the database did not answer in time", _user(body))
    else:
        log.warning("the database is unreachable (%s); told %s", type(error).__name__, _user(body))
    return DATABASE_DOWN


# --- /reap -------------------------------------------------------------------------------------


async def on_reap(
    ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """The /reap slash command, as one unit of work: the delivery's record, the caller's row and
    everything the command reads and writes in one transaction (see skip_duplicate_events), done
    within the request's database time."""
    reap = reap_of(context)
    deadline = request_deadline(context)
    record: Record | None = context.get(DELIVERY)
    with first_write(record) if record is not None else nullcontext() as pending:
        try:
            try:
                reply = await unit_in_time(reap, deadline, lambda: _command(reap, command))
            except (g.ReapInputError, ReapError) as exc:
                _log_refusal(command, exc)
                reply = sv.error_reply(exc)
            if pending is not None and not pending.committed:
                # A refusal rolled the unit back: the record goes alone, so a replay is not answered.
                await in_time(reap, deadline, commit_first_write(reap.sessions))
        except AlreadyHandled as exc:
            log.info("duplicate delivery %s ignored", exc.key)
            await ack()
            return
    if reply.followups and not reply.text:
        await ack()
    else:
        await ack(**reply.ack_kwargs())
    _spawn_followups(reap, reply, client)


async def _command(reap: sv.Reap, command: dict[str, Any]) -> sv.Reply:
    caller = await sv.caller_for(
        reap,
        team_id=team_of(command),
        user_id=_user(command),
        channel_id=command.get("channel_id"),
        trigger_id=command.get("trigger_id"),
        response_url=command.get("response_url"),
    )
    parsed = g.parse_command(
        command.get("text") or "", today=caller.today, fiscal_start_month=reap.org.fiscal_year_start_month
    )
    return await sv.run_command(reap, caller=caller, command=parsed)


def _log_refusal(body: dict[str, Any], exc: Exception) -> None:
    """Refusals are security-relevant: log who was refused what (never the request's secrets)."""
    if isinstance(exc, PermissionDenied):
        log.warning("refused %s in %s: %s", _user(body), team_of(body), exc.action)


# --- buttons -----------------------------------------------------------------------------------


async def _refresh_message(
    reap: sv.Reap,
    body: dict[str, Any],
    card: bk.ItemCard,
    client: AsyncWebClient,
    respond: AsyncRespond | None,
) -> None:
    container = body.get("container") or {}
    message = body.get("message")
    if container.get("type") == "view":
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        view = await sv.home_view(reap, caller=caller)
        await client.views_publish(user_id=caller.actor.user_id, view=view)
    elif message and not container.get("is_ephemeral"):
        await client.chat_update(
            channel=str(container.get("channel_id") or (body.get("channel") or {}).get("id")),
            ts=message["ts"],
            text=ui.escape(card.item.title),
            blocks=bk.replace_card(message.get("blocks") or [], card),
        )
    elif respond is not None and body.get("response_url"):
        await respond(replace_original=True, text=ui.escape(card.item.title), blocks=bk.build_item_card(card))


async def _tell(client: AsyncWebClient, body: dict[str, Any], exc: Exception) -> None:
    _log_refusal(body, exc)
    reply = sv.error_reply(exc)
    await _say(client, body, reply.text, reply.blocks)


async def _say(
    client: AsyncWebClient, body: dict[str, Any], text: str, blocks: list[dict[str, Any]] | None = None
) -> None:
    """Tell the person who pressed, privately, where they pressed (by DM if that was no channel)."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    await tell_privately(
        client,
        user=_user(body),
        text=text,
        blocks=blocks,
        response_url=body.get("response_url"),
        channel=channel,
    )


Press = Callable[[sv.Reap, dict[str, Any], AsyncWebClient, AsyncRespond, float], Coroutine[Any, Any, None]]


async def _after_ack(
    ack: AsyncAck,
    body: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
    work: Press,
) -> None:
    """Answer a press at once, then do its `work` (within the request's database time) after it."""
    await ack()
    reap = reap_of(context)
    reap.spawn(answered(work(reap, body, client, respond, request_deadline(context)), body, client))


async def answered(work: Coroutine[Any, Any, None], body: dict[str, Any], client: AsyncWebClient) -> None:
    """A press's work, after its ack: if the database fails it midway, the person is told it did not
    take, or that it may have (the ack has gone, so no error answer would reach them)."""
    try:
        await work
    except DATABASE_UNREACHABLE as exc:
        if isinstance(exc, IntegrityError):
            raise
        await _say(client, body, database_failed(exc, body))


async def on_done(
    ack: AsyncAck,
    body: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
) -> None:
    """The Done button on any item card."""
    # The press is answered at once; the change and the Slack calls follow it.
    await _after_ack(ack, body, context, client, respond, _done)


async def _done(
    reap: sv.Reap, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, deadline: float
) -> None:
    ref = str(body["actions"][0].get("value") or "")

    async def complete() -> bk.ItemCard:
        return await sv.press_done(reap, caller=await _presser(reap, body), ref=ref)

    try:
        # The caller's row and the completion in one transaction.
        card = await unit_in_time(reap, deadline, complete)
    except EvidenceRequired as exc:
        # The plan wants a link to what was delivered: ask for it in the Update form, set to done.
        try:
            caller, item = await in_time(reap, deadline, _editable(reap, body, ref, "complete"))
        except ReapError as refused:
            await _tell(client, body, refused)
            return
        view = bk.build_update_modal(item, metadata=_origin(body), status=ItemStatus.DONE, why=str(exc))
        await client.views_open(trigger_id=caller.trigger_id, view=view)
        return
    except ReapError as exc:
        await _tell(client, body, exc)
        return
    await _refresh_message(reap, body, card, client, respond)


async def _presser(reap: sv.Reap, body: dict[str, Any]) -> sv.Caller:
    """Whoever pressed a button, with the press's trigger (a modal may follow)."""
    return await sv.caller_for(
        reap, team_id=team_of(body), user_id=_user(body), trigger_id=body.get("trigger_id")
    )


async def _editable(
    reap: sv.Reap, body: dict[str, Any], ref: str, action: str
) -> tuple[sv.Caller, ActionItem]:
    """Whoever pressed, and the item if they may change it (before a modal opens for it)."""
    caller = await _presser(reap, body)
    return caller, await sv.editable_item(reap, caller=caller, ref=ref, action=action)


async def on_approve(
    ack: AsyncAck,
    body: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
) -> None:
    """Approve on a pending request: the change applies and the requester is told."""
    await _after_ack(ack, body, context, client, respond, _approve)


async def _approve(
    reap: sv.Reap, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, deadline: float
) -> None:
    async def approve() -> sv.Reply:
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        return await sv.decide(reap, caller=caller, request_id=_number(body), approve=True, note=None)

    try:
        reply = await unit_in_time(reap, deadline, approve)
    except ReapError as exc:
        await _tell(client, body, exc)
        return
    await _answer_in_place(client, body, reply)


async def on_decline(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Decline… on a pending request: ask why in a form (the requester reads the reason)."""
    await ack()
    number = _number(body)
    reap_of(context).spawn(
        client.views_open(trigger_id=body.get("trigger_id"), view=rq.build_decline_modal(number))
    )


async def on_decline_submit(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    """The decline form: decline with the reason, or show why it cannot."""
    reap = reap_of(context)
    raw = view.get("state", {}).get("values", {}).get("reason", {}).get("value", {}).get("value") or ""
    number = _metadata(view).get("request")
    # The metadata comes back from the client: only a row id may reach the query (not true, not 10**30).
    if not isinstance(number, int) or isinstance(number, bool) or not 0 < number <= sv.MAX_ROW_ID:
        await ack(
            response_action="errors", errors={"reason": "This form has lost its request; open it again."}
        )
        return
    if problem := trimmed_problem(raw, field="reason", limit=NOTE_MAX, multiline=True):
        await ack(response_action="errors", errors={"reason": problem})
        return
    reason = raw.strip()

    async def decline() -> tuple[sv.Caller, sv.Reply]:
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        return caller, await sv.decide(reap, caller=caller, request_id=number, approve=False, note=reason)

    try:
        caller, reply = await unit_in_time(reap, request_deadline(context), decline)
    except ReapError as exc:
        await _refuse_inline(ack, body, exc, block_id="reason")
        return
    await ack()
    reap.spawn(_after_decline(reply, client, caller.actor.user_id))


async def on_score_submit(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    """The Score form: score each criterion given a level, then say by DM what the item now scores."""
    reap = reap_of(context)
    origin = _metadata(view)
    values = view.get("state", {}).get("values", {})
    command = measures.parse_score_form(values, ref=str(origin.get("ref") or ""))
    if isinstance(command, dict):
        await ack(response_action="errors", errors=command)
        return

    async def score() -> sv.Reply:
        sv.item_ref(command.ref)  # the metadata comes back from the client: only a ref reaches a query
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        return await sv.run_command(reap, caller=caller, command=command)

    try:
        reply = await unit_in_time(reap, request_deadline(context), score)
    except ReapError as exc:
        await _refuse_inline(ack, body, exc, block_id=next(iter(values), "note"))
        return
    await ack()
    reap.spawn(tell_privately(client, user=_user(body), text=reply.text, blocks=reply.blocks))


async def _after_decline(reply: sv.Reply, client: AsyncWebClient, decider: str) -> None:
    for followup in reply.followups:
        await followup(client)
    await client.chat_postMessage(channel=decider, text=reply.text, blocks=reply.blocks)


async def on_verify(
    ack: AsyncAck,
    body: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
) -> None:
    """Verify on a done item awaiting verification."""
    await _after_ack(ack, body, context, client, respond, _verify)


async def _verify(
    reap: sv.Reap, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, deadline: float
) -> None:
    ref = str(body["actions"][0].get("value") or "")

    async def verify() -> sv.Reply:
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        return await sv.run_command(reap, caller=caller, command=g.Verify(ref.upper()))

    try:
        reply = await unit_in_time(reap, deadline, verify)
    except ReapError as exc:
        await _tell(client, body, exc)
        return
    await _answer_in_place(client, body, reply)


def _number(body: dict[str, Any]) -> int:
    """The request number a button carries (0 for none: a request that does not exist)."""
    value = str(body["actions"][0].get("value") or "")
    return int(value) if value.isdigit() and len(value) <= 10 else 0


async def _answer_in_place(client: AsyncWebClient, body: dict[str, Any], reply: sv.Reply) -> None:
    """Say what a decision did, to the person who pressed, and run its follow-ups."""
    for followup in reply.followups:
        await followup(client)
    await _say(client, body, reply.text, reply.blocks)


async def on_snooze(
    ack: AsyncAck,
    body: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
) -> None:
    """The Snooze menu: 1 day, 1 week, or pick a date (opens a modal)."""
    await _after_ack(ack, body, context, client, respond, _snooze)


async def _snooze(
    reap: sv.Reap, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, deadline: float
) -> None:
    ref, _, choice = str((body["actions"][0].get("selected_option") or {}).get("value") or "").partition("|")

    async def snooze() -> bk.ItemCard:
        caller = await _presser(reap, body)
        return await sv.press_snooze(
            reap, caller=caller, ref=ref, until=sv.snooze_until(choice, caller.today)
        )

    try:
        if choice == "pick":
            caller, item = await in_time(reap, deadline, _editable(reap, body, ref, "snooze"))
            view = bk.build_snooze_modal(item, metadata=_origin(body))
            await client.views_open(trigger_id=caller.trigger_id, view=view)
            return
        # The caller's row and the snooze in one transaction, as for Done.
        card = await unit_in_time(reap, deadline, snooze)
    except ReapError as exc:
        await _tell(client, body, exc)
        return
    await _refresh_message(reap, body, card, client, respond)


def _origin(body: dict[str, Any]) -> dict[str, Any]:
    """Where a button was pressed, as ids only: the modal's submit re-checks them against the bot's
    own records and answers the signed submitter, never an address carried through the modal."""
    container = body.get("container") or {}
    if container.get("type") == "view":
        return {"home": True}
    if container.get("is_ephemeral"):
        return {}
    return {"channel": container.get("channel_id"), "ts": container.get("message_ts")}


async def on_update(
    ack: AsyncAck,
    body: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
    respond: AsyncRespond,
) -> None:
    """The Update button: open the Update modal for someone allowed to change the item."""
    await _after_ack(ack, body, context, client, respond, _update)


async def _update(
    reap: sv.Reap, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond, deadline: float
) -> None:
    ref = str(body["actions"][0].get("value") or "")
    try:
        caller, item = await in_time(reap, deadline, _editable(reap, body, ref, "update"))
    except ReapError as exc:
        await _tell(client, body, exc)
        return
    await client.views_open(
        trigger_id=caller.trigger_id, view=bk.build_update_modal(item, metadata=_origin(body))
    )


# --- modals ------------------------------------------------------------------------------------


async def _refuse_inline(ack: AsyncAck, body: dict[str, Any], exc: Exception, *, block_id: str) -> None:
    """Keep the modal open with the refusal shown under `block_id`, and log it."""
    _log_refusal(body, exc)
    await ack(response_action="errors", errors={block_id: ui.clip(str(exc), 150)})


def _metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


async def _refresh_origin(
    reap: sv.Reap, origin: dict[str, Any], body: dict[str, Any], card: bk.ItemCard, client: AsyncWebClient
) -> None:
    """Show a modal's change where it was opened: the submitter's App Home, a message the bot sent
    them, or else (an ephemeral list, or a message the bot cannot vouch for) a DM to the submitter."""
    caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
    if origin.get("home") is True:
        await client.views_publish(user_id=caller.actor.user_id, view=await sv.home_view(reap, caller=caller))
        return
    channel, ts = origin.get("channel"), origin.get("ts")
    if isinstance(channel, str) and isinstance(ts, str):
        blocks = await sv.own_message_after_change(reap, caller=caller, channel=channel, ts=ts, card=card)
        if blocks is not None:
            await client.chat_update(channel=channel, ts=ts, text=ui.escape(card.item.title), blocks=blocks)
            return
    message = f"Updated *{card.item.ref}*."
    await client.chat_postMessage(
        channel=caller.actor.user_id,
        text=f"Updated {card.item.ref}.",
        blocks=bk.build_confirmation(message, card),
    )


async def on_update_submit(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    """The Update modal's Save: validate inline, then apply everything in one transaction."""
    reap = reap_of(context)
    origin = _metadata(view)
    form = sv.parse_update_form(str(origin.get("ref") or ""), view.get("state", {}).get("values", {}))
    if isinstance(form, dict):
        await ack(response_action="errors", errors=form)
        return

    async def update() -> bk.ItemCard:
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        return await sv.submit_update(reap, caller=caller, form=form)

    try:
        # The caller's row and the change in one transaction (the record went before, in the middleware).
        card = await unit_in_time(reap, request_deadline(context), update)
    except EvidenceRequired as exc:
        await _refuse_inline(ack, body, exc, block_id="evidence")
        return
    except ReasonRequired as exc:
        await _refuse_inline(ack, body, exc, block_id="note")
        return
    except ReapError as exc:
        await _refuse_inline(ack, body, exc, block_id="status")
        return
    await ack()
    reap.spawn(_refresh_origin(reap, origin, body, card, client))


async def on_snooze_submit(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    """The 'Snooze until…' modal."""
    reap = reap_of(context)
    origin = _metadata(view)
    raw = view.get("state", {}).get("values", {}).get("until", {}).get("value", {}).get("selected_date")
    try:
        until = date.fromisoformat(raw or "")
    except ValueError:
        await ack(response_action="errors", errors={"until": "Pick a date from the calendar."})
        return

    async def snooze() -> bk.ItemCard:
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        return await sv.press_snooze(reap, caller=caller, ref=str(origin.get("ref") or ""), until=until)

    try:
        card = await unit_in_time(reap, request_deadline(context), snooze)
    except ReapError as exc:
        await _refuse_inline(ack, body, exc, block_id="until")
        return
    await ack()
    reap.spawn(_refresh_origin(reap, origin, body, card, client))


async def on_add_submit(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    """The Add modal's submit: create the item and confirm by DM."""
    reap = reap_of(context)
    form = sv.parse_add_form(view.get("state", {}).get("values", {}))
    if isinstance(form, dict):
        await ack(response_action="errors", errors=form)
        return

    async def add() -> tuple[sv.Caller, ActionItem]:
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        return caller, await sv.submit_add(reap, caller=caller, form=form)

    try:
        caller, item = await unit_in_time(reap, request_deadline(context), add)
    except PermissionDenied as exc:
        await _refuse_inline(ack, body, exc, block_id="owner")
        return
    except ReapError as exc:
        await _refuse_inline(ack, body, exc, block_id="title")
        return
    await ack()
    reap.spawn(_confirm_added(reap, caller, item.ref, client))


async def _confirm_added(reap: sv.Reap, caller: sv.Caller, ref: str, client: AsyncWebClient) -> None:
    """The Add form's confirmation DM, with the new item's card (read after the form has closed)."""
    card = await sv.card_for(reap, caller=caller, ref=ref)
    blocks = bk.build_confirmation(f"Added *{ref}*.", card)
    await client.chat_postMessage(channel=caller.actor.user_id, text=f"Added {ref}.", blocks=blocks)


# --- quarterly check-in ------------------------------------------------------------------------


async def on_checkin_open(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """The Check in button on a prompt: one modal for every open item and owned measure."""
    await ack()
    reap = reap_of(context)
    reap.spawn(answered(_checkin_open(reap, body, client, request_deadline(context)), body, client))


async def _checkin_open(reap: sv.Reap, body: dict[str, Any], client: AsyncWebClient, deadline: float) -> None:
    quarter = str(body["actions"][0].get("value") or "")

    async def read() -> tuple[sv.Caller, CheckInSubject]:
        caller = await _presser(reap, body)
        subject = await quarterly.checkin_subject(
            reap, team_id=caller.actor.team_id, user_id=caller.actor.user_id, quarter=quarter
        )
        return caller, subject

    caller, subject = await in_time(reap, deadline, read())
    view = ck.build_checkin_modal(quarter, subject, zone=caller.zone)
    await client.views_open(trigger_id=caller.trigger_id, view=view)


async def on_checkin_submit(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    context: AsyncBoltContext,
    client: AsyncWebClient,
) -> None:
    """The check-in modal's Submit: every item and measure at once, or inline errors."""
    reap = reap_of(context)
    form = quarterly.parse_checkin_form(view.get("state", {}).get("values", {}))
    if isinstance(form, dict):
        await ack(response_action="errors", errors=form)
        return
    quarter = str(view.get("private_metadata") or "")

    async def check_in() -> tuple[sv.Caller, int]:
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        return caller, await quarterly.submit_checkin(reap, caller=caller, quarter=quarter, form=form)

    try:
        caller, count = await unit_in_time(reap, request_deadline(context), check_in)
    except quarterly.NothingChanged as exc:
        await _refuse_inline(ack, body, exc, block_id="confirm")
        return
    except ReapError as exc:
        first = next(iter(view.get("state", {}).get("values", {})), "status")
        await _refuse_inline(ack, body, exc, block_id=first)
        return
    await ack()
    text = f":white_check_mark: Thank you! Your {quarter} check-in covers {count} item(s)."
    reap.spawn(client.chat_postMessage(channel=caller.actor.user_id, text=text, blocks=[ui.section(text)]))


# --- App Home and shortcut ---------------------------------------------------------------------


async def on_home_opened(
    event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Publish the caller's App Home when they open it."""
    user = event.get("user")
    if event.get("tab") not in (None, "home") or not isinstance(user, str) or not user:
        return
    reap = reap_of(context)
    caller = await sv.caller_for(reap, team_id=team_of(body), user_id=user)
    await client.views_publish(user_id=caller.actor.user_id, view=await sv.home_view(reap, caller=caller))


async def on_create_from_message(
    ack: AsyncAck, shortcut: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """The 'Create action item' message shortcut: the Add modal, prefilled, linking back to the message."""
    await ack()
    reap = reap_of(context)
    message = shortcut.get("message") or {}
    channel = (shortcut.get("channel") or {}).get("id", "")
    ts = str(message.get("ts") or shortcut.get("message_ts") or "")
    link = f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}" if channel and ts else ""
    text = str(message.get("text") or "")

    async def add_modal() -> sv.Reply:
        caller = await sv.caller_for(
            reap, team_id=team_of(shortcut), user_id=_user(shortcut), trigger_id=shortcut.get("trigger_id")
        )
        return await sv.open_add_modal(
            reap,
            caller=caller,
            title=text.splitlines()[0][:300] if text else "",
            description=f"{text}\n\nFrom: {link}".strip(),
            metadata={"source": link},
        )

    try:
        # Its answer (the HTTP one) waits for this: the database gets the request's time, no more.
        reply = await in_time(reap, request_deadline(context), add_modal())
    except ReapError as exc:
        log.info("shortcut refused for %s: %s", _user(shortcut), exc)
        return
    _spawn_followups(reap, reply, client)
