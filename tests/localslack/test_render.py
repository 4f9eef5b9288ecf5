"""Block Kit rendered as terminal text for `reap shell`, and controls and modals driven from text."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from commands import service as sv
from localslack.render import (
    BadFieldValue,
    ChoiceNeeded,
    Control,
    MissingField,
    Origin,
    UnknownChoice,
    UnknownField,
    input_fields,
    modal_state,
    mrkdwn_to_text,
    render_blocks,
    render_message,
    render_view,
)
from messages import blocks as bk
from messages import primitives as ui
from storage.models import ActionItem, Strategy

NAMES = {"U0MARIA": "maria", "U0DEV": "dev", "C0DEI": "dei-updates"}
ZONE = ZoneInfo("America/New_York")
NOON = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)


@pytest.fixture
def item() -> ActionItem:
    """OIT-7, open and at risk, owned by maria, due 2026-12-15."""
    return ActionItem(
        id=7,
        team_id="T0REAP",
        department_id=1,
        strategy_id=3,
        number=7,
        ref="OIT-7",
        title="Translate the permit guide",
        owner_id="U0MARIA",
        due=date(2026, 12, 15),
        status="at_risk",
        progress=40,
        created_by="U0MARIA",
        created_at=NOON,
        updated_at=NOON,
    )


@pytest.fixture
def card_blocks(item: ActionItem) -> list[dict[str, Any]]:
    """The bot's own card for OIT-7 (a section and its Done / Snooze / Update controls)."""
    card = bk.ItemCard(item=item, strategy="Digital equity", zone=ZONE, today=date(2026, 11, 30))
    return bk.build_item_card(card)


@pytest.fixture
def strategies() -> list[Strategy]:
    """Two strategies to choose from in the Add modal."""
    return [
        Strategy(id=3, team_id="T0REAP", plan_id=1, key="digital-equity", name="Digital equity"),
        Strategy(id=4, team_id="T0REAP", plan_id=1, key="workplace-equity", name="Workplace equity"),
    ]


# --- mrkdwn -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mrkdwn", "expected"),
    [
        ("owner <@U0MARIA>", "owner @maria"),
        ("owner <@U0MARIA|old-handle>", "owner @maria"),
        ("owner <@U0NOBODY|stranger>", "owner @stranger"),
        ("owner <@U0NOBODY>", "owner @U0NOBODY"),
        ("due <!date^1765818000^{date_short_pretty}|2026-12-15>", "due 2026-12-15"),
        ("at <!date^1765818000^{date_short_pretty} {time}|2026-12-15 17:00 UTC>", "at 2026-12-15 17:00 UTC"),
        ("due <!date^1765818000^{date}>", "due 2025-12-15"),
        ("post in <#C0DEI|dei>", "post in #dei"),
        ("post in <#C0DEI>", "post in #dei-updates"),
        ("see <https://phila.gov/reap|the plan>", "see the plan (https://phila.gov/reap)"),
        ("see <https://phila.gov/reap>", "see https://phila.gov/reap"),
        ("<!here> look", "@here look"),
        ("<!subteam^S0LEADS|@team-leads> look", "@team-leads look"),
        ("R&amp;D &lt;b&gt; tag", "R&D <b> tag"),
        ("literally &amp;lt;", "literally &lt;"),
        (":large_green_circle: on track", "🟢 on track"),
        (":white_check_mark: done", "✅ done"),
        (":not_an_emoji_we_know: hi", ":not_an_emoji_we_know: hi"),
        ("meet at 09:30:00", "meet at 09:30:00"),
        ("*OIT-7* _Digital equity_", "*OIT-7* _Digital equity_"),
    ],
)
def test_mrkdwn_reads_as_a_person_sees_it(mrkdwn: str, expected: str):
    assert mrkdwn_to_text(mrkdwn, names=NAMES) == expected


def test_color_mode_turns_bold_and_italic_into_terminal_styles():
    text = mrkdwn_to_text("*OIT-7* _Digital equity_ 2*3*4", color=True)
    assert text == "\x1b[1mOIT-7\x1b[0m \x1b[3mDigital equity\x1b[0m 2*3*4"


