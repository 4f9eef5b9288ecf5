"""The quarterly rollup in Slack: a summary message and a threaded detail per department."""

from __future__ import annotations

import re
from typing import Any

from domain.numbers import format_change, format_percent, format_rate, one_line, plural, with_unit
from domain.rollup import (
    STATUSES,
    TREND_PANELS,
    Changes,
    DepartmentRollup,
    ItemLine,
    MeasureLine,
    RequestLine,
    Rollup,
    StaleStatus,
)
from domain.status import label, style
from messages.measures import gap_text, trend_text
from messages.primitives import (
    FALLBACK_LIMIT,
    MAX_MESSAGE_BLOCKS,
    MESSAGE_BUDGET,
    SECTION_LIMIT,
    Block,
    block_size,
    build_list_sections,
    build_messages,
    context,
    divider,
    escape,
    header,
    section,
    split_text,
)

_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")


def _mention(user_id: str, rollup: Rollup) -> str:
    if _SLACK_ID.match(user_id):
        return f"<@{user_id}>"
    return escape(rollup.name_of(user_id))


def _counts_text(counts: dict[str, int]) -> str:
    parts = [f"{style(s).slack_emoji} {counts[s]} {label(s)}" for s in STATUSES if counts.get(s)]
    return " · ".join(parts) if parts else "no items"


def build_department_summary(department: DepartmentRollup) -> str:
    """One mrkdwn line summing a department up for the summary message."""
    parts = [
        f"*{escape(department.key)}* {escape(one_line(department.name))}",
        plural(department.total, "item"),
        _counts_text(department.counts),
        f"{format_percent(department.percent_complete)} complete",
        f"on time {format_rate(department.on_time_rate)}",
    ]
    if department.overdue_count:
        parts.append(f"*{department.overdue_count} overdue*")
    if department.verified or department.awaiting_verification:
        parts.append(_completion_counts(department))
    if department.requests:
        parts.append(f"{plural(len(department.requests), 'change request')} waiting")
    if department.stale_status:
        parts.append(f"{len(department.stale_status)} on track but status may be stale")
    if department.response_rate is not None:
        parts.append(f"check-in {format_rate(department.response_rate)}")
    return " · ".join(parts)


def _item_head(line: ItemLine) -> str:
    title = escape(one_line(line.title))
    return f"• *{escape(line.ref)}* {title} — {escape(line.owner_name)}"


def _completion_counts(department: DepartmentRollup) -> str:
    return (
        f"{department.verified} verified completed"
        f" · {department.awaiting_verification} done, awaiting verification"
    )


def _item_text(line: ItemLine, *, due: bool = False, note: bool = False, updated: bool = False) -> str:
    text = _item_head(line)
    if due and line.due is not None:
        # Overdue wins over what was typed, but the typed status is kept in words for the record.
        text += (
            f" — *{plural(line.days_overdue, 'day')} overdue* (due {line.due.isoformat()},"
            f" marked {label(line.status)})"
        )
    if updated and line.updated_on is not None:
        text += f" — last update {line.updated_on.isoformat()}"
    if note:
        text += f"\n> {escape(one_line(line.last_note))}" if line.last_note else "\n> _no note_"
    return text


def _orphan_text(line: ItemLine) -> str:
    why = {"deactivated": " (owner deactivated)", "unknown": " (owner unknown to the bot)"}
    return _item_head(line) + why.get(line.owner_state, "")


def _measure_text(m: MeasureLine) -> str:
    def value(number: float | None) -> str:
        return escape(with_unit(number, one_line(m.unit)))

    latest = value(m.latest) + (f" ({m.latest_quarter})" if m.latest_quarter else "")
    due = f" by {m.target_quarter}" if m.target_quarter else ""
    status = f"{style(m.status).slack_emoji} {label(m.status)}"
    if m.problem:
        status += f": {escape(one_line(m.problem))}"
    text = (
        f"• *{escape(one_line(m.name))}*: baseline {value(m.baseline)}"
        f" → latest {latest} → target {value(m.target)}{due}"
        f" · {status} · change {format_change(m.change)}"
    )
    # The same words /reap measures uses, so a trend or a gap reads alike wherever it is shown.
    for extra in (trend_text(m), gap_text(m)):
        if extra:
            text += f"\n   {extra}"
    return text


