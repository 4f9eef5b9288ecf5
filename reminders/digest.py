"""What each notification kind says: outbox rows for digests, escalations and orphan reports, and
their rendering at send time (items settled since planning drop out) or on rebuild (every item in
its current state, after a modal changed one).

Delivery looks a row's kind up in a `dict[str, NotificationKind]`; `default_kinds()` holds the
three built here, and new kinds (check-in prompts, ...) are added to that dict by the wiring.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from messages import blocks as bk
from messages import primitives as ui
from reminders.policy import NudgeKind, PlannedDigest
from storage import outbox
from storage.models import ActionItem, Notification, NotificationCreate, Person, Strategy
from storage.queries.people import active_coordinators

log = logging.getLogger(__name__)

Block = dict[str, Any]

DIGEST = "digest"
ESCALATION = "escalation"
ORPHANED = "orphaned"

# The order groups appear in a message, most pressing first.
WHY_LABELS: dict[str, str] = {
    NudgeKind.OVERDUE.value: ":red_circle: Overdue",
    NudgeKind.DUE_TODAY.value: ":alarm_clock: Due today",
    NudgeKind.DUE_TOMORROW.value: ":calendar: Due next business day",
    NudgeKind.DUE_SOON.value: ":spiral_calendar_pad: Coming up",
    NudgeKind.SNOOZE_ENDED.value: ":zzz: Back from snooze",
    "escalation": ":rotating_light: Well overdue",
}
# Intro, group headers, item cards, a "more" line and the footer must fit Slack's 50 blocks.
_BLOCK_BUDGET = ui.MAX_MESSAGE_BLOCKS - 3
# Slack also refuses messages whose blocks are too long overall (msg_blocks_too_long, ~13k chars).
_CHAR_BUDGET = ui.MESSAGE_BUDGET


@dataclass(frozen=True)
class RenderContext:
    """When and how a message is rendered: at send time, or rebuilt after a change."""

    now: datetime
    default_zone: ZoneInfo
    rebuild: bool = False
    today: date | None = None  # the reader's day on rebuild; else the row's local date


@dataclass(frozen=True)
class Rendered:
    """A message ready to post, and which of the rows it was rendered from it covers."""

    text: str
    blocks: list[Block]
    lines: tuple[str, ...]
    row_ids: frozenset[int]


@dataclass(frozen=True)
class Skip:
    """Nothing is left to say; the reason is kept on the row."""

    reason: str


Renderer = Callable[[AsyncSession, Sequence[Notification], RenderContext], Awaitable[Rendered | Skip]]
GoneHook = Callable[[AsyncSession, Sequence[Notification], str, datetime], Awaitable[int]]
# Runs when rows fail for good, with Slack's error code (or why delivery gave up), in the
# transaction that fails them; returns how many notices it owed.
FailedHook = Callable[[AsyncSession, Sequence[Notification], str, datetime], Awaitable[int]]
# Runs just before the post with delivery's client (no retries of its own) and the channel; it
# raises Slack's error to stop the post (e.g. a rollup's channel the bot cannot get into).
BeforeSend = Callable[[AsyncWebClient, Notification, str], Awaitable[None]]
# Runs once the message is posted and marked sent (e.g. a rollup's thread); best effort.
AfterSend = Callable[[Notification, str, str], Awaitable[None]]


@dataclass(frozen=True)
class NotificationKind:
    """How delivery treats one kind of outbox row.

    groupable rows to the same recipient claimed together go out as one message; on_gone runs
    (in the transaction that fails the rows) when the recipient has left Slack, on_failed whenever
    rows fail for good; before_send may stop a post that could only half succeed.
    """

    name: str
    render: Renderer
    groupable: bool = False
    on_gone: GoneHook | None = None
    on_failed: FailedHook | None = None
    before_send: BeforeSend | None = None
    after_send: AfterSend | None = None


@dataclass(frozen=True)
class Companion:
    """Another message folded into a digest, so its recipient still gets one DM that day.

    `tail` goes before the digest's footer; `alone` is sent instead when the digest itself has
    nothing left to say (every item settled since it was planned).
    """

    tail: list[Block]
    line: str
    alone: list[Block]
    alone_text: str


# Reads a digest row's payload and says what folded-in message it carries, if any.
CompanionFinder = Callable[[AsyncSession, Notification, RenderContext], Awaitable[Companion | None]]


@dataclass(frozen=True)
class Entry:
    """One item line of a row's payload."""

    item_id: int
    ref: str
    why: str
    owner: str | None = None