# --- blocks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([ui.header("REAP Tracker")], "REAP Tracker\n============"),
        ([ui.divider()], "─" * 40),
        ([ui.context("Page 1 of 2.")], "  · Page 1 of 2."),
        (
            [
                {
                    "type": "section",
                    "fields": [ui.mrkdwn("*Owner*"), ui.mrkdwn("<@U0DEV>"), ui.mrkdwn("*Due*")],
                }
            ],
            "*Owner*  @dev\n*Due*",
        ),
        (
            [{"type": "image", "image_url": "https://x/c.png", "alt_text": "burn-down chart"}],
            "[image: burn-down chart]",
        ),
        ([{"type": "video", "title": ui.plain("x")}], "[video block]"),
        (
            [
                {
                    "type": "rich_text",
                    "elements": [
                        {
                            "type": "rich_text_section",
                            "elements": [
                                {"type": "text", "text": "ask "},
                                {"type": "user", "user_id": "U0MARIA"},
                                {"type": "emoji", "name": "tada"},
                            ],
                        }
                    ],
                }
            ],
            "ask @maria🎉",
        ),
    ],
)
def test_each_block_type_has_a_readable_form(blocks: list[dict[str, Any]], expected: str):
    assert render_blocks(blocks, names=NAMES) == expected


def test_a_message_without_blocks_shows_its_fallback_text():
    assert render_blocks([], text="Added <@U0MARIA>&apos;s item &amp; more", names=NAMES) == (
        "Added @maria&apos;s item & more"
    )


def test_an_item_card_numbers_its_buttons_and_lists_the_menu(card_blocks: list[dict[str, Any]]):
    rendered = render_message(card_blocks, names=NAMES)
    lines = rendered.text.splitlines()
    assert lines[0] == "*OIT-7* Translate the permit guide"
    assert lines[1] == "🟡 at risk · 40% · due 2026-12-15 · @maria"
    assert lines[-1] == "[1 Done] [2 Snooze…: 1 day | 1 week | Pick a date…] [3 Update]"
    assert [(c.number, c.action_id, c.value) for c in rendered.controls] == [
        (1, bk.DONE, "OIT-7"),
        (2, bk.SNOOZE, None),
        (3, bk.UPDATE, "OIT-7"),
    ]
    assert [o.value for o in rendered.controls[1].options] == ["OIT-7|1d", "OIT-7|1w", "OIT-7|pick"]
    assert {c.block_id for c in rendered.controls} == {"actions:OIT-7"}


def test_numbering_continues_from_first_and_controls_remember_their_message(
    card_blocks: list[dict[str, Any]],
):
    ts = "1700000000.000100"
    message = {"ts": ts, "text": "x", "blocks": card_blocks}
    origin = Origin(channel="D0MARIA", ts=ts, message=message)
    rendered = render_message(card_blocks, origin=origin, first=4)
    assert rendered.text.splitlines()[-1].startswith("[4 Done] [5 Snooze…")
    assert [c.number for c in rendered.controls] == [4, 5, 6]
    assert all(c.origin == origin for c in rendered.controls)


def test_a_section_accessory_is_a_control_too():
    block = {
        "type": "section",
        "block_id": "pick",
        "text": ui.mrkdwn("Due date"),
        "accessory": {"type": "datepicker", "action_id": "due", "initial_date": "2026-12-15"},
    }
    rendered = render_message([block])
    assert rendered.text == "Due date\n[1 datepicker (a date YYYY-MM-DD) = 2026-12-15]"
    assert rendered.controls[0].block_id == "pick"


# --- pressing controls ------------------------------------------------------------------------


def _card_controls(card_blocks: list[dict[str, Any]]) -> list[Control]:
    return render_message(card_blocks).controls


def test_pressing_a_button_sends_its_value(card_blocks: list[dict[str, Any]]):
    done = _card_controls(card_blocks)[0]
    action = done.action(action_ts="1.5")
    assert action == {
        "type": "button",
        "action_id": bk.DONE,
        "block_id": "actions:OIT-7",
        "action_ts": "1.5",
        "text": {"type": "plain_text", "text": "Done", "emoji": True},
        "value": "OIT-7",
    }


