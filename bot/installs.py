"""REAP_INSTALL=oauth: Bolt's OAuth flow on the project's database, a token per workspace or org
(rotated before it expires), and uninstalls that stop everything for a workspace but keep its data.

Single-workspace mode (SLACK_BOT_TOKEN) needs none of this; bot/app.py chooses by the settings.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncBoltContext
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import AsyncSQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import BOT_SCOPES, Settings
from reminders.delivery import sending_for
from storage.engine import Sessions, transaction
from storage.installations import enterprise_of, is_served, mark_uninstalled, record_install

log = logging.getLogger(__name__)

# What a person sees when their workspace's installation is gone (or was never made).
NOT_INSTALLED = (
    "REAP Tracker is not installed in this workspace any more. Ask your Slack administrator to "
    "install it again; nothing was changed."
)
STATE_SECONDS = 600
# Rotate a bot token this long before it expires (Slack's rotating tokens live 12 hours).
ROTATE_MINUTES = 120


@dataclass
class OAuth:
    """The OAuth pieces one process shares: the stores, Bolt's settings and the token resolver."""

    settings: AsyncOAuthSettings
    store: AsyncSQLAlchemyInstallationStore
    tokens: TeamTokens
    # Workspaces already known to be served through their org (their Installation row written).
    seen: set[str] = field(default_factory=set)


def engine_of(sessions: Sessions) -> AsyncEngine:
    """The engine a session factory is bound to: the stores share the project's engine."""
    bind = sessions.kw.get("bind")
    if not isinstance(bind, AsyncEngine):
        raise TypeError("the session factory is not bound to an AsyncEngine")
    return bind


def build_oauth(
    settings: Settings, sessions: Sessions, client: AsyncWebClient, *, clock: Callable[[], datetime]
) -> OAuth:
    """Bolt's OAuth settings with slack_sdk's SQLAlchemy stores on the project's engine."""
    settings.require("slack_client_id", "slack_client_secret")
    client_id = str(settings.slack_client_id)
    client_secret = settings.secret("slack_client_secret")
    engine = engine_of(sessions)
    store = AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=engine, logger=log)
    states = AsyncSQLAlchemyOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=engine, logger=log)

    async def installed(args: AsyncSuccessArgs) -> BoltResponse:
        found = args.installation
        org_wide = bool(found.is_enterprise_install)
        key = (found.enterprise_id if org_wide else found.team_id) or ""
        async with transaction(sessions) as session:
            await record_install(
                session,
                team_id=key,
                enterprise_id=found.enterprise_id,
                is_enterprise_install=org_wide,
                team_name=(found.enterprise_name if org_wide else found.team_name) or "",
                bot_user_id=found.bot_user_id or "",
                installer=found.user_id or "",
                now=clock(),
            )
        log.info("installed into %s%s", key, " (org-wide)" if org_wide else "")
        return await args.default.success(args)

    async def refused(args: AsyncFailureArgs) -> BoltResponse:
        # A wrong, reused or expired state, a cancelled install: Bolt's page says so; nothing is stored.
        log.warning("refused an OAuth callback: %s", args.reason)
        return await args.default.failure(args)

    oauth_settings = AsyncOAuthSettings(
        client_id=client_id,
        client_secret=client_secret,
        scopes=list(BOT_SCOPES),
        redirect_uri=settings.slack_redirect_uri,
        authorization_url=settings.slack_authorize_url,
        installation_store=store,
        installation_store_bot_only=True,
        state_store=states,
        state_expiration_seconds=STATE_SECONDS,
        token_rotation_expiration_minutes=ROTATE_MINUTES,
        callback_options=AsyncCallbackOptions(success=installed, failure=refused),
        logger=log,
    )
    rotator = AsyncTokenRotator(client_id=client_id, client_secret=client_secret, client=client)
    tokens = TeamTokens(store=store, rotator=rotator, sessions=sessions)
    return OAuth(settings=oauth_settings, store=store, tokens=tokens)


