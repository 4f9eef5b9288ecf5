"""Pure Block Kit builders: data in, Slack blocks out. User text is always escaped here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from domain.numbers import format_number, one_line, plural
from domain.status import ItemStatus, Role, style
from domain.status import label as status_label
from domain.text import NOTE_MAX, TITLE_MAX
from messages.primitives import (
    MAX_MESSAGE_BLOCKS,
    MAX_SECTION_TEXT,
    MAX_VIEW_BLOCKS,
    Block,
    build_list_sections,
    clip,
    context,
    date_token,
    divider,
    escape,
    header,
    instant_token,
    plain,
    section,
)
from messages.requests import build_requests
from storage.changes import PendingRequest, describe
from storage.models import ActionItem, AuditEvent, ChangeRequest, Person, Strategy

PAGE_SIZE = 20

# Action ids and callback ids: commands.register wires each to its handler.
DONE = "item_done"
SNOOZE = "item_snooze"
UPDATE = "item_update"
ADD_MODAL = "add_item_modal"
UPDATE_MODAL = "update_item_modal"
SNOOZE_MODAL = "snooze_item_modal"
PAGE = "list_page"


@dataclass(frozen=True)
class ItemCard:
    """What a card shows about one item, for the reader in `zone` on `today`."""

    item: ActionItem
    strategy: str
    zone: ZoneInfo
    today: date
    pending: ChangeRequest | None = None  # a change waiting for a coordinator
    score: tuple[float, float] | None = None  # (weighted total, the most it could score)

    @property
    def overdue_days(self) -> int:
        """Calendar days past due for an open item (0 if not overdue)."""
        if self.item.due is None or not self.item.status_enum.is_open:
            return 0
        return max(0, (self.today - self.item.due).days)


def status_text(status: ItemStatus) -> str:
    """Emoji plus words, e.g. ':large_yellow_circle: at risk'."""
    return f"{style(status).slack_emoji} {status.label}"


def item_summary(card: ItemCard) -> str:
    """The mrkdwn body of an item card."""
    item = card.item
    status = status_text(item.status_enum)
    if card.overdue_days:
        # The calendar wins over what was typed: an open item past its date is overdue, whatever it says.
        status = f":red_circle: *overdue* (marked {item.status_enum.label})"
    elif item.status == ItemStatus.DONE and item.verified_at is None:
        status += " — awaiting verification"
    parts = [status, f"{item.progress}%"]
    if item.due:
        due = f"due {date_token(item.due, card.zone)}"
        if card.overdue_days:
            due = f"*{due} ({card.overdue_days} days overdue)*"
        parts.append(due)
    parts.append(f"<@{item.owner_id}>" if item.owner_id else "_no owner_")
    if item.snoozed_until and item.status_enum.is_open and item.snoozed_until > card.today:
        parts.append(f":zzz: until {date_token(item.snoozed_until, card.zone)}")
    lines = [f"*{item.ref}* {escape(clip(item.title, 300))}", " · ".join(parts)]
    if card.strategy:
        lines.append(f"_{escape(card.strategy)}_")
    if item.evidence_url and item.status == ItemStatus.DONE:
        lines.append(f":link: <{item.evidence_url}|evidence of completion>")
    if card.score is not None:
        total, top = card.score
        lines.append(f":bar_chart: Equity score {format_number(total)} of {format_number(top)}")
    if card.pending is not None:
        lines.append(
            f":hourglass_flowing_sand: Request #{card.pending.id} to {describe(card.pending)}"
            " is waiting for a coordinator"
        )
    if item.last_note:
        lines.append(f"> {escape(clip(item.last_note, 500))}")
    return "\n".join(lines)


def snooze_options() -> list[dict[str, Any]]:
    """The choices behind the Snooze menu."""
    return [
        {"text": plain("1 day"), "value": "1d"},
        {"text": plain("1 week"), "value": "1w"},
        {"text": plain("Pick a date…"), "value": "pick"},
    ]


def item_actions(item: ActionItem) -> Block:
    """Done / Snooze / Update controls; the value only names the item, it never carries authority."""
    elements: list[dict[str, Any]] = []
    if item.status_enum.is_open:
        elements.append(
            {
                "type": "button",
                "action_id": DONE,
                "text": plain("Done"),
                "style": "primary",
                "value": item.ref,
            }
        )
        elements.append(
            {
                "type": "static_select",
                "action_id": SNOOZE,
                "placeholder": plain("Snooze…"),
                "options": [{**o, "value": f"{item.ref}|{o['value']}"} for o in snooze_options()],
            }
        )
    elements.append({"type": "button", "action_id": UPDATE, "text": plain("Update"), "value": item.ref})
    return {"type": "actions", "block_id": f"actions:{item.ref}", "elements": elements}


def build_item_card(card: ItemCard, *, with_actions: bool = True) -> list[Block]:
    """A section describing the item, followed by its buttons."""
    blocks = [section(item_summary(card), block_id=f"item:{card.item.ref}")]
    if with_actions:
        blocks.append(item_actions(card.item))
    return blocks


def replace_card(blocks: Sequence[Block], card: ItemCard) -> list[Block]:
    """The same message with one item's card swapped for its fresh state (in place)."""
    fresh = build_item_card(card)
    out: list[Block] = []
    replaced = False
    for block in blocks:
        block_id = block.get("block_id")
        if block_id == f"item:{card.item.ref}":
            out.extend(fresh)
            replaced = True
        elif block_id == f"actions:{card.item.ref}":
            continue
        else:
            out.append(block)
    return out if replaced else [*out, *fresh]


