"""The check-in's Block Kit: the full prompt, and the short note that rides at the end of a digest."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from localslack.server import MESSAGE_BLOCK_LIMIT, block_problems
from messages.checkin import CHECKIN_OPEN, build_checkin_note, build_checkin_prompt
from storage.models import ActionItem, Measure
from storage.queries.checkins import CheckInSubject

ZONE = ZoneInfo("America/New_York")
NOON = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
DUE_ON = date(2027, 1, 15)


def an_item(number: int, title: str = "Translate the permit guide") -> ActionItem:
    """OIT-<number>, open, owned by maria."""
    return ActionItem(
        id=number,
        team_id="T0REAP",
        department_id=1,
        strategy_id=3,
        number=number,
        ref=f"OIT-{number}",
        title=title,
        owner_id="U0MARIA",
        due=date(2027, 3, 31),
        status="on_track",
        created_by="U0MARIA",
        created_at=NOON,
        updated_at=NOON,
    )


def a_measure(key: str) -> Measure:
    """A measure owned by maria."""
    return Measure(
        id=1,
        team_id="T0REAP",
        strategy_id=3,
        key=key,
        name="Residents <18 with broadband & a device",
        baseline=0,
        target=100,
        target_date=date(2027, 6, 30),
        owner_id="U0MARIA",
    )


def text_of(blocks: list[dict]) -> str:
    """Every mrkdwn text in the blocks, joined."""
    return " ".join(b["text"]["text"] for b in blocks if "text" in b)


@pytest.mark.parametrize(
    ("items", "measures", "followup", "says"),
    [
        (1, 0, False, "*Your FY2027-Q2 REAP check-in is open, due "),
        (3, 2, False, "One form covers your 3 open items and 2 measures."),
        (1, 1, True, "*A reminder: your FY2027-Q2 REAP check-in is open"),
        (0, 1, False, "One form covers your 1 measure."),
    ],
)
def test_the_note_counts_what_the_form_covers_and_has_the_check_in_button(
    items: int, measures: int, followup: bool, says: str
):
    subject = CheckInSubject(
        items=[an_item(n) for n in range(1, items + 1)],
        measures=[a_measure(f"m{n}") for n in range(measures)],
    )
    blocks = build_checkin_note("FY2027-Q2", subject, due_on=DUE_ON, zone=ZONE, followup=followup)
    assert says in text_of(blocks)
    assert "<!date^" in text_of(blocks), "the due date reads in the reader's own zone"
    assert [e["action_id"] for e in blocks[-1]["elements"]] == [CHECKIN_OPEN]
    assert blocks[-1]["elements"][0]["value"] == "FY2027-Q2"
    assert len(blocks) == 2 and block_problems(blocks, MESSAGE_BLOCK_LIMIT) == []


def test_the_full_prompt_escapes_titles_and_stays_within_slacks_limits():
    subject = CheckInSubject(
        items=[an_item(n, title=f"<!channel> fix & ship #{n}" + "x" * 150) for n in range(1, 120)],
        measures=[a_measure("broadband")],
    )
    blocks = build_checkin_prompt("FY2027-Q2", subject, zone=ZONE, today=date(2027, 1, 6))
    assert block_problems(blocks, MESSAGE_BLOCK_LIMIT) == []
    assert "<!channel>" not in text_of(blocks) and "&lt;!channel&gt; fix &amp; ship" in text_of(blocks)
    assert "broadband &amp; a device" in text_of(blocks)
    assert blocks[-1]["elements"][0]["action_id"] == CHECKIN_OPEN