def entries_of(row: Notification) -> list[Entry]:
    """The items a row's payload names, in order."""
    found: list[Entry] = []
    for raw in (row.payload or {}).get("items") or []:
        if isinstance(raw, Mapping) and isinstance(raw.get("id"), int):
            owner = raw.get("owner") or (row.payload or {}).get("owner")
            found.append(Entry(int(raw["id"]), str(raw.get("ref") or ""), str(raw.get("why") or ""), owner))
    return found


def zone_of(row: Notification, default: ZoneInfo) -> ZoneInfo:
    """The zone a row was planned in (its dates are read there), or `default`."""
    name = (row.payload or {}).get("zone")
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return default
    return default


# --- rows ----------------------------------------------------------------------------------------


def planned_row(
    planned: PlannedDigest, *, zone: ZoneInfo, refs: Mapping[int, str], now: datetime
) -> NotificationCreate:
    """The outbox row for a digest or escalation the policy planned."""
    return NotificationCreate(
        team_id=planned.team_id,
        key=planned.key,
        kind=planned.kind,
        recipient=planned.recipient,
        local_date=planned.local_date,
        payload={
            "local_date": planned.local_date.isoformat(),
            "zone": zone.key,
            "items": [
                {"id": item_id, "ref": refs.get(item_id, ""), "why": str(why)}
                for item_id, why in planned.items
            ],
        },
        send_after=now,
        created_at=now,
    )


def orphan_key(team_id: str, coordinator: str, item_id: int, owner: str) -> str:
    """The outbox key that tells one coordinator once that one item's owner is gone."""
    return f"{team_id}:{ORPHANED}:{coordinator}:{item_id}:{owner}"


def orphan_row(
    *,
    team_id: str,
    coordinator: str,
    item_id: int,
    ref: str,
    owner: str,
    reason: str,
    now: datetime,
    local_date: date | None = None,
) -> NotificationCreate:
    """The outbox row telling `coordinator` that `owner` of item `ref` can no longer be reached."""
    return NotificationCreate(
        team_id=team_id,
        key=orphan_key(team_id, coordinator, item_id, owner),
        kind=ORPHANED,
        recipient=coordinator,
        local_date=local_date,
        payload={"owner": owner, "reason": reason, "items": [{"id": item_id, "ref": ref, "why": reason}]},
        send_after=now,
        created_at=now,
    )


async def report_orphans(
    session: AsyncSession, *, rows: Sequence[Notification], reason: str, now: datetime
) -> int:
    """Queue orphan reports to the coordinators of every open item these rows' recipient still owns."""
    queued: list[NotificationCreate] = []
    for row in rows:
        ids = [entry.item_id for entry in entries_of(row)]
        if not ids:
            continue
        items = await session.exec(
            select(ActionItem)
            .where(ActionItem.team_id == row.team_id, col(ActionItem.id).in_(ids))
            .where(ActionItem.owner_id == row.recipient)
        )
        open_items = [item for item in items if item.status_enum.is_open]
        departments = {item.department_id for item in open_items}
        coordinators = await _coordinators(session, row.team_id, departments)
        for item in open_items:
            if not [c for c in coordinators.get(item.department_id, []) if c != row.recipient]:
                log.warning(
                    "%s lost its owner %s and its department has no coordinator", item.ref, row.recipient
                )
            for coordinator in coordinators.get(item.department_id, []):
                if coordinator != row.recipient:
                    queued.append(
                        orphan_row(
                            team_id=row.team_id,
                            coordinator=coordinator,
                            item_id=item.id or 0,
                            ref=item.ref,
                            owner=row.recipient,
                            reason=reason,
                            now=now,
                        )
                    )
    return await outbox.enqueue(session, rows=queued)


async def _coordinators(
    session: AsyncSession, team_id: str, departments: Iterable[int]
) -> dict[int, list[str]]:
    found = await active_coordinators(session, team_id=team_id, department_ids=departments)
    return {department: [p.user_id for p in people] for department, people in found.items()}


# --- rendering -----------------------------------------------------------------------------------


def _plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def _size(blocks: Sequence[Block]) -> int:
    # The text people read, which is what Slack's overall limit counts, in Slack's UTF-16 units.
    return sum(ui.block_size(block) for block in blocks)


def build_message(
    *,
    intro: str,
    groups: Sequence[tuple[str, Sequence[bk.ItemCard]]],
    footer: str,
    more_hint: str,
    tail: Sequence[Block] = (),
) -> list[Block]:
    """Intro, then each group's header and item cards (with Done/Snooze/Update), within Slack's
    50 blocks and overall size; what does not fit is counted in an "…and N more" line. `tail`
    (a folded-in message) keeps its room and goes just before the footer."""
    blocks: list[Block] = [ui.section(intro)]
    size = _size(blocks) + 400 + _size(list(tail))  # room for the "more" line, tail and footer
    budget = _BLOCK_BUDGET - len(tail)
    total = sum(len(cards) for _, cards in groups)
    shown = 0
    for label, cards in groups:
        header = ui.context(f"*{label}*")
        first = True
        for card in cards:
            added = ([header] if first else []) + bk.build_item_card(card)
            if len(blocks) + len(added) > budget or size + _size(added) > _CHAR_BUDGET:
                break
            blocks.extend(added)
            size += _size(added)
            first = False
            shown += 1
    if shown < total:
        blocks.append(ui.context(f"…and {total - shown} more. {more_hint}"))
    blocks.extend(tail)
    blocks.append(ui.context(footer))
    return blocks