def build_item_list(
    cards: Sequence[ItemCard], *, title: str, page: int, total: int, page_size: int = PAGE_SIZE
) -> list[Block]:
    """One page of item cards (at most 20, so at most 44 blocks), overdue first as given."""
    pages = max(1, -(-total // page_size))
    blocks: list[Block] = [section(f"*{escape(title)}* · {total} item{'s' if total != 1 else ''}")]
    if not cards:
        blocks.append(context("Nothing here. :tada:" if total == 0 else f"Page {page} is empty; try page 1."))
        return blocks
    for card in cards[:page_size]:
        blocks.extend(build_item_card(card))
    if pages > 1:
        hint = f"Page {page} of {pages}."
        if page < pages:
            hint += f" Add `page {page + 1}` to see more."
        blocks.append(context(hint))
    return blocks


def build_item_detail(card: ItemCard, *, description: str) -> list[Block]:
    """Everything about one item, with its controls."""
    blocks = build_item_card(card)
    if description:
        blocks.insert(1, section(escape(clip(description, 2900))))
    return blocks


def build_history(ref: str, events: Iterable[AuditEvent], *, limit: int = 40) -> list[Block]:
    """An item's audit trail, oldest first, within one message."""
    events = list(events)
    lines: list[str] = []
    for event in events[-limit:]:
        who = "REAP" if event.actor == "system" else f"<@{event.actor}>"
        if event.action == "create":
            what = f"created it: {escape(clip(event.new or '', 200))}"
        elif event.action == "note":
            what = f"noted: {escape(clip(event.note or '', 300))}"
        else:
            what = (
                f"changed {event.field or event.action}: {escape(clip(event.old or '—', 100))} → "
                + escape(clip(event.new or "—", 100))
            )
            if event.note:
                what += f" ({escape(clip(event.note, 200))})"
        lines.append(f"{instant_token(event.at)} {who} {what}")
    blocks = [section(f"*History of {ref}*")]
    chunk: list[str] = []
    for line in lines:
        if sum(len(x) + 1 for x in chunk) + len(line) > MAX_SECTION_TEXT - 10:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    if len(events) > limit:
        blocks.append(context(f"Showing the latest {limit} of {len(events)} changes."))
    return blocks[:MAX_MESSAGE_BLOCKS]


def build_error(problem: str, usage: str | None = None, *, trusted: bool = False) -> list[Block]:
    """A friendly refusal or usage hint; `trusted` text (built by us, with live mentions) is not escaped."""
    blocks = [section(f":warning: {problem if trusted else escape(problem)}")]
    if usage:
        blocks.append(context(f"Usage: `{escape(usage)}`"))
    return blocks


def build_confirmation(text: str, card: ItemCard | None = None) -> list[Block]:
    """A short confirmation, optionally with the item's fresh card."""
    blocks = [section(text)]
    if card is not None:
        blocks.extend(build_item_card(card))
    return blocks


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text), "value": value}


