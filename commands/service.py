"""What each /reap command, button and modal does: one service call per request, returning a Reply."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from commands import grammar as g
from commands import measures, quarterly
from domain.commitments import ChangeKind, check_evidence
from domain.errors import InvalidChange, NotFound, PermissionDenied, ReapError
from domain.fiscal import FiscalQuarter
from domain.org import Organisation
from domain.scoring import highest_total, weighted_total
from domain.status import ItemStatus, Role
from domain.text import DESCRIPTION_MAX, NOTE_MAX, TITLE_MAX, trimmed_problem, whole_percent
from messages import blocks as bk
from messages import home
from messages import primitives as ui
from messages import requests as rq
from storage.changes import (
    awaiting_verification,
    decide_request,
    describe,
    pending_by_item,
    pending_requests,
    propose_change,
)
from storage.checkins import get_cycle
from storage.engine import Sessions, read_connection, reading, transaction
from storage.items import (
    add_note,
    complete_item,
    create_item,
    department_by_key,
    get_item,
    reassign_item,
    reopen_item,
    set_progress,
    set_status,
    snooze_item,
    verify_item,
)
from storage.measures import criteria_for, criterion_of, scores_of
from storage.models import ActionItem, ActionItemCreate, ChangeRequest, Department, Person, Plan, Strategy
from storage.outbox import find_by_message
from storage.people import (
    Profile,
    caller_profile,
    ensure_person,
    find_person,
    refresh_person,
    role_holders,
    set_pause,
    set_role,
)
from storage.permissions import Actor, ensure_can_edit
from storage.public import set_public_update
from storage.queries.items import (
    CardRow,
    ItemFilter,
    card_extras,
    count_items,
    find_items,
    find_strategy,
    item_card,
    item_cards,
    item_history,
)
from storage.queries.rollup import measure_lines

log = logging.getLogger(__name__)

FollowUp = Callable[[AsyncWebClient], Awaitable[Any]]


# Re-renders a whole bot message (a digest) after one of its items changed; None if it cannot.
MessageRebuilder = Callable[[str, str, bk.ItemCard], Awaitable[list[dict[str, Any]] | None]]


@dataclass
class Reap:
    """What handlers need: the organisation, sessions, the clock and a way to run follow-ups after ack."""

    org: Organisation
    sessions: Sessions
    clock: Callable[[], datetime]
    spawn: Callable[[Coroutine[Any, Any, Any]], None]
    client: AsyncWebClient | None = None
    # All the database time an interactive request gets, counted from its arrival (see
    # commands.handlers.request_deadline).
    database_seconds: float = 2.5
    # Handed in by bot/ so that commands need not import reminders (which owns digests and delivery).
    rebuild_message: MessageRebuilder | None = None
    deliver_now: Callable[[], Awaitable[Any]] | None = None

    async def deliver_soon(self) -> None:
        """Send what a person's command owed through the outbox now, instead of at the next tick."""
        if self.deliver_now is not None:
            await self.deliver_now()

    def actor(self, team_id: str, user_id: str, *, role: str | None = None, active: bool = True) -> Actor:
        """The acting person: an admin if their stored role says so, or if REAP_ADMINS lists them
        (which only bootstraps the first admins; every later one is appointed with /reap role)."""
        stored = role == Role.ADMIN.value and active
        return Actor(team_id, user_id, is_admin=stored or user_id in self.org.admins)


@dataclass(frozen=True)
class Caller:
    """Who is asking and where: their workspace, id, time zone and local date."""

    actor: Actor
    zone: ZoneInfo
    today: date
    now: datetime
    channel_id: str | None = None
    trigger_id: str | None = None
    # Where a slash command's later answers go (ephemeral, in any channel, for 30 minutes).
    response_url: str | None = None


@dataclass
class Reply:
    """An answer to show the caller, plus Slack calls to make after the ack."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    in_channel: bool = False
    followups: list[FollowUp] = field(default_factory=list)
    errors: dict[str, str] | None = None  # modal submissions: inline errors by block_id

    def ack_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for Bolt's ack()."""
        kwargs: dict[str, Any] = {"text": ui.clip(self.text, 3000), "blocks": self.blocks}
        if self.in_channel:
            kwargs["response_type"] = "in_channel"
        return kwargs


def error_reply(exc: Exception) -> Reply:
    """A friendly ephemeral reply for a problem the person caused."""
    if isinstance(exc, g.UsageError):
        usage = g.USAGE.get(exc.subcommand or "", None)
        return Reply(text=ui.escape(str(exc)), blocks=bk.build_error(exc.problem, usage))
    # A refusal's text is ours (refs and mentions of who may act), so its mentions must stay live;
    # every other message may quote what the person typed, so it is escaped.
    trusted = isinstance(exc, PermissionDenied)
    return Reply(
        text=str(exc) if trusted else ui.escape(str(exc)), blocks=bk.build_error(str(exc), trusted=trusted)
    )


PROFILE_MAX_AGE = timedelta(days=1)


