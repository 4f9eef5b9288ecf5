"""What a person is told when Slack refuses something they (or the schedule) asked REAP to post.

Slack answers with error codes (`channel_not_found`, `not_in_channel`, ...); people get a sentence
saying what happened and what to do about it, and the code only when there is no better word.
"""

from __future__ import annotations

import re

from messages.primitives import Block, context, escape, section

INVITE = "`/invite @REAP Tracker`"
_REINSTALL = "A Slack admin needs to reinstall REAP Tracker"
_NOT_INVITED = (
    "REAP Tracker is not a member of that private channel, and Slack never lets an app into a"
    f" private channel by itself. Invite it by typing {INVITE} in the channel."
)
_RESTRICTED = (
    "The channel's settings (or the workspace's) do not let apps post there. Ask a channel manager"
    " or a Slack admin to allow it, or choose another channel."
)
_TOKEN = (
    "REAP Tracker's access to Slack has been revoked or has expired, so it cannot post anywhere."
    f" {_REINSTALL} and give its operators the new token."
)
_TOO_LONG = (
    "The message was too long for Slack. Ask for one department at a time"
    " (`/reap rollup <quarter> <department>`)."
)
REASONS: dict[str, str] = {
    "channel_not_found": (
        "Slack says the channel was not found: it may have been deleted, or it is private and"
        f" REAP Tracker has not been invited to it (type {INVITE} in the channel)."
    ),
    "not_in_channel": _NOT_INVITED,
    "method_not_supported_for_channel_type": _NOT_INVITED,
    "is_archived": "The channel is archived. Unarchive it, or choose another channel.",
    "invalid_auth": _TOKEN,
    "not_authed": _TOKEN,
    "token_revoked": _TOKEN,
    "token_expired": _TOKEN,
    "account_inactive": _TOKEN,
    "missing_scope": (
        f"REAP Tracker lacks a Slack permission it needs for this. {_REINSTALL} from its manifest so"
        " Slack grants every permission the manifest lists."
    ),
    "msg_too_long": _TOO_LONG,
    "msg_blocks_too_long": _TOO_LONG,
    "restricted_action": _RESTRICTED,
    "restricted_action_read_only_channel": _RESTRICTED,
    "restricted_action_thread_only_channel": _RESTRICTED,
    "restricted_action_non_threadable_channel": _RESTRICTED,
    "ekm_access_denied": "Slack administrators have suspended posting in this workspace.",
    "file_uploads_disabled": "This workspace has turned file uploads off, so Slack refused the chart.",
    "file_uploads_except_images_disabled": (
        "This workspace allows only image uploads, and Slack refused the chart."
    ),
    "too_many_members": "Slack refused because the channel has too many members for an app to join.",
    "unreachable": "REAP Tracker could not reach Slack. It will not try again by itself.",
}
_GAVE_UP = re.compile(r"^gave up after (\d+) attempts: (.*)$", re.DOTALL)

Part = str  # "post" (nothing went out), "thread" or "chart" (the summary is out, the rest is not)


def slack_reason(code: str) -> str:
    """Slack's error code as a sentence a person can act on; unknown codes are named as they are."""
    code = code.strip()
    if code in REASONS:
        return REASONS[code]
    if gave_up := _GAVE_UP.match(code):
        attempts, last = gave_up.groups()
        return (
            f"Slack kept failing to answer, even after {attempts} tries (the last problem: "
            f"{escape(last)}). Try again later; if it keeps happening, tell whoever runs REAP Tracker."
        )
    return (
        f"Slack refused with the error `{escape(code or 'unknown')}`, which REAP Tracker has no"
        " plainer words for. Tell whoever runs REAP Tracker."
    )


def build_rollup_failed(
    *,
    quarter: str,
    channel: str,
    code: str,
    part: Part = "post",
    department: str | None = None,
    requested: bool = True,
) -> tuple[str, list[Block]]:
    """The DM saying a rollup did not reach `channel`, why in plain words, and what to do next."""
    where = f"<#{channel}> (`{escape(channel)}`)"
    label = escape(quarter) + (f" {escape(department)}" if department else "")
    if part == "post":
        headline = f"The {label} rollup was not posted to {where}."
        outcome = "Nothing was posted there."
    else:
        missing = "chart" if part == "chart" else "department details"
        headline = f"The {label} rollup summary is in {where}, but its {missing} could not be added."
        outcome = f"The summary stands; only the {missing} is missing."
    again = f"`/reap rollup {label}`"
    who = (
        "You asked for it."
        if requested
        else f"It was the scheduled rollup at the close of the {escape(quarter)} check-in."
    )
    text = f":warning: {headline} {slack_reason(code)}"
    blocks = [
        section(f":warning: *{headline}*\n{slack_reason(code)}"),
        context(f"{who} {outcome} Once that is fixed, run {again} again."),
    ]
    return text, blocks
