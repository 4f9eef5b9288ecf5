"""The Slack Web API client the whole process shares, and the workspace it serves."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import select

from bot.settings import Settings
from domain.errors import ReapError
from storage.engine import Sessions, transaction
from storage.models import Department, Installation


class WorkspaceUnknown(ReapError):
    """We could not learn which Slack workspace this installation serves."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"I don't know which Slack workspace this is ({reason}). Set SLACK_BOT_TOKEN so I can ask "
            "Slack (auth.test), or name `workspace: T...` in the plan file."
        )


def make_client(settings: Settings, *, retries: bool = True) -> AsyncWebClient:
    """An AsyncWebClient on SLACK_API_URL with an explicit timeout and retry handlers."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    handlers = (
        [
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ]
        if retries
        else []
    )
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=int(settings.slack_timeout_seconds),
        retry_handlers=handlers,
    )


async def installation(sessions: Sessions) -> Installation | None:
    """The workspace recorded for this installation, if any."""
    async with sessions() as session:
        return (await session.exec(select(Installation))).first()


async def learn_workspace(sessions: Sessions, client: AsyncWebClient, *, now: datetime) -> Installation:
    """Ask Slack (auth.test) which workspace the bot token belongs to, and remember it."""
    if not client.token:
        raise WorkspaceUnknown("SLACK_BOT_TOKEN is not set")
    try:
        answer = await client.auth_test()
    except SlackApiError as exc:
        raise WorkspaceUnknown(f"auth.test said {exc.response.get('error', 'error')}") from None
    except OSError as exc:
        raise WorkspaceUnknown(f"Slack could not be reached: {type(exc).__name__}") from None
    async with transaction(sessions) as session:
        row = await session.get(Installation, str(answer["team_id"]))
        if row is None:
            row = Installation(team_id=str(answer["team_id"]), updated_at=now)
            session.add(row)
        row.team_name = str(answer.get("team") or "")
        row.bot_user_id = str(answer.get("user_id") or "")
        row.updated_at = now
    return row


async def workspace_id(sessions: Sessions, client: AsyncWebClient | None, *, now: datetime) -> str:
    """The installation's workspace id: remembered, or learned from auth.test."""
    known = await installation(sessions)
    if known is not None:
        return known.team_id
    async with sessions() as session:
        # A plan imported with `workspace:` names its team before the bot has ever met Slack.
        teams = list(await session.exec(select(Department.team_id).distinct()))
    if len(teams) == 1:
        return teams[0]
    if client is None:
        raise WorkspaceUnknown("no workspace recorded yet")
    return (await learn_workspace(sessions, client, now=now)).team_id
