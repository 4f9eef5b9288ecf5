"""The App Home builder: decisions waiting with their buttons, own items, summaries, within Slack's limits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from messages.blocks import HOME_WAITING, DepartmentSummary, ItemCard, Waiting, build_home
from storage.changes import PendingRequest
from storage.models import ActionItem, ChangeRequest

ZONE = ZoneInfo("America/New_York")
TODAY = date(2026, 11, 30)
AT = datetime(2026, 11, 2, 15, tzinfo=UTC)


def stored_item(
    number: int, *, status: str = "on_track", due: date | None = None, **fields: Any
) -> ActionItem:
    """An item as a query returns it."""
    return ActionItem(
        id=number,
        team_id="T0REAP",
        department_id=1,
        strategy_id=1,
        number=number,
        ref=f"OIT-{number}",
        title=f"Item {number}",
        owner_id="U0OWNER",
        due=due,
        status=status,
        progress=40,
        created_by="system",
        created_at=AT,
        updated_at=AT,
        **fields,
    )


def pending(number: int) -> PendingRequest:
    """A request to move item `number`'s due date, filed on 2026-11-02."""
    request = ChangeRequest(
        id=number,
        team_id="T0REAP",
        item_id=number,
        department_id=1,
        kind="redate",
        old_value="2026-12-15",
        new_value="2027-03-31",
        reason=f"Reason {number}",
        requested_by="U0OWNER",
        requested_at=AT,
    )
    return PendingRequest(request, stored_item(number))


def card(item: ActionItem) -> ItemCard:
    return ItemCard(item=item, strategy="Digital equity", zone=ZONE, today=TODAY)


def ids(view: dict[str, Any]) -> list[str]:
    return [b["block_id"] for b in view["blocks"] if "block_id" in b]


def test_the_waiting_section_shows_the_oldest_with_their_buttons_and_says_how_many_more():
    waiting = Waiting(
        pending=[pending(n) for n in range(1, 8)],
        awaiting=[
            stored_item(n, status="done", evidence_url=f"https://city.example/{n}") for n in range(20, 28)
        ],
        zone=ZONE,
    )
    view = build_home([], waiting=waiting)
    blocks = view["blocks"]
    assert blocks[1]["text"]["text"] == "*Waiting for you: 7 change requests · 8 completions to verify*"
    approve = [
        e["value"]
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "request_approve"
    ]
    verify = [
        e["value"]
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "item_verify"
    ]
    assert approve == [str(n) for n in range(1, 1 + HOME_WAITING)]
    assert verify == [f"OIT-{n}" for n in range(20, 20 + HOME_WAITING)]
    assert {"type": "mrkdwn", "text": "5 more, oldest first: `/reap requests` lists them all."} in [
        e for b in blocks if b["type"] == "context" for e in b["elements"]
    ]
    assert "<https://city.example/20|evidence> · awaiting verification" in str(blocks)


def test_a_full_home_stays_within_slacks_block_limit_with_unique_ids_and_whole_cards():
    mine = [card(stored_item(n, due=TODAY - timedelta(days=n % 3))) for n in range(100, 160)]
    summaries = [
        DepartmentSummary(
            key=f"D{d}",
            counts={"Digital equity": {"overdue": 6, "on_track": 2}},
            overdue=[card(stored_item(200 + 10 * d + k, due=date(2026, 10, 1))) for k in range(6)],
            stale=[],
        )
        for d in range(5)
    ]
    waiting = Waiting(
        pending=[pending(n) for n in range(1, 8)],
        awaiting=[stored_item(n, status="done") for n in range(20, 28)],
        zone=ZONE,
    )
    view = build_home(mine, summaries=summaries, waiting=waiting)
    assert len(view["blocks"]) <= 100
    assert len(ids(view)) == len(set(ids(view)))
    # Every button row sits right under the section it acts on: nothing was cut in half.
    for before, block in zip(view["blocks"], view["blocks"][1:], strict=False):
        if block["type"] == "actions":
            assert before["type"] == "section"
    assert "D4 department" in str(view["blocks"])
    assert ":red_circle: 6 overdue, :large_green_circle: 2 on track" in str(view["blocks"])


def test_a_member_home_has_no_waiting_section_and_shows_overdue_over_the_typed_status():
    view = build_home([card(stored_item(1, due=date(2026, 11, 1)))])
    text = str(view["blocks"])
    assert "Waiting for you" not in text
    assert ":red_circle: *overdue* (marked on track)" in text
