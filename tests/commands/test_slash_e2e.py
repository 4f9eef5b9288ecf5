"""The /reap command end to end: signed HTTP in, Slack calls and database rows out."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import func
from sqlmodel import select

from storage.engine import transaction
from storage.items import get_item
from storage.models import ActionItem, AuditEvent, Person
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot, sign


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan: OIT-1 owned by OWNER, due 2026-12-15; OIT-2 overdue."""
    async with running_bot(database_url) as bot:
        for user, tz in (
            (OWNER, "America/New_York"),
            (OTHER, "America/Chicago"),
            (COORDINATOR, "America/New_York"),
        ):
            bot.slack.add_user(user, user.lower(), tz=tz)
        bot.slack.add_user("U0ADMIN", "admin")
        async with transaction(bot.sessions) as session:
            plan = await make_plan(session)
            await make_item(session, plan)
            await make_item(
                session,
                plan,
                title="Hire an equity data analyst",
                due=date(2026, 11, 20),
                strategy="workplace-equity",
            )
        yield bot


async def row_count(bot: Bot, model: type) -> int:
    async with bot.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_list_mine_shows_my_items_with_buttons_and_date_tokens(bot: Bot):
    response = await bot.command(OWNER, "list mine")
    assert response.status_code == 200
    body = response.json()
    text = str(body["blocks"])
    assert "OIT-2" in text and "OIT-1" in text
    assert text.index("OIT-2") < text.index("OIT-1"), "overdue first"
    assert "<!date^" in text
    actions = [b for b in body["blocks"] if b["type"] == "actions"]
    assert {e["action_id"] for e in actions[0]["elements"]} == {"item_done", "item_snooze", "item_update"}
    assert "response_type" not in body, "ephemeral by default"


@pytest.mark.parametrize(
    ("extra", "page", "says", "cards"),
    [
        (0, 1, "2 items", 2),
        (17, 1, "19 items", 19),
        (18, 1, "20 items", 20),
        (23, 1, "25 items", 20),
        (23, 2, "25 items", 5),
        (23, 3, "25 items", 0),
    ],
    ids=["short", "one-short-of-a-page", "exactly-a-page", "two-pages", "second-page", "past-the-end"],
)
async def test_a_list_counts_every_matching_item_on_every_page(
    bot: Bot, extra: int, page: int, says: str, cards: int
):
    async with transaction(bot.sessions) as session:
        plan = await make_plan(session, key="PGN", coordinator=None, people=())
        for n in range(extra):
            await make_item(session, plan, title=f"Extra {n}", due=date(2027, 1, 1 + n))
    body = (await bot.command(OWNER, f"list mine page {page}")).json()
    assert body["text"].endswith(f": {says.split()[0]}")
    assert f"· {says}" in body["blocks"][0]["text"]["text"]
    shown = [b for b in body["blocks"] if b["type"] == "actions"]
    assert len(shown) == cards


async def test_status_change_writes_the_row_and_audit(bot: Bot):
    response = await bot.command(OWNER, 'status oit-1 at-risk "vendor delay"')
    assert "OIT-1 is now at risk" in response.json()["text"]
    async with bot.sessions() as session:
        item = await get_item(session, team_id=bot.team_id, ref="OIT-1")
        audit = (await session.exec(select(AuditEvent).order_by(AuditEvent.id.desc()))).first()  # type: ignore[union-attr]
    assert (item.status, item.last_note) == ("at_risk", "vendor delay")
    assert audit is not None and (audit.actor, audit.old, audit.new) == (OWNER, "not_started", "at_risk")


async def test_another_users_item_is_refused_and_unchanged(bot: Bot):
    before = await row_count(bot, AuditEvent)
    response = await bot.command(OTHER, "done OIT-1")
    assert "You can't" in response.json()["text"]
    assert f"<@{COORDINATOR}>" in response.json()["text"]
    assert await row_count(bot, AuditEvent) == before


async def test_a_typo_quotes_the_problem_and_shows_usage_without_changing_data(bot: Bot):
    before = await row_count(bot, AuditEvent)
    response = await bot.command(OWNER, "due OIT-1 Feb 30")
    text = str(response.json())
    # Escaped as every text to Slack is; Slack shows it as `/reap due <ref> <date>`.
    assert "Feb 30" in text and "/reap due &lt;ref&gt; &lt;date&gt;" in text
    assert await row_count(bot, AuditEvent) == before