def _completed_text(line: ItemLine, rollup: Rollup) -> str:
    text = _item_head(line)
    if line.completed_on is not None:
        text += f" — completed {line.completed_on.isoformat()}"
    text += f" · <{line.evidence_url}|evidence>" if line.evidence_url else " · _no evidence link_"
    if line.verified_on is not None:
        by = f" by {escape(rollup.name_of(line.verified_by))}" if line.verified_by else ""
        text += f" · :white_check_mark: verified{by} {line.verified_on.isoformat()}"
    else:
        text += " · :hourglass_flowing_sand: done, awaiting verification"
    return text


def _request_text(request: RequestLine, rollup: Rollup) -> str:
    def person(user_id: str | None) -> str:
        return escape(rollup.name_of(user_id))

    return (
        f"• *#{request.id}* {escape(request.ref)} {escape(one_line(request.title))} —"
        f" {person(request.requested_by)} asks to {request.what(person)},"
        f" since {request.requested_on.isoformat()} ({plural(request.days_waiting, 'day')})"
        f"\n> {escape(one_line(request.reason)) or '_no reason given_'}"
    )


def _stale_status_text(flag: StaleStatus) -> str:
    return f"{_item_head(flag.item)} — marked on track, but {flag.reason}: status may be stale"


def build_department_blocks(department: DepartmentRollup, rollup: Rollup) -> list[Block]:
    """Every block of a department's detail, in reading order (split into messages later)."""
    blocks: list[Block] = [divider()]
    blocks += [section(t) for t in split_text(build_department_summary(department), SECTION_LIMIT)]
    strategy_lines = [
        f"• *{escape(one_line(s.name))}* — {plural(s.total, 'item')}: {_counts_text(s.counts)}"
        f" · {format_percent(s.percent_complete)} complete · on time {format_rate(s.on_time_rate)}"
        for s in department.strategies
    ]
    blocks += build_list_sections("Items by strategy", strategy_lines)
    overdue = [line for s in department.strategies for line in s.overdue]
    overdue.sort(key=lambda line: -line.days_overdue)
    blocks += build_list_sections(
        f":red_circle: Overdue ({len(overdue)})", [_item_text(line, due=True) for line in overdue]
    )
    blocked = [line for s in department.strategies for line in s.blocked]
    blocks += build_list_sections(
        f":red_circle: Blocked ({len(blocked)})", [_item_text(line, note=True) for line in blocked]
    )
    if department.completed or department.verified or department.awaiting_verification:
        blocks += build_list_sections(
            f":white_check_mark: Completions to date: {_completion_counts(department)}."
            " Completed this quarter, and any still awaiting verification",
            [_completed_text(line, rollup) for line in department.completed] or ["_None this quarter._"],
        )
    if department.requests:
        waiting = len(department.requests)
        blocks += build_list_sections(
            f":hourglass_flowing_sand: Change requests waiting for a coordinator ({waiting})",
            [_request_text(r, rollup) for r in department.requests],
        )
    if department.stale_status:
        blocks += build_list_sections(
            f":warning: Status may be stale ({len(department.stale_status)})",
            [_stale_status_text(flag) for flag in department.stale_status],
        )
    measures = [_measure_text(m) for s in department.strategies for m in s.measures]
    blocks += build_list_sections("Measures", measures)
    blocks += build_list_sections(
        f"Changes since {rollup.previous_quarter}", _change_lines(department.changes)
    )
    if rollup.checkin_opens_on is not None:
        blocks += build_list_sections(
            "Check-in",
            [
                f"The {rollup.quarter} check-in opens on {rollup.checkin_opens_on.isoformat()};"
                " nobody has been asked yet."
            ],
        )
    elif department.response_rate is not None:
        lines = [
            f"Response rate {format_rate(department.response_rate)}"
            f" ({department.checkin_responded} of {department.checkin_asked} owners)"
        ]
        if department.non_responders:
            lines.append("Not yet responded:")
            lines += [f"• {escape(rollup.name_of(u))}" for u in department.non_responders]
        blocks += build_list_sections("Check-in", lines)
    to_decide = len(department.requests) + department.awaiting_verification
    if department.stale or department.orphaned or to_decide or department.stale_status:
        who = " ".join(_mention(u, rollup) for u in department.coordinators) or "the DEI coordinator"
        attention = [
            f"For {who}",
            f"• Stale (no update in {rollup.stale_days} days): {len(department.stale)}",
            f"• Orphaned (owner deactivated, unknown or missing): {len(department.orphaned)}",
            f"• Change requests to decide: {len(department.requests)}",
            f"• Completions to verify: {department.awaiting_verification}",
            f"• Marked on track, status may be stale: {len(department.stale_status)}",
        ]
        blocks += build_list_sections(":warning: For the coordinator's attention", attention)
        blocks += build_list_sections(
            "Stale items", [_item_text(line, updated=True) for line in department.stale]
        )
        blocks += build_list_sections("Orphaned items", [_orphan_text(line) for line in department.orphaned])
    return blocks