@pytest.mark.parametrize(
    ("choice", "value"),
    [
        ("1 week", "OIT-7|1w"),
        ("1 WEEK", "OIT-7|1w"),
        ("pick", "OIT-7|pick"),
        ("2", "OIT-7|1w"),
        ("OIT-7|1d", "OIT-7|1d"),
    ],
)
def test_a_menu_choice_is_found_by_label_prefix_value_or_position(
    card_blocks: list[dict[str, Any]], choice: str, value: str
):
    snooze = _card_controls(card_blocks)[1]
    action = snooze.action(choice, action_ts="1.5")
    assert action["type"] == "static_select"
    assert action["selected_option"]["value"] == value


def test_a_menu_needs_a_choice_and_refuses_one_it_does_not_offer(card_blocks: list[dict[str, Any]]):
    snooze = _card_controls(card_blocks)[1]
    with pytest.raises(ChoiceNeeded, match=r"1 day \| 1 week"):
        snooze.action(None, action_ts="1")
    with pytest.raises(UnknownChoice, match="no option '1 month'"):
        snooze.action("1 month", action_ts="1")


@pytest.mark.parametrize(
    ("element", "choice", "key", "expected"),
    [
        ({"type": "datepicker", "action_id": "d"}, "2027-01-15", "selected_date", "2027-01-15"),
        ({"type": "users_select", "action_id": "u"}, "@maria", "selected_user", "U0MARIA"),
        ({"type": "users_select", "action_id": "u"}, "U0NEW", "selected_user", "U0NEW"),
        ({"type": "timepicker", "action_id": "t"}, "9:05", "selected_time", "09:05"),
    ],
)
def test_pickers_translate_what_was_typed(element: dict[str, Any], choice: str, key: str, expected: str):
    control = render_message([{"type": "actions", "block_id": "a", "elements": [element]}]).controls[0]
    assert control.action(choice, action_ts="1", users=NAMES)[key] == expected


@pytest.mark.parametrize(
    ("element", "choice"),
    [
        ({"type": "datepicker", "action_id": "d"}, "2027-02-30"),
        ({"type": "datepicker", "action_id": "d"}, "next friday"),
        ({"type": "users_select", "action_id": "u"}, "@nobody"),
        ({"type": "timepicker", "action_id": "t"}, "25:00"),
    ],
)
def test_pickers_refuse_what_slack_would_not_send(element: dict[str, Any], choice: str):
    control = render_message([{"type": "actions", "block_id": "a", "elements": [element]}]).controls[0]
    with pytest.raises(BadFieldValue):
        control.action(choice, action_ts="1", users=NAMES)


# --- modals -----------------------------------------------------------------------------------


def test_the_add_modal_lists_its_fields_by_block_id(strategies: list[Strategy]):
    view = bk.build_add_modal(strategies, owner="U0MARIA")
    rendered = render_view(view, names=NAMES)
    lines = rendered.text.splitlines()
    assert lines[:2] == ["New action item", "==============="]
    assert lines[2:7] == [
        "  title*        Title: text",
        "  strategy*     Strategy: Digital equity | Workplace equity",
        "  owner*        Owner: a person (@name or U…)  [now: @maria]",
        "  due           Due date: a date YYYY-MM-DD",
        "  description   Description: text",
    ]
    assert ":submit title=… strategy=… owner=… due=… description=…" in lines[-1]
    assert "“Add”" in lines[-1]
    assert input_fields(view) == ["title", "strategy", "owner", "due", "description"]


def test_the_update_modal_shows_current_values(item: ActionItem):
    rendered = render_view(bk.build_update_modal(item, metadata={}), names=NAMES)
    assert "[now: At risk]" in rendered.text
    assert "  progress*  Percent complete: a number  [now: 40]" in rendered.text
    assert "[now: 2026-12-15]" in rendered.text


def test_an_app_home_renders_without_a_modal_title(card_blocks: list[dict[str, Any]]):
    home = {"type": "home", "id": "V1", "blocks": [ui.header("REAP Tracker"), *card_blocks]}
    rendered = render_view(home, names=NAMES)
    assert rendered.text.startswith("REAP Tracker\n====")
    assert rendered.controls[0].origin.view == home


