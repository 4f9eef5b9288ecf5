"""The App Home's buttons and the global shortcut "Add REAP action item": thin listeners that ack,
make one service call, and answer the person by DM (Home has no channel to answer in), including
when the database cannot serve them (within the request's database time, as every request)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from commands import grammar as g
from commands import service as sv
from commands.handlers import (
    DATABASE_UNREACHABLE,
    answered,
    in_time,
    reap_of,
    request_deadline,
    team_of,
    unit_in_time,
)
from domain.errors import ReapError
from domain.fiscal import FiscalQuarter

log = logging.getLogger(__name__)


def _user(body: dict[str, Any]) -> str:
    return str(body.get("user_id") or (body.get("user") or {}).get("id"))


async def _tell(client: AsyncWebClient, user: str, reply: sv.Reply) -> None:
    await client.chat_postMessage(channel=user, text=reply.text, blocks=reply.blocks or None)


async def _open_add(reap: sv.Reap, body: dict[str, Any], client: AsyncWebClient, deadline: float) -> None:
    async def read() -> sv.Reply:
        caller = await sv.caller_for(
            reap, team_id=team_of(body), user_id=_user(body), trigger_id=body.get("trigger_id")
        )
        return await sv.open_add_modal(reap, caller=caller)

    try:
        reply = await in_time(reap, deadline, read())
    except ReapError as exc:
        await _tell(client, _user(body), sv.error_reply(exc))
        return
    for followup in reply.followups:
        await followup(client)


async def on_add_shortcut(
    ack: AsyncAck, shortcut: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """The global shortcut "Add REAP action item": the Add form."""
    await ack()
    reap = reap_of(context)
    reap.spawn(answered(_open_add(reap, shortcut, client, request_deadline(context)), shortcut, client))


async def on_add(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Home's "Add an item": the Add form."""
    await ack()
    reap = reap_of(context)
    reap.spawn(answered(_open_add(reap, body, client, request_deadline(context)), body, client))


async def _run(
    reap: sv.Reap, body: dict[str, Any], client: AsyncWebClient, make: Any, deadline: float
) -> None:
    async def run() -> tuple[sv.Caller, sv.Reply]:
        caller = await sv.caller_for(reap, team_id=team_of(body), user_id=_user(body))
        quarter = FiscalQuarter.containing(caller.today, reap.org.fiscal_year_start_month)
        return caller, await sv.run_command(reap, caller=caller, command=make(quarter))

    try:
        caller, reply = await unit_in_time(reap, deadline, run)
    except ReapError as exc:
        await _tell(client, _user(body), sv.error_reply(exc))
        return
    await _tell(client, caller.actor.user_id, reply)
    for followup in reply.followups:
        await followup(client)
    # The Home's buttons follow what changed (a check-in now open offers "Answer" instead of "Start").
    try:
        view = await sv.home_view(reap, caller=caller)
    except DATABASE_UNREACHABLE as exc:
        # The change is made and the person was told: a stale Home is no reason to say otherwise.
        log.warning(
            "could not refresh %s's Home after their change (%s)", caller.actor.user_id, type(exc).__name__
        )
        return
    await client.views_publish(user_id=caller.actor.user_id, view=view)


async def on_start_checkin(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Home's "Start the check-in": `/reap checkin start` for this quarter (coordinators)."""
    await ack()
    reap = reap_of(context)
    work = _run(reap, body, client, lambda quarter: g.CheckIn("start", quarter), request_deadline(context))
    reap.spawn(answered(work, body, client))


async def on_rollup(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Home's "Post the rollup": `/reap rollup` for this quarter into its usual channels (coordinators)."""
    await ack()
    reap = reap_of(context)
    work = _run(reap, body, client, lambda quarter: g.Rollup(quarter, None, None), request_deadline(context))
    reap.spawn(answered(work, body, client))
