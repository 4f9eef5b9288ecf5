"""/metrics after a scripted session: requests by name and outcome, Slack calls and 429s, the outbox
by state and kind, and the ticker, parsed as Prometheus would parse them."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from bot.metrics import request_labels
from localslack.server import Fault
from messages.blocks import DONE
from reminders.scheduler import ReminderScheduler
from storage import outbox
from storage.checkins import cycle_progress
from storage.engine import transaction
from storage.models import CheckInCycle, Notification
from tests.factories import COORDINATOR, OTHER, OWNER, make_item, make_plan
from tests.harness import Bot, running_bot

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(bot: Bot) -> Samples:
    """Every sample /metrics exposes, by name and sorted labels."""
    response = await bot.http.get(f"{bot.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, **labels: str) -> float | None:
    """One sample's value, or None if it is not exposed."""
    return samples.get((metric, tuple(sorted(labels.items()))))


async def owe_digests(bot: Bot, *recipients: str) -> None:
    """Pending digest rows due tomorrow (so no tick sends them during the test)."""
    later = bot.clock() + timedelta(days=1)
    rows = [
        Notification(
            team_id=bot.team_id,
            key=f"digest:{recipient}",
            kind="digest",
            recipient=recipient,
            local_date=date(2026, 12, 1),
            payload={"items": []},
            send_after=later,
            created_at=bot.clock(),
        )
        for recipient in recipients
    ]
    async with transaction(bot.sessions) as session:
        await outbox.enqueue(session, rows=rows)


async def test_a_scripted_session_is_counted_by_name_outcome_and_slack_method(database_url: str):
    async with running_bot(database_url) as bot:
        bot.slack.add_user("U0OWNER", "owner")
        before = await scrape(bot)
        assert value(before, "reap_requests_total", kind="command", name="/reap help", outcome="ok") is None

        await bot.command("U0OWNER", "help")
        await bot.command("U0OWNER", "help status")
        await bot.command("U0OWNER", "list")
        await bot.command("U0OWNER", "xyzzy-" + "a" * 50)  # a name we do not know is "other"
        bot.team_id = "T0OTHER"
        await bot.command("U0OWNER", "help")
        bot.team_id = "T0REAP"
        await bot.interact(bot.block_action("U0OWNER", DONE, value="OIT-404"))
        # Slack answers the Home tab's views.publish with a 429 once; slack_sdk waits and retries.
        bot.slack.fail_next("views.publish", Fault(status=429, retry_after=1))
        await bot.event(
            {"type": "app_home_opened", "user": "U0OWNER", "channel": "D0X", "tab": "home"}, event_id="Ev1"
        )
        await owe_digests(bot, "U0A", "U0B")
        scheduler = bot.app.scheduler
        assert isinstance(scheduler, ReminderScheduler)
        await bot.app.start()
        for _ in range(500):
            if scheduler.ticks:
                break
            await asyncio.sleep(0.02)
        samples = await scrape(bot)

    def requests(kind: str, name: str, outcome: str) -> float | None:
        return value(samples, "reap_requests_total", kind=kind, name=name, outcome=outcome)

    assert requests("command", "/reap help", "ok") == 2
    assert requests("command", "/reap list", "ok") == 1
    assert requests("command", "/reap other", "ok") == 1
    assert requests("command", "/reap help", "refused") == 1
    assert requests("action", DONE, "ok") == 1
    assert requests("event", "app_home_opened", "ok") == 1
    assert value(samples, "reap_request_duration_seconds_count", kind="command", name="/reap help") == 3

    assert value(samples, "reap_slack_api_calls_total", method="views.publish", error="ratelimited") == 1
    assert value(samples, "reap_slack_api_calls_total", method="views.publish", error="ok") == 1
    assert value(samples, "reap_slack_api_calls_total", method="auth.test", error="ok") == 2
    assert value(samples, "reap_slack_rate_limited_total", method="views.publish") == 1
    assert value(samples, "reap_slack_retry_after_seconds_total", method="views.publish") == 1

    assert value(samples, "reap_outbox_rows", state="pending", kind="digest") == 2
    assert value(samples, "reap_tick_duration_seconds_count") == 1
    assert value(samples, "reap_tick_age_seconds") == 0, "the app's clock has not moved since the tick"