async def refresh_from_slack(reap: Reap, *, team_id: str, user_id: str) -> None:
    """Refresh a person's name, time zone and active flag from users.info."""
    if reap.client is None:
        return
    answer = await reap.client.users_info(user=user_id)
    async with transaction(reap.sessions) as session:
        await refresh_person(session, team_id=team_id, user=dict(answer["user"]), now=reap.clock())


def needs_profile(person: Person, now: datetime) -> bool:
    """Whether Slack has never given this person's profile, or gave it more than a day ago."""
    return person.refreshed_at is None or now - person.refreshed_at > PROFILE_MAX_AGE


async def look_up_profile(reap: Reap, *, team_id: str, user_id: str) -> None:
    """A new owner's name, time zone and active flag from users.info, after the ack. If Slack
    cannot say yet, the organisation's hour serves until the tick's lookups or daily pass do."""
    try:
        await refresh_from_slack(reap, team_id=team_id, user_id=user_id)
    except SlackApiError as exc:
        log.info("could not look up %s: %s", user_id, exc.response.get("error"))


def _look_up(reap: Reap, caller: Caller, user_id: str, missing: bool) -> bool:
    # The caller's own profile is caller_for's to refresh.
    return missing and reap.client is not None and user_id != caller.actor.user_id


def _lookups(reap: Reap, caller: Caller, user_id: str, missing: bool) -> list[FollowUp]:
    """The follow-up that looks up a new owner whose profile is missing, so their first nudge
    comes at their own hour."""
    if not _look_up(reap, caller, user_id, missing):
        return []

    async def look_up(_: AsyncWebClient) -> None:
        await look_up_profile(reap, team_id=caller.actor.team_id, user_id=user_id)

    return [look_up]


async def caller_for(reap: Reap, *, team_id: str, user_id: str, **where: str | None) -> Caller:
    """The Caller, creating the Person on first contact; their local date decides 'today'."""
    now = reap.clock()
    async with read_connection(reap.sessions) as connection:
        person = await caller_profile(connection, team_id=team_id, user_id=user_id)
    if person is None:
        # First contact is the only write here; every later request just reads.
        async with transaction(reap.sessions) as session:
            person = Profile.of(await ensure_person(session, team_id=team_id, user_id=user_id, now=now))
    zone = ZoneInfo(person.tz) if person.tz else reap.org.zone
    stale = person.refreshed_at is None or now - person.refreshed_at > PROFILE_MAX_AGE
    if stale and reap.client is not None:
        # Name and time zone arrive from users.info after the ack; the org zone serves until then.
        reap.spawn(refresh_from_slack(reap, team_id=team_id, user_id=user_id))
    local = now.astimezone(zone)
    actor = reap.actor(team_id, user_id, role=person.role, active=person.active)
    return Caller(actor=actor, zone=zone, today=local.date(), now=now, **where)


async def _strategy_names(session: AsyncSession, team_id: str) -> dict[int, str]:
    rows = await session.exec(select(Strategy).where(Strategy.team_id == team_id))
    return {s.id or 0: s.name for s in rows}


def _card(
    item: ActionItem,
    names: dict[int, str],
    caller: Caller,
    pending: ChangeRequest | None = None,
    score: tuple[float, float] | None = None,
) -> bk.ItemCard:
    return _named_card(item, names.get(item.strategy_id, ""), caller, pending, score)


def _named_card(
    item: ActionItem,
    strategy: str,
    caller: Caller,
    pending: ChangeRequest | None = None,
    score: tuple[float, float] | None = None,
) -> bk.ItemCard:
    return bk.ItemCard(
        item=item, strategy=strategy, zone=caller.zone, today=caller.today, pending=pending, score=score
    )


async def _strategy_name(session: AsyncSession, item: ActionItem) -> str:
    name, _ = await card_extras(session, item=item)
    return name


async def _scores(session: AsyncSession, items: list[ActionItem]) -> dict[int, tuple[float, float]]:
    """Each scored item's weighted total and the most its plan's matrix allows."""
    found = await scores_of(session, item_ids=[i.id for i in items if i.id is not None])
    totals: dict[int, tuple[float, float]] = {}
    highest: dict[int, float] = {}  # by strategy: items of one strategy share their plan's matrix
    for item in items:
        if item.id is not None and item.id in found:
            if item.strategy_id not in highest:
                criteria = [criterion_of(row) for row in await criteria_for(session, item=item)]
                highest[item.strategy_id] = highest_total(criteria)
            totals[item.id] = (weighted_total(found[item.id]), highest[item.strategy_id])
    return totals


async def _cards(session: AsyncSession, rows: list[CardRow], caller: Caller) -> list[bk.ItemCard]:
    """Cards for items read with their card (`item_cards`); scores are read only for scored items."""
    scores = await _scores(session, [row.item for row in rows if row.scored])
    return [
        _named_card(row.item, row.strategy, caller, row.pending, scores.get(row.item.id or 0)) for row in rows
    ]


async def card_for(reap: Reap, *, caller: Caller, ref: str) -> bk.ItemCard:
    """A fresh card for one item, as the caller sees it."""
    async with reading(reap.sessions) as session:
        row = await item_card(session, team_id=caller.actor.team_id, ref=ref)
        (card,) = await _cards(session, [row], caller)
    return card