def _change_lines(changes: Changes) -> list[str]:
    def about(ref: str) -> str:
        return escape(one_line(changes.about(ref)))

    def why(ref: str) -> str:
        note = changes.notes.get(ref)
        return f" — “{escape(one_line(note))}”" if note else ""

    lines = [
        f"• {about(ref)}: {escape(label(old))} → {escape(label(new))}{why(ref)}"
        for ref, old, new in changes.status_transitions
    ]
    for title, refs in (
        ("Completed", changes.completed),
        ("Newly overdue", changes.newly_overdue),
        ("New", changes.new_items),
    ):
        lines += [f"• {title}: {about(ref)}" for ref in refs]
    lines += [
        f"• Re-dated {about(ref)}: {old.isoformat() if old else 'no date'} → "
        f"{new.isoformat() if new else 'no date'}{why(ref)}"
        for ref, old, new in changes.redated
    ]
    lines += [f"• {label(status).capitalize()}: {about(ref)}{why(ref)}" for ref, status in changes.attention]
    return lines or ["_No changes recorded this quarter._"]


def build_summary_intro(rollup: Rollup) -> list[Block]:
    """The opening blocks of the summary message: title, as-of line and overall status counts."""
    facts = [
        rollup.basis.capitalize() if rollup.basis else f"As of {rollup.as_of.isoformat()}",
        plural(rollup.total, "item"),
        f"{format_percent(rollup.percent_complete)} complete",
        f"on-time completion {format_rate(rollup.on_time_rate)}",
        f"{rollup.overdue_count} overdue",
        f"{rollup.verified} verified completed, {rollup.awaiting_verification} awaiting verification",
    ]
    if rollup.pending_requests:
        facts.append(f"{plural(rollup.pending_requests, 'change request')} waiting")
    if rollup.response_rate is not None:
        facts.append(f"check-in response {format_rate(rollup.response_rate)}")
    return [
        header(f"REAP rollup {rollup.quarter}"),
        context(" · ".join(facts)),
        section(_counts_text(rollup.counts)),
    ]


def slack_messages(rollup: Rollup) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary message and the thread replies with each department's detail, all within limits."""
    blocks = build_summary_intro(rollup)
    lines = [build_department_summary(d) for d in rollup.departments]
    sections = build_list_sections("Departments", lines)
    closing_reserve = 200
    size = sum(block_size(b) for b in blocks)
    kept = 0
    for part in sections:
        if len(blocks) + 2 > MAX_MESSAGE_BLOCKS or size + block_size(part) > MESSAGE_BUDGET - closing_reserve:
            break
        blocks.append(part)
        size += block_size(part)
        kept += 1
    thread_blocks: list[Block] = []
    if kept < len(sections):
        blocks.append(context(f"{len(sections) - kept} more department section(s) continue in the thread."))
        thread_blocks += sections[kept:]
    else:
        blocks.append(context("Each department's detail is in the thread."))
    fallback = escape(
        f"REAP rollup {rollup.quarter}: {plural(rollup.total, 'item')}, "
        f"{format_percent(rollup.percent_complete)} complete, {rollup.overdue_count} overdue"
    )
    summary = {"text": fallback, "blocks": blocks}
    replies: list[dict[str, Any]] = []
    if thread_blocks:
        replies += build_messages(thread_blocks, fallback=f"REAP rollup {rollup.quarter}: departments")
    for department in rollup.departments:
        text = escape(one_line(f"REAP rollup {rollup.quarter}: {department.key} {department.name}"))
        replies += build_messages(build_department_blocks(department, rollup), fallback=text[:FALLBACK_LIMIT])
    return summary, replies