async def test_each_app_has_its_own_registry(database_url: str):
    async with running_bot(database_url) as first, running_bot(database_url) as second:
        first.slack.add_user("U0OWNER", "owner")
        await first.command("U0OWNER", "help")
        one, other = await scrape(first), await scrape(second)
    assert value(one, "reap_requests_total", kind="command", name="/reap help", outcome="ok") == 1
    assert value(other, "reap_requests_total", kind="command", name="/reap help", outcome="ok") is None


def test_request_names_are_bounded_to_what_the_app_handles():
    payload = {"type": "block_actions", "actions": [{"action_id": "x" * 200}]}
    assert request_labels(payload) == ("action", "other")
    assert request_labels({"command": "/evil", "text": "add"}) == ("command", "other add")
    assert request_labels({"type": "url_verification"}) == ("other", "other")
    assert request_labels({"type": "view_submission", "view": {"callback_id": "nope"}}) == ("view", "other")


async def test_the_current_checkins_response_rate_is_exposed_by_department(database_url: str):
    hr_owner = "U0HROWNER"
    async with running_bot(database_url) as bot:
        for user in (COORDINATOR, OWNER, OTHER, hr_owner):
            bot.slack.add_user(user, user.lower())
        async with transaction(bot.sessions) as session:
            oit = await make_plan(session)
            await make_item(session, oit, owner=OWNER)
            await make_item(session, oit, owner=OWNER, title="Hire an equity data analyst")
            await make_item(session, oit, owner=OTHER, title="Publish the language access plan")
            hr = await make_plan(session, key="HR", coordinator=None, people=(hr_owner,))
            await make_item(session, hr, owner=hr_owner, title="Review the hiring rubric")
        before = await scrape(bot)

        await bot.command(COORDINATOR, "checkin start FY2027-Q2")
        await bot.interact(bot.block_action(OWNER, "checkin_open", value="FY2027-Q2"))
        view = list(bot.slack.views().values())[-1]
        answers = {
            f"{field}:{ref}": {"value": answer}
            for ref in ("OIT-1", "OIT-2")
            for field, answer in (
                ("status", {"type": "static_select", "selected_option": {"value": "on_track"}}),
                ("progress", {"type": "number_input", "value": "40"}),
                ("note", {"type": "plain_text_input", "value": "On schedule"}),
            )
        }
        assert (await bot.interact(bot.view_submission(OWNER, view, answers))).status_code == 200
        during = await scrape(bot)
        async with bot.sessions() as session:
            cycle = (await session.exec(select(CheckInCycle))).one()
            progress = await cycle_progress(session, team_id=bot.team_id, cycle=cycle)

        await bot.command(COORDINATOR, "checkin close FY2027-Q2")
        after = await scrape(bot)

    assert not [key for key in before if key[0].startswith("reap_checkin")], "no check-in yet"

    def labels(department: str, **more: str) -> dict[str, str]:
        return {"team": "T0REAP", "quarter": "FY2027-Q2", "department": department, **more}

    assert value(during, "reap_checkin_response_rate", **labels("OIT")) == 0.5
    assert value(during, "reap_checkin_response_rate", **labels("HR")) == 0
    assert value(during, "reap_checkin_owners", **labels("OIT", state="responded")) == 1
    assert value(during, "reap_checkin_owners", **labels("OIT", state="waiting")) == 1
    assert value(during, "reap_checkin_owners", **labels("HR", state="waiting")) == 1
    assert value(during, "reap_checkin_open", team="T0REAP", quarter="FY2027-Q2") == 1
    # The same count the non-responder list and `/reap checkin status` are built from.
    assert {(p.key, p.rate) for p in progress} == {("OIT", 0.5), ("HR", 0.0)}

    assert value(after, "reap_checkin_open", team="T0REAP", quarter="FY2027-Q2") == 0
    assert value(after, "reap_checkin_response_rate", **labels("OIT")) == 0.5, "the last cycle stays shown"