async def _load_items(
    session: AsyncSession, team_id: str, ids: Sequence[int]
) -> tuple[dict[int, ActionItem], dict[int, str]]:
    if not ids:
        return {}, {}
    items = {
        item.id or 0: item
        for item in await session.exec(
            select(ActionItem).where(ActionItem.team_id == team_id, col(ActionItem.id).in_(sorted(set(ids))))
        )
    }
    strategy_ids = sorted({item.strategy_id for item in items.values()})
    names = {
        s.id or 0: s.name
        for s in await session.exec(select(Strategy).where(col(Strategy.id).in_(strategy_ids)))
    }
    return items, names


def _snoozed_on(item: ActionItem, day: date) -> bool:
    return item.snoozed_until is not None and item.snoozed_until > day


def _local_date(row: Notification, zone: ZoneInfo, ctx: RenderContext) -> date:
    if row.local_date is not None:
        return row.local_date
    return ctx.now.astimezone(zone).date()


async def _recipient_silenced(session: AsyncSession, row: Notification, day: date) -> str | None:
    person = (
        await session.exec(
            select(Person).where(Person.team_id == row.team_id, Person.user_id == row.recipient)
        )
    ).first()
    if person is None:
        return None
    if not person.active:
        return "recipient is inactive"
    if person.paused_until is not None and day < person.paused_until:
        return f"recipient paused until {person.paused_until.isoformat()}"
    return None


def _line(card: bk.ItemCard, why: str) -> str:
    due = f", due {card.item.due.isoformat()}" if card.item.due else ""
    label = WHY_LABELS.get(why, why).split(" ", 1)[-1].lower()
    return f"{card.item.ref} {ui.clip(card.item.title, 80)} ({label}{due}; {card.item.status_enum.label})"


def _grouped(
    picked: Sequence[tuple[Entry, bk.ItemCard]], order: Sequence[str]
) -> list[tuple[str, list[bk.ItemCard]]]:
    groups: dict[str, list[bk.ItemCard]] = {why: [] for why in order}
    for entry, card in picked:
        groups.setdefault(entry.why, []).append(card)
    return [(WHY_LABELS.get(why, why.replace("_", " ").capitalize()), cards) for why, cards in groups.items()]


async def render_digest(
    session: AsyncSession,
    rows: Sequence[Notification],
    ctx: RenderContext,
    *,
    companions: CompanionFinder | None = None,
) -> Rendered | Skip:
    """An owner's daily digest (kind "digest") or a coordinator's escalation digest."""
    row = rows[0]
    zone = zone_of(row, ctx.default_zone)
    day = _local_date(row, zone, ctx)
    if not ctx.rebuild:
        today = ctx.now.astimezone(zone).date()
        if day < today:
            # Catch-up sends what is owed today; yesterday's digest is not replayed.
            return Skip(f"stale: owed on {day.isoformat()}, it is {today.isoformat()} now")
        silenced = await _recipient_silenced(session, row, day)
        if silenced is not None:
            return Skip(silenced)
    entries = entries_of(row)
    items, names = await _load_items(session, row.team_id, [e.item_id for e in entries])
    reader_day = ctx.today or day
    picked: list[tuple[Entry, bk.ItemCard]] = []
    seen: set[int] = set()
    for entry in entries:
        item = items.get(entry.item_id)
        if item is None or entry.item_id in seen:
            continue
        if not ctx.rebuild:
            settled = not item.status_enum.is_open or _snoozed_on(item, day)
            moved = row.kind == DIGEST and item.owner_id != row.recipient
            if settled or moved:
                continue
        seen.add(entry.item_id)
        card = bk.ItemCard(item=item, strategy=names.get(item.strategy_id, ""), zone=zone, today=reader_day)
        picked.append((entry, card))
    companion = None if companions is None else await companions(session, row, ctx)
    if not picked:
        if companion is not None:
            return Rendered(
                text=companion.alone_text,
                blocks=companion.alone,
                lines=(companion.line,),
                row_ids=frozenset({row.id or 0}),
            )
        return Skip("nothing left to remind about: every item is done, dropped, snoozed or reassigned")
    order = list(WHY_LABELS)
    picked.sort(key=lambda pair: order.index(pair[0].why) if pair[0].why in order else len(order))
    n = len(picked)
    if row.kind == ESCALATION:
        intro = (
            f":rotating_light: *{n} action {_plural(n, 'item', 'items')} in your department "
            f"{_plural(n, 'is', 'are')} well overdue.* A word from you may help."
        )
        footer = "You get at most one escalation message a day. Snooze quiets an item for everyone."
        hint = "See them all with `/reap list overdue`."
    else:
        intro = f":bell: *{n} of your action items {_plural(n, 'needs', 'need')} attention today.*"
        footer = (
            "At most one reminder a business day. Snooze quiets one item; `/reap pause &lt;date&gt;` pauses"
            " all your reminders."
        )
        hint = "See them all with `/reap list mine`."
    blocks = build_message(
        intro=intro,
        groups=_grouped(picked, list(WHY_LABELS)),
        footer=footer,
        more_hint=hint,
        tail=companion.tail if companion else (),
    )
    refs = ", ".join(card.item.ref for _, card in picked)
    text = f"REAP: {n} action {_plural(n, 'item', 'items')} to look at today: {refs}"
    lines = tuple(_line(card, entry.why) for entry, card in picked)
    if companion is not None:
        # The notification preview is all some people read; name the folded-in message up front.
        text = f"{companion.line} · {text}"
        lines += (companion.line,)
    text = ui.clip(text, 3000)
    return Rendered(text=text, blocks=blocks, lines=lines, row_ids=frozenset({row.id or 0}))


