"""The DEI meeting agenda in Slack: headline, decisions needed, measures, and follow-ups."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from domain.agenda import Agenda, FollowUp
from domain.numbers import format_percent, format_rate, one_line
from messages.primitives import Block, build_list_sections, clip, date_token, escape, header, section

_OUTCOME = {
    "done": ":white_check_mark: done",
    "dropped": ":heavy_minus_sign: dropped",
    "overdue": ":red_circle: overdue",
    "open": ":large_yellow_circle: open",
    "recorded": ":memo: recorded",
}


def _followup(f: FollowUp, zone: ZoneInfo) -> str:
    text = f"• {escape(clip(one_line(f.text), 300))} ({f.quarter})"
    if f.ref and f.due:
        text += f" → *{f.ref}*, <@{f.owner_id}>, due {date_token(f.due, zone)}"
    return text + f" · {_OUTCOME.get(f.outcome, f.outcome)}"


def build_agenda_blocks(agenda: Agenda, zone: ZoneInfo) -> list[Block]:
    """Every section of the agenda, in reading order (split into messages by the caller)."""
    h = agenda.headline
    blocks: list[Block] = [
        header(f"DEI meeting agenda: {agenda.quarter}"),
        section(
            f"Meeting on {date_token(agenda.meeting_date, zone)} · {h.items} items ·"
            f" {format_percent(h.percent_complete)} complete · on time {format_rate(h.on_time_rate)} ·"
            f" {h.overdue} overdue · check-in response {format_rate(h.response_rate)}"
        ),
    ]
    blocks += build_list_sections(
        f"Items needing a decision ({len(agenda.decisions_needed)})",
        [
            f"• *{i.ref}* {escape(clip(one_line(i.title), 200))} ({escape(i.department)},"
            f" {f'<@{i.owner_id}>' if i.owner_id else 'no owner'}): {escape('; '.join(i.reasons))}"
            for i in agenda.decisions_needed
        ]
        or ["Nothing needs a decision."],
    )
    blocks += build_list_sections(
        f"Measures to discuss ({len(agenda.measures)})",
        [f"• *{escape(one_line(m.name))}* `{m.key}`: {escape('; '.join(m.reasons))}" for m in agenda.measures]
        or ["No measure is off track or losing ground on a gap."],
    )
    blocks += build_list_sections(
        f"Follow-ups from earlier meetings ({len(agenda.followups)})",
        [_followup(f, zone) for f in agenda.followups] or ["No follow-ups are open."],
    )
    if agenda.decisions:
        blocks += build_list_sections(
            "Decided at this meeting", [_followup(f, zone) for f in agenda.decisions]
        )
    return blocks