# --- commands ----------------------------------------------------------------------------------


async def run_command(reap: Reap, *, caller: Caller, command: g.Command) -> Reply:
    """Carry out one parsed /reap command."""
    match command:
        case g.Help(topic=topic):
            return Reply(text=g.help_text(topic), blocks=[ui.section(ui.escape(g.help_text(topic)))])
        case g.Add():
            return await _add(reap, caller, command)
        case g.ListItems():
            return await _list(reap, caller, command)
        case g.Show(ref=ref):
            card = await card_for(reap, caller=caller, ref=ref)
            return Reply(
                text=f"{card.item.ref} {ui.escape(card.item.title)}",
                blocks=bk.build_item_detail(card, description=card.item.description),
            )
        case g.History(ref=ref):
            async with reading(reap.sessions) as session:
                events = await item_history(session, team_id=caller.actor.team_id, ref=ref)
            return Reply(text=f"History of {ref}", blocks=bk.build_history(ref.upper(), events))
        case g.SetStatus(ref=ref, status=status, note=note) if status == ItemStatus.DROPPED:
            return await _propose(reap, caller, ref, ChangeKind.DROP, None, note)
        case g.SetStatus(ref=ref, status=status, note=note):
            return await _change(
                reap,
                caller,
                ref,
                f"{ref.upper()} is now {ItemStatus(status).label}.",
                lambda s: set_status(
                    s, ref=ref, status=ItemStatus(status), actor=caller.actor, now=caller.now, note=note
                ),
            )
        case g.Done(ref=ref, note=note, evidence=evidence):
            return await _change(
                reap,
                caller,
                ref,
                f":white_check_mark: {ref.upper()} is done. Thank you!",
                lambda s: complete_item(
                    s, ref=ref, actor=caller.actor, now=caller.now, note=note, evidence=evidence
                ),
            )
        case g.Progress(ref=ref, percent=percent):
            return await _change(
                reap,
                caller,
                ref,
                f"{ref.upper()} is {percent}% complete.",
                lambda s: set_progress(s, ref=ref, percent=percent, actor=caller.actor, now=caller.now),
            )
        case g.Note(ref=ref, text=text):
            return await _change(
                reap,
                caller,
                ref,
                f"Noted on {ref.upper()}.",
                lambda s: add_note(s, ref=ref, text=text, actor=caller.actor, now=caller.now),
            )
        case g.Due(ref=ref, due=due, reason=reason):
            return await _propose(reap, caller, ref, ChangeKind.REDATE, due.isoformat(), reason)
        case g.Assign(ref=ref, owner=owner, reason=reason):
            async with transaction(reap.sessions) as session:
                person = await ensure_person(
                    session, team_id=caller.actor.team_id, user_id=owner, now=caller.now
                )
                missing = needs_profile(person, caller.now)
            reply = await _propose(reap, caller, ref, ChangeKind.REASSIGN, owner, reason)
            reply.followups += _lookups(reap, caller, owner, missing)
            return reply
        case g.Decide(request=number, approve=approve, note=note):
            return await decide(reap, caller=caller, request_id=number, approve=approve, note=note)
        case g.Verify(ref=ref):
            return await _change(
                reap,
                caller,
                ref,
                f":white_check_mark: {ref.upper()} is verified.",
                lambda s: verify_item(s, ref=ref, actor=caller.actor, now=caller.now),
            )
        case g.Reopen(ref=ref, status=status, percent=percent, reason=reason):
            return await _change(
                reap,
                caller,
                ref,
                f"{ref.upper()} is open again: {ItemStatus(status).label}, {percent}%.",
                lambda s: reopen_item(
                    s,
                    ref=ref,
                    status=ItemStatus(status),
                    percent=percent,
                    reason=reason,
                    actor=caller.actor,
                    now=caller.now,
                ),
            )
        case g.Requests(department=department):
            return await list_requests(reap, caller=caller, department=department)
        case g.RecordDecision():
            return await quarterly.run_decision(reap, caller=caller, command=command)
        case g.ShowAgenda():
            return await quarterly.run_agenda(reap, caller=caller, command=command)
        case g.Amend():
            return await quarterly.run_amend(reap, caller=caller, command=command)
        case g.PublicUpdate(ref=ref, text=text, lang=lang):
            said = "cleared" if not text.strip() else "set"
            language = "Spanish" if lang == "es" else "English"
            return await _change(
                reap,
                caller,
                ref,
                f"The public {language} update of {ref.upper()} is {said}; the next publish shows it.",
                lambda s: set_public_update(
                    s, actor=caller.actor, ref=ref, text=text, now=caller.now, lang=lang
                ),
            )
        case g.Snooze(ref=ref, until=wake):
            return await _change(
                reap,
                caller,
                ref,
                f":zzz: No reminders about {ref.upper()} until {ui.date_token(wake, caller.zone)}.",
                lambda s: snooze_item(s, ref=ref, until=wake, actor=caller.actor, now=caller.now),
            )
        case g.Pause(until=resume):
            return await _pause(reap, caller, resume)
        case g.Role():
            return await _set_role(reap, caller, command)
        case g.Who(department=department):
            async with reading(reap.sessions) as session:
                holders = await role_holders(session, team_id=caller.actor.team_id, department_key=department)
            title = f"Roles in {department}" if department else "Who holds which role"
            return Reply(text=title, blocks=bk.build_role_list(holders, title=title, admins=reap.org.admins))
        case g.CheckIn():
            return await quarterly.run_checkin(reap, caller=caller, command=command)
        case g.RecordMeasure():
            return await measures.run_measure(reap, caller=caller, command=command)
        case g.ListMeasures():
            return await measures.run_measures(reap, caller=caller, command=command)
        case g.ScoreItem():
            return await measures.run_score(reap, caller=caller, command=command)
        case g.ScoreForm():
            return await measures.open_score_form(reap, caller=caller, command=command)
        case g.Rollup():
            return await quarterly.run_rollup(reap, caller=caller, command=command)
    raise InvalidChange(f"`{type(command).__name__}` is not something I can do.")


