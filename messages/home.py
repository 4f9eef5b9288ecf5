"""The App Home's own controls: the buttons to work from and the person's measures."""

from __future__ import annotations

from collections.abc import Sequence

from domain.numbers import one_line
from domain.status import label, style
from messages import primitives as ui
from messages.checkin import CHECKIN_OPEN
from messages.measures import measure_value
from storage.queries.rollup import PlacedMeasure

# The global shortcut "Add REAP action item" and the Home buttons, by callback and action id.
ADD_SHORTCUT = "add_action_item"
ADD = "home_add"
START_CHECKIN = "home_checkin_start"
ROLLUP = "home_rollup"
# The person's measures shown on Home; /reap measures mine lists them all.
MEASURES_SHOWN = 10


def _button(text: str, action_id: str, value: str = "", *, primary: bool = False) -> ui.Block:
    button: ui.Block = {"type": "button", "action_id": action_id, "text": ui.plain(text)}
    if value:
        button["value"] = value
    if primary:
        button["style"] = "primary"
    return button


def build_home_actions(*, quarter: str, checkin_open: bool, coordinator: bool) -> list[ui.Block]:
    """What a person starts from Home: add an item, answer the open check-in and, for a
    coordinator, start the quarter's check-in (while none is open) and post its rollup."""
    elements = [_button("Add an item", ADD, primary=True)]
    if checkin_open:
        elements.append(_button(f"Answer the {quarter} check-in", CHECKIN_OPEN, quarter))
    if coordinator and not checkin_open:
        elements.append(_button(f"Start the {quarter} check-in", START_CHECKIN, quarter))
    if coordinator:
        elements.append(_button(f"Post the {quarter} rollup", ROLLUP, quarter))
    return [
        {"type": "actions", "block_id": "home:actions", "elements": elements},
        ui.context("To update one of your items, use its Update button below."),
    ]


def build_home_measures(measures: Sequence[PlacedMeasure], *, quarter: str) -> list[ui.Block]:
    """The person's measures with their latest value and status (none: nothing to show)."""
    if not measures:
        return []
    lines = []
    for placed in measures[:MEASURES_SHOWN]:
        m = placed.line
        latest = measure_value(m, m.latest) + (f" ({m.latest_quarter})" if m.latest_quarter else "")
        status = f"{style(m.status).slack_emoji} {label(m.status)}"
        lines.append(f"• *{ui.escape(one_line(m.name))}* `{ui.escape(m.key)}` · latest {latest} · {status}")
    if len(measures) > MEASURES_SHOWN:
        lines.append(f"…and {len(measures) - MEASURES_SHOWN} more: `/reap measures mine` lists them.")
    text = f"*Your measures* · {len(measures)} at {quarter}\n" + "\n".join(lines)
    return [ui.section(ui.clip(text, 3000))]