async def render_orphans(
    session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
) -> Rendered | Skip:
    """One message telling a coordinator which items lost their owner, grouped by owner."""
    zone = ctx.default_zone
    entries = [(row, entry) for row in rows for entry in entries_of(row)]
    items, names = await _load_items(session, rows[0].team_id, [e.item_id for _, e in entries])
    today = ctx.today or ctx.now.astimezone(zone).date()
    by_owner: dict[str, list[bk.ItemCard]] = {}
    reasons: dict[str, str] = {}
    covered: set[int] = set()
    seen: set[int] = set()
    lines: list[str] = []
    for row, entry in entries:
        item = items.get(entry.item_id)
        owner = entry.owner or ""
        if item is None or entry.item_id in seen:
            continue
        if not ctx.rebuild and (not item.status_enum.is_open or item.owner_id != owner):
            continue  # done, dropped or already given to someone else
        seen.add(entry.item_id)
        covered.add(row.id or 0)
        card = bk.ItemCard(item=item, strategy=names.get(item.strategy_id, ""), zone=zone, today=today)
        by_owner.setdefault(owner, []).append(card)
        reasons.setdefault(owner, entry.why)
        lines.append(f"{item.ref} {ui.clip(item.title, 80)} (owner {owner} gone: {entry.why})")
    if not by_owner:
        return Skip("every orphaned item has been closed or reassigned")
    n = len(seen)
    groups = [
        (f"Owned by <@{owner}>, who can't be reached ({ui.escape(reasons[owner])})", cards)
        for owner, cards in by_owner.items()
    ]
    blocks = build_message(
        intro=(
            f":warning: *{n} action {_plural(n, 'item has', 'items have')} lost {_plural(n, 'its', 'their')}"
            " owner.* Please give each one a new owner with `/reap assign &lt;ref&gt; @someone`."
        ),
        groups=groups,
        footer="You are told once about each item whose owner has left.",
        more_hint="See the rest with `/reap list all`.",
    )
    refs = ", ".join(card.item.ref for cards in by_owner.values() for card in cards)
    text = ui.clip(f"REAP: {n} action {_plural(n, 'item', 'items')} need a new owner: {refs}", 3000)
    return Rendered(text=text, blocks=blocks, lines=tuple(lines), row_ids=frozenset(covered))


async def _digest_owner_gone(
    session: AsyncSession, rows: Sequence[Notification], reason: str, now: datetime
) -> int:
    return await report_orphans(session, rows=rows, reason=reason, now=now)


def with_companions(kind: NotificationKind, companions: CompanionFinder) -> NotificationKind:
    """A digest kind whose messages also carry what `companions` finds folded into a row."""

    async def render(
        session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
    ) -> Rendered | Skip:
        return await render_digest(session, rows, ctx, companions=companions)

    return replace(kind, render=render)


def default_kinds() -> dict[str, NotificationKind]:
    """The notification kinds reminders send; add new kinds to the returned dict."""
    return {
        DIGEST: NotificationKind(DIGEST, render_digest, on_gone=_digest_owner_gone),
        ESCALATION: NotificationKind(ESCALATION, render_digest),
        ORPHANED: NotificationKind(ORPHANED, render_orphans, groupable=True),
    }
