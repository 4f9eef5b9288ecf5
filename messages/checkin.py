"""The check-in in Slack: the prompt DM, the note a digest carries, and the one form."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from domain.numbers import with_unit
from domain.rollup import MeasureLine
from domain.status import ItemStatus
from domain.text import NOTE_MAX
from messages import blocks as bk
from messages import primitives as ui
from storage.checkins import NO_CHANGE_NOTE
from storage.queries.checkins import CheckInSubject

CHECKIN_OPEN = "checkin_open"
CHECKIN_MODAL = "checkin_modal"
MAX_MODAL_ITEMS = 25  # 3 inputs each, within a modal's 100 blocks


def chunks(lines: Sequence[str], limit: int = ui.MAX_SECTION_TEXT - 100) -> list[str]:
    """Lines joined into section texts of at most `limit` characters."""
    out: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + len(line) + 1 > limit:
            out.append(current)
            current = ""
        current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out[: ui.MAX_MESSAGE_BLOCKS]


def build_checkin_prompt(
    quarter: str, subject: CheckInSubject, *, zone: Any, today: date
) -> list[dict[str, Any]]:
    """The check-in prompt DM: open items with status and due date, measures to read, one button."""
    blocks = [
        ui.section(f":clipboard: *Time for the {quarter} REAP check-in.* One form covers everything below.")
    ]
    lines = []
    for item in subject.items[:MAX_MODAL_ITEMS]:
        due = f" · due {ui.date_token(item.due, zone)}" if item.due else ""
        lines.append(
            f"*{item.ref}* {ui.escape(ui.clip(item.title, 120))} · {bk.status_text(item.status_enum)}{due}"
        )
    for measure in subject.measures:
        lines.append(
            f":bar_chart: {ui.escape(measure.name)} ({ui.escape(measure.key)}): reading for {quarter}"
        )
    blocks += [ui.section(chunk) for chunk in chunks(lines)][:45]
    blocks.append(checkin_button(quarter))
    return blocks


def checkin_button(quarter: str) -> dict[str, Any]:
    """The actions block whose one button opens the check-in form for `quarter`."""
    return {
        "type": "actions",
        "block_id": f"checkin:{quarter}",
        "elements": [
            {
                "type": "button",
                "action_id": CHECKIN_OPEN,
                "style": "primary",
                "value": quarter,
                "text": ui.plain("Check in"),
            }
        ],
    }


def build_checkin_note(
    quarter: str, subject: CheckInSubject, *, due_on: date | None, zone: Any, followup: bool
) -> list[dict[str, Any]]:
    """The check-in, in two blocks, for the end of a digest that already lists the day's items."""
    parts = [_count(len(subject.items), "open item"), _count(len(subject.measures), "measure")]
    what = " and ".join(part for part in parts if part)
    due = f", due {ui.date_token(due_on, zone)}" if due_on else ""
    lead = "A reminder: your" if followup else "Your"
    return [
        ui.section(
            f":clipboard: *{lead} {quarter} REAP check-in is open{due}.* One form covers your {what}."
        ),
        checkin_button(quarter),
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}" if n else ""


NO_CHANGE = "no_change"


def _item_header(item: Any, zone: ZoneInfo | None) -> str:
    text = f"*{item.ref}* {ui.escape(ui.clip(item.title, 200))}"
    facts = []
    if item.due is not None:
        facts.append(f"due {ui.date_token(item.due, zone) if zone else item.due.isoformat()}")
    if item.last_note:
        facts.append(f"last note: “{ui.escape(ui.clip(' '.join(item.last_note.split()), 300))}”")
    return text + ("\n" + " · ".join(facts) if facts else "")


def _measure_hint(line: MeasureLine | None) -> str:
    if line is None:
        return "No reading yet."

    def value(v: float | None) -> str:
        return with_unit(v, " ".join(line.unit.split()))

    parts = []
    if line.latest is not None:
        parts.append(f"last reading {value(line.latest)} ({line.latest_quarter})")
    else:
        parts.append("no reading yet")
    due = f" by {line.target_quarter}" if line.target_quarter else ""
    parts.append(f"target {value(line.target)}{due}")
    expected = line.series[-1].expected if line.series else None
    if expected is not None:
        parts.append(f"expected about {value(expected)} now")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def build_checkin_modal(
    quarter: str, subject: CheckInSubject, *, zone: ZoneInfo | None = None
) -> dict[str, Any]:
    """One form: status, progress and a note for every open item (with its due date and last note);
    a value, and one per group for a broken-down measure, for every owned measure (with its last
    reading, target and expected value); and "no change since last quarter" for a form left as is."""
    statuses = [{"text": ui.plain(s.label.capitalize()), "value": s.value} for s in ItemStatus]
    blocks: list[dict[str, Any]] = []
    for item in subject.items[:MAX_MODAL_ITEMS]:
        current = next(o for o in statuses if o["value"] == item.status)
        blocks.append(ui.section(_item_header(item, zone)))
        blocks.append(
            {
                "type": "input",
                "block_id": f"status:{item.ref}",
                "label": ui.plain("Status", 2000),
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": statuses,
                    "initial_option": current,
                },
            }
        )
        blocks.append(
            {
                "type": "input",
                "block_id": f"progress:{item.ref}",
                "label": ui.plain("Percent complete", 2000),
                "element": {
                    "type": "number_input",
                    "action_id": "value",
                    "is_decimal_allowed": False,
                    "min_value": "0",
                    "max_value": "100",
                    "initial_value": str(item.progress),
                },
            }
        )
        blocks.append(
            {
                "type": "input",
                "block_id": f"note:{item.ref}",
                "optional": True,
                "label": ui.plain("Note", 2000),
                "element": {"type": "plain_text_input", "action_id": "value", "max_length": NOTE_MAX},
            }
        )
    for measure in subject.measures:
        groups = subject.groups.get(measure.key, [])
        # Leave room for the no-change box; a measure that does not fit whole is left for next time.
        if len(blocks) + 1 + len(groups) + 1 > ui.MAX_VIEW_BLOCKS:
            break
        blocks.append(
            {
                "type": "input",
                "block_id": f"measure:{measure.key}",
                "optional": True,
                "label": ui.plain(f"{measure.name} ({measure.unit or 'value'})", 2000),
                "hint": ui.plain(_measure_hint(subject.lines.get(measure.key)), 2000),
                "element": {"type": "number_input", "action_id": "value", "is_decimal_allowed": True},
            }
        )
        for group, name in groups:
            blocks.append(
                {
                    "type": "input",
                    "block_id": f"group:{measure.key}:{group}",
                    "optional": True,
                    "label": ui.plain(f"{name}: {measure.name}", 2000),
                    "element": {"type": "number_input", "action_id": "value", "is_decimal_allowed": True},
                }
            )
    if blocks:
        blocks.append(
            {
                "type": "input",
                "block_id": "confirm",
                "optional": True,
                "label": ui.plain("Nothing to change?", 2000),
                "element": {
                    "type": "checkboxes",
                    "action_id": "value",
                    "options": [{"text": ui.plain(NO_CHANGE_NOTE), "value": NO_CHANGE}],
                },
            }
        )
    return {
        "type": "modal",
        "callback_id": CHECKIN_MODAL,
        "title": ui.plain(f"{quarter} check-in", 24),
        "submit": ui.plain("Submit", 24),
        "close": ui.plain("Cancel", 24),
        "private_metadata": quarter,
        "blocks": blocks[: ui.MAX_VIEW_BLOCKS] or [ui.section("You have nothing open. Thank you!")],
    }
