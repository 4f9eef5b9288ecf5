"""Change requests and verifications in Slack: the coordinator's list with its buttons, the decline form,
and what the requester is told."""

from __future__ import annotations

import json
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from domain.numbers import one_line
from messages.primitives import Block, clip, context, date_token, escape, plain, section
from storage.changes import PendingRequest, describe
from storage.models import ActionItem, ChangeRequest

APPROVE = "request_approve"
DECLINE = "request_decline"
VERIFY = "item_verify"
DECLINE_MODAL = "request_decline_modal"


def request_text(pending: PendingRequest, zone: ZoneInfo) -> str:
    """One request: who asks for what on which item, and why."""
    request, item = pending.request, pending.item
    return (
        f"*#{request.id}* <@{request.requested_by}> asks to {describe(request)} on *{item.ref}*"
        f" {escape(clip(one_line(item.title), 150))} ({date_token(request.requested_at.date(), zone)})\n"
        f"> {escape(clip(one_line(request.reason), 500))}"
    )


def build_requests(
    pending: Sequence[PendingRequest], awaiting: Sequence[ActionItem], *, title: str, zone: ZoneInfo
) -> list[Block]:
    """Pending requests with Approve / Decline, then done items awaiting verification with Verify."""
    blocks: list[Block] = [section(f"*{escape(title)}*")]
    if not pending and not awaiting:
        blocks.append(context("Nothing is waiting for a coordinator. :tada:"))
        return blocks
    # A message holds 50 blocks: two per entry, so the oldest 22 of each kind show.
    for entry in pending[:22]:
        number = str(entry.request.id)
        blocks.append(section(request_text(entry, zone), block_id=f"request:{number}"))
        blocks.append(
            {
                "type": "actions",
                "block_id": f"decide:{number}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": APPROVE,
                        "text": plain("Approve"),
                        "style": "primary",
                        "value": number,
                    },
                    {"type": "button", "action_id": DECLINE, "text": plain("Decline…"), "value": number},
                ],
            }
        )
    for item in awaiting[:22]:
        link = f"<{item.evidence_url}|evidence>" if item.evidence_url else "_no evidence link_"
        blocks.append(
            section(
                f"*{item.ref}* {escape(clip(one_line(item.title), 150))} · done by <@{item.owner_id}>"
                f" · {link} · awaiting verification",
                block_id=f"verify:{item.ref}",
            )
        )
        blocks.append(
            {
                "type": "actions",
                "block_id": f"verify-actions:{item.ref}",
                "elements": [
                    {"type": "button", "action_id": VERIFY, "text": plain("Verify"), "value": item.ref}
                ],
            }
        )
    hidden = max(0, len(pending) - 22) + max(0, len(awaiting) - 22)
    if hidden:
        blocks.append(context(f"{hidden} more; decide these first, or list one department."))
    return blocks


def build_decline_modal(request_id: int) -> dict[str, object]:
    """The form asking why a request is declined (the requester reads the reason)."""
    return {
        "type": "modal",
        "callback_id": DECLINE_MODAL,
        "private_metadata": json.dumps({"request": request_id}),
        "title": plain(f"Decline request #{request_id}", 24),
        "submit": plain("Decline"),
        "close": plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Why? The person who asked will read this."),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "multiline": True,
                    "max_length": 2000,
                },
            }
        ],
    }


def decision_text(request: ChangeRequest, item: ActionItem) -> str:
    """What the requester is told when their request is decided."""
    verb = "approved" if request.state == "approved" else "declined"
    text = f"Your request #{request.id} to {describe(request)} on *{item.ref}*"
    text += f" was {verb} by <@{request.decided_by}>."
    if request.decision_note:
        text += f"\n> {escape(clip(one_line(request.decision_note), 500))}"
    return text


def request_filed_text(request: ChangeRequest, item: ActionItem) -> str:
    """What the requester sees at once: the item keeps its committed values until a coordinator decides."""
    return (
        f"Request #{request.id} to {describe(request)} on *{item.ref}* is with the coordinators."
        f" {item.ref} keeps its committed values until one of them decides; you will get a DM then."
    )
