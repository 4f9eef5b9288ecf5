"""A person's one message a day: the digest, what rides in it, and how it renders at send time (items
settled since planning drop out) or on rebuild (every item in its current state, after a modal
changed one).

A digest row lists the reader's own items owed a nudge and, for a coordinator, their department's
escalated items. Everything else the bot has to tell someone is a rider: a row of a kind that
never goes out alone (orphaned items, items given to them or taken from them, requests and
completions waiting for their decision, check-in notices, ...). The planner folds riders into the
reader's digest for the day (storage.outbox.carry_riders); each rider kind renders its own section
of the message, with its own buttons.

Delivery looks a row's kind up in a `dict[str, NotificationKind]`; `default_kinds()` holds the
kinds built here, and new kinds (check-in prompts, ...) are added to that same dict by the wiring,
where the digest finds the sections of every rider kind.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.status import ItemStatus
from messages import blocks as bk
from messages import primitives as ui
from messages import requests as rq
from reminders.policy import ESCALATED, NudgeKind, PlannedDigest
from storage import outbox
from storage.changes import PendingRequest
from storage.models import ActionItem, ChangeRequest, Notification, NotificationCreate, Person, Strategy
from storage.permissions import SYSTEM_ACTOR
from storage.queries.people import active_coordinators

log = logging.getLogger(__name__)

Block = dict[str, Any]

DIGEST = "digest"
# Before every message of a day rode in one digest, a coordinator's escalations were a DM of their
# own; rows of that kind still render, but none are planned any more.
ESCALATION = "escalation"
ORPHANED = "orphaned"
ASSIGNED = outbox.ASSIGNED
REQUEST = "request_notice"
VERIFY = outbox.VERIFY

# The order groups appear in a message, most pressing first.
WHY_LABELS: dict[str, str] = {
    NudgeKind.OVERDUE.value: ":red_circle: Overdue",
    NudgeKind.DUE_TODAY.value: ":alarm_clock: Due today",
    NudgeKind.DUE_TOMORROW.value: ":calendar: Due next business day",
    NudgeKind.DUE_SOON.value: ":spiral_calendar_pad: Coming up",
    NudgeKind.SNOOZE_ENDED.value: ":zzz: Back from snooze",
    ESCALATED: ":rotating_light: Well overdue in your department",
}
# Intro, group headers, item cards, a "more" line and the footer must fit Slack's 50 blocks.
_BLOCK_BUDGET = ui.MAX_MESSAGE_BLOCKS - 3
# Slack also refuses messages whose blocks are too long overall (msg_blocks_too_long, ~13k chars).
_CHAR_BUDGET = ui.MESSAGE_BUDGET
# With items to show, the sections that ride along leave them at least this much of the message.
_ITEMS_ROOM_BLOCKS = 12
_ITEMS_ROOM_CHARS = 3_500
# How many entries of one kind a section shows before "…and N more".
SECTION_ENTRIES = 4
FOOTER = (
    "REAP sends you at most one message a business day. Snooze quiets one item;"
    " `/reap pause &lt;date&gt;` pauses your reminders."
)


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
    """Nothing is left to say; the reason is kept on the row.

    `release`: the message never reached its reader (its day passed, or they are paused), so what
    rode in it is owed again in their next digest.
    """

    reason: str
    release: bool = False


@dataclass(frozen=True)
class Rider:
    """One folded-in row as its carrier's payload keeps it."""

    kind: str
    key: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class SectionContext:
    """What a section renders for: the carrying row, its reader's zone and day, and which items the
    message already shows as cards (a section only mentions those, block ids must be unique)."""

    row: Notification
    ctx: RenderContext
    zone: ZoneInfo
    day: date
    listed: frozenset[int]


@dataclass(frozen=True)
class Section:
    """What the riders of one kind add to a digest.

    `line` goes in the notification text (the preview is all some people read) and a dry run;
    `alone` (with `alone_text`) is the whole message when nothing else is owed that day; `brief`
    stands in for the blocks when the message has no room left for them.
    """

    blocks: list[Block]
    line: str
    brief: list[Block]
    cards: frozenset[int] = frozenset()
    alone: list[Block] | None = None
    alone_text: str | None = None