async def _propose(
    reap: Reap, caller: Caller, ref: str, kind: ChangeKind, value: str | None, reason: str | None
) -> Reply:
    """A change to a commitment: applied at once where the caller may, else a request to the coordinators."""
    async with transaction(reap.sessions) as session:
        outcome = await propose_change(
            session,
            actor=caller.actor,
            ref=ref,
            kind=kind,
            value=value,
            reason=reason,
            today=caller.today,
            now=caller.now,
        )
        name = await _strategy_name(session, outcome.item)
    card = _named_card(outcome.item, name, caller, outcome.request)
    if outcome.request is not None:
        text = rq.request_filed_text(outcome.request, outcome.item)
        return Reply(text=text, blocks=bk.build_confirmation(text, card))
    done = {
        ChangeKind.DROP: f"{card.item.ref} is dropped.",
        ChangeKind.REDATE: f"{card.item.ref} is now due "
        + (ui.date_token(card.item.due, caller.zone) if card.item.due else "with no date")
        + ".",
        ChangeKind.REASSIGN: f"{card.item.ref} now belongs to <@{card.item.owner_id}>.",
    }[kind]
    return Reply(text=done, blocks=bk.build_confirmation(done, card))


async def decide(reap: Reap, *, caller: Caller, request_id: int, approve: bool, note: str | None) -> Reply:
    """Approve or decline a change request; the requester is told at once (their own request's answer)."""
    async with transaction(reap.sessions) as session:
        request, item = await decide_request(
            session, actor=caller.actor, request_id=request_id, approve=approve, note=note, now=caller.now
        )
    verb = "Approved" if approve else "Declined"
    text = f"{verb} request #{request.id} on {item.ref}: {describe(request)}."
    reply = Reply(text=text, blocks=[ui.section(text)])
    told = rq.decision_text(request, item)
    requester = request.requested_by
    reply.followups.append(
        lambda client: client.chat_postMessage(channel=requester, text=told, blocks=[ui.section(told)])
    )
    return reply


async def list_requests(reap: Reap, *, caller: Caller, department: str | None) -> Reply:
    """`/reap requests [department]`: what waits for a coordinator, with the buttons to decide."""
    team_id = caller.actor.team_id
    async with reading(reap.sessions) as session:
        department_ids = None
        if department:
            found = await department_by_key(session, team_id=team_id, key=department)
            department_ids = [found.id or 0]
        pending = await pending_requests(session, team_id=team_id, department_ids=department_ids)
        awaiting = await awaiting_verification(session, team_id=team_id, department_ids=department_ids)
    title = f"Waiting for a coordinator{f' in {department}' if department else ''}"
    text = f"{title}: {len(pending)} requests, {len(awaiting)} to verify"
    return Reply(text=text, blocks=rq.build_requests(pending, awaiting, title=title, zone=caller.zone))


async def _set_role(reap: Reap, caller: Caller, command: g.Role) -> Reply:
    if reap.client is not None:
        # A role for someone Slack does not know would sit in the database, unreachable.
        try:
            answer = await reap.client.users_info(user=command.user)
        except SlackApiError as exc:
            raise InvalidChange(f"<@{command.user}> is not in this workspace; nothing was changed.") from exc
        profile: dict[str, Any] = dict(answer.get("user") or {})
        if profile.get("deleted"):
            raise InvalidChange(f"<@{command.user}> is deactivated in Slack; nothing was changed.")
    async with transaction(reap.sessions) as session:
        await set_role(
            session,
            actor=caller.actor,
            user_id=command.user,
            role=Role(command.role),
            department_key=command.department,
            now=caller.now,
        )
        if reap.client is not None:
            await refresh_person(
                session, team_id=caller.actor.team_id, user=dict(answer["user"]), now=caller.now
            )
    where = f" of {command.department.upper()}" if command.department else ""
    text = f"<@{command.user}> is now {_a(Role(command.role).label)}{where}."
    return Reply(text=text, blocks=[ui.section(text)])


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


