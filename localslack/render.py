"""Block Kit as terminal text for `reap shell`: messages, modals and App Home, with numbered controls.

Everything here is pure. Rendering returns the text and the interactive controls it numbered, each
remembering where it was shown, so the console can press one (`:click 2 1 week`) with a
block_actions payload shaped like Slack's; `modal_state` turns `:submit field=value` pairs into the
`view.state.values` Slack would send for a modal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

Block = dict[str, Any]

# Shortcodes the bot uses (and a few people type), as the symbol Slack would show.
EMOJI = {
    "white_circle": "⚪",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "large_orange_circle": "🟠",
    "red_circle": "🔴",
    "large_blue_circle": "🔵",
    "white_check_mark": "✅",
    "clipboard": "📋",
    "grey_question": "❔",
    "heavy_check_mark": "✔",
    "heavy_minus_sign": "➖",
    "x": "❌",
    "warning": "⚠️",
    "tada": "🎉",
    "zzz": "💤",
    "double_vertical_bar": "⏸",
    "arrow_forward": "▶",
    "bell": "🔔",
    "calendar": "📅",
    "spiral_calendar_pad": "🗓",
    "hourglass_flowing_sand": "⏳",
    "alarm_clock": "⏰",
    "memo": "📝",
    "bar_chart": "📊",
    "chart_with_upwards_trend": "📈",
    "chart_with_downwards_trend": "📉",
    "pushpin": "📌",
    "wave": "👋",
    "eyes": "👀",
    "rotating_light": "🚨",
    "information_source": "ℹ️",
    "thumbsup": "👍",
    "+1": "👍",
}

_MARKUP = re.compile(r"<([^<>\n]+)>")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_USER_ID = re.compile(r"[UW][A-Z0-9]+")

BOLD, DIM, ITALIC, UNDERLINE, RESET = "\x1b[1m", "\x1b[2m", "\x1b[3m", "\x1b[4m", "\x1b[0m"
RULE = "─" * 40

# Element types that are interactive when they appear in an actions block or as an accessory.
_SELECTS = ("static_select", "external_select", "overflow", "radio_buttons")
_MULTI_SELECTS = ("multi_static_select", "checkboxes")
_TEXT_INPUTS = ("plain_text_input", "number_input", "email_text_input", "url_text_input")
_KIND_HINTS = {
    "plain_text_input": "text",
    "number_input": "a number",
    "email_text_input": "an email address",
    "url_text_input": "a URL",
    "datepicker": "a date YYYY-MM-DD",
    "timepicker": "a time HH:MM",
    "users_select": "a person (@name or U…)",
    "multi_users_select": "people (@a,@b)",
    "conversations_select": "a channel id",
    "channels_select": "a channel id",
}


class ControlError(ValueError):
    """A control or modal field was used in a way Slack's client would not allow."""


class ChoiceNeeded(ControlError):
    """A menu was pressed without saying which option."""

    def __init__(self, control: Control) -> None:
        self.control = control
        super().__init__(
            f"control {control.number} ({control.label}) needs a choice: "
            f"{' | '.join(o.label for o in control.options) or control.hint}"
        )


class UnknownChoice(ControlError):
    """The option asked for is not one the menu offers."""

    def __init__(self, what: str, wanted: str, options: Sequence[Option]) -> None:
        self.wanted = wanted
        super().__init__(
            f"{what} has no option '{wanted}'; choose one of: {' | '.join(o.label for o in options)}"
        )


class UnknownField(ControlError):
    """A :submit named a field the modal does not have."""

    def __init__(self, name: str, fields: Sequence[str]) -> None:
        self.name = name
        super().__init__(f"this modal has no field '{name}'; its fields are: {', '.join(fields)}")


