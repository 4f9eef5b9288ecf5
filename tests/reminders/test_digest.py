"""Rendering notification rows into Slack messages, at send time and when rebuilt after a change."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.status import ItemStatus
from localslack.server import MESSAGE_BLOCK_LIMIT, block_problems
from reminders.digest import (
    RenderContext,
    Rendered,
    Skip,
    default_kinds,
    orphan_key,
    orphan_row,
    render_digest,
    render_orphans,
    riders,
)
from storage.engine import Sessions, transaction
from storage.models import ActionItem, Notification
from tests.factories import COORDINATOR, OTHER, OWNER, TEAM, PlanFixture
from tests.reminders.support import (  # noqa: F401  (plan_fixture)
    DUE,
    MONDAY_9AM,
    NEW_YORK,
    add_items,
    plan_fixture,
    refs_in,
    set_status,
)

CONTEXT = RenderContext(now=MONDAY_9AM, default_zone=NEW_YORK)


def digest_row(
    items: list[tuple[ActionItem, str]],
    *,
    kind: str = "digest",
    recipient: str = OWNER,
    carried: list[dict[str, object]] | None = None,
) -> Notification:
    """A digest row for Monday listing `items` with their reasons (and carrying `carried` riders)."""
    return Notification(
        id=1,
        team_id=TEAM,
        key=f"{TEAM}:{kind}:{recipient}:2026-11-02",
        kind=kind,
        recipient=recipient,
        local_date=date(2026, 11, 2),
        payload={
            "local_date": "2026-11-02",
            "zone": "America/New_York",
            "items": [{"id": item.id, "ref": item.ref, "why": why} for item, why in items],
            "riders": carried or [],
        },
        send_after=MONDAY_9AM,
        created_at=MONDAY_9AM,
    )


async def render(sessions: Sessions, row: Notification, context: RenderContext = CONTEXT) -> Rendered | Skip:
    """Render one digest row."""
    async with sessions() as session:
        return await render_digest(session, [row], context, kinds=default_kinds())


def given(item: ActionItem, by: str = COORDINATOR) -> dict[str, object]:
    """A carried notice that `item` was given to its owner by `by`."""
    payload = {"items": [{"id": item.id, "ref": item.ref}], "owner": item.owner_id, "by": by, "role": "owner"}
    return {"kind": "assigned", "key": f"given:{item.id}", "payload": payload}


async def test_a_digest_groups_items_most_pressing_first_with_a_card_and_buttons_each(
    sessions: Sessions,
    plan: PlanFixture,
):
    owed = await add_items(
        sessions,
        plan,
        soon={"due": DUE("2026-11-09")},
        late={"due": DUE("2026-10-28")},
        today={"due": DUE("2026-11-02")},
    )
    row = digest_row(
        [
            (owed.items["soon"], "due_soon"),
            (owed.items["late"], "overdue"),
            (owed.items["today"], "due_today"),
        ]
    )
    rendered = await render(sessions, row)
    assert isinstance(rendered, Rendered)
    assert refs_in(rendered.blocks) == ["OIT-2", "OIT-3", "OIT-1"]
    headers = [b["elements"][0]["text"] for b in rendered.blocks if b["type"] == "context"][:3]
    assert headers == [
        "*:red_circle: Overdue*",
        "*:alarm_clock: Due today*",
        "*:spiral_calendar_pad: Coming up*",
    ]
    assert rendered.blocks[0]["text"]["text"] == ":bell: *3 of your action items need attention today.*"
    assert rendered.text == "REAP: 3 action items to look at today: OIT-2, OIT-3, OIT-1"
    assert rendered.lines[0] == "OIT-2 Item late (overdue, due 2026-10-28; not started)"
    assert block_problems(rendered.blocks, MESSAGE_BLOCK_LIMIT) == []


async def test_a_digest_of_many_items_stays_within_slacks_block_limit_and_says_how_many_more(
    sessions: Sessions,
    plan: PlanFixture,
):
    owed = await add_items(sessions, plan, **{f"i{n:02d}": {"due": DUE("2026-11-02")} for n in range(40)})
    rendered = await render(sessions, digest_row([(item, "due_today") for item in owed.items.values()]))
    assert isinstance(rendered, Rendered)
    assert len(rendered.blocks) <= MESSAGE_BLOCK_LIMIT
    shown = len(refs_in(rendered.blocks))
    assert 20 <= shown < 40
    assert f"…and {40 - shown} more. See them all with `/reap list mine`." in str(rendered.blocks)
    assert block_problems(rendered.blocks, MESSAGE_BLOCK_LIMIT) == []
    assert len(rendered.lines) == 40, "a dry run lists every item"


async def test_what_rides_along_keeps_its_room_before_the_footer_of_a_full_digest(
    sessions: Sessions, plan: PlanFixture
):
    owed = await add_items(sessions, plan, **{f"i{n:02d}": {"due": DUE("2026-11-02")} for n in range(40)})
    new = await add_items(sessions, plan, new={"due": DUE("2027-03-01")})
    row = digest_row([(item, "due_today") for item in owed.items.values()], carried=[given(new.items["new"])])
    rendered = await render(sessions, row)
    assert isinstance(rendered, Rendered)
    assert len(rendered.blocks) <= MESSAGE_BLOCK_LIMIT
    assert block_problems(rendered.blocks, MESSAGE_BLOCK_LIMIT) == []
    tail = rendered.blocks[-4:-1]
    assert tail[0]["text"]["text"].startswith(":inbox_tray: *You now own 1 action item*")
    assert tail[1]["block_id"] == "item:OIT-41", "the new item's card, with its buttons, before the footer"
    assert "…and" in str(rendered.blocks) and rendered.lines[-1] == "You now own OIT-41"
    assert rendered.text.startswith("You now own OIT-41 · REAP: 40 action items")


async def test_a_digest_with_nothing_left_still_delivers_what_it_carries(
    sessions: Sessions, plan: PlanFixture
):
    owed = await add_items(
        sessions,
        plan,
        today={"due": DUE("2026-11-02"), "status": ItemStatus.DONE},
        new={"due": DUE("2027-03-01")},
    )
    row = digest_row([(owed.items["today"], "due_today")], carried=[given(owed.items["new"])])
    alone = await render(sessions, row)
    nothing = await render(sessions, digest_row([(owed.items["today"], "due_today")]))
    assert isinstance(alone, Rendered) and alone.row_ids == {1}
    assert refs_in(alone.blocks) == ["OIT-2"] and alone.text == "REAP: You now own OIT-2"
    assert isinstance(nothing, Skip)


async def test_an_item_listed_above_is_only_named_by_what_rides_along(sessions: Sessions, plan: PlanFixture):
    owed = await add_items(sessions, plan, today={"due": DUE("2026-11-02")})
    row = digest_row([(owed.items["today"], "due_today")], carried=[given(owed.items["today"])])
    rendered = await render(sessions, row)
    assert isinstance(rendered, Rendered)
    assert refs_in(rendered.blocks) == ["OIT-1"], "one card: block ids must be unique"
    assert "Also OIT-1, shown above." in str(rendered.blocks)
    assert block_problems(rendered.blocks, MESSAGE_BLOCK_LIMIT) == []


async def test_long_titles_and_notes_keep_the_message_under_slacks_overall_size(
    sessions: Sessions,
    plan: PlanFixture,
):
    owed = await add_items(
        sessions, plan, **{f"i{n:02d}": {"due": DUE("2026-11-02"), "title": "T" * 300} for n in range(20)}
    )
    async with transaction(sessions) as session:
        for item_id in (owed.id(name) for name in owed.items):
            item = await session.get(ActionItem, item_id)
            assert item is not None
            item.last_note = "N" * 500
    rendered = await render(sessions, digest_row([(item, "due_today") for item in owed.items.values()]))
    assert isinstance(rendered, Rendered)
    text = sum(len(b["text"]["text"]) for b in rendered.blocks if b["type"] == "section")
    shown = len(refs_in(rendered.blocks))
    assert text <= 12_000 and 0 < shown < 20
    assert f"…and {20 - shown} more." in str(rendered.blocks)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        pytest.param({"status": ItemStatus.DONE.value}, "done", id="done"),
        pytest.param({"status": ItemStatus.DROPPED.value}, "dropped", id="dropped"),
        pytest.param({"snoozed_until": date(2026, 11, 3)}, "snoozed", id="snoozed"),
        pytest.param({"owner_id": OTHER}, "reassigned", id="reassigned"),
    ],
)
async def test_an_item_settled_since_planning_is_left_out_at_send_time(
    sessions: Sessions,
    plan: PlanFixture,
    change: dict[str, object],
    why: str,
):
    owed = await add_items(sessions, plan, a={"due": DUE("2026-11-02")}, b={"due": DUE("2026-11-02")})
    async with transaction(sessions) as session:
        item = await session.get(ActionItem, owed.id("a"))
        assert item is not None
        for name, value in change.items():
            setattr(item, name, value)
    rendered = await render(
        sessions, digest_row([(owed.items["a"], "due_today"), (owed.items["b"], "due_today")])
    )
    assert isinstance(rendered, Rendered) and refs_in(rendered.blocks) == ["OIT-2"], why


async def test_a_snooze_ending_on_the_digest_day_does_not_hide_the_item(
    sessions: Sessions, plan: PlanFixture
):
    owed = await add_items(sessions, plan, a={"due": DUE("2026-11-02"), "snoozed_until": DUE("2026-11-02")})
    rendered = await render(sessions, digest_row([(owed.items["a"], "snooze_ended")]))
    assert isinstance(rendered, Rendered) and refs_in(rendered.blocks) == ["OIT-1"]


async def test_yesterdays_digest_is_stale_today(sessions: Sessions, plan: PlanFixture):
    owed = await add_items(sessions, plan, a={"due": DUE("2026-11-02")})
    later = RenderContext(now=MONDAY_9AM + timedelta(days=1), default_zone=NEW_YORK)
    rendered = await render(sessions, digest_row([(owed.items["a"], "due_today")]), later)
    assert rendered == Skip("stale: owed on 2026-11-02, it is 2026-11-03 now", release=True)


async def test_a_rebuilt_digest_shows_every_item_in_its_current_state(sessions: Sessions, plan: PlanFixture):
    owed = await add_items(sessions, plan, a={"due": DUE("2026-11-02")}, b={"due": DUE("2026-11-03")})
    await set_status(sessions, owed.id("a"), ItemStatus.DONE)
    rebuild = RenderContext(now=MONDAY_9AM, default_zone=NEW_YORK, rebuild=True, today=date(2026, 11, 2))
    rendered = await render(
        sessions, digest_row([(owed.items["a"], "due_today"), (owed.items["b"], "due_tomorrow")]), rebuild
    )
    assert isinstance(rendered, Rendered) and refs_in(rendered.blocks) == ["OIT-1", "OIT-2"]
    done_actions = next(b for b in rendered.blocks if b.get("block_id") == "actions:OIT-1")
    assert [e["action_id"] for e in done_actions["elements"]] == ["item_update"]
    assert (
        ":white_check_mark: done"
        in next(b for b in rendered.blocks if b.get("block_id") == "item:OIT-1")["text"]["text"]
    )


async def test_an_escalation_speaks_to_the_coordinator(sessions: Sessions, plan: PlanFixture):
    owed = await add_items(sessions, plan, a={"due": DUE("2026-10-26"), "owner": OTHER})
    row = digest_row([(owed.items["a"], "escalation")], kind="escalation", recipient=COORDINATOR)
    rendered = await render(sessions, row)
    assert isinstance(rendered, Rendered)
    assert "1 action item in your department is well overdue" in rendered.blocks[0]["text"]["text"]
    assert f"<@{OTHER}>" in str(rendered.blocks), "the card names the owner"


async def test_orphan_reports_to_one_coordinator_are_one_message_grouped_by_owner(
    sessions: Sessions,
    plan: PlanFixture,
):
    owed = await add_items(
        sessions,
        plan,
        a={"owner": OWNER},
        b={"owner": OTHER},
        c={"owner": OTHER},
        moved={"owner": OWNER},
    )
    # Stored rows, as delivery claims them (with ids).
    rows = [
        Notification(
            **orphan_row(
                team_id=TEAM,
                coordinator=COORDINATOR,
                item_id=item.id or 0,
                ref=item.ref,
                owner=item.owner_id or "",
                reason="user_not_found",
                now=MONDAY_9AM,
            ).model_dump(),
            id=n,
        )
        for n, item in enumerate(owed.items.values(), start=1)
    ]
    async with transaction(sessions) as session:
        moved = await session.get(ActionItem, owed.id("moved"))
        assert moved is not None
        moved.owner_id = COORDINATOR
    async with sessions() as session:
        rendered = await render_orphans(session, rows, CONTEXT)
    assert isinstance(rendered, Rendered)
    assert refs_in(rendered.blocks) == ["OIT-1", "OIT-2", "OIT-3"]
    assert rendered.row_ids == frozenset({1, 2, 3}), "the reassigned item's row is left out"
    assert "3 action items have lost their owner" in rendered.blocks[0]["text"]["text"]
    assert "`/reap assign &lt;ref&gt; @someone`" in rendered.blocks[0]["text"]["text"], "escaped for mrkdwn"
    groups = [b["elements"][0]["text"] for b in rendered.blocks if b["type"] == "context"][:2]
    assert groups == [
        f"*Owned by <@{OWNER}>, who can't be reached (user_not_found)*",
        f"*Owned by <@{OTHER}>, who can't be reached (user_not_found)*",
    ]
    assert rows[0].key == orphan_key(TEAM, COORDINATOR, owed.id("a"), OWNER)
    assert block_problems(rendered.blocks, MESSAGE_BLOCK_LIMIT) == []


def test_the_default_kinds_are_the_digest_and_what_rides_in_it():
    kinds = default_kinds()
    notices = {"assigned", "orphaned", "request_notice", "verify_notice"}
    assert set(kinds) == {"digest", "escalation", *notices} and riders(kinds) == notices
    assert kinds["digest"].on_gone is not None and kinds["escalation"].on_gone is None