async def _reassign(session: AsyncSession, caller: Caller, ref: str, owner: str) -> ActionItem:
    await ensure_person(session, team_id=caller.actor.team_id, user_id=owner, now=caller.now)
    return await reassign_item(session, ref=ref, owner_id=owner, actor=caller.actor, now=caller.now)


async def _change(
    reap: Reap,
    caller: Caller,
    ref: str,
    message: str,
    change: Callable[[AsyncSession], Awaitable[ActionItem]],
) -> Reply:
    async with transaction(reap.sessions) as session:
        item = await change(session)
        name, pending = await card_extras(session, item=item)
    card = _named_card(item, name, caller, pending)
    return Reply(text=message, blocks=bk.build_confirmation(message, card))


async def _pause(reap: Reap, caller: Caller, until: date | None) -> Reply:
    if until is not None and until <= caller.today:
        raise InvalidChange("Pick a date after today for your reminders to resume.")
    async with transaction(reap.sessions) as session:
        await set_pause(session, actor=caller.actor, until=until, now=caller.now)
    text = (
        f":double_vertical_bar: Your reminders are paused; they resume {ui.date_token(until, caller.zone)}."
        if until
        else ":arrow_forward: Your reminders are back on."
    )
    return Reply(text=text, blocks=[ui.section(text)])


async def _caller_department(session: AsyncSession, caller: Caller) -> int | None:
    person = await find_person(session, team_id=caller.actor.team_id, user_id=caller.actor.user_id)
    return person.department_id if person else None


async def _strategies_for(session: AsyncSession, caller: Caller) -> list[Strategy]:
    department_id = await _caller_department(session, caller)
    query = (
        select(Strategy)
        .join(Plan, col(Plan.id) == col(Strategy.plan_id))
        .where(Strategy.team_id == caller.actor.team_id)
    )
    if department_id is not None:
        query = query.where(Plan.department_id == department_id)
    return list(await session.exec(query.order_by(col(Plan.id), col(Strategy.position))))


async def _add(reap: Reap, caller: Caller, command: g.Add) -> Reply:
    if command.title is None:
        return await open_add_modal(reap, caller=caller)
    async with transaction(reap.sessions) as session:
        strategy = await _pick_strategy(session, caller, command.strategy)
        owner = command.owner or caller.actor.user_id
        person = await ensure_person(session, team_id=caller.actor.team_id, user_id=owner, now=caller.now)
        missing = needs_profile(person, caller.now)
        item = await create_item(
            session,
            data=ActionItemCreate(
                title=command.title, owner_id=owner, due=command.due, strategy_id=strategy.id or 0
            ),
            actor=caller.actor,
            now=caller.now,
        )
        name = await _strategy_name(session, item)
    message = f"Added *{item.ref}*."
    return Reply(
        text=f"Added {item.ref}.",
        blocks=bk.build_confirmation(message, _named_card(item, name, caller)),
        followups=_lookups(reap, caller, owner, missing),
    )


async def _pick_strategy(session: AsyncSession, caller: Caller, name: str | None) -> Strategy:
    if name:
        strategy = await find_strategy(session, team_id=caller.actor.team_id, name=name)
        if strategy is None:
            raise NotFound("strategy", f"'{name}'")
        return strategy
    strategies = await _strategies_for(session, caller)
    if len(strategies) == 1:
        return strategies[0]
    if not strategies:
        raise InvalidChange("There is no plan yet; ask an admin to run `reap import plan.yaml`.")
    keys = ", ".join(f"`{s.key}`" for s in strategies)
    raise InvalidChange(f"Which strategy? Add `strategy <key>`, one of: {keys}.")


