"""localslack behaves like the Slack Web API when driven by the real slack_sdk clients over HTTP."""

from __future__ import annotations

import re
import urllib.error
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from localslack.server import (
    BadIdError,
    Fault,
    LocalSlack,
    NotStartedError,
    UnknownResponseUrlError,
    UnknownUserError,
)

TOKEN = "xoxb-test"
TS = re.compile(r"^\d{10}\.\d{6}$")
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
DEI, OIT = "C0DEI", "C0OIT"


class ManualClock:
    """A monotonic clock that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def section(text: str) -> dict[str, Any]:
    """A mrkdwn section block."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(title: str = "Update OIT-7", blocks: list[dict[str, Any]] | None = None) -> dict:
    """A small modal view."""
    return {
        "type": "modal",
        "callback_id": "status",
        "title": {"type": "plain_text", "text": title},
        "blocks": [section("Status")] if blocks is None else blocks,
    }


def home(text: str) -> dict[str, Any]:
    """An App Home view with one section."""
    return {"type": "home", "blocks": [section(text)]}


@pytest.fixture
def clock() -> ManualClock:
    """The clock localslack uses for triggers and rate buckets."""
    return ManualClock()


@pytest.fixture
def make_slack(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> Iterator[Callable[..., LocalSlack]]:
    """Start LocalSlack servers holding alice, bob, a deleted carol, #dei and #oit (the bot in
    both); stop them all."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    started: list[LocalSlack] = []

    def make(**options: Any) -> LocalSlack:
        ls = LocalSlack(clock=clock, **options).start()
        started.append(ls)
        ls.add_user(ALICE, "alice", real_name="Alice Ortiz", email="alice@phila.test")
        ls.add_user(BOB, "bob", tz="America/Los_Angeles", email="bob@phila.test")
        ls.add_user(CAROL, "carol", deleted=True)
        # The bot was invited to both, so it may post and share files there.
        ls.add_channel(DEI, "dei", member=True)
        ls.add_channel(OIT, "oit", member=True)
        return ls

    yield make
    for ls in started:
        ls.stop()


@pytest.fixture
def slack(make_slack: Callable[..., LocalSlack]) -> LocalSlack:
    """A running LocalSlack with the standard directory."""
    return make_slack()


@pytest.fixture
def client(slack: LocalSlack) -> WebClient:
    """The sync slack_sdk client, as the bot builds it (default retry handlers)."""
    return WebClient(base_url=slack.base_url, token=TOKEN)


@pytest.fixture
def aclient(slack: LocalSlack) -> AsyncWebClient:
    """The async slack_sdk client (aiohttp) pointed at localslack."""
    return AsyncWebClient(base_url=slack.base_url, token=TOKEN)


def slack_texts(slack: LocalSlack, channel: str) -> list[str]:
    """The texts of everything in a channel, oldest first."""
    return [m.text for m in slack.messages(channel)]


def bare_client(slack: LocalSlack, **options: Any) -> WebClient:
    """A sync client with no retry handlers, so every failure surfaces."""
    return WebClient(base_url=slack.base_url, token=TOKEN, retry_handlers=[], **options)


# -- messages ---------------------------------------------------------------------------------


def test_post_message_is_recorded_and_answered_like_slack(slack: LocalSlack, client: WebClient) -> None:
    metadata = {"event_type": "reap_reminder", "event_payload": {"item": "OIT-7"}}
    reply = client.chat_postMessage(
        channel=DEI, text="OIT-7 is due", blocks=[section("*OIT-7* is due")], metadata=metadata
    )

    assert reply["channel"] == DEI
    assert TS.match(reply["ts"])
    assert reply["message"]["text"] == "OIT-7 is due"
    assert reply["message"]["user"] == slack.bot_user_id
    [message] = slack.messages(DEI)
    assert message.ts == reply["ts"]
    assert message.blocks == [section("*OIT-7* is due")]
    assert message.metadata == metadata
    assert (message.user, message.thread_ts, message.edits) == (slack.bot_user_id, None, 0)


def test_update_replaces_text_and_blocks_and_counts_the_edit(slack: LocalSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=DEI, text="due", blocks=[section("due")])

    updated = client.chat_update(channel=DEI, ts=posted["ts"], text="done", blocks=[section("ok")])

    assert updated["ts"] == posted["ts"]
    assert updated["message"]["text"] == "done"
    [message] = slack.messages(DEI)
    assert (message.text, message.blocks, message.edits) == ("done", [section("ok")], 1)


def test_update_of_an_unknown_message_is_message_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.chat_update(channel=DEI, ts="1700000000.000001", text="done")

    assert caught.value.response["error"] == "message_not_found"


def test_ts_values_strictly_increase_across_the_whole_server(slack: LocalSlack, client: WebClient) -> None:
    stamps = [
        client.chat_postMessage(channel=channel, text=f"n{i}")["ts"]
        for i, channel in enumerate([DEI, OIT, ALICE, DEI, BOB, OIT])
    ]

    assert all(TS.match(ts) for ts in stamps)
    assert [float(ts) for ts in stamps] == sorted({float(ts) for ts in stamps})


def test_posting_to_a_user_id_lands_in_that_users_dm(slack: LocalSlack, client: WebClient) -> None:
    reply = client.chat_postMessage(channel=ALICE, text="Your digest")

    assert reply["channel"] == slack.dm_channel(ALICE)
    assert [m.text for m in slack.dms_to(ALICE)] == ["Your digest"]
    assert slack.dms_to(BOB) == []


def test_history_lists_top_level_messages_newest_first_and_metadata_on_request(
    slack: LocalSlack, client: WebClient
) -> None:
    metadata = {"event_type": "reap_rollup", "event_payload": {"quarter": "FY2027-Q2"}}
    first = client.chat_postMessage(channel=DEI, text="first", metadata=metadata)
    client.chat_postMessage(channel=DEI, text="reply", thread_ts=first["ts"])
    client.chat_postMessage(channel=DEI, text="second")

    plain = client.conversations_history(channel=DEI)
    rich = client.conversations_history(channel=DEI, include_all_metadata=True)
    thread = client.conversations_replies(channel=DEI, ts=first["ts"])

    assert [m["text"] for m in plain["messages"]] == ["second", "first"]
    assert "metadata" not in plain["messages"][1]
    assert rich["messages"][1]["metadata"] == metadata
    assert [m["text"] for m in thread["messages"]] == ["first", "reply"]
    assert slack.messages(DEI)[1].thread_ts == first["ts"]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"channel": "C0NOPE", "text": "x"}, "channel_not_found"),
        ({"channel": CAROL, "text": "x"}, "account_inactive"),
        ({"channel": DEI, "text": "x", "blocks": [section("b")] * 51}, "invalid_blocks"),
        ({"channel": DEI, "text": "x" * 40_001}, "msg_too_long"),
        ({"channel": DEI, "text": "x", "blocks": [section("s" * 3001)]}, "invalid_blocks"),
        (
            {
                "channel": DEI,
                "text": "x",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            },
            "invalid_blocks",
        ),
        (
            {
                "channel": DEI,
                "text": "x",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "b" * 76},
                                "action_id": "done",
                            }
                        ],
                    }
                ],
            },
            "invalid_blocks",
        ),
        ({"channel": DEI, "text": "x", "blocks": [{"type": "sectoin"}]}, "invalid_blocks"),
        ({"channel": DEI, "text": "x", "blocks": {"type": "section"}}, "invalid_blocks_format"),
        ({"channel": DEI}, "no_text"),
        ({"channel": DEI, "text": "x", "metadata": {"payload": 1}}, "invalid_metadata_format"),
    ],
    ids=[
        "unknown channel",
        "deleted user's DM",
        "51 blocks",
        "text over 40000",
        "section text over 3000",
        "header over 150",
        "button text over 75",
        "unknown block type",
        "blocks not an array",
        "no text, no blocks",
        "metadata without event_type",
    ],
)
def test_post_message_rejections(
    slack: LocalSlack, client: WebClient, payload: dict[str, Any], error: str
) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.api_call("chat.postMessage", json=payload)

    assert caught.value.response["error"] == error
    assert slack.messages() == []


def test_posting_into_a_deleted_users_dm_by_its_d_id_is_account_inactive(
    slack: LocalSlack, client: WebClient
) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=slack.dm_channel(CAROL), text="hello?")

    assert caught.value.response["error"] == "account_inactive"


def test_invalid_blocks_come_with_json_pointer_explanations(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="x", blocks=[section("ok"), section("s" * 3001)])

    assert caught.value.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    ]


def test_turning_block_validation_off_still_enforces_the_block_count(
    make_slack: Callable[..., LocalSlack],
) -> None:
    slack = make_slack(validate_blocks=False)
    client = WebClient(base_url=slack.base_url, token=TOKEN)

    client.chat_postMessage(channel=DEI, text="x", blocks=[section("s" * 3001)])
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="x", blocks=[section("b")] * 51)

    assert caught.value.response["error"] == "invalid_blocks"
    assert len(slack.messages(DEI)) == 1


def test_ephemeral_messages_are_kept_per_user_and_out_of_the_channel(
    slack: LocalSlack, client: WebClient
) -> None:
    reply = client.chat_postEphemeral(channel=DEI, user=ALICE, text="Usage: /reap list mine")

    assert TS.match(reply["message_ts"])
    [record] = slack.ephemerals(ALICE)
    assert (record["channel"], record["user"], record["text"]) == (
        DEI,
        ALICE,
        "Usage: /reap list mine",
    )
    assert slack.ephemerals(BOB) == []
    assert slack.messages(DEI) == []


# -- users and conversations --------------------------------------------------------------------


async def test_conversations_open_returns_the_same_dm_every_time(
    slack: LocalSlack, aclient: AsyncWebClient
) -> None:
    first = await aclient.conversations_open(users=ALICE)
    second = await aclient.conversations_open(users=ALICE)

    assert first["channel"]["id"] == second["channel"]["id"] == slack.dm_channel(ALICE)
    assert second["already_open"] is True
    [call, _] = slack.calls_to("conversations.open")
    assert call.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert call.params["users"] == ALICE


async def test_users_info_over_an_async_get_reports_the_time_zone(
    slack: LocalSlack, aclient: AsyncWebClient
) -> None:
    reply = await aclient.users_info(user=BOB)

    user = reply["user"]
    offset = datetime.now(UTC).astimezone(ZoneInfo("America/Los_Angeles")).utcoffset()
    assert offset is not None
    assert user["tz"] == "America/Los_Angeles"
    assert user["tz_offset"] == int(offset.total_seconds())
    assert user["tz_label"] in ("Pacific Standard Time", "Pacific Daylight Time")
    assert user["profile"]["email"] == "bob@phila.test"
    assert (user["id"], user["team_id"], user["deleted"]) == (BOB, slack.team_id, False)
    assert slack.calls_to("users.info")[0].http_method == "GET"


@pytest.mark.parametrize(
    ("method", "params", "error"),
    [
        ("users.info", {"user": "U0NOBODY"}, "user_not_found"),
        ("conversations.open", {"users": "U0NOBODY"}, "user_not_found"),
        ("conversations.open", {"users": CAROL}, "user_disabled"),
        ("users.lookupByEmail", {"email": "nobody@phila.test"}, "users_not_found"),
    ],
)
def test_user_lookups_fail_like_slack(
    client: WebClient, method: str, params: dict[str, str], error: str
) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.api_call(method, params=params)

    assert caught.value.response["error"] == error


def test_group_dm_gets_one_postable_channel_per_set_of_users(slack: LocalSlack, client: WebClient) -> None:
    first = client.conversations_open(users=f"{ALICE},{BOB}")["channel"]["id"]
    again = client.conversations_open(users=f"{BOB},{ALICE}")["channel"]["id"]

    client.chat_postMessage(channel=first, text="Check-in for OIT-7")

    assert first == again
    assert first.startswith("G")
    assert [m.text for m in slack.messages(first)] == ["Check-in for OIT-7"]


def test_lookup_by_email_finds_the_member(client: WebClient) -> None:
    assert client.users_lookupByEmail(email="ALICE@phila.test")["user"]["id"] == ALICE


def test_users_list_pages_through_every_member_with_cursors(slack: LocalSlack, client: WebClient) -> None:
    # SlackResponse pagination refills one object in place, so read each page as it comes.
    pages = [[member["id"] for member in page["members"]] for page in client.users_list(limit=2)]

    assert pages == [[slack.bot_user_id, ALICE], [BOB, CAROL]]


# -- views ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uses_before", "wait", "error"),
    [
        (0, 0.0, None),
        (1, 0.0, "exchanged_trigger_id"),
        (0, 3.5, "expired_trigger_id"),
    ],
    ids=["fresh", "reused", "expired"],
)
def test_views_open_honours_trigger_rules(
    slack: LocalSlack,
    client: WebClient,
    clock: ManualClock,
    uses_before: int,
    wait: float,
    error: str | None,
) -> None:
    trigger = slack.new_trigger_id()
    for _ in range(uses_before):
        client.views_open(trigger_id=trigger, view=modal())
    clock.advance(wait)

    if error is None:
        view = client.views_open(trigger_id=trigger, view=modal())["view"]
        assert view["id"].startswith("V")
        assert slack.views()[view["id"]]["title"]["text"] == "Update OIT-7"
        return
    with pytest.raises(SlackApiError) as caught:
        client.views_open(trigger_id=trigger, view=modal())
    assert caught.value.response["error"] == error


def test_views_open_with_a_made_up_trigger_is_invalid(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.views_open(trigger_id="123.456.abc", view=modal())

    assert caught.value.response["error"] == "invalid_trigger_id"


@pytest.mark.parametrize(
    "view",
    [modal(blocks=[section("b")] * 101), modal(title="t" * 25), home("not a modal")],
    ids=["101 blocks", "title over 24", "home view"],
)
def test_views_open_rejects_malformed_modals(
    slack: LocalSlack, client: WebClient, view: dict[str, Any]
) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.views_open(trigger_id=slack.new_trigger_id(), view=view)

    assert caught.value.response["error"] == "invalid_arguments"
    assert slack.views() == {}


def test_views_update_checks_the_hash_and_finds_views_by_external_id(
    slack: LocalSlack, client: WebClient
) -> None:
    opened = client.views_open(
        trigger_id=slack.new_trigger_id(), view={**modal(), "external_id": "oit-7-status"}
    )["view"]

    updated = client.views_update(external_id="oit-7-status", hash=opened["hash"], view=modal(title="Saved"))[
        "view"
    ]
    with pytest.raises(SlackApiError) as stale:
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal())
    with pytest.raises(SlackApiError) as missing:
        client.views_update(view_id="V0NOPE", view=modal())

    assert updated["id"] == opened["id"]
    assert updated["hash"] != opened["hash"]
    assert slack.views()[opened["id"]]["title"]["text"] == "Saved"
    assert stale.value.response["error"] == "hash_conflict"
    assert missing.value.response["error"] == "not_found"


def test_views_push_needs_a_trigger_and_stores_the_view(slack: LocalSlack, client: WebClient) -> None:
    pushed = client.views_push(trigger_id=slack.new_trigger_id(), view=modal(title="Details"))

    assert slack.views()[pushed["view"]["id"]]["title"]["text"] == "Details"


async def test_views_publish_keeps_one_home_view_per_user(slack: LocalSlack, aclient: AsyncWebClient) -> None:
    first = (await aclient.views_publish(user_id=ALICE, view=home("3 items")))["view"]
    second = (await aclient.views_publish(user_id=ALICE, view=home("2 items")))["view"]
    with pytest.raises(SlackApiError) as stale:
        await aclient.views_publish(user_id=ALICE, view=home("1 item"), hash=first["hash"])

    assert second["id"] == first["id"]
    shown = slack.home_view(ALICE)
    assert shown is not None
    assert shown["blocks"] == [section("2 items")]
    assert slack.home_view(BOB) is None
    assert stale.value.response["error"] == "hash_conflict"


# -- files ------------------------------------------------------------------------------------


def test_files_upload_v2_shares_the_file_into_the_channel(slack: LocalSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel=DEI, text="FY2027-Q2 rollup")

    reply = client.files_upload_v2(
        channel=DEI,
        content=b"\x89PNG fake chart",
        filename="chart.png",
        initial_comment="Progress chart",
        thread_ts=parent["ts"],
    )

    [shared] = slack.files()
    assert reply["files"][0]["id"] == shared["id"]
    assert shared["bytes"] == b"\x89PNG fake chart"
    assert (shared["filename"], shared["title"], shared["channels"]) == (
        "chart.png",
        "chart.png",
        [DEI],
    )
    assert shared["thread_ts"] == parent["ts"]
    share = slack.messages(DEI)[-1]
    assert (share.subtype, share.text, share.files) == ("file_share", "Progress chart", [shared["id"]])


async def test_async_files_upload_v2_works_end_to_end(slack: LocalSlack, aclient: AsyncWebClient) -> None:
    await aclient.files_upload_v2(channel=OIT, content=b"a,b\n1,2\n", filename="items.csv")

    [shared] = slack.files()
    assert (shared["bytes"], shared["channels"]) == (b"a,b\n1,2\n", [OIT])
    assert [c.method for c in slack.calls] == [
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]


def test_completing_an_upload_that_never_happened_is_file_not_found(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "x"}], channel_id=DEI)

    assert caught.value.response["error"] == "file_not_found"


async def test_upload_carries_its_alt_text_and_slack_refuses_a_too_long_one(
    slack: LocalSlack, aclient: AsyncWebClient
) -> None:
    await aclient.files_upload_v2(
        channel=OIT, content=b"\x89PNG", filename="chart.png", alt_txt="Bars of items by status"
    )
    [shared] = slack.files()
    assert shared["alt_txt"] == "Bars of items by status"
    with pytest.raises(SlackApiError) as refused:
        await aclient.files_upload_v2(channel=OIT, content=b"\x89PNG", filename="c.png", alt_txt="x" * 1001)
    assert refused.value.response["error"] == "alt_txt_too_large"


# -- channel membership -----------------------------------------------------------------------

PUBLIC, PRIVATE = "C0PUBLIC", "C0SECRET"


@pytest.fixture
def outside(slack: LocalSlack) -> LocalSlack:
    """localslack with a public and a private channel the bot has not been invited to."""
    slack.add_channel(PUBLIC, "equity-news")
    slack.add_channel(PRIVATE, "hr-equity", private=True)
    return slack


def test_a_bot_outside_a_public_channel_may_post_there_but_not_share_a_file(
    outside: LocalSlack, client: WebClient
) -> None:
    client.chat_postMessage(channel=PUBLIC, text="chat:write.public lets this through")
    with pytest.raises(SlackApiError) as refused:
        client.files_upload_v2(channel=PUBLIC, content=b"\x89PNG", filename="chart.png")
    assert refused.value.response["error"] == "not_in_channel"
    assert slack_texts(outside, PUBLIC) == ["chat:write.public lets this through"]
    assert outside.files() == []


def test_joining_a_public_channel_lets_the_bot_share_files_there(
    outside: LocalSlack, client: WebClient
) -> None:
    joined = client.conversations_join(channel=PUBLIC)
    assert (joined["channel"]["id"], joined["channel"]["is_member"]) == (PUBLIC, True)
    assert "warning" not in joined.data
    again = client.conversations_join(channel=PUBLIC)
    assert again["warning"] == "already_in_channel"
    client.files_upload_v2(channel=PUBLIC, content=b"\x89PNG", filename="chart.png")
    assert outside.is_member(PUBLIC) and [f["channels"] for f in outside.files()] == [[PUBLIC]]


def test_a_private_channel_is_closed_until_the_bot_is_invited(outside: LocalSlack, client: WebClient) -> None:
    refusals = [
        (lambda: client.conversations_join(channel=PRIVATE), "method_not_supported_for_channel_type"),
        (lambda: client.chat_postMessage(channel=PRIVATE, text="hello"), "not_in_channel"),
        (
            lambda: client.files_upload_v2(channel=PRIVATE, content=b"\x89PNG", filename="chart.png"),
            "not_in_channel",
        ),
        # A private channel the bot is not in is invisible to it.
        (lambda: client.conversations_info(channel=PRIVATE), "channel_not_found"),
    ]
    for call, error in refusals:
        with pytest.raises(SlackApiError) as refused:
            call()
        assert refused.value.response["error"] == error
    assert outside.messages(PRIVATE) == [] and outside.files() == []

    outside.invite(PRIVATE)
    with pytest.raises(SlackApiError) as refused:
        client.conversations_join(channel=PRIVATE)
    assert refused.value.response["error"] == "method_not_supported_for_channel_type"
    client.chat_postMessage(channel=PRIVATE, text="hello")
    client.files_upload_v2(channel=PRIVATE, content=b"\x89PNG", filename="chart.png")
    info = client.conversations_info(channel=PRIVATE)["channel"]
    assert (info["is_private"], info["is_member"]) == (True, True)
    assert slack_texts(outside, PRIVATE) == ["hello", ""]


def test_each_membership_refusal_names_its_reason(outside: LocalSlack, client: WebClient) -> None:
    outside.add_channel("C0OLD", "old-news", member=True, archived=True)
    cases = {
        "C0NOWHERE": ("conversations.join", "channel_not_found"),
        "C0OLD": ("conversations.join", "is_archived"),
    }
    for channel, (method, error) in cases.items():
        with pytest.raises(SlackApiError) as refused:
            client.api_call(method, params={"channel": channel})
        assert refused.value.response["error"] == error
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel="C0OLD", text="too late")
    assert refused.value.response["error"] == "is_archived"
    assert client.conversations_info(channel=PUBLIC)["channel"]["is_member"] is False


# -- auth and routing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "error"),
    [(None, "not_authed"), ("nope", "invalid_auth"), ("xapp-1-abc", "invalid_auth")],
)
def test_requests_without_a_bot_or_user_token_are_refused(
    slack: LocalSlack, token: str | None, error: str
) -> None:
    client = WebClient(base_url=slack.base_url, token=token)

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="hi")

    assert caught.value.response["error"] == error
    assert slack.messages() == []
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_auth_test_names_the_workspace_and_bot(slack: LocalSlack, client: WebClient) -> None:
    reply = client.auth_test()

    assert (reply["team_id"], reply["user_id"], reply["bot_id"]) == (
        "T0REAP",
        "U0REAPBOT",
        "B0REAPBOT",
    )
    assert reply["url"] == "https://city-of-philadelphia.slack.com/"


def test_unknown_methods_are_reported(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as caught:
        client.api_call("chat.teleport", json={"channel": DEI, "team_id": "T0REAP"})

    assert caught.value.response["error"] == "unknown_method"


# -- faults -----------------------------------------------------------------------------------


def test_scripted_429_surfaces_with_retry_after_when_nobody_retries(
    slack: LocalSlack, client: WebClient
) -> None:
    slack.fail_next("chat.postMessage", Fault(status=429))

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="hi")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert caught.value.response["error"] == "ratelimited"
    assert slack.messages() == []
    assert slack.rate_limited_count == 1


def test_rate_limit_retry_handler_gets_through_on_the_second_try(slack: LocalSlack) -> None:
    slack.fail_next("chat.postMessage", Fault(status=429, retry_after=0))
    client = bare_client(slack)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))

    reply = client.chat_postMessage(channel=DEI, text="hi")

    assert reply["ok"] is True
    assert len(slack.calls_to("chat.postMessage")) == 2
    assert [m.text for m in slack.messages(DEI)] == ["hi"]


def test_server_error_retry_handler_recovers_from_one_500(slack: LocalSlack) -> None:
    slack.fail_next("chat.postMessage", Fault(status=500))
    fast = FixedValueRetryIntervalCalculator(0.01)
    client = bare_client(slack)
    client.retry_handlers.append(ServerErrorRetryHandler(interval_calculator=fast))

    client.chat_postMessage(channel=DEI, text="hi")

    assert len(slack.calls_to("chat.postMessage")) == 2
    assert len(slack.messages(DEI)) == 1


def test_dropped_connection_is_a_connection_error_without_retries(slack: LocalSlack) -> None:
    slack.fail_next("chat.postMessage", Fault(drop=True))

    with pytest.raises((ConnectionError, urllib.error.URLError)):
        bare_client(slack).chat_postMessage(channel=DEI, text="hi")

    assert slack.messages() == []


def test_default_connection_retry_survives_one_dropped_connection(
    slack: LocalSlack, client: WebClient
) -> None:
    slack.fail_next("chat.postMessage", Fault(drop=True))

    client.chat_postMessage(channel=DEI, text="hi")

    assert len(slack.calls_to("chat.postMessage")) == 2
    assert len(slack.messages(DEI)) == 1


async def test_dropped_connection_reaches_the_async_client_on_a_post(slack: LocalSlack) -> None:
    slack.fail_next("chat.postMessage", Fault(drop=True))
    aclient = AsyncWebClient(base_url=slack.base_url, token=TOKEN, retry_handlers=[])

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await aclient.chat_postMessage(channel=DEI, text="hi")

    assert slack.messages() == []


async def test_aiohttp_itself_retries_a_dropped_get_once(slack: LocalSlack) -> None:
    slack.fail_next("users.info", Fault(drop=True))
    aclient = AsyncWebClient(base_url=slack.base_url, token=TOKEN, retry_handlers=[])

    reply = await aclient.users_info(user=ALICE)

    assert reply["user"]["id"] == ALICE
    assert [c.http_method for c in slack.calls_to("users.info")] == ["GET", "GET"]


def test_error_fault_answers_200_with_that_error(slack: LocalSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", Fault(error="not_in_channel"))

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="hi")

    assert caught.value.response.status_code == 200
    assert caught.value.response["error"] == "not_in_channel"


def test_deliver_fault_records_the_message_then_fails_the_call(slack: LocalSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", Fault(status=503, deliver=True))

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="did this go out?")

    assert caught.value.response.status_code == 503
    assert [m.text for m in slack.messages(DEI)] == ["did this go out?"]


def test_raw_body_fault_sends_that_body(slack: LocalSlack, client: WebClient) -> None:
    slack.fail_next("auth.test", Fault(status=502, body=b"<html>Bad Gateway</html>"))

    with pytest.raises(SlackApiError) as caught:
        client.auth_test()

    assert caught.value.response.status_code == 502
    assert "Bad Gateway" in caught.value.response["error"]


def test_slow_answer_outlasts_a_short_client_timeout(slack: LocalSlack) -> None:
    slack.fail_next("chat.postMessage", Fault(delay=0.6))

    with pytest.raises((TimeoutError, urllib.error.URLError)):
        bare_client(slack, timeout=0.2).chat_postMessage(channel=DEI, text="hi")


def test_fail_next_queues_faults_for_that_method_only(slack: LocalSlack, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", Fault(error="fatal_error"), times=2)

    client.auth_test()
    errors = []
    for _ in range(2):
        with pytest.raises(SlackApiError) as caught:
            client.chat_postMessage(channel=DEI, text="hi")
        errors.append(caught.value.response["error"])
    client.chat_postMessage(channel=DEI, text="third time")

    assert errors == ["fatal_error", "fatal_error"]
    assert slack.pending_faults("chat.postMessage") == 0
    assert [m.text for m in slack.messages(DEI)] == ["third time"]


def test_outage_answers_html_until_it_is_lifted(slack: LocalSlack, client: WebClient) -> None:
    slack.set_outage(503)
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="hi")
    slack.set_outage(None)
    client.chat_postMessage(channel=DEI, text="back")

    assert caught.value.response.status_code == 503
    assert "non-JSON" in caught.value.response["error"]
    assert [m.text for m in slack.messages(DEI)] == ["back"]


# -- rate limits ------------------------------------------------------------------------------


def test_second_quick_post_to_one_channel_is_rate_limited(
    make_slack: Callable[..., LocalSlack], clock: ManualClock
) -> None:
    slack = make_slack(channel_rate=1.0)
    client = bare_client(slack)

    client.chat_postMessage(channel=DEI, text="one")
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="two")
    client.chat_postMessage(channel=OIT, text="elsewhere")
    clock.advance(1.0)
    client.chat_postMessage(channel=DEI, text="later")

    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert [m.text for m in slack.messages(DEI)] == ["one", "later"]
    assert slack.rate_limited_count == 1


def test_workspace_rate_limits_posts_across_channels(
    make_slack: Callable[..., LocalSlack],
) -> None:
    slack = make_slack(workspace_rate=2.0)
    client = bare_client(slack)

    client.chat_postMessage(channel=DEI, text="one")
    client.chat_postMessage(channel=ALICE, text="two")
    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=BOB, text="three")

    assert caught.value.response["error"] == "ratelimited"
    assert slack.dms_to(BOB) == []


def test_random_429s_hit_only_chat_post_message(make_slack: Callable[..., LocalSlack]) -> None:
    slack = make_slack(random_429=1.0)
    client = bare_client(slack)

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel=DEI, text="hi")
    client.conversations_open(users=ALICE)

    assert caught.value.response.status_code == 429
    assert slack.rate_limited_count == 1


# -- response_url sinks, HTTP behaviour, housekeeping -----------------------------------------


def test_response_url_sinks_record_json_posts_per_url(slack: LocalSlack) -> None:
    first, second = slack.response_url(), slack.response_url()

    with httpx.Client() as http:
        answer = http.post(first, json={"text": "Saved", "replace_original": True})
        http.post(second, json={"text": "Other", "response_type": "in_channel"})
        stray = http.post(slack.root_url + "/webhook/999", json={"text": "lost"})

    assert (answer.status_code, answer.text) == (200, "ok")
    assert answer.headers["content-type"].startswith("text/plain")
    assert slack.responses(first) == [{"text": "Saved", "replace_original": True}]
    assert [r["text"] for r in slack.responses()] == ["Saved", "Other"]
    assert stray.status_code == 404
    with pytest.raises(UnknownResponseUrlError):
        slack.responses(slack.root_url + "/webhook/999")


def test_chunked_request_bodies_are_read(slack: LocalSlack) -> None:
    url = slack.response_url()

    with httpx.Client() as http:
        answer = http.post(
            url,
            content=iter([b'{"text": "Sa', b'ved"}']),
            headers={"content-type": "application/json"},
        )

    assert answer.request.headers["transfer-encoding"] == "chunked"
    assert slack.responses(url) == [{"text": "Saved"}]


async def test_keep_alive_serves_many_calls_on_one_connection(slack: LocalSlack) -> None:
    async with aiohttp.ClientSession() as session:
        aclient = AsyncWebClient(base_url=slack.base_url, token=TOKEN, session=session)
        for i in range(5):
            await aclient.chat_postMessage(channel=DEI, text=f"n{i}")
        await aclient.users_info(user=ALICE)

    assert slack.connection_count == 1
    assert len(slack.messages(DEI)) == 5


def test_concurrent_posts_from_many_threads_all_land(slack: LocalSlack) -> None:
    def post(i: int) -> str:
        client = WebClient(base_url=slack.base_url, token=TOKEN)
        return str(client.chat_postMessage(channel=DEI, text=f"n{i}")["ts"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        stamps = list(pool.map(post, range(64)))

    assert len(set(stamps)) == 64
    assert sorted(m.text for m in slack.messages(DEI)) == sorted(f"n{i}" for i in range(64))


def test_reset_forgets_traffic_but_keeps_the_directory(slack: LocalSlack, client: WebClient) -> None:
    dm = slack.dm_channel(ALICE)
    client.chat_postMessage(channel=ALICE, text="before")
    slack.fail_next("chat.postMessage", Fault(error="fatal_error"))

    slack.reset()
    reply = client.chat_postMessage(channel=ALICE, text="after")

    assert reply["channel"] == dm
    assert [m.text for m in slack.dms_to(ALICE)] == ["after"]
    assert [c.method for c in slack.calls] == ["chat.postMessage"]


def test_helpers_refuse_unknown_users_and_malformed_ids(slack: LocalSlack) -> None:
    with pytest.raises(UnknownUserError):
        slack.dm_channel("U0NOBODY")
    with pytest.raises(BadIdError):
        slack.add_channel("X0DEI", "dei")
    with pytest.raises(NotStartedError):
        _ = LocalSlack().base_url