Renderer = Callable[[AsyncSession, Sequence[Notification], RenderContext], Awaitable[Rendered | Skip]]
SectionRenderer = Callable[[AsyncSession, Sequence[Rider], SectionContext], Awaitable[Section | None]]
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
    rows fail for good; before_send may stop a post that could only half succeed. A kind with a
    `section` is a rider: never claimed on its own, it renders as that section of the reader's
    digest, placed by `rank`.
    """

    name: str
    render: Renderer
    groupable: bool = False
    on_gone: GoneHook | None = None
    on_failed: FailedHook | None = None
    before_send: BeforeSend | None = None
    after_send: AfterSend | None = None
    section: SectionRenderer | None = None
    rank: int = 0

    @property
    def rides(self) -> bool:
        """Whether rows of this kind only go out folded into a digest."""
        return self.section is not None


def riders(kinds: Mapping[str, NotificationKind]) -> frozenset[str]:
    """The names of the rider kinds among `kinds`."""
    return frozenset(name for name, kind in kinds.items() if kind.rides)


@dataclass(frozen=True)
class Entry:
    """One item line of a row's payload."""

    item_id: int
    ref: str
    why: str
    owner: str | None = None


def entries_of(row: Notification) -> list[Entry]:
    """The items a row's payload names, in order."""
    return _entries(row.payload or {})


def _entries(payload: Mapping[str, Any]) -> list[Entry]:
    found: list[Entry] = []
    for raw in payload.get("items") or []:
        if isinstance(raw, Mapping) and isinstance(raw.get("id"), int):
            owner = raw.get("owner") or payload.get("owner")
            found.append(Entry(int(raw["id"]), str(raw.get("ref") or ""), str(raw.get("why") or ""), owner))
    return found


def riders_of(row: Notification) -> list[Rider]:
    """What a digest row carries, in the order it was folded in."""
    found: list[Rider] = []
    for raw in (row.payload or {}).get(outbox.RIDERS) or []:
        if isinstance(raw, Mapping) and isinstance(raw.get("kind"), str):
            payload = raw.get("payload")
            found.append(
                Rider(raw["kind"], str(raw.get("key") or ""), payload if isinstance(payload, Mapping) else {})
            )
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
    """The outbox row for a digest the policy planned (own items and escalations)."""
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