async def test_add_creates_the_next_ref_for_the_caller(bot: Bot):
    response = await bot.command(
        OWNER, 'add "Translate the device-lending guide" due 3/31 strategy digital-equity'
    )
    assert "Added OIT-3" in response.json()["text"]
    async with bot.sessions() as session:
        item = await get_item(session, team_id=bot.team_id, ref="OIT-3")
    assert (item.owner_id, item.due, item.created_by) == (OWNER, date(2027, 3, 31), OWNER)


async def test_first_contact_creates_the_person_and_learns_their_time_zone(bot: Bot):
    bot.slack.add_user("U0NEWBIE", "newbie", tz="Pacific/Honolulu")
    await bot.command("U0NEWBIE", "help")
    async with bot.sessions() as session:
        person = (await session.exec(select(Person).where(Person.user_id == "U0NEWBIE"))).one()
    assert (person.tz, person.name) == ("Pacific/Honolulu", "newbie")


@pytest.mark.parametrize(
    ("headers_for", "status"),
    [
        ("forged", 401),
        ("stale", 401),
        ("unsigned", 401),
    ],
)
async def test_unverifiable_requests_get_401_and_change_nothing(bot: Bot, headers_for: str, status: int):
    body = urllib.parse.urlencode(
        {
            "team_id": bot.team_id,
            "user_id": OWNER,
            "command": "/reap",
            "text": "done OIT-1",
            "trigger_id": "x",
            "response_url": bot.slack.response_url(),
        }
    ).encode()
    headers = {
        "forged": sign(body, secret="not-the-secret"),
        "stale": sign(body, timestamp=1_000_000_000),
        "unsigned": {},
    }[headers_for]
    response = await bot.post(body, content_type="application/x-www-form-urlencoded", headers=headers)
    assert response.status_code == status
    async with bot.sessions() as session:
        assert (await get_item(session, team_id=bot.team_id, ref="OIT-1")).status == "not_started"


async def test_ssl_check_without_a_signature_is_refused(bot: Bot):
    response = await bot.post(
        b"ssl_check=1&token=legacy", content_type="application/x-www-form-urlencoded", headers={}
    )
    assert response.status_code == 401


async def test_a_title_containing_the_word_payload_still_routes(bot: Bot):
    response = await bot.command(OWNER, 'add "Fix the payload of the Wi-Fi map" strategy digital-equity')
    assert "Added OIT-3" in response.json()["text"]


async def test_broadcasts_and_template_syntax_are_shown_literally(bot: Bot):
    await bot.command(OWNER, 'add "<!channel> {{ 7*7 }} R&D" strategy digital-equity')
    response = await bot.command(OWNER, "show OIT-3")
    text = str(response.json()["blocks"])
    assert "<!channel>" not in text
    assert "{{ 7*7 }}" in text and "R&amp;D" in text
    async with bot.sessions() as session:
        assert (await get_item(session, team_id=bot.team_id, ref="OIT-3")).title == "@channel {{ 7*7 }} R&D"


async def test_long_and_rtl_titles_are_kept(bot: Bot):
    rtl = "تحسين الوصول الرقمي للمقيمين " * 5
    response = await bot.command(OWNER, f'add "{rtl.strip()}" strategy digital-equity')
    assert "Added OIT-3" in response.json()["text"]
    async with bot.sessions() as session:
        count = (await session.exec(select(func.count()).select_from(ActionItem))).one()
    assert count == 3