def build_add_modal(
    strategies: Sequence[Strategy],
    *,
    title: str = "",
    description: str = "",
    owner: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Add action item modal: title, strategy, owner, due date, description."""
    options = [_option(s.name, str(s.id)) for s in strategies][:100]
    title_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "max_length": TITLE_MAX,
    }
    if title:
        title_element["initial_value"] = clip(title, TITLE_MAX)
    owner_element: dict[str, Any] = {"type": "users_select", "action_id": "value"}
    if owner:
        owner_element["initial_user"] = owner
    description_element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "value",
        "multiline": True,
        "max_length": 3000,
    }
    if description:
        description_element["initial_value"] = clip(description, 3000)
    return {
        "type": "modal",
        "callback_id": ADD_MODAL,
        "title": plain("New action item", 24),
        "submit": plain("Add", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps(metadata or {})[:3000],
        "blocks": [
            {"type": "input", "block_id": "title", "label": plain("Title", 2000), "element": title_element},
            {
                "type": "input",
                "block_id": "strategy",
                "label": plain("Strategy", 2000),
                "element": {"type": "static_select", "action_id": "value", "options": options},
            },
            {"type": "input", "block_id": "owner", "label": plain("Owner", 2000), "element": owner_element},
            {
                "type": "input",
                "block_id": "due",
                "optional": True,
                "label": plain("Due date", 2000),
                "element": {"type": "datepicker", "action_id": "value"},
            },
            {
                "type": "input",
                "block_id": "description",
                "optional": True,
                "label": plain("Description", 2000),
                "element": description_element,
            },
        ],
    }


def _evidence_element(item: ActionItem) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "url_text_input", "action_id": "value"}
    if item.evidence_url:
        element["initial_value"] = item.evidence_url
    return element


def build_update_modal(
    item: ActionItem, *, metadata: dict[str, Any], status: ItemStatus | None = None, why: str | None = None
) -> dict[str, Any]:
    """The Update modal for one item: status, progress, due date, evidence link and note.

    `status` preselects a status (the Done button opens it at done when evidence is needed), and
    `why` says at the top what the form is asking for.
    """
    statuses = [_option(s.label.capitalize(), s.value) for s in ItemStatus]
    chosen = (status or item.status_enum).value
    current = next(o for o in statuses if o["value"] == chosen)
    due_element: dict[str, Any] = {"type": "datepicker", "action_id": "value"}
    if item.due:
        due_element["initial_date"] = item.due.isoformat()
    return {
        "type": "modal",
        "callback_id": UPDATE_MODAL,
        "title": plain(f"Update {item.ref}", 24),
        "submit": plain("Save", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({**metadata, "ref": item.ref})[:3000],
        "blocks": [
            section(f"*{item.ref}* {escape(clip(item.title, 300))}" + (f"\n{escape(why)}" if why else "")),
            {
                "type": "input",
                "block_id": "status",
                "label": plain("Status", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": statuses,
                    "initial_option": current,
                },
            },
            {
                "type": "input",
                "block_id": "progress",
                "label": plain("Percent complete", 2000),
                "element": {
                    "type": "number_input",
                    "action_id": "value",
                    "is_decimal_allowed": False,
                    "min_value": "0",
                    "max_value": "100",
                    "initial_value": str(item.progress),
                },
            },
            {
                "type": "input",
                "block_id": "due",
                "optional": True,
                "label": plain("Due date", 2000),
                "element": due_element,
            },
            {
                "type": "input",
                "block_id": "evidence",
                "optional": True,
                "label": plain("Evidence of completion (a link)", 2000),
                "hint": plain("Where the plan asks for it, Done needs a link to what was delivered.", 2000),
                "element": _evidence_element(item),
            },
            {
                "type": "input",
                "block_id": "note",
                "optional": True,
                "hint": plain(
                    "Dropping the item or a later due date needs a reason here, for the coordinators.",
                    2000,
                ),
                "label": plain("Note", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": NOTE_MAX,
                },
            },
        ],
    }


def build_snooze_modal(item: ActionItem, *, metadata: dict[str, Any]) -> dict[str, Any]:
    """A date picker for 'Snooze until…'."""
    return {
        "type": "modal",
        "callback_id": SNOOZE_MODAL,
        "title": plain(f"Snooze {item.ref}", 24),
        "submit": plain("Snooze", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({**metadata, "ref": item.ref})[:3000],
        "blocks": [
            section(f"*{item.ref}* {escape(clip(item.title, 300))}"),
            {
                "type": "input",
                "block_id": "until",
                "label": plain("No reminders until", 2000),
                "element": {"type": "datepicker", "action_id": "value"},
            },
        ],
    }


OVERDUE = "overdue"  # the calendar's status, shown over whatever was typed


@dataclass(frozen=True)
class DepartmentSummary:
    """Counts for a coordinator's App Home."""

    key: str
    # strategy name -> status -> count; an open item past its date counts as OVERDUE, not as typed
    counts: dict[str, dict[str, int]]
    overdue: list[ItemCard]
    stale: list[ItemCard]


@dataclass(frozen=True)
class Waiting:
    """What waits for a coordinator in their departments: requests to decide, completions to verify."""

    pending: Sequence[PendingRequest]
    awaiting: Sequence[ActionItem]
    zone: ZoneInfo


# The Home shows this many of each with their buttons; `/reap requests` lists them all.
HOME_WAITING = 5


def _waiting_blocks(waiting: Waiting) -> list[Block]:
    pending, awaiting = list(waiting.pending), list(waiting.awaiting)
    requests, completions = plural(len(pending), "change request"), plural(len(awaiting), "completion")
    title = f"Waiting for you: {requests} · {completions} to verify"
    blocks = build_requests(pending[:HOME_WAITING], awaiting[:HOME_WAITING], title=title, zone=waiting.zone)
    hidden = max(0, len(pending) - HOME_WAITING) + max(0, len(awaiting) - HOME_WAITING)
    if hidden:
        blocks.append(context(f"{hidden} more, oldest first: `/reap requests` lists them all."))
    return [*blocks, divider()]


def _count_text(status: str, count: int) -> str:
    if status == OVERDUE:
        return f":red_circle: {count} overdue"
    return f"{style(status).slack_emoji} {count} {status_label(status)}"


def build_home(
    mine: Sequence[ItemCard],
    *,
    summaries: Sequence[DepartmentSummary] = (),
    paused_until: date | None = None,
    waiting: Waiting | None = None,
    actions: Sequence[Block] = (),
    measures: Sequence[Block] = (),
) -> dict[str, Any]:
    """The App Home tab: the buttons to work from, what waits for a coordinator's decision, my open
    items grouped by status (overdue first, whatever status was typed), my measures, and
    coordinators' department summaries."""
    blocks: list[Block] = [header("REAP Tracker"), *actions]
    if paused_until:
        blocks.append(
            context(f":double_vertical_bar: Your reminders are paused until {paused_until.isoformat()}.")
        )
    # A coordinator opens Home to act: decisions come before their own items.
    if waiting is not None:
        blocks += _waiting_blocks(waiting)
    blocks.append(section(f"*Your open items* · {len(mine)}"))
    budget = (
        MAX_VIEW_BLOCKS - len(blocks) - len(measures) - sum(3 + 2 * min(5, len(s.overdue)) for s in summaries)
    )
    shown = 0
    overdue = [c for c in mine if c.overdue_days]
    groups: list[tuple[str, list[ItemCard]]] = [("Overdue", overdue)]
    for status in ItemStatus:
        if status.is_open:
            groups.append(
                (
                    status.label.capitalize(),
                    [c for c in mine if c.item.status_enum == status and not c.overdue_days],
                )
            )
    for label, cards in groups:
        if not cards or shown + 3 > budget:
            continue
        blocks.append(context(f"*{label}*"))
        for card in cards:
            if shown + 2 > budget:
                break
            blocks.extend(build_item_card(card))
            shown += 2
    if not mine:
        blocks.append(context("Nothing open. :tada:"))
    blocks.extend(measures)
    shown_refs = {c.item.ref for c in mine}
    for summary in summaries:
        blocks.append(divider())
        lines = [f"*{escape(summary.key)} department*"]
        for strategy, counts in summary.counts.items():
            text = ", ".join(_count_text(s, n) for s, n in counts.items() if n)
            lines.append(f"{escape(strategy)}: {text or 'no items'}")
        blocks.append(section("\n".join(lines)))
        blocks.append(
            context(f"{len(summary.overdue)} overdue · {len(summary.stale)} stale (no update in 60 days)")
        )
        # A card may appear once per view: Slack rejects duplicate block ids.
        for card in [c for c in summary.overdue if c.item.ref not in shown_refs][:5]:
            blocks.extend(build_item_card(card))
            shown_refs.add(card.item.ref)
    return {"type": "home", "blocks": blocks[:MAX_VIEW_BLOCKS]}


def build_role_list(
    holders: Sequence[tuple[Person, str]], *, title: str, admins: Iterable[str]
) -> list[Block]:
    """Who holds which role: admins, DEI coordinators, department coordinators (and members of one)."""
    bootstrap = set(admins)
    lines = []
    for person, department in holders:
        role = Role(person.role).label if person.role in tuple(Role) else person.role
        where = (
            f" · {escape(department)}"
            if department and person.role in (Role.COORDINATOR, Role.MEMBER)
            else ""
        )
        lines.append(f"• <@{person.user_id}> {escape(one_line(person.name or ''))} — {escape(role)}{where}")
    lines += [f"• <@{user}> — REAP admin (from REAP_ADMINS)" for user in sorted(bootstrap)]
    if not lines:
        return [
            section(f"*{escape(title)}*"),
            context("Nobody holds a role yet. An admin gives one with `/reap role`."),
        ]
    return build_list_sections(title, lines)