def carrier_row(
    *, team_id: str, recipient: str, day: date, zone: ZoneInfo, now: datetime
) -> NotificationCreate:
    """A digest with no items of its own, for a day on which only riders are owed to `recipient`."""
    from reminders.policy import digest_key

    return NotificationCreate(
        team_id=team_id,
        key=digest_key(team_id, DIGEST, recipient, day),
        kind=DIGEST,
        recipient=recipient,
        local_date=day,
        payload={"local_date": day.isoformat(), "zone": zone.key, "items": []},
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
    """The rider telling `coordinator` that `owner` of item `ref` can no longer be reached."""
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


def request_key(team_id: str, request_id: int, decider: str, week: int) -> str:
    """The key that puts a pending request before one decider once in its `week` (0: when filed)."""
    return f"{team_id}:{REQUEST}:{request_id}:{decider}:{week}"


def decision_row(
    *, kind: str, key: str, team_id: str, decider: str, day: date, payload: dict[str, Any], now: datetime
) -> NotificationCreate:
    """The rider asking `decider` to decide a request in their digest of `day`."""
    return NotificationCreate(
        team_id=team_id,
        key=key,
        kind=kind,
        recipient=decider,
        local_date=day,
        payload=payload,
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
    (the sections riding along) keeps its room and goes just before the footer."""
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


async def _recipient_silenced(session: AsyncSession, row: Notification, day: date) -> Skip | None:
    person = (
        await session.exec(
            select(Person).where(Person.team_id == row.team_id, Person.user_id == row.recipient)
        )
    ).first()
    if person is None:
        return None
    if not person.active:
        return Skip("recipient is inactive")
    if person.paused_until is not None and day < person.paused_until:
        return Skip(f"recipient paused until {person.paused_until.isoformat()}", release=True)
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


def _intro(own: int, escalated: int) -> str:
    if own and escalated:
        return (
            f":bell: *{own} of your action {_plural(own, 'items needs', 'items need')} attention today,"
            f" and {escalated} in your department {_plural(escalated, 'is', 'are')} well overdue.*"
        )
    if escalated:
        return (
            f":rotating_light: *{escalated} action {_plural(escalated, 'item', 'items')} in your department "
            f"{_plural(escalated, 'is', 'are')} well overdue.* A word from you may help."
        )
    if own:
        return f":bell: *{own} of your action items {_plural(own, 'needs', 'need')} attention today.*"
    return ":bell: *Here is what REAP has for you today.*"


def _fit(sections: Sequence[Section], *, blocks: int, chars: int) -> list[Block]:
    """The sections' blocks in order, each whole or (when it no longer fits) as its brief."""
    tail: list[Block] = []
    for section in sections:
        for candidate in (section.blocks, section.brief):
            if len(candidate) <= blocks and _size(candidate) <= chars:
                tail.extend(candidate)
                blocks -= len(candidate)
                chars -= _size(candidate)
                break
    return tail


async def _sections(
    session: AsyncSession,
    row: Notification,
    kinds: Mapping[str, NotificationKind],
    sc: SectionContext,
) -> list[Section]:
    by_section: dict[SectionRenderer, tuple[int, list[Rider]]] = {}
    for rider in riders_of(row):
        kind = kinds.get(rider.kind)
        if kind is None or kind.section is None:
            log.warning("%s carries %s, which no kind renders", row.key, rider.key or rider.kind)
            continue
        by_section.setdefault(kind.section, (kind.rank, []))[1].append(rider)
    built: list[Section] = []
    listed = set(sc.listed)
    for render, (_, carried) in sorted(by_section.items(), key=lambda pair: pair[1][0]):
        section = await render(
            session, carried, SectionContext(sc.row, sc.ctx, sc.zone, sc.day, frozenset(listed))
        )
        if section is not None:
            built.append(section)
            listed |= section.cards
    return built


async def render_digest(
    session: AsyncSession,
    rows: Sequence[Notification],
    ctx: RenderContext,
    *,
    kinds: Mapping[str, NotificationKind] | None = None,
) -> Rendered | Skip:
    """A person's digest: their own items owed a nudge, their department's escalated items, then
    a section for each kind of rider it carries (rendered by the kind named in `kinds`)."""
    row = rows[0]
    zone = zone_of(row, ctx.default_zone)
    day = _local_date(row, zone, ctx)
    if not ctx.rebuild:
        today = ctx.now.astimezone(zone).date()
        if day < today:
            # Catch-up sends what is owed today; yesterday's digest is not replayed.
            return Skip(f"stale: owed on {day.isoformat()}, it is {today.isoformat()} now", release=True)
        silenced = await _recipient_silenced(session, row, day)
        if silenced is not None:
            return silenced
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
            moved = entry.why != ESCALATED and item.owner_id != row.recipient
            if settled or moved:
                continue
        seen.add(entry.item_id)
        card = bk.ItemCard(item=item, strategy=names.get(item.strategy_id, ""), zone=zone, today=reader_day)
        picked.append((entry, card))
    sections = await _sections(
        session, row, kinds or {}, SectionContext(row, ctx, zone, reader_day, frozenset(seen))
    )
    if not picked and not sections:
        return Skip("nothing left to say: every item is done, dropped, snoozed or reassigned")
    ids = frozenset({row.id or 0})
    only = sections[0] if not picked and len(sections) == 1 else None
    if only is not None and only.alone is not None:
        text = ui.clip(only.alone_text or only.line, 3000)
        return Rendered(text=text, blocks=only.alone, lines=(only.line,), row_ids=ids)
    order = list(WHY_LABELS)
    picked.sort(key=lambda pair: order.index(pair[0].why) if pair[0].why in order else len(order))
    escalated = sum(1 for entry, _ in picked if entry.why == ESCALATED)
    own = len(picked) - escalated
    room_blocks = _ITEMS_ROOM_BLOCKS if picked else 0
    room_chars = _ITEMS_ROOM_CHARS if picked else 0
    tail = _fit(
        sections,
        blocks=_BLOCK_BUDGET - 1 - room_blocks,
        chars=_CHAR_BUDGET - 800 - room_chars,
    )
    blocks = build_message(
        intro=_intro(own, escalated),
        groups=_grouped(picked, order),
        footer=FOOTER,
        more_hint="See them all with `/reap list mine`."
        if own
        else "See them all with `/reap list overdue`.",
        tail=tail,
    )
    texts = [section.line for section in sections]
    if picked:
        n = len(picked)
        refs = ", ".join(card.item.ref for _, card in picked)
        texts.append(f"REAP: {n} action {_plural(n, 'item', 'items')} to look at today: {refs}")
    lines = tuple(_line(card, entry.why) for entry, card in picked) + tuple(s.line for s in sections)
    return Rendered(text=ui.clip(" · ".join(texts), 3000), blocks=blocks, lines=lines, row_ids=ids)


def _alone(render: SectionRenderer) -> Renderer:
    """A rider kind's renderer for a row of it read on its own (a dry run, or a row from before it
    rode): its section's message."""

    async def alone(
        session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
    ) -> Rendered | Skip:
        row = rows[0]
        zone = zone_of(row, ctx.default_zone)
        day = ctx.today or _local_date(row, zone, ctx)
        carried = [Rider(r.kind, r.key, r.payload or {}) for r in rows]
        section = await render(session, carried, SectionContext(row, ctx, zone, day, frozenset()))
        if section is None:
            return Skip("nothing left to say")
        blocks = section.alone or [*section.blocks, ui.context(FOOTER)]
        ids = frozenset(r.id or 0 for r in rows)
        return Rendered(ui.clip(section.alone_text or section.line, 3000), blocks, (section.line,), ids)

    return alone


# --- sections ------------------------------------------------------------------------------------


def _mention(item: ActionItem) -> str:
    return f"*{item.ref}* {ui.escape(ui.clip(item.title, 120))}"


def _card(item: ActionItem, names: Mapping[int, str], sc: SectionContext) -> bk.ItemCard:
    return bk.ItemCard(item=item, strategy=names.get(item.strategy_id, ""), zone=sc.zone, today=sc.day)


def _cards_and_mentions(
    picked: Sequence[ActionItem],
    names: Mapping[int, str],
    sc: SectionContext,
    *,
    limit: int = SECTION_ENTRIES,
) -> tuple[list[Block], frozenset[int], int]:
    """Cards for up to `limit` items (one already shown above is only named); how many are left."""
    blocks: list[Block] = []
    cards: set[int] = set()
    mentioned: list[str] = []
    for item in picked[:limit]:
        if (item.id or 0) in sc.listed:
            mentioned.append(item.ref)
            continue
        blocks += bk.build_item_card(_card(item, names, sc))
        cards.add(item.id or 0)
    if mentioned:
        blocks.append(ui.context(f"Also {', '.join(mentioned)}, shown above."))
    return blocks, frozenset(cards), max(0, len(picked) - limit)


def _orphan_groups(
    rows: Sequence[tuple[int, Entry]], items: Mapping[int, ActionItem], *, rebuild: bool
) -> tuple[dict[str, list[ActionItem]], dict[str, str]]:
    by_owner: dict[str, list[ActionItem]] = {}
    reasons: dict[str, str] = {}
    seen: set[int] = set()
    for _, entry in rows:
        item = items.get(entry.item_id)
        owner = entry.owner or ""
        if item is None or entry.item_id in seen:
            continue
        if not rebuild and (not item.status_enum.is_open or item.owner_id != owner):
            continue  # done, dropped or already given to someone else
        seen.add(entry.item_id)
        by_owner.setdefault(owner, []).append(item)
        reasons.setdefault(owner, entry.why)
    return by_owner, reasons


def _orphan_headline(n: int) -> str:
    return (
        f":warning: *{n} action {_plural(n, 'item has', 'items have')} lost {_plural(n, 'its', 'their')}"
        " owner.* Please give each one a new owner with `/reap assign &lt;ref&gt; @someone`."
    )


def _orphans_message(
    by_owner: Mapping[str, Sequence[ActionItem]],
    reasons: Mapping[str, str],
    names: Mapping[int, str],
    *,
    zone: ZoneInfo,
    today: date,
) -> tuple[str, list[Block], tuple[str, ...]]:
    cards = {
        owner: [
            bk.ItemCard(item=i, strategy=names.get(i.strategy_id, ""), zone=zone, today=today) for i in group
        ]
        for owner, group in by_owner.items()
    }
    n = sum(len(group) for group in cards.values())
    groups = [
        (f"Owned by <@{owner}>, who can't be reached ({ui.escape(reasons[owner])})", group)
        for owner, group in cards.items()
    ]
    blocks = build_message(
        intro=_orphan_headline(n),
        groups=groups,
        footer="You are told once about each item whose owner has left.",
        more_hint="See the rest with `/reap list all`.",
    )
    refs = ", ".join(card.item.ref for group in cards.values() for card in group)
    text = ui.clip(f"REAP: {n} action {_plural(n, 'item', 'items')} need a new owner: {refs}", 3000)
    lines = tuple(
        f"{card.item.ref} {ui.clip(card.item.title, 80)} (owner {owner} gone: {reasons[owner]})"
        for owner, group in cards.items()
        for card in group
    )
    return text, blocks, lines


async def render_orphans(
    session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
) -> Rendered | Skip:
    """One message telling a coordinator which items lost their owner, grouped by owner."""
    entries = [(row.id or 0, entry) for row in rows for entry in entries_of(row)]
    items, names = await _load_items(session, rows[0].team_id, [e.item_id for _, e in entries])
    by_owner, reasons = _orphan_groups(entries, items, rebuild=ctx.rebuild)
    if not by_owner:
        return Skip("every orphaned item has been closed or reassigned")
    shown = {item.id for group in by_owner.values() for item in group}
    covered = frozenset(row_id for row_id, entry in entries if entry.item_id in shown)
    today = ctx.today or ctx.now.astimezone(ctx.default_zone).date()
    text, blocks, lines = _orphans_message(by_owner, reasons, names, zone=ctx.default_zone, today=today)
    return Rendered(text=text, blocks=blocks, lines=lines, row_ids=covered)


async def orphans_section(
    session: AsyncSession, carried: Sequence[Rider], sc: SectionContext
) -> Section | None:
    """Items whose owner has left, for their coordinator to hand on."""
    entries = [(0, entry) for rider in carried for entry in _entries(rider.payload)]
    items, names = await _load_items(session, sc.row.team_id, [e.item_id for _, e in entries])
    by_owner, reasons = _orphan_groups(entries, items, rebuild=sc.ctx.rebuild)
    if not by_owner:
        return None
    everything = [item for group in by_owner.values() for item in group]
    n = len(everything)
    owners = ", ".join(f"<@{owner}> ({ui.escape(reasons[owner])})" for owner in by_owner)
    body, cards, left = _cards_and_mentions(everything, names, sc)
    head = [ui.section(_orphan_headline(n)), ui.context(f"Their owners can't be reached: {owners}")]
    more = [ui.context(f"…and {left} more. See them with `/reap list all`.")] if left else []
    text, alone, _ = _orphans_message(by_owner, reasons, names, zone=sc.zone, today=sc.day)
    return Section(
        blocks=head + body + more,
        line=text.removeprefix("REAP: "),
        brief=[ui.section(_orphan_headline(n))],
        cards=cards,
        alone=alone,
        alone_text=text,
    )


def _by(actor: str) -> str:
    return "the plan file" if actor == SYSTEM_ACTOR else f"<@{actor}>"


async def assigned_section(
    session: AsyncSession, carried: Sequence[Rider], sc: SectionContext
) -> Section | None:
    """Items given to the reader (their cards, with buttons) and items taken from them."""
    given: dict[int, str] = {}
    taken: dict[int, str] = {}
    for rider in carried:
        role = rider.payload.get("role")
        by = str(rider.payload.get("by") or SYSTEM_ACTOR)
        for entry in _entries(rider.payload):
            if role == outbox.PREVIOUS_OWNER:
                taken.setdefault(entry.item_id, by)
            else:
                given.setdefault(entry.item_id, by)
    # A large import names hundreds of items; the cards show a few, the rest are counted.
    wanted = [*list(given)[:200], *list(taken)[:200]]
    items, names = await _load_items(session, sc.row.team_id, wanted)
    reader = sc.row.recipient
    mine = [
        items[i]
        for i in given
        if i in items and (sc.ctx.rebuild or (items[i].owner_id == reader and items[i].status_enum.is_open))
    ]
    gone = [items[i] for i in taken if i in items and (sc.ctx.rebuild or items[i].owner_id != reader)]
    if not mine and not gone:
        return None
    blocks: list[Block] = []
    brief: list[Block] = []
    parts: list[str] = []
    cards: frozenset[int] = frozenset()
    if mine:
        n = len(mine) + max(0, len(given) - 200)
        givers = sorted({_by(given[item.id or 0]) for item in mine})
        head = (
            f":inbox_tray: *You now own {n} action {_plural(n, 'item', 'items')}*,"
            f" given to you by {', '.join(givers)}."
        )
        body, cards, left = _cards_and_mentions(mine, names, sc)
        blocks += [ui.section(head), *body]
        if left:
            blocks.append(ui.context(f"…and {left} more. See them all with `/reap list mine`."))
        brief.append(ui.section(f"{head} See them with `/reap list mine`."))
        parts.append(
            f"You now own {', '.join(item.ref for item in mine[:5])}" + (" and more" if n > 5 else "")
        )
    if gone:
        lines = [
            f"{_mention(item)} now belongs to <@{item.owner_id}>; {_by(taken[item.id or 0])} handed it over."
            if item.owner_id
            else f"{_mention(item)} has no owner now."
            for item in gone[:SECTION_ENTRIES]
        ]
        if len(gone) > SECTION_ENTRIES:
            lines.append(f"…and {len(gone) - SECTION_ENTRIES} more.")
        text = ":outbox_tray: " + ("\n".join(lines) if len(lines) > 1 else lines[0])
        blocks.append(ui.section(ui.clip(text, ui.SECTION_LIMIT)))
        brief.append(ui.section(f":outbox_tray: {len(gone)} of your items went to someone else."))
        parts.append(f"{', '.join(item.ref for item in gone[:5])} went to someone else")
    line = "; ".join(parts)
    alone = [*blocks, ui.context(FOOTER)]
    return Section(
        blocks=blocks, line=line, brief=brief, cards=cards, alone=alone, alone_text=f"REAP: {line}"
    )


async def decisions_section(
    session: AsyncSession, carried: Sequence[Rider], sc: SectionContext
) -> Section | None:
    """Requests and completions waiting for the reader's decision, with Approve / Decline and Verify."""
    request_ids = sorted(
        {
            int(r.payload["request"])
            for r in carried
            if r.kind == REQUEST and isinstance(r.payload.get("request"), int)
        }
    )
    item_ids = sorted(
        {
            int(r.payload["item"])
            for r in carried
            if r.kind == VERIFY and isinstance(r.payload.get("item"), int)
        }
    )
    weeks = max((int(r.payload.get("week") or 0) for r in carried), default=0)
    team_id = sc.row.team_id
    pending: list[PendingRequest] = []
    if request_ids:
        rows = await session.exec(
            select(ChangeRequest, ActionItem)
            .join(ActionItem, col(ActionItem.id) == col(ChangeRequest.item_id))
            .where(ChangeRequest.team_id == team_id, col(ChangeRequest.id).in_(request_ids))
            .order_by(col(ChangeRequest.requested_at), col(ChangeRequest.id))
        )
        # Decided since it was planned (by another coordinator, perhaps): nothing to ask any more.
        pending = [PendingRequest(request, item) for request, item in rows if request.state == "pending"]
    awaiting: list[ActionItem] = []
    if item_ids:
        done = await session.exec(
            select(ActionItem)
            .where(ActionItem.team_id == team_id, col(ActionItem.id).in_(item_ids))
            .order_by(col(ActionItem.completed_at), col(ActionItem.id))
        )
        awaiting = [i for i in done if i.status == ItemStatus.DONE.value and i.verified_at is None]
    if not pending and not awaiting:
        return None
    parts = []
    if pending:
        parts.append(
            f"{len(pending)} {_plural(len(pending), 'request waits', 'requests wait')} for your decision"
        )
    if awaiting:
        parts.append(f"{len(awaiting)} {_plural(len(awaiting), 'completion', 'completions')} to verify")
    line = " and ".join(parts)
    if weeks:
        line += " (some for over a week)"
    shown_requests, shown_done = pending[:SECTION_ENTRIES], awaiting[:SECTION_ENTRIES]
    blocks = rq.build_requests(shown_requests, shown_done, title="Waiting for your decision", zone=sc.zone)
    left = len(pending) - len(shown_requests) + len(awaiting) - len(shown_done)
    if left:
        blocks.append(ui.context(f"…and {left} more. See them all with `/reap requests`."))
    brief = [ui.section(f":ballot_box_with_check: {line}. See them with `/reap requests`.")]
    alone = [ui.section(f":ballot_box_with_check: *{line}.*"), *blocks[1:], ui.context(FOOTER)]
    line = line[0].upper() + line[1:]
    return Section(blocks=blocks, line=line, brief=brief, alone=alone, alone_text=f"REAP: {line}")


async def _digest_owner_gone(
    session: AsyncSession, rows: Sequence[Notification], reason: str, now: datetime
) -> int:
    return await report_orphans(session, rows=rows, reason=reason, now=now)


async def _release_unread(
    session: AsyncSession, rows: Sequence[Notification], reason: str, now: datetime
) -> int:
    # A digest that failed for good carried riders its reader never saw: they ride the next one,
    # unless the reader has left (then nobody is left to tell, and the riders stay settled).
    for row in rows:
        person = (
            await session.exec(
                select(Person.active).where(Person.team_id == row.team_id, Person.user_id == row.recipient)
            )
        ).first()
        if person is not False:
            await outbox.release_riders(session, carrier=row.key)
    return 0


def digest_kind(kinds: Mapping[str, NotificationKind], name: str = DIGEST) -> NotificationKind:
    """The digest kind, rendering the sections of the rider kinds in `kinds` (read when it renders,
    so kinds added to that dict later ride too)."""

    async def render(
        session: AsyncSession, rows: Sequence[Notification], ctx: RenderContext
    ) -> Rendered | Skip:
        return await render_digest(session, rows, ctx, kinds=kinds)

    if name == ESCALATION:
        return NotificationKind(ESCALATION, render)
    return NotificationKind(DIGEST, render, on_gone=_digest_owner_gone, on_failed=_release_unread)


def default_kinds() -> dict[str, NotificationKind]:
    """The notification kinds reminders send; add new kinds to the returned dict."""
    kinds: dict[str, NotificationKind] = {
        ORPHANED: NotificationKind(
            ORPHANED, render_orphans, groupable=True, section=orphans_section, rank=20
        ),
        REQUEST: NotificationKind(REQUEST, _alone(decisions_section), section=decisions_section, rank=10),
        VERIFY: NotificationKind(VERIFY, _alone(decisions_section), section=decisions_section, rank=10),
        ASSIGNED: NotificationKind(ASSIGNED, _alone(assigned_section), section=assigned_section, rank=30),
    }
    kinds[DIGEST] = digest_kind(kinds)
    kinds[ESCALATION] = digest_kind(kinds, ESCALATION)
    return kinds