def test_submitting_the_update_modal_gives_the_state_the_service_reads(item: ActionItem):
    view = bk.build_update_modal(item, metadata={})
    state = modal_state(
        view, {"status": "on_track", "progress": "60", "note": "talked to DEI", "due": "2027-01-15"}
    )
    assert state["status"]["value"]["selected_option"]["value"] == "on_track"
    assert state["due"]["value"] == {"type": "datepicker", "selected_date": "2027-01-15"}
    assert sv.parse_update_form("OIT-7", state) == sv.UpdateForm(
        ref="OIT-7", status=sv.ItemStatus.ON_TRACK, progress=60, due=date(2027, 1, 15), note="talked to DEI"
    )


def test_fields_left_out_keep_what_the_modal_showed(item: ActionItem):
    state = modal_state(bk.build_update_modal(item, metadata={}), {"note": "still waiting"})
    form = sv.parse_update_form("OIT-7", state)
    assert isinstance(form, sv.UpdateForm)
    assert (form.status, form.progress, form.due) == (sv.ItemStatus.AT_RISK, 40, date(2026, 12, 15))


def test_an_empty_value_clears_an_optional_field(item: ActionItem):
    state = modal_state(bk.build_update_modal(item, metadata={}), {"due": ""})
    assert state["due"]["value"]["selected_date"] is None


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"strategy": "Workplace equity"}, 4),
        ({"strategy": "workplace"}, 4),
        ({"strategy": "3"}, 3),
        ({"strategy": "1"}, 3),
    ],
)
def test_the_add_modal_strategy_is_chosen_by_label_or_value(
    strategies: list[Strategy], values: dict[str, str], expected: int
):
    view = bk.build_add_modal(strategies, owner="U0MARIA")
    state = modal_state(view, {"title": "Translate the guide", **values}, users=NAMES)
    form = sv.parse_add_form(state)
    assert isinstance(form, sv.AddForm)
    assert (form.strategy_id, form.owner, form.title) == (expected, "U0MARIA", "Translate the guide")


def test_an_add_form_whose_owner_is_not_a_slack_user_id_asks_for_an_owner():
    """A users_select value we could not store as a person is refused inline, not written."""
    state = {
        "title": {"value": {"value": "Translate the guide"}},
        "strategy": {"value": {"selected_option": {"value": "3"}}},
        "owner": {"value": {"selected_user": "U" + "0" * 40}},
    }
    assert sv.parse_add_form(state) == {"owner": "Pick an owner."}


def test_the_owner_is_picked_by_handle(strategies: list[Strategy]):
    view = bk.build_add_modal(strategies, owner="U0MARIA")
    state = modal_state(view, {"title": "T", "strategy": "Digital equity", "owner": "@dev"}, users=NAMES)
    assert state["owner"]["value"] == {"type": "users_select", "selected_user": "U0DEV"}


@pytest.mark.parametrize(
    ("values", "error", "message"),
    [
        ({"strategy": "Digital equity"}, MissingField, "required field left empty: title"),
        ({"title": "T"}, MissingField, "strategy"),
        ({"title": "T", "strategy": "Roads"}, UnknownChoice, "no option 'Roads'"),
        ({"title": "T", "strategy": "Digital equity", "colour": "red"}, UnknownField, "no field 'colour'"),
        ({"title": "T", "strategy": "Digital equity", "due": "3/31"}, BadFieldValue, "YYYY-MM-DD"),
        ({"title": "x" * 301, "strategy": "Digital equity"}, BadFieldValue, "at most 300 characters"),
        ({"title": "T", "strategy": "Digital equity", "owner": "@ghost"}, BadFieldValue, "known person"),
    ],
)
def test_the_add_modal_refuses_what_slack_would_not_submit(
    strategies: list[Strategy], values: dict[str, str], error: type[Exception], message: str
):
    view = bk.build_add_modal(strategies, owner="U0MARIA")
    with pytest.raises(error, match=message):
        modal_state(view, values, users=NAMES)


@pytest.mark.parametrize(
    ("progress", "message"),
    [("sixty", "not a whole number"), ("60.5", "not a whole number"), ("101", "from 0 to 100")],
)
def test_a_number_input_takes_only_numbers_in_range(item: ActionItem, progress: str, message: str):
    with pytest.raises(BadFieldValue, match=message):
        modal_state(bk.build_update_modal(item, metadata={}), {"progress": progress})
