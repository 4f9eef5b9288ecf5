"""Block Kit primitives: escaping, Slack's limits counted as Slack counts them, splitting, dates.

Slack measures text in UTF-16 code units, so every length here is `slack_len`, never `len`:
an emoji is two units and must not push a section over 3,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

Block = dict[str, Any]

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
_TEXT_TYPES = ("mrkdwn", "plain_text")
# Slack rejects section text of 3,000 characters; stay clear of it (counted in UTF-16 units).
SECTION_LIMIT = 2_900
# Slack also rejects a message whose blocks are too long overall (msg_blocks_too_long, about
# 13k characters, undocumented), so each message gets a budget below that.
MESSAGE_BUDGET = 11_000
FALLBACK_LIMIT = 3_000


def slack_len(text: str) -> int:
    """Length as Slack counts it (UTF-16 code units), so emoji cannot push a text over a limit."""
    # A lone surrogate (JSON can carry one) is one unit; the strict codec would raise instead.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def fit(text: str, units: int) -> int:
    """How many characters of `text` fit in `units` UTF-16 units."""
    total = 0
    for index, char in enumerate(text):
        total += 2 if ord(char) > 0xFFFF else 1
        if total > units:
            return index
    return len(text)


def split_text(text: str, units: int) -> list[str]:
    """Split text into pieces of at most `units`, at spaces if possible, never inside an &amp; escape."""
    pieces = []
    while slack_len(text) > units:
        cut = fit(text, units)
        space = text.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space
        amp = text.rfind("&", max(0, cut - 5), cut)
        if amp > 0 and ";" not in text[amp:cut]:
            cut = amp
        cut = max(cut, 1)
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" ")
    pieces.append(text)
    return pieces


def build_list_sections(title: str, lines: Sequence[str], *, limit: int = SECTION_LIMIT) -> list[Block]:
    """Sections holding every line under `title`, continued in as many sections as it takes."""
    if not lines:
        return []
    heading = f"*{title}*"
    continued = f"*{title} (continued)*"
    texts: list[str] = []
    current = heading
    for line in lines:
        for piece in split_text(line, limit - slack_len(continued) - 1):
            if slack_len(current) + 1 + slack_len(piece) > limit:
                texts.append(current)
                current = continued
            current = f"{current}\n{piece}"
    texts.append(current)
    return [section(text) for text in texts]


def _text_units(obj: object) -> int:
    if not isinstance(obj, dict):
        return 0
    text = obj.get("text")
    if isinstance(text, dict):  # a button or header: its text object holds the words
        return _text_units(text)
    return slack_len(text) if isinstance(text, str) and obj.get("type") in _TEXT_TYPES else 0


def block_size(block: Block) -> int:
    """The text people read in a block, which Slack's overall message limit counts, in UTF-16 units."""
    return _text_units(block.get("text")) + sum(_text_units(e) for e in block.get("elements") or ())


def build_messages(blocks: Sequence[Block], *, fallback: str) -> list[dict[str, Any]]:
    """Messages of at most 50 blocks and within the overall size budget, each with fallback text."""
    chunks: list[list[Block]] = []
    current: list[Block] = []
    size = 0
    for block in blocks:
        units = block_size(block)
        if current and (len(current) >= MAX_MESSAGE_BLOCKS or size + units > MESSAGE_BUDGET):
            chunks.append(current)
            current, size = [], 0
        current.append(block)
        size += units
    if current:
        chunks.append(current)
    count = len(chunks)
    return [
        {
            "text": fallback if count == 1 else f"{fallback} ({n}/{count})",
            "blocks": chunk,
        }
        for n, chunk in enumerate(chunks, start=1)
    ]


def escape(text: object) -> str:
    """Slack's mrkdwn escaping: only & < > (in that order), so text can never ping or link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """Shorten text to `limit` UTF-16 units (as Slack counts) with an ellipsis, never past the limit."""
    if slack_len(text) <= limit:
        return text
    return text[: fit(text, limit - 1)] + "…"


def date_token(day: date, zone: ZoneInfo, fmt: str = "{date_short_pretty}") -> str:
    """A Slack date token that each reader sees in their own locale; noon in `zone` keeps the day."""
    stamp = int(datetime.combine(day, time(12), tzinfo=zone).timestamp())
    return f"<!date^{stamp}^{fmt}|{day.isoformat()}>"


def instant_token(moment: datetime) -> str:
    """A Slack date token for an instant, with a UTC fallback."""
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def mrkdwn(text: str) -> dict[str, str]:
    """A mrkdwn text object (the caller has escaped user text)."""
    return {"type": "mrkdwn", "text": clip(text, MAX_SECTION_TEXT)}


def plain(text: str, limit: int = 75) -> dict[str, Any]:
    """A plain_text object clipped to Slack's limit for where it goes."""
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def section(text: str, *, block_id: str | None = None) -> Block:
    """A section block of mrkdwn text."""
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if block_id:
        block["block_id"] = block_id
    return block


def context(text: str) -> Block:
    """A small grey context line."""
    return {"type": "context", "elements": [mrkdwn(text)]}


def header(text: str) -> Block:
    """A header block."""
    return {"type": "header", "text": plain(text, 150)}


def divider() -> Block:
    """A divider."""
    return {"type": "divider"}