async def test_done_button_completes_once_and_updates_the_message(bot: Bot):
    channel = bot.slack.dm_channel(OWNER)
    posted = await bot.app.client.chat_postMessage(
        channel=channel,
        text="digest",
        blocks=[
            {"type": "section", "block_id": "item:OIT-1", "text": {"type": "mrkdwn", "text": "*OIT-1*"}},
            {
                "type": "actions",
                "block_id": "actions:OIT-1",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "item_done",
                        "text": {"type": "plain_text", "text": "Done"},
                        "value": "OIT-1",
                    }
                ],
            },
        ],
    )
    message = dict(posted["message"])
    press = bot.block_action(OWNER, "item_done", value="OIT-1", message=message, channel=channel)
    assert (await bot.interact(press)).status_code == 200
    # The plan asks for evidence (the default), so Done opens the Update form set to done.
    view = list(bot.slack.views().values())[-1]
    assert view["callback_id"] == "update_item_modal"
    assert "needs evidence of completion" in str(view["blocks"][0])
    async with bot.sessions() as session:
        assert (await get_item(session, team_id=bot.team_id, ref="OIT-1")).status == "not_started"
    values = {
        "status": {"value": {"type": "static_select", "selected_option": {"value": "done"}}},
        "progress": {"value": {"type": "number_input", "value": "100"}},
        "due": {"value": {"type": "datepicker", "selected_date": "2026-12-15"}},
        "evidence": {"value": {"type": "url_text_input", "value": "https://www.phila.gov/oit/matrix"}},
    }
    submitted = await bot.interact(bot.view_submission(OWNER, view, values))
    assert submitted.status_code == 200 and submitted.content in (b"", b"{}")
    press_again = bot.block_action(OWNER, "item_done", value="OIT-1", message=message, channel=channel)
    assert (await bot.interact(press_again)).status_code == 200
    async with bot.sessions() as session:
        item = await get_item(session, team_id=bot.team_id, ref="OIT-1")
        statuses = list(await session.exec(select(AuditEvent).where(AuditEvent.field == "status")))
    assert (item.status, item.evidence_url, item.verified_at) == (
        "done",
        "https://www.phila.gov/oit/matrix",
        None,
    )
    assert len(statuses) == 1, "pressing Done twice completes once"
    # The form cannot vouch for a message the bot did not record, so the fresh card comes as a DM.
    latest = bot.slack.messages(channel)[-1]
    assert ":white_check_mark: done — awaiting verification" in str(latest.blocks)


async def test_a_tampered_button_value_is_refused(bot: Bot):
    response = await bot.interact(bot.block_action(OTHER, "item_done", value="OIT-1"))
    assert response.status_code == 200
    async with bot.sessions() as session:
        assert (await get_item(session, team_id=bot.team_id, ref="OIT-1")).status == "not_started"
    told = bot.slack.responses()
    assert any("You can't" in str(r) for r in told)


async def test_snooze_one_week_from_a_reply(bot: Bot):
    await bot.interact(bot.block_action(OWNER, "item_snooze", selected="OIT-1|1w"))
    async with bot.sessions() as session:
        item = await get_item(session, team_id=bot.team_id, ref="OIT-1")
    assert item.snoozed_until == date(2026, 12, 7)
    assert any("OIT-1" in str(r) and r.get("replace_original") for r in bot.slack.responses())


async def test_update_button_opens_the_modal_and_submit_changes_several_fields(bot: Bot):
    await bot.interact(bot.block_action(OWNER, "item_update", value="OIT-1"))
    views = list(bot.slack.views().values())
    assert views and views[-1]["callback_id"] == "update_item_modal"
    view = views[-1]
    values = {
        "status": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress": {"value": {"type": "number_input", "value": "60"}},
        "due": {"value": {"type": "datepicker", "selected_date": "2026-12-10"}},
        "note": {"value": {"type": "plain_text_input", "value": "Matrix reviewed with DEI"}},
    }
    response = await bot.interact(bot.view_submission(OWNER, view, values))
    assert response.status_code == 200 and response.content in (b"", b"{}")
    async with bot.sessions() as session:
        item = await get_item(session, team_id=bot.team_id, ref="OIT-1")
    # An earlier date is the owner's to set; a later one would be a request (see test_commitments_e2e).
    assert (item.status, item.progress, item.due, item.last_note) == (
        "on_track",
        60,
        date(2026, 12, 10),
        "Matrix reviewed with DEI",
    )