class BadFieldValue(ControlError):
    """A value that the field's element would not accept."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        self.name = name
        self.value = value
        super().__init__(f"{name}: '{value}' is not {expected}")


class MissingField(ControlError):
    """A required modal field was left empty (Slack's client refuses to submit it)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__(f"required field{'s' if len(names) > 1 else ''} left empty: {', '.join(names)}")


@dataclass(frozen=True)
class Option:
    """One choice of a menu: what it shows and the value it sends."""

    label: str
    value: str
    raw: Block = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Origin:
    """Where a control was shown: a message (channel, ts, ephemeral or not) or a view."""

    channel: str | None = None
    ts: str | None = None
    ephemeral: bool = False
    message: Block | None = None
    view: Block | None = None


@dataclass(frozen=True)
class Control:
    """A numbered interactive element: a button, a menu, a date or user picker."""

    number: int
    kind: str
    action_id: str
    block_id: str
    label: str
    value: str | None = None
    options: tuple[Option, ...] = ()
    element: Block = field(default_factory=dict, compare=False)
    origin: Origin = field(default_factory=Origin, compare=False)

    @property
    def hint(self) -> str:
        """What kind of choice a picker wants."""
        return _KIND_HINTS.get(self.kind, self.kind)

    def choose(self, wanted: str) -> Option:
        """The option matching `wanted` by label, value, unique label prefix or 1-based position."""
        return pick_option(self.options, wanted, what=f"control {self.number} ({self.label})")

    def action(
        self, choice: str | None = None, *, action_ts: str, users: Mapping[str, str] | None = None
    ) -> Block:
        """The `actions[0]` entry Slack sends when this control is pressed (with `choice` for menus)."""
        action: Block = {
            "type": self.kind,
            "action_id": self.action_id,
            "block_id": self.block_id,
            "action_ts": action_ts,
        }
        if self.kind == "button":
            action["text"] = {"type": "plain_text", "text": self.label, "emoji": True}
            if self.value is not None:
                action["value"] = self.value
            return action
        if choice is None or not choice.strip():
            raise ChoiceNeeded(self)
        choice = choice.strip()
        if self.kind in _SELECTS:
            action["selected_option"] = self.choose(choice).raw
        elif self.kind in _MULTI_SELECTS:
            action["selected_options"] = [self.choose(c).raw for c in _split_list(choice)]
        elif self.kind == "datepicker":
            action["selected_date"] = _date_value(self.label, choice)
        elif self.kind == "timepicker":
            action["selected_time"] = _time_value(self.label, choice)
        elif self.kind == "users_select":
            action["selected_user"] = resolve_user(self.label, choice, users or {})
        elif self.kind == "multi_users_select":
            action["selected_users"] = [resolve_user(self.label, c, users or {}) for c in _split_list(choice)]
        else:
            action["value"] = choice
        return action


@dataclass
class Rendered:
    """Readable text, and the controls it numbered (in order)."""

    text: str
    controls: list[Control] = field(default_factory=list)


def pick_option(options: Sequence[Option], wanted: str, *, what: str) -> Option:
    """The option matching `wanted`: exact label or value, then a unique label prefix, then position."""
    key = _fold(wanted)
    for option in options:
        if key in (_fold(option.label), _fold(option.value)):
            return option
    prefixed = [o for o in options if _fold(o.label).startswith(key)] if key else []
    if len(prefixed) == 1:
        return prefixed[0]
    if wanted.strip().isdigit() and 1 <= int(wanted) <= len(options):
        return options[int(wanted) - 1]
    raise UnknownChoice(what, wanted, options)


def resolve_user(what: str, wanted: str, users: Mapping[str, str]) -> str:
    """A user id from `U123`, `@handle` or a handle, using `users` (id -> handle)."""
    name = wanted.strip().removeprefix("@")
    if name.upper() in users or _USER_ID.fullmatch(name):
        return name.upper()
    matches = [uid for uid, handle in users.items() if handle.lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    raise BadFieldValue(what, wanted, "a known person (@name or a U… id)")


def _fold(text: str) -> str:
    # "On track", "on_track" and "on-track" all name the same option.
    return re.sub(r"[\s_\-]+", " ", text.strip().rstrip("…").rstrip(".").strip().lower())


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _date_value(name: str, text: str) -> str:
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise BadFieldValue(name, text, "a date written YYYY-MM-DD")


def _time_value(name: str, text: str) -> str:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if match is None:
        raise BadFieldValue(name, text, "a time written HH:MM")
    return f"{int(match[1]):02d}:{match[2]}"


# --- text -------------------------------------------------------------------------------------


def mrkdwn_to_text(text: str, *, names: Mapping[str, str] | None = None, color: bool = False) -> str:
    """Slack mrkdwn as a person reads it: mentions, channels, dates and links resolved, unescaped."""
    names = names or {}
    out = _MARKUP.sub(lambda m: _markup(m[1], names), text)
    out = _EMOJI.sub(lambda m: EMOJI.get(m[1], m[0]), out)
    if color:
        out = _BOLD.sub(lambda m: f"{BOLD}{m[1]}{RESET}", out)
        out = _ITALIC.sub(lambda m: f"{ITALIC}{m[1]}{RESET}", out)
    # &amp; last, so "&amp;lt;" stays the literal text "&lt;" it stood for.
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _markup(inner: str, names: Mapping[str, str]) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        user = target[1:]
        return "@" + (names.get(user) or label.removeprefix("@") or user)
    if target.startswith("#"):
        channel = target[1:]
        return "#" + (label or names.get(channel) or channel)
    if target.startswith("!date^"):
        if label:
            return label
        stamp = target.split("^")[1]
        return datetime.fromtimestamp(int(stamp), UTC).date().isoformat() if stamp.isdigit() else target
    if target.startswith("!subteam^"):
        return label or "@" + target.split("^")[1]
    if target.startswith("!"):
        return "@" + (label or target[1:])
    return f"{label} ({target})" if label and label != target else target


def _text_of(obj: Any, names: Mapping[str, str], color: bool) -> str:
    """A text object (plain_text or mrkdwn) as readable text."""
    if not isinstance(obj, dict):
        return str(obj or "")
    text = str(obj.get("text") or "")
    if obj.get("type") == "plain_text":
        plain = _EMOJI.sub(lambda m: EMOJI.get(m[1], m[0]), text)
        return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return mrkdwn_to_text(text, names=names, color=color)


def _rich_text(elements: Sequence[Any], names: Mapping[str, str]) -> str:
    parts: list[str] = []
    for element in elements:
        if not isinstance(element, dict):
            continue
        kind = element.get("type")
        if kind in ("rich_text_section", "rich_text_preformatted", "rich_text_quote"):
            parts.append(_rich_text(element.get("elements") or [], names))
        elif kind == "rich_text_list":
            for child in element.get("elements") or []:
                parts.append("• " + _rich_text([child], names) + "\n")
        elif kind == "text":
            parts.append(str(element.get("text") or ""))
        elif kind == "user":
            user = str(element.get("user_id") or "")
            parts.append("@" + names.get(user, user))
        elif kind == "channel":
            channel = str(element.get("channel_id") or "")
            parts.append("#" + names.get(channel, channel))
        elif kind == "link":
            url = str(element.get("url") or "")
            label = element.get("text")
            parts.append(f"{label} ({url})" if label else url)
        elif kind == "emoji":
            name = str(element.get("name") or "")
            parts.append(EMOJI.get(name, f":{name}:"))
        elif kind == "date":
            parts.append(str(element.get("fallback") or element.get("timestamp") or ""))
    return "".join(parts)


# --- controls ---------------------------------------------------------------------------------


def _options(element: Block) -> tuple[Option, ...]:
    raw = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        raw.extend(group.get("options") or [])
    return tuple(
        Option(label=_text_of(o.get("text"), {}, False), value=str(o.get("value") or ""), raw=o)
        for o in raw
        if isinstance(o, dict)
    )


def _control_label(element: Block) -> str:
    for key in ("text", "placeholder"):
        if isinstance(element.get(key), dict):
            return _text_of(element[key], {}, False)
    return {"overflow": "…"}.get(str(element.get("type")), str(element.get("type") or "control"))


def _is_interactive(element: Any) -> bool:
    return isinstance(element, dict) and element.get("type") not in (None, "image", "mrkdwn", "plain_text")


class _Numbering:
    """Hands out control numbers across everything rendered in one go."""

    def __init__(self, first: int, origin: Origin) -> None:
        self.field_width = 0  # input names are padded to line up
        self.next = first
        self.origin = origin
        self.controls: list[Control] = []

    def add(self, element: Block, block_id: str, names: Mapping[str, str]) -> str:
        kind = str(element.get("type"))
        control = Control(
            number=self.next,
            kind=kind,
            action_id=str(element.get("action_id") or ""),
            block_id=block_id,
            label=_control_label(element),
            value=None if element.get("value") is None else str(element["value"]),
            options=_options(element),
            element=element,
            origin=self.origin,
        )
        self.next += 1
        self.controls.append(control)
        return _control_text(control, names)


def _control_text(control: Control, names: Mapping[str, str]) -> str:
    element = control.element
    if control.kind == "button":
        url = f" → {element['url']}" if element.get("url") else ""
        return f"[{control.number} {control.label}{url}]"
    if control.options:
        return f"[{control.number} {control.label}: {' | '.join(o.label for o in control.options)}]"
    current = _initial_text(element, names)
    return f"[{control.number} {control.label} ({control.hint}){' = ' + current if current else ''}]"


def _initial_text(element: Block, names: Mapping[str, str]) -> str:
    if element.get("initial_option"):
        return _text_of(element["initial_option"].get("text"), names, False)
    if element.get("initial_options"):
        return ", ".join(_text_of(o.get("text"), names, False) for o in element["initial_options"])
    if element.get("initial_user"):
        return "@" + names.get(element["initial_user"], element["initial_user"])
    if element.get("initial_users"):
        return ", ".join("@" + names.get(u, u) for u in element["initial_users"])
    for key in ("initial_date", "initial_time", "initial_value", "initial_conversation", "initial_channel"):
        if element.get(key):
            return str(element[key])
    return ""


# --- blocks -----------------------------------------------------------------------------------


def _render_block(
    block: Block, numbering: _Numbering, names: Mapping[str, str], color: bool, index: int
) -> str | None:
    kind = block.get("type")
    block_id = str(block.get("block_id") or f"b{index}")
    if kind == "header":
        title = _text_of(block.get("text"), names, color)
        return f"{BOLD}{title}{RESET}" if color else f"{title}\n{'=' * len(title)}"
    if kind == "section":
        lines: list[str] = []
        if block.get("text"):
            lines.append(_text_of(block["text"], names, color))
        fields = [_text_of(f, names, color) for f in block.get("fields") or []]
        lines.extend("  ".join(fields[i : i + 2]) for i in range(0, len(fields), 2))
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and _is_interactive(accessory):
            lines.append(numbering.add(accessory, block_id, names))
        elif isinstance(accessory, dict) and accessory.get("type") == "image":
            lines.append(f"[image: {accessory.get('alt_text') or ''}]")
        return "\n".join(lines)
    if kind == "context":
        parts = []
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("type") == "image":
                parts.append(f"[{element.get('alt_text') or 'image'}]")
            else:
                parts.append(_text_of(element, names, False))
        line = "  ".join(p for p in parts if p)
        return f"{DIM}  {line}{RESET}" if color else f"  · {line}"
    if kind == "divider":
        return RULE
    if kind == "actions":
        return " ".join(
            numbering.add(e, block_id, names) for e in block.get("elements") or [] if _is_interactive(e)
        )
    if kind == "image":
        title = _text_of(block.get("title"), names, False) if block.get("title") else ""
        return f"[image: {title or block.get('alt_text') or ''}]"
    if kind == "rich_text":
        return _rich_text(block.get("elements") or [], names).rstrip("\n")
    if kind == "markdown":
        return str(block.get("text") or "")
    if kind == "input":
        return _input_line(block, block_id, names, numbering.field_width)
    if kind == "file":
        return f"[file {block.get('external_id') or ''}]"
    return f"[{kind} block]"


def _input_line(block: Block, block_id: str, names: Mapping[str, str], width: int) -> str:
    element = block.get("element") or {}
    label = _text_of(block.get("label"), names, False)
    required = "" if block.get("optional") else "*"
    choices = _options(element)
    wants = " | ".join(o.label for o in choices) if choices else _KIND_HINTS.get(str(element.get("type")), "")
    current = _initial_text(element, names)
    hint = _text_of(block.get("hint"), names, False) if block.get("hint") else ""
    line = f"  {block_id + required:<{width}}  {label}: {wants}"
    if current:
        line += f"  [now: {current}]"
    if hint:
        line += f"\n      {hint}"
    return line


def render_message(
    blocks: Sequence[Block],
    *,
    text: str = "",
    names: Mapping[str, str] | None = None,
    origin: Origin | None = None,
    first: int = 1,
    color: bool = False,
) -> Rendered:
    """A message's blocks (or its fallback `text` when it has none) as text, numbering its controls."""
    names = names or {}
    numbering = _Numbering(first, origin or Origin())
    if not blocks:
        return Rendered(mrkdwn_to_text(text, names=names, color=color), [])
    numbering.field_width = max(
        (
            len(str(b.get("block_id") or f"b{i}")) + 1
            for i, b in enumerate(blocks)
            if b.get("type") == "input"
        ),
        default=0,
    )
    parts = [_render_block(b, numbering, names, color, i) for i, b in enumerate(blocks)]
    return Rendered("\n".join(p for p in parts if p is not None), numbering.controls)


def render_blocks(
    blocks: Sequence[Block], *, text: str = "", names: Mapping[str, str] | None = None, color: bool = False
) -> str:
    """Block Kit as readable terminal text."""
    return render_message(blocks, text=text, names=names, color=color).text


def render_view(
    view: Block, *, names: Mapping[str, str] | None = None, first: int = 1, color: bool = False
) -> Rendered:
    """A modal (title, inputs by block_id, buttons) or an App Home view as text."""
    body = render_message(
        view.get("blocks") or [], names=names, origin=Origin(view=view), first=first, color=color
    )
    if view.get("type") != "modal":
        return body
    title = _text_of(view.get("title"), {}, False)
    head = f"{BOLD}{title}{RESET}" if color else f"{title}\n{'=' * len(title)}"
    lines = [head, body.text]
    fields = input_fields(view)
    if fields:
        submit = _text_of(view.get("submit"), {}, False) or "Submit"
        names_list = " ".join(f"{f}=…" for f in fields)
        lines.append(f"  (* required) press “{submit}” with :submit {names_list}")
    return Rendered("\n".join(line for line in lines if line), body.controls)


# --- modal submission -------------------------------------------------------------------------


def input_fields(view: Block) -> list[str]:
    """The block ids of a view's input blocks, in order."""
    return [
        str(b.get("block_id") or f"b{i}")
        for i, b in enumerate(view.get("blocks") or [])
        if b.get("type") == "input"
    ]


def _initial_state(element: Block) -> Block:
    kind = str(element.get("type"))
    state: Block = {"type": kind}
    if kind in _SELECTS:
        state["selected_option"] = element.get("initial_option")
    elif kind in _MULTI_SELECTS:
        state["selected_options"] = list(element.get("initial_options") or [])
    elif kind == "users_select":
        state["selected_user"] = element.get("initial_user")
    elif kind == "multi_users_select":
        state["selected_users"] = list(element.get("initial_users") or [])
    elif kind == "conversations_select":
        state["selected_conversation"] = element.get("initial_conversation")
    elif kind == "channels_select":
        state["selected_channel"] = element.get("initial_channel")
    elif kind == "datepicker":
        state["selected_date"] = element.get("initial_date")
    elif kind == "timepicker":
        state["selected_time"] = element.get("initial_time")
    else:
        state["value"] = element.get("initial_value")
    return state


def _number_value(name: str, text: str, element: Block) -> str:
    decimal = bool(element.get("is_decimal_allowed"))
    pattern = r"-?\d+(\.\d+)?" if decimal else r"-?\d+"
    expected = "a number" if decimal else "a whole number"
    if not re.fullmatch(pattern, text):
        raise BadFieldValue(name, text, expected)
    low, high = element.get("min_value"), element.get("max_value")
    if (low is not None and float(text) < float(low)) or (high is not None and float(text) > float(high)):
        raise BadFieldValue(name, text, f"{expected} from {low if low is not None else '…'} to {high or '…'}")
    return text


def _apply(name: str, element: Block, text: str, users: Mapping[str, str]) -> Block:
    kind = str(element.get("type"))
    state: Block = {"type": kind}
    what = f"field {name}"
    if kind in _SELECTS:
        state["selected_option"] = pick_option(_options(element), text, what=what).raw
    elif kind in _MULTI_SELECTS:
        options = _options(element)
        state["selected_options"] = [pick_option(options, t, what=what).raw for t in _split_list(text)]
    elif kind == "users_select":
        state["selected_user"] = resolve_user(name, text, users)
    elif kind == "multi_users_select":
        state["selected_users"] = [resolve_user(name, t, users) for t in _split_list(text)]
    elif kind == "conversations_select":
        state["selected_conversation"] = text
    elif kind == "channels_select":
        state["selected_channel"] = text
    elif kind == "datepicker":
        state["selected_date"] = _date_value(name, text)
    elif kind == "timepicker":
        state["selected_time"] = _time_value(name, text)
    elif kind == "number_input":
        state["value"] = _number_value(name, text.strip(), element)
    else:
        limit = element.get("max_length")
        if isinstance(limit, int) and len(text) > limit:
            raise BadFieldValue(name, text[:40] + "…", f"at most {limit} characters")
        state["value"] = text
    return state


def _is_empty(state: Block) -> bool:
    values = [v for k, v in state.items() if k != "type"]
    return all(v in (None, "", []) for v in values)


def modal_state(
    view: Block, values: Mapping[str, str], *, users: Mapping[str, str] | None = None
) -> dict[str, dict[str, Block]]:
    """The `view.state.values` Slack would submit: initial values, overridden by `values` per block_id.

    Selects take an option's label or value; user pickers take @handle or a U… id (`users` maps
    id -> handle); date pickers take YYYY-MM-DD; number and text inputs take the text as typed.
    """
    inputs = {
        str(b.get("block_id") or f"b{i}"): b
        for i, b in enumerate(view.get("blocks") or [])
        if b.get("type") == "input"
    }
    lowered = {k.lower(): k for k in inputs}
    state: dict[str, dict[str, Block]] = {}
    for block_id, block in inputs.items():
        element = block.get("element") or {}
        state[block_id] = {str(element.get("action_id") or "value"): _initial_state(element)}
    for name, text in values.items():
        if name.lower() not in lowered:
            raise UnknownField(name, list(inputs))
        block_id = lowered[name.lower()]
        element = inputs[block_id].get("element") or {}
        action_id = str(element.get("action_id") or "value")
        state[block_id][action_id] = (
            _initial_state({"type": element.get("type")})
            if text == ""
            else _apply(block_id, element, text, users or {})
        )
    missing = [
        block_id
        for block_id, block in inputs.items()
        if not block.get("optional") and all(_is_empty(s) for s in state[block_id].values())
    ]
    if missing:
        raise MissingField(missing)
    return state
