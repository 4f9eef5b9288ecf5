"""Measure and scoring-matrix commands: record a reading, list measures, score an item, rank candidates."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from commands import grammar as g
from domain.errors import NotFound
from domain.fiscal import FiscalQuarter
from domain.numbers import format_number
from domain.scoring import highest_total, weighted_total
from domain.text import NOTE_MAX, trimmed_problem
from messages import measures as mm
from messages import primitives as ui
from storage.engine import reading, transaction
from storage.items import get_item
from storage.measures import (
    GroupValue,
    candidates,
    criteria_for,
    criterion_of,
    no_criteria,
    ranking,
    record_reading,
    score_item,
    scores_of,
)
from storage.models import ActionItem
from storage.permissions import ensure_can_edit
from storage.queries.items import find_strategy
from storage.queries.rollup import measure_lines

if TYPE_CHECKING:
    from commands.service import Caller, Reap, Reply


def _reply(text: str, blocks: list[dict[str, Any]]) -> Reply:
    # commands.service dispatches here, so its Reply is imported when first needed, not at import.
    from commands.service import Reply

    return Reply(text=text, blocks=blocks)


async def run_measure(reap: Reap, *, caller: Caller, command: g.RecordMeasure) -> Reply:
    """`/reap measure <key> [value] [quarter] [group=value ...] ["note"]`."""
    async with transaction(reap.sessions) as session:
        saved = await record_reading(
            session,
            actor=caller.actor,
            key=command.key,
            quarter=command.quarter.label,
            value=command.value,
            note=command.note,
            now=caller.now,
            groups={key: GroupValue(value) for key, value in command.groups},
            start_month=reap.org.fiscal_year_start_month,
        )
    by_group = ", ".join(f"{ui.escape(k)} {format_number(v)}" for k, v in command.groups)
    text = f"Recorded {ui.escape(command.key)} = {format_number(saved.value)} for {command.quarter.label}"
    text += f" ({by_group})." if by_group else "."
    return _reply(text, [ui.section(text)])


async def run_measures(reap: Reap, *, caller: Caller, command: g.ListMeasures) -> Reply:
    """`/reap measures [mine | strategy <name>]`: keys, owners, latest values and status."""
    team_id = caller.actor.team_id
    quarter = FiscalQuarter.containing(caller.today, reap.org.fiscal_year_start_month)
    title = "Measures"
    async with reading(reap.sessions) as session:
        strategy_id = None
        if command.scope == "strategy":
            strategy = await find_strategy(session, team_id=team_id, name=command.strategy or "")
            if strategy is None:
                raise NotFound("strategy", f"'{command.strategy}'")
            strategy_id, title = strategy.id, f"Measures of {strategy.name}"
        owner = caller.actor.user_id if command.scope == "mine" else None
        if owner:
            title = "Your measures"
        placed = await measure_lines(
            session, team_id=team_id, quarter=quarter, owner_id=owner, strategy_id=strategy_id
        )
    blocks = mm.build_measure_list(placed, title=title, quarter=quarter.label)
    return _reply(f"{title}: {len(placed)}", blocks)


async def run_score(reap: Reap, *, caller: Caller, command: g.ScoreItem) -> Reply:
    """`/reap score <ref> criterion=level ... ["note"]` by the item's owner or a coordinator."""
    team_id = caller.actor.team_id
    async with transaction(reap.sessions) as session:
        await score_item(
            session,
            actor=caller.actor,
            ref=command.ref,
            levels=dict(command.levels),
            note=command.note,
            now=caller.now,
        )
        card = await _score_card(session, await get_item(session, team_id=team_id, ref=command.ref))
    return _reply(f"{card.ref} scores {format_number(card.total)}", mm.build_score_reply(card))


async def open_score_form(reap: Reap, *, caller: Caller, command: g.ScoreForm) -> Reply:
    """`/reap score <ref>`: ack quietly and open the Score form, for whoever may score the item."""
    async with reading(reap.sessions) as session:
        item = await get_item(session, team_id=caller.actor.team_id, ref=command.ref)
        # Refused here, before a form that could only be refused on submit.
        await ensure_can_edit(session, actor=caller.actor, item=item, action=f"score {item.ref}")
        card = await _score_card(session, item)
    if not card.criteria:
        raise no_criteria(card.ref)
    # Only the ref comes back with the form: the answer to it goes to the scorer's DM, so nothing
    # a returned form carries decides where the bot posts.
    view = mm.build_score_modal(card, metadata={})
    trigger = caller.trigger_id

    async def open_view(client: AsyncWebClient) -> None:
        await client.views_open(trigger_id=trigger, view=view)

    reply = _reply("", [])
    reply.followups.append(open_view)
    return reply


def parse_score_form(values: dict[str, Any], *, ref: str) -> g.ScoreItem | dict[str, str]:
    """Read the Score form's state into the command it stands for, or inline errors by block_id."""
    levels: list[tuple[str, str]] = []
    first = None
    for block_id, state in values.items():
        if not block_id.startswith(mm.CRITERION_BLOCK):
            continue
        first = first or block_id
        option = ((state or {}).get("value") or {}).get("selected_option")
        if option is None:
            continue  # left empty: this criterion keeps what it had
        value = option.get("value") if isinstance(option, dict) else None
        # Only a level the form offered, spelled as it offered it (not " 1", "01" or "²").
        if not isinstance(value, str) or not _LEVEL.fullmatch(value):
            return {block_id: "Choose one of the levels offered."}
        levels.append((block_id.removeprefix(mm.CRITERION_BLOCK), value))
    if not levels:
        return {first or "note": "Choose a level for at least one criterion."}
    raw = str((((values.get("note") or {}).get("value") or {}).get("value")) or "")
    if raw and (problem := trimmed_problem(raw, field="note", limit=NOTE_MAX, multiline=True)):
        return {"note": problem}
    return g.ScoreItem(ref, tuple(levels), raw.strip() or None)


_LEVEL = re.compile(r"0|[1-9][0-9]{0,2}")


async def _score_card(session: AsyncSession, item: ActionItem) -> mm.ScoreCard:
    criteria = [criterion_of(row) for row in await criteria_for(session, item=item)]
    scores = (await scores_of(session, item_ids=[item.id or 0])).get(item.id or 0, [])
    return mm.ScoreCard(
        ref=item.ref,
        title=item.title,
        criteria=criteria,
        scores=scores,
        total=weighted_total(scores),
        top=highest_total(criteria),
    )


async def run_ranked(reap: Reap, *, caller: Caller, strategy_name: str | None) -> Reply:
    """`/reap list ranked [strategy]`: candidates by weighted score, ties by due date."""
    team_id = caller.actor.team_id
    title = "Ranked candidates"
    async with reading(reap.sessions) as session:
        strategy_id = None
        if strategy_name:
            strategy = await find_strategy(session, team_id=team_id, name=strategy_name)
            if strategy is None:
                raise NotFound("strategy", f"'{strategy_name}'")
            strategy_id, title = strategy.id, f"Ranked candidates in {strategy.name}"
        found = await candidates(session, team_id=team_id, strategy_id=strategy_id)
    ranked = ranking(found)
    unscored = sum(1 for i in found.items if i.id not in found.scores)
    return _reply(f"{title}: {len(ranked)}", mm.build_ranked_list(ranked, title=title, unscored=unscored))