@dataclass
class TeamTokens:
    """The bot token of a workspace (or of the org serving it), rotated when it nears expiry.

    Requests get theirs from Bolt's InstallationStoreAuthorize; the reminder tick, which no
    request carries, asks here.
    """

    store: AsyncInstallationStore
    rotator: AsyncTokenRotator
    sessions: Sessions

    async def token(self, team_id: str) -> str | None:
        """The bot token serving `team_id`, or None if no installation serves it."""
        async with self.sessions() as session:
            enterprise_id = await enterprise_of(session, team_id=team_id)
            if not await is_served(session, team_id=team_id, enterprise_id=enterprise_id):
                return None
        bot = await self.store.async_find_bot(
            enterprise_id=enterprise_id, team_id=team_id, is_enterprise_install=False
        )
        if bot is None and enterprise_id:
            bot = await self.store.async_find_bot(
                enterprise_id=enterprise_id, team_id=None, is_enterprise_install=True
            )
        if bot is None:
            return None
        refreshed = await self.rotator.perform_bot_token_rotation(
            bot=bot, minutes_before_expiration=ROTATE_MINUTES
        )
        if refreshed is not None:
            await self.store.async_save_bot(refreshed)
            bot = refreshed
        return bot.bot_token


class TeamTokenClient(AsyncWebClient):
    """A client without a token of its own: each call made while the reminder tick works for a
    workspace (reminders.delivery.sending_for) carries that workspace's bot token, and a call for
    a workspace no installation serves fails as Slack would (not_authed) instead of going out."""

    def __init__(self, tokens: TeamTokens | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tokens = tokens

    def without_retries(self) -> TeamTokenClient:
        """The same client for delivery, which owns its retries."""
        return TeamTokenClient(self.tokens, base_url=self.base_url, timeout=self.timeout, retry_handlers=[])

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: Any = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: Any = None,
    ) -> AsyncSlackResponse:
        """Slack's api_call, with the token of the workspace being served."""
        if isinstance(auth, dict):
            # oauth.v2.access (installs and token rotation): slack_sdk would wrap the app's
            # credentials in aiohttp's deprecated BasicAuth; the header is the same thing.
            pair = f"{auth['client_id']}:{auth['client_secret']}".encode()
            headers = {**(headers or {}), "Authorization": "Basic " + base64.b64encode(pair).decode()}
            auth = None
        team = sending_for.get()
        if (
            team is not None
            and auth is None
            and self.tokens is not None
            and "Authorization" not in (headers or {})
        ):
            # No installation serves it: Slack refuses a call without a real token (invalid_auth).
            token = await self.tokens.token(team) or "not-installed"
            # slack_sdk takes a `token` field of params or json as this call's token.
            if json is not None:
                json = {**json, "token": token}
            else:
                params = {**(params or {}), "token": token}
        return await super().api_call(
            api_method,
            http_verb=http_verb,
            files=files,
            data=data,
            params=params,
            json=json,
            headers=headers,
            auth=auth,
        )


def uninstall_listener(oauth: OAuth, sessions: Sessions, *, clock: Callable[[], datetime]) -> Any:
    """app_uninstalled and tokens_revoked: remove the tokens, mark the workspace (data kept) and
    settle whatever was still owed to it."""

    async def on_gone(body: dict[str, Any], context: AsyncBoltContext) -> None:
        event = body.get("event") or {}
        enterprise_id = context.enterprise_id
        team_id = None if context.is_enterprise_install else context.team_id
        if event.get("type") == "tokens_revoked" and not (event.get("tokens") or {}).get("bot"):
            # Only user tokens were revoked; the bot still serves the workspace.
            await oauth.store.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)
            return
        await oauth.store.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)
        async with transaction(sessions) as session:
            marked = await mark_uninstalled(
                session,
                team_id=team_id,
                enterprise_id=enterprise_id,
                now=clock(),
                why=str(event.get("type") or "uninstalled"),
            )
        oauth.seen.difference_update(marked)
        log.info("uninstalled from %s; its data is kept and nothing more is sent to it", ", ".join(marked))

    return on_gone


async def note_org_workspace(
    oauth: OAuth, sessions: Sessions, context: AsyncBoltContext, *, now: datetime
) -> None:
    """Record a workspace served through an org-wide install the first time it is seen, so the
    reminder tick serves it (with the org's token) and an uninstall of the org reaches it."""
    team_id, enterprise_id = context.team_id, context.enterprise_id
    if not (context.is_enterprise_install and team_id and enterprise_id) or team_id in oauth.seen:
        return
    async with transaction(sessions) as session:
        known = await enterprise_of(session, team_id=team_id) is not None
        if known or not await is_served(session, team_id=team_id, enterprise_id=enterprise_id):
            oauth.seen.add(team_id)
            return
        await record_install(
            session,
            team_id=team_id,
            enterprise_id=enterprise_id,
            is_enterprise_install=False,
            team_name="",
            bot_user_id=context.bot_user_id or "",
            installer="org",
            now=now,
        )
    oauth.seen.add(team_id)
