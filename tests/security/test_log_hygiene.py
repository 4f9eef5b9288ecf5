"""Secrets stay secret: the bot token and signing secret never reach a log record or an HTTP answer.

The records are checked as the loggers emit them, before any handler's redaction filter, with
every logger (ours, Bolt's, slack_sdk's, the HTTP clients', uvicorn's) at DEBUG.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from bot.logs import TOKEN_PATTERN
from localslack.server import Fault
from messages.blocks import ADD_MODAL, DONE, UPDATE
from tests.factories import OTHER, OWNER
from tests.harness import SECRET, TOKEN, Bot, sign
from tests.security import FORM, seeded_bot

LOGGERS = [
    "",
    "bot",
    "commands",
    "storage",
    "reminders",
    "reap.bolt",
    "slack_bolt",
    "slack_sdk",
    "httpx",
    "httpcore",
    "aiohttp",
    "asyncio",
    "sqlalchemy.engine",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
]


@pytest.fixture
async def bot(database_url: str) -> AsyncIterator[Bot]:
    """A running bot with the OIT plan (OIT-1 of OWNER)."""
    async with seeded_bot(database_url) as bot:
        yield bot


@pytest.fixture
def every_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for every logger, including uvicorn's, which do not propagate to the root."""
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    detached = [
        logging.getLogger(n) for n in ("uvicorn", "uvicorn.access") if not logging.getLogger(n).propagate
    ]
    for logger in detached:
        logger.addHandler(caplog.handler)
    yield caplog
    for logger in detached:
        logger.removeHandler(caplog.handler)


def texts_of(record: logging.LogRecord) -> list[str]:
    """Everything a formatter could print from a record: message, raw args, exception, stack."""
    texts = [str(record.msg), repr(record.args), record.getMessage()]
    if record.exc_info and record.exc_info[1] is not None:
        texts.append("".join(traceback.format_exception(record.exc_info[1])))
    texts += [record.exc_text or "", record.stack_info or ""]
    return texts


def leaks(text: str) -> list[str]:
    """Which secrets (or token-shaped strings) `text` contains."""
    found = [name for name, secret in (("bot token", TOKEN), ("signing secret", SECRET)) if secret in text]
    return found + [f"token-shaped {m!r}" for m in TOKEN_PATTERN.findall(text)]


async def traffic(bot: Bot) -> list[httpx.Response]:
    """A representative hour of requests, including refusals, a Slack outage and a crashing listener."""
    responses = [
        await bot.command(OWNER, "list mine"),
        await bot.command(OWNER, 'status OIT-1 at-risk "vendor delay"'),
        await bot.command(OWNER, "show OIT-1"),
        await bot.command(OTHER, "done OIT-1"),
        await bot.command(OWNER, "due OIT-1 Feb 30"),
        await bot.interact(bot.block_action(OTHER, DONE, value="OIT-1")),
    ]
    body = b"command=%2Freap&text=help&team_id=T0REAP&user_id=U0OWNER"
    responses.append(await bot.post(body, content_type=FORM, headers=sign(body, secret="guessed")))
    responses.append(await bot.post(b"\xff\xfe", content_type=FORM))
    # Slack fails the DM that confirms an added item: a 500 (retried), then an error the task logs.
    bot.slack.fail_next("chat.postMessage", Fault(status=500))
    bot.slack.fail_next("chat.postMessage", Fault(error="channel_not_found"))
    values = {
        "title": {"value": {"type": "plain_text_input", "value": "Publish the language access plan"}},
        "strategy": {"value": {"type": "static_select", "selected_option": {"value": "1"}}},
        "owner": {"value": {"type": "users_select", "selected_user": OWNER}},
    }
    add_view = {"type": "modal", "callback_id": ADD_MODAL, "private_metadata": json.dumps({})}
    responses.append(await bot.interact(bot.view_submission(OWNER, add_view, values)))
    # Slack refuses to open a modal (an expired trigger): Bolt logs the listener's traceback.
    bot.slack.fail_next("views.open", Fault(error="expired_trigger_id"))
    responses.append(await bot.interact(bot.block_action(OWNER, UPDATE, value="OIT-1")))
    # auth.test fails while the bot learns who it is, then succeeds.
    bot.slack.fail_next("auth.test", Fault(error="invalid_auth"))
    await bot.app.learn_identity()
    await bot.app.learn_identity()
    responses.append(await bot.http.get(f"{bot.url}/healthz"))
    return responses


async def test_no_log_record_and_no_answer_carries_the_token_or_the_signing_secret(
    bot: Bot, every_record: pytest.LogCaptureFixture
):
    responses = await traffic(bot)

    assert bot.slack.pending_faults("chat.postMessage") == 0, "the Slack failure was exercised"
    assert bot.slack.pending_faults("views.open") == 0 and bot.app.identity.team_id == bot.team_id
    records = every_record.records
    assert any(r.name.startswith("slack_sdk") and r.levelno == logging.DEBUG for r in records), "DEBUG is on"
    assert any(r.levelno >= logging.ERROR for r in records), "the failures were logged"
    leaked = {
        f"{r.name}:{r.levelname}: {r.getMessage()[:120]!r}": found
        for r in records
        if (found := [leak for text in texts_of(r) for leak in leaks(text)])
    }
    assert leaked == {}
    for response in responses:
        assert leaks(response.text) == [] and leaks(str(response.headers)) == [], response.text