# Slack refuses alt text longer than this (files.getUploadURLExternal: alt_txt_too_large).
ALT_TEXT_LIMIT = 1000
# Names are clipped in alt text so that a plan's long measure names leave room for more measures.
ALT_NAME_LIMIT = 40


def _status_words(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[s]} {label(s)}" for s in STATUSES if counts.get(s)) or "no items"


def _more(count: int, nouns: tuple[str, str]) -> str:
    return f"{count} more {nouns[0] if count == 1 else nouns[1]}"


def _fit(lines: list[str], budget: int, *, nouns: tuple[str, str]) -> str:
    """As many lines as fit in `budget` characters, then how many more there are, ending with a stop."""
    if not lines:
        return f" no {nouns[1]}."
    text = ""
    for n, line in enumerate(lines):
        rest = len(lines) - n - 1
        # Room is kept for the "and N more" that a later cut would need.
        tail = f"; and {_more(rest, nouns)} (see the rollup message)." if rest else "."
        piece = (";" if n else "") + f" {line}"
        if len(text) + len(piece) + len(tail) > budget:
            if not n:
                return f" {len(lines)} {nouns[1]}, listed in the rollup message."
            return text + f"; and {_more(len(lines) - n, nouns)} (see the rollup message)."
        text += piece
    return text + "."


def _alt_name(text: str) -> str:
    text = one_line(text)
    return text if len(text) <= ALT_NAME_LIMIT else text[: ALT_NAME_LIMIT - 1] + "…"


def build_chart_alt_text(rollup: Rollup, *, limit: int = ALT_TEXT_LIMIT) -> str:
    """What the rollup chart shows, in words for a screen reader (plain text, within Slack's limit)."""
    strategies = [
        f"{d.key} {_alt_name(s.name)}: {_status_words(s.counts)}"
        for d in rollup.departments
        for s in d.strategies
    ]
    every = rollup.measure_lines()
    measures = []
    for n, (key, m) in enumerate(every):
        words = "no reading" if m.progress is None else f"{format_rate(m.progress)} of the way"
        words += "" if m.expected is None else f" ({format_rate(m.expected)} expected)"
        words += f", {label(m.status)}"
        if n < TREND_PANELS and m.readings:
            # The bar and the trend panel of one measure read as one item: fewer names, more measures.
            words += f", trend {m.trend_words}"
        measures.append(f"{key} {_alt_name(m.name)}: {words}")
    panels = (
        "a trend panel for each measure"
        if len(every) <= TREND_PANELS
        else (f"trend panels for the first {TREND_PANELS} measures")
    )
    parts = [("Top left, items by status for each strategy:", strategies, ("strategy", "strategies"))]
    if every:
        title = (
            "Top right, each measure's progress from its baseline to its target; below,"
            f" {panels} (readings as a solid line with their values, the expected line dashed,"
            " the target dotted):"
        )
    else:
        title = "Top right, each measure's progress from its baseline to its target:"
    parts.append((title, measures, ("measure", "measures")))
    count = "three" if every else "two"
    text = f"Chart of the REAP rollup {rollup.quarter} as of {rollup.as_of.isoformat()}, in {count} parts."
    remaining = limit - len(text) - sum(len(title) + 1 for title, _, _ in parts)
    for n, (title, lines, nouns) in enumerate(parts):
        # Strategies may use a third of the room at most (a measure says more in each line), so a
        # long plan's strategies never crowd the measures out; what they leave goes to the measures.
        share = remaining // 3 if n == 0 and len(parts) > 1 else remaining
        body = _fit(lines, share, nouns=nouns)
        text += f" {title}{body}"
        remaining -= len(body)
    return text[:limit]
