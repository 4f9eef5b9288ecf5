"""The equity scoring matrix: levels read by number or label, weighted totals, and ranking."""

from __future__ import annotations

from datetime import date

import pytest

from domain.scoring import Candidate, Criterion, Score, ScoreRefused, highest_total, rank, weighted_total

REACH = Criterion("reach", "Residents served in high-need areas", 3.0, ("none", "some", "many", "most"))
NEED = Criterion("need", "How great is the need addressed", 2.0, ("low", "medium", "high"))


@pytest.mark.parametrize(("text", "level"), [("0", 0), ("3", 3), ("most", 3), ("Some", 1)])
def test_a_level_is_read_by_its_number_or_its_label(text: str, level: int):
    assert REACH.level(text) == level


@pytest.mark.parametrize("text", ["4", "-1", "lots", "1.5", ""])
def test_a_level_the_criterion_does_not_have_is_refused_listing_the_levels(text: str):
    with pytest.raises(ScoreRefused) as caught:
        REACH.level(text)
    assert str(caught.value) == (
        f"'{text}' is not a level of reach (levels: 0 none, 1 some, 2 many, 3 most); nothing was scored."
    )


def test_the_total_weights_each_level_by_the_weight_it_was_scored_under():
    scores = [Score("reach", 2, 3.0), Score("need", 1, 2.0)]
    assert weighted_total(scores) == 8.0
    # Reweighting the plan later changes new scores only; this one keeps its 1.5.
    assert weighted_total([Score("reach", 2, 1.5)]) == 3.0
    assert highest_total([REACH, NEED]) == 13.0


def test_candidates_rank_by_total_then_the_earlier_due_date_and_unscored_ones_are_left_out():
    candidates = [
        Candidate("OIT-3", date(2027, 5, 1), 8.0),
        Candidate("OIT-1", date(2027, 3, 1), 8.0),
        Candidate("OIT-2", None, 11.0),
        Candidate("OIT-4", date(2027, 1, 1), None),
        Candidate("OIT-5", None, 8.0),
        Candidate("OIT-10", date(2027, 3, 1), 8.0),
    ]
    ranked = [(position, c.ref) for position, c in rank(candidates)]
    assert ranked == [(1, "OIT-2"), (2, "OIT-1"), (2, "OIT-10"), (4, "OIT-3"), (5, "OIT-5")]
