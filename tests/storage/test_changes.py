"""Change requests: a decision is made on the request and the item as they are when it is made."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.commitments import ChangeKind
from domain.errors import InvalidChange
from storage.changes import decide_request, get_request, propose_change
from storage.engine import Sessions, is_sqlite, transaction
from storage.items import get_item
from storage.permissions import Actor
from tests.factories import COORDINATOR, NOW, OWNER, TEAM, make_item, make_plan

LATER = NOW + timedelta(hours=1)


async def test_a_request_another_decider_declined_meanwhile_is_not_approved_too(
    database_url: str, sessions: Sessions
):
    """Two deciders on one request: the second, whose copy predates the first's decision, is refused."""
    if is_sqlite(database_url):
        pytest.skip("SQLite's writer holds the whole database, so nothing commits in between")
    async with transaction(sessions) as session:
        plan = await make_plan(session)
        await make_item(session, plan)
    async with transaction(sessions) as session:
        outcome = await propose_change(
            session,
            actor=Actor(TEAM, OWNER),
            ref="OIT-1",
            kind=ChangeKind.REDATE,
            value="2027-06-30",
            reason="the vendor slipped",
            today=NOW.date(),
            now=NOW,
        )
    assert outcome.request is not None
    number = outcome.request.id or 0

    async with transaction(sessions) as session:
        # Held, as a press holds the request it showed: the identity map keeps it while it is.
        shown = await get_request(session, team_id=TEAM, request_id=number)
        assert shown.state == "pending"
        async with transaction(sessions) as other:
            await decide_request(
                other,
                actor=Actor(TEAM, "U0ADMIN", is_admin=True),
                request_id=number,
                approve=False,
                note="the date is fixed by the grant",
                now=NOW,
            )
        with pytest.raises(InvalidChange, match="already declined"):
            await decide_request(
                session, actor=Actor(TEAM, COORDINATOR), request_id=number, approve=True, note=None, now=LATER
            )

    async with transaction(sessions) as session:
        item = await get_item(session, team_id=TEAM, ref="OIT-1")
        request = await get_request(session, team_id=TEAM, request_id=number)
    assert str(item.due) == "2026-12-15", "the declined date never applied"
    assert (request.state, request.decided_by) == ("declined", "U0ADMIN")