async def test_update_modal_with_bad_progress_gets_inline_errors_and_changes_nothing(bot: Bot):
    await bot.interact(bot.block_action(OWNER, "item_update", value="OIT-1"))
    view = list(bot.slack.views().values())[-1]
    values = {
        "status": {"value": {"type": "static_select", "selected_option": {"value": "on_track"}}},
        "progress": {"value": {"type": "number_input", "value": "140"}},
    }
    response = await bot.interact(bot.view_submission(OWNER, view, values))
    assert response.json() == {
        "response_action": "errors",
        "errors": {"progress": "Enter a whole number from 0 to 100."},
    }
    async with bot.sessions() as session:
        assert (await get_item(session, team_id=bot.team_id, ref="OIT-1")).status == "not_started"


async def test_add_with_no_arguments_opens_the_add_modal_and_submit_creates(bot: Bot):
    response = await bot.command(COORDINATOR, "add")
    assert response.status_code == 200
    view = list(bot.slack.views().values())[-1]
    assert view["callback_id"] == "add_item_modal"
    strategy = view["blocks"][1]["element"]["options"][2]["value"]
    values = {
        "title": {"value": {"type": "plain_text_input", "value": "Deploy public Wi-Fi in Kensington"}},
        "strategy": {"value": {"type": "static_select", "selected_option": {"value": strategy}}},
        "owner": {"value": {"type": "users_select", "selected_user": OTHER}},
        "due": {"value": {"type": "datepicker", "selected_date": "2027-05-01"}},
        "description": {"value": {"type": "plain_text_input", "value": None}},
    }
    refused = await bot.interact(bot.view_submission(OWNER, view, values))
    assert "owner" in refused.json()["errors"], "a member may only add items they own"
    await bot.interact(bot.view_submission(COORDINATOR, view, values))
    async with bot.sessions() as session:
        item = await get_item(session, team_id=bot.team_id, ref="OIT-3")
    assert (item.owner_id, item.due, item.created_by) == (OTHER, date(2027, 5, 1), COORDINATOR)
    assert "Added *OIT-3*" in str(bot.slack.dms_to(COORDINATOR)[-1].blocks)


async def test_app_home_shows_my_items_and_the_coordinator_summary(bot: Bot):
    await bot.event(
        {"type": "app_home_opened", "user": COORDINATOR, "channel": "D0X", "tab": "home"}, event_id="Ev1"
    )
    home = bot.slack.home_view(COORDINATOR)
    assert home is not None
    text = str(home["blocks"])
    assert "OIT department" in text and "1 overdue" in text


async def test_a_retried_event_is_processed_once(bot: Bot):
    for retry in (None, 1, 2):
        response = await bot.event(
            {"type": "app_home_opened", "user": OWNER, "channel": "D0X", "tab": "home"},
            event_id="Ev42",
            retry=retry,
        )
        assert response.status_code == 200
    assert len(bot.slack.calls_to("views.publish")) == 1


async def test_message_shortcut_opens_a_prefilled_add_modal(bot: Bot):
    payload = bot.message_shortcut(OWNER, "Can we map Wi-Fi gaps by tract?", ts="1767225950.000300")
    await bot.interact(payload)
    view = list(bot.slack.views().values())[-1]
    assert view["blocks"][0]["element"]["initial_value"] == "Can we map Wi-Fi gaps by tract?"
    assert "https://slack.com/archives/C0GENERAL/p1767225950000300" in str(view["blocks"])


async def test_app_home_for_a_coordinator_who_owns_an_overdue_item_is_accepted(bot: Bot):
    await bot.command(COORDINATOR, f"assign OIT-2 <@{COORDINATOR}>")
    await bot.event(
        {"type": "app_home_opened", "user": COORDINATOR, "channel": "D0X", "tab": "home"}, event_id="Ev7"
    )
    home = bot.slack.home_view(COORDINATOR)
    assert home is not None
    ids = [b["block_id"] for b in home["blocks"] if "block_id" in b]
    assert len(ids) == len(set(ids))


async def test_a_refusal_mentions_who_may_act_as_live_mentions(bot: Bot):
    response = await bot.command(OTHER, "done OIT-1")
    assert f"<@{COORDINATOR}>" in str(response.json()["blocks"])


async def test_the_score_form_of_a_plan_without_a_scoring_matrix_says_so_instead_of_opening(bot: Bot):
    response = await bot.command(OWNER, "score OIT-1")
    assert "OIT-1's plan has no scoring criteria (add them to the plan file)" in response.json()["text"]
    assert bot.slack.views() == {}
