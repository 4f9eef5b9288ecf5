"""Measure and scoring-matrix commands: record a reading, list measures, score an item, rank candidates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commands import grammar as g
from domain.errors import NotFound
from domain.fiscal import FiscalQuarter
from domain.numbers import format_number
from domain.scoring import highest_total, weighted_total
from messages import measures as mm
from messages import primitives as ui
from storage.engine import reading, transaction
from storage.items import get_item
from storage.measures import (
    GroupValue,
    candidates,
    criteria_for,
    criterion_of,
    ranking,
    record_reading,
    score_item,
    scores_of,
)
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
        item = await get_item(session, team_id=team_id, ref=command.ref)
        criteria = [criterion_of(row) for row in await criteria_for(session, item=item)]
        scores = (await scores_of(session, item_ids=[item.id or 0])).get(item.id or 0, [])
    card = mm.ScoreCard(
        ref=item.ref,
        title=item.title,
        criteria=criteria,
        scores=scores,
        total=weighted_total(scores),
        top=highest_total(criteria),
    )
    return _reply(f"{item.ref} scores {format_number(card.total)}", mm.build_score_reply(card))


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