async def open_add_modal(
    reap: Reap,
    *,
    caller: Caller,
    title: str = "",
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> Reply:
    """Ack quietly and open the Add modal (views.open must use the trigger within 3 seconds)."""
    async with reading(reap.sessions) as session:
        strategies = await _strategies_for(session, caller)
    if not strategies:
        raise InvalidChange("There is no plan yet; ask an admin to run `reap import plan.yaml`.")
    view = bk.build_add_modal(
        strategies, title=title, description=description, owner=caller.actor.user_id, metadata=metadata
    )
    trigger = caller.trigger_id

    async def open_view(client: AsyncWebClient) -> None:
        await client.views_open(trigger_id=trigger, view=view)

    return Reply(text="", followups=[open_view])


LIST_TITLES = {
    "mine": "Your open items",
    "overdue": "Overdue items",
    "due-soon": "Due in the next 14 days",
    "blocked": "Blocked items",
    "all": "All items",
}


async def _list(reap: Reap, caller: Caller, command: g.ListItems) -> Reply:
    if command.scope == "ranked":
        return await measures.run_ranked(reap, caller=caller, strategy_name=command.strategy)
    team_id = caller.actor.team_id
    async with reading(reap.sessions) as session:
        where, title = await _list_filter(session, caller, command)
        offset = (command.page - 1) * bk.PAGE_SIZE
        # The items, their strategies' names, pending requests and whether they are scored: one read.
        rows = await item_cards(
            session, team_id=team_id, where=where, today=caller.today, limit=bk.PAGE_SIZE, offset=offset
        )
        # Most lists fit on their first page, and then the page is the count: one query saved.
        if offset == 0 and len(rows) < bk.PAGE_SIZE:
            total = len(rows)
        else:
            total = await count_items(session, team_id=team_id, where=where)
        cards = await _cards(session, rows, caller)
    blocks = bk.build_item_list(cards, title=title, page=command.page, total=total)
    return Reply(text=f"{ui.escape(title)}: {total}", blocks=blocks)


async def _list_filter(session: AsyncSession, caller: Caller, command: g.ListItems) -> tuple[ItemFilter, str]:
    today = caller.today
    match command.scope:
        case "mine":
            return ItemFilter.open(owner_id=caller.actor.user_id), LIST_TITLES["mine"]
        case "user":
            return ItemFilter.open(owner_id=command.user), f"Open items of <@{command.user}>"
        case "overdue":
            return ItemFilter(overdue_as_of=today), LIST_TITLES["overdue"]
        case "due-soon":
            return ItemFilter.open(due_from=today, due_to=today + timedelta(days=14)), LIST_TITLES["due-soon"]
        case "blocked":
            return ItemFilter(statuses=[ItemStatus.BLOCKED.value]), LIST_TITLES["blocked"]
        case "strategy":
            strategy = await find_strategy(session, team_id=caller.actor.team_id, name=command.strategy or "")
            if strategy is None:
                raise NotFound("strategy", f"'{command.strategy}'")
            return ItemFilter(strategy_id=strategy.id), f"Items in {strategy.name}"
        case "status":
            status = ItemStatus(str(command.status))
            return ItemFilter(statuses=[status.value]), f"Items {status.label}"
    return ItemFilter(), LIST_TITLES["all"]


# --- buttons and modals ------------------------------------------------------------------------


def item_ref(ref: str) -> str:
    """`ref` if it is shaped like an item ref, else NotFound.

    A button's value and a modal's metadata come back from the client and may carry anything,
    including text the database cannot take in a query (a lone surrogate; NUL on PostgreSQL).
    """
    if not g.REF.fullmatch(ref):
        raise NotFound("item", ui.clip(ascii(ref), 40))
    return ref


async def press_done(reap: Reap, *, caller: Caller, ref: str) -> bk.ItemCard:
    """The Done button: complete the item (pressing twice completes once)."""
    async with transaction(reap.sessions) as session:
        item = await complete_item(session, ref=item_ref(ref), actor=caller.actor, now=caller.now)
        name = await _strategy_name(session, item)
    return _named_card(item, name, caller)


def snooze_until(choice: str, today: date) -> date:
    """The date a Snooze menu choice means."""
    days = {"1d": 1, "1w": 7}.get(choice)
    if days is None:
        raise InvalidChange(f"'{choice}' is not a snooze choice.")
    return today + timedelta(days=days)


async def press_snooze(reap: Reap, *, caller: Caller, ref: str, until: date) -> bk.ItemCard:
    """Snooze an item until a date."""
    if until <= caller.today:
        raise InvalidChange("Pick a date after today.")
    async with transaction(reap.sessions) as session:
        item = await snooze_item(session, ref=item_ref(ref), until=until, actor=caller.actor, now=caller.now)
        name = await _strategy_name(session, item)
    return _named_card(item, name, caller)


async def editable_item(reap: Reap, *, caller: Caller, ref: str, action: str) -> ActionItem:
    """The item, if the caller may change it (checked before opening a modal as well as on submit)."""
    async with reading(reap.sessions) as session:
        item = await get_item(session, team_id=caller.actor.team_id, ref=item_ref(ref))
        await ensure_can_edit(session, actor=caller.actor, item=item, action=f"{action} {item.ref}")
    return item


@dataclass(frozen=True)
class UpdateForm:
    """What the Update modal submitted, already validated."""

    ref: str
    status: ItemStatus
    progress: int
    due: date | None
    note: str | None
    evidence: str | None = None


def parse_update_form(ref: str, values: dict[str, Any]) -> UpdateForm | dict[str, str]:
    """Read the Update modal's state; inline errors by block_id if something is off."""
    errors: dict[str, str] = {}
    status_value = (values.get("status", {}).get("value", {}).get("selected_option") or {}).get("value")
    try:
        status = ItemStatus(str(status_value))
    except ValueError:
        errors["status"] = "Pick a status."
        status = ItemStatus.NOT_STARTED
    raw_progress = str(values.get("progress", {}).get("value", {}).get("value") or "").strip().rstrip("%")
    progress = whole_percent(raw_progress)
    if progress is None:
        errors["progress"] = "Enter a whole number from 0 to 100."
        progress = 0
    raw_due = values.get("due", {}).get("value", {}).get("selected_date")
    due: date | None = None
    if raw_due:
        try:
            due = date.fromisoformat(raw_due)
        except ValueError:
            errors["due"] = "Pick a date from the calendar."
    raw_note = values.get("note", {}).get("value", {}).get("value") or ""
    note = raw_note.strip() or None
    if problem := trimmed_problem(raw_note, field="note", limit=NOTE_MAX, multiline=True):
        errors["note"] = problem
    evidence = (values.get("evidence", {}).get("value", {}).get("value") or "").strip() or None
    if evidence:
        try:
            evidence = check_evidence(evidence)
        except InvalidChange as exc:
            errors["evidence"] = str(exc)
    if errors:
        return errors
    return UpdateForm(ref=ref, status=status, progress=progress, due=due, note=note, evidence=evidence)


async def submit_update(reap: Reap, *, caller: Caller, form: UpdateForm) -> bk.ItemCard:
    """Apply an Update modal in one transaction (status, progress, due date and note together)."""
    team_id, actor, now = caller.actor.team_id, caller.actor, caller.now
    async with transaction(reap.sessions) as session:
        # Locked and read once: each change below finds it locked and does not read it again.
        item = await get_item(session, team_id=team_id, ref=item_ref(form.ref), lock=True)
        await ensure_can_edit(session, actor=actor, item=item, action=f"update {item.ref}")
        pending = None
        if form.due != item.due:
            # A later date than the plan allows becomes a request with the note as its reason.
            value = form.due.isoformat() if form.due else None
            outcome = await propose_change(
                session,
                actor=actor,
                ref=form.ref,
                kind=ChangeKind.REDATE,
                value=value,
                reason=form.note,
                today=caller.today,
                now=now,
            )
            pending = outcome.request
        if form.status == ItemStatus.DROPPED and item.status != ItemStatus.DROPPED:
            outcome = await propose_change(
                session,
                actor=actor,
                ref=form.ref,
                kind=ChangeKind.DROP,
                value=None,
                reason=form.note,
                today=caller.today,
                now=now,
            )
            pending = outcome.request or pending
        elif form.status.value != item.status or (form.status == ItemStatus.DONE and form.evidence):
            await set_status(
                session,
                ref=form.ref,
                status=form.status,
                actor=actor,
                now=now,
                note=form.note,
                evidence=form.evidence,
            )
        if form.progress != item.progress and form.status != ItemStatus.DONE:
            await set_progress(
                session, ref=form.ref, percent=form.progress, actor=actor, now=now, note=form.note
            )
        if form.note and item.last_note != form.note:
            await add_note(session, ref=form.ref, text=form.note, actor=actor, now=now)
        name = await _strategy_name(session, item)
    return _named_card(item, name, caller, pending)


# Row ids are PostgreSQL INTEGER columns; a larger number would fail the query instead of finding nothing.
MAX_ROW_ID = 2**31 - 1


@dataclass(frozen=True)
class AddForm:
    """What the Add modal submitted, already validated."""

    title: str
    strategy_id: int
    owner: str
    due: date | None
    description: str


def parse_add_form(values: dict[str, Any]) -> AddForm | dict[str, str]:
    """Read the Add modal's state; inline errors by block_id if something is off."""
    errors: dict[str, str] = {}
    raw_title = values.get("title", {}).get("value", {}).get("value") or ""
    title = raw_title.strip()
    if not title:
        errors["title"] = "Give the item a title."
    elif problem := trimmed_problem(raw_title, field="title", limit=TITLE_MAX):
        errors["title"] = problem
    strategy_raw = (values.get("strategy", {}).get("value", {}).get("selected_option") or {}).get("value", "")
    # An option value is the client's to send: one past a row id (PostgreSQL INTEGER) names no strategy.
    # ASCII digits only: str.isdigit() also takes "²", and int() refuses 4,300 digits and more.
    if not re.fullmatch(r"[0-9]{1,10}", str(strategy_raw)) or int(strategy_raw) > MAX_ROW_ID:
        errors["strategy"] = "Pick a strategy."
    owner = values.get("owner", {}).get("value", {}).get("selected_user") or ""
    if not g.USER_ID.fullmatch(str(owner)):
        errors["owner"] = "Pick an owner."
    raw_due = values.get("due", {}).get("value", {}).get("selected_date")
    due = None
    if raw_due:
        try:
            due = date.fromisoformat(raw_due)
        except ValueError:
            errors["due"] = "Pick a date from the calendar."
    raw_description = values.get("description", {}).get("value", {}).get("value") or ""
    description = raw_description.strip()
    limit = DESCRIPTION_MAX
    if problem := trimmed_problem(raw_description, field="description", limit=limit, multiline=True):
        errors["description"] = problem
    if errors:
        return errors
    return AddForm(title=title, strategy_id=int(strategy_raw), owner=owner, due=due, description=description)


async def submit_add(reap: Reap, *, caller: Caller, form: AddForm) -> ActionItem:
    """Create the item the Add modal describes."""
    async with transaction(reap.sessions) as session:
        strategy = await session.get(Strategy, form.strategy_id)
        if strategy is None or strategy.team_id != caller.actor.team_id:
            raise NotFound("strategy", str(form.strategy_id))
        person = await ensure_person(
            session, team_id=caller.actor.team_id, user_id=form.owner, now=caller.now
        )
        missing = needs_profile(person, caller.now)
        item = await create_item(
            session,
            data=ActionItemCreate(
                title=form.title,
                owner_id=form.owner,
                due=form.due,
                strategy_id=form.strategy_id,
                description=form.description,
            ),
            actor=caller.actor,
            now=caller.now,
        )
    if _look_up(reap, caller, form.owner, missing):
        reap.spawn(look_up_profile(reap, team_id=caller.actor.team_id, user_id=form.owner))
    return item


# A modal opened from a message may refresh it this long after the bot posted it (digests are daily).
OWN_MESSAGE_MAX_AGE = timedelta(days=90)


async def own_message_after_change(
    reap: Reap, *, caller: Caller, channel: str, ts: str, card: bk.ItemCard
) -> list[dict[str, Any]] | None:
    """The fresh blocks of message (channel, ts) after a change, if the bot's outbox says it sent
    that message to the caller; None otherwise. A modal's metadata only names a message, and the
    metadata round-trips through Slack's client, so where the bot writes is checked here."""
    window = (caller.now - OWN_MESSAGE_MAX_AGE, caller.now + timedelta(minutes=5))
    async with reading(reap.sessions) as session:
        rows = await find_by_message(session, channel=channel, ts=ts, sent_between=window)
    if not any(row.team_id == caller.actor.team_id and row.recipient == caller.actor.user_id for row in rows):
        return None
    if reap.rebuild_message is not None:
        blocks = await reap.rebuild_message(channel, ts, card)
        if blocks is not None:
            return blocks
    return bk.build_item_card(card)


# --- App Home ----------------------------------------------------------------------------------


async def home_view(reap: Reap, *, caller: Caller) -> dict[str, Any]:
    """The App Home for the caller; a coordinator (DEI coordinator, admin) also sees what waits for
    their decision in their departments (every department) and each department's summary."""
    team_id = caller.actor.team_id
    me = caller.actor.user_id
    async with reading(reap.sessions) as session:
        names = await _strategy_names(session, team_id)
        mine = await find_items(
            session, team_id=team_id, where=ItemFilter.open(owner_id=me), today=caller.today, limit=60
        )
        asked = await pending_by_item(session, item_ids=[i.id for i in mine if i.id is not None])
        person = await find_person(session, team_id=team_id, user_id=me)
        summaries: list[bk.DepartmentSummary] = []
        departments: list[Department] = []
        everywhere = caller.actor.is_admin or (person is not None and person.role == Role.DEI.value)
        if everywhere:
            departments = list(await session.exec(select(Department).where(Department.team_id == team_id)))
        elif person is not None and person.role == Role.COORDINATOR.value and person.department_id:
            department = await session.get(Department, person.department_id)
            departments = [department] if department else []
        for department in departments[:5]:
            summaries.append(await _department_summary(session, caller, department, names))
        waiting = None
        if everywhere or departments:
            ids = None if everywhere else [d.id or 0 for d in departments]
            pending = await pending_requests(session, team_id=team_id, department_ids=ids)
            awaiting = await awaiting_verification(session, team_id=team_id, department_ids=ids)
            # Nobody decides their own request or verifies their own item, so neither waits for them.
            waiting = bk.Waiting(
                pending=[p for p in pending if p.request.requested_by != me],
                awaiting=[i for i in awaiting if i.owner_id != me],
                zone=caller.zone,
            )
        quarter = FiscalQuarter.containing(caller.today, reap.org.fiscal_year_start_month)
        cycle = await get_cycle(session, team_id=team_id, quarter=quarter.label)
        placed = await measure_lines(session, team_id=team_id, quarter=quarter, owner_id=me)
    cards = [_card(i, names, caller, asked.get(i.id or 0)) for i in mine]
    actions = home.build_home_actions(
        quarter=quarter.label,
        checkin_open=cycle is not None and cycle.opened_at is not None and cycle.closed_at is None,
        coordinator=everywhere or bool(departments),
    )
    return bk.build_home(
        cards,
        summaries=summaries,
        paused_until=person.paused_until if person else None,
        waiting=waiting,
        actions=actions,
        measures=home.build_home_measures(placed, quarter=quarter.label),
    )


async def _department_summary(
    session: AsyncSession, caller: Caller, department: Department, names: dict[int, str]
) -> bk.DepartmentSummary:
    team_id = caller.actor.team_id
    items = await find_items(session, team_id=team_id, where=ItemFilter(department_id=department.id))
    counts: dict[str, dict[str, int]] = {}
    overdue = [
        _card(i, names, caller) for i in items if i.status_enum.is_open and i.due and i.due < caller.today
    ]
    late = {card.item.ref for card in overdue}
    for item in items:
        fresh = {bk.OVERDUE: 0, **{s.value: 0 for s in ItemStatus}}
        by_status = counts.setdefault(names.get(item.strategy_id, "?"), fresh)
        # The calendar wins over what was typed: an open item past its date counts as overdue.
        by_status[bk.OVERDUE if item.ref in late else item.status] += 1
    stale_since = caller.now - timedelta(days=60)
    stale = [_card(i, names, caller) for i in items if i.status_enum.is_open and i.updated_at < stale_since]
    return bk.DepartmentSummary(key=department.key, counts=counts, overdue=overdue, stale=stale)


__all__ = ["Caller", "Reap", "ReapError", "Reply"]
