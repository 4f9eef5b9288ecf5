"""Scoring in Slack: the Score form (every criterion with its levels, the current scores chosen,
within Slack's limits) and the ranked list that points to it."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from domain.rollup import RankedLine
from domain.scoring import Criterion, Score
from messages.measures import CRITERION_BLOCK, SCORE_MODAL, ScoreCard, build_ranked_list, build_score_modal

NEED = Criterion("need", "How much need does it meet?", 2.0, ("low", "medium", "high", "highest"))
REACH = Criterion("reach", "How many residents does it reach?", 1.0, ("none", "some", "most"))


def card(*criteria: Criterion, scores: tuple[Score, ...] = ()) -> ScoreCard:
    """OIT-12's score card against `criteria`."""
    return ScoreCard(
        ref="OIT-12",
        title="Wi-Fi at <Hunting Park> & rec centers",
        criteria=criteria,
        scores=scores,
        total=sum(s.level * s.weight for s in scores),
        top=sum(c.top * c.weight for c in criteria),
    )


def inputs(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The form's input blocks by block_id."""
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def test_each_criterion_is_one_optional_choice_of_its_levels_with_its_weight():
    view = build_score_modal(card(NEED, REACH), metadata={"channel": "C0GENERAL"})

    fields = inputs(view)
    assert list(fields) == [f"{CRITERION_BLOCK}need", f"{CRITERION_BLOCK}reach", "note"]
    need = fields[f"{CRITERION_BLOCK}need"]
    assert need["label"]["text"] == "How much need does it meet?" and need["optional"] is True
    assert need["hint"]["text"] == "Weight 2"
    assert [(o["text"]["text"], o["value"]) for o in need["element"]["options"]] == [
        ("0 low", "0"),
        ("1 medium", "1"),
        ("2 high", "2"),
        ("3 highest", "3"),
    ]
    assert "initial_option" not in need["element"], "nothing is chosen for a criterion not yet scored"
    assert view["callback_id"] == SCORE_MODAL and view["title"]["text"] == "Score OIT-12"
    assert json.loads(view["private_metadata"]) == {"channel": "C0GENERAL", "ref": "OIT-12"}


def test_a_criterion_already_scored_opens_at_its_level_and_the_heading_says_the_total():
    view = build_score_modal(card(NEED, REACH, scores=(Score("reach", 2, 1.0),)), metadata={})

    reach = inputs(view)[f"{CRITERION_BLOCK}reach"]
    assert reach["element"]["initial_option"] == reach["element"]["options"][2]
    assert reach["element"]["options"][2]["value"] == "2"
    heading = view["blocks"][0]["text"]["text"]
    assert heading.startswith("*OIT-12* Wi-Fi at &lt;Hunting Park&gt; &amp; rec centers scores *2* of 8")


def test_a_matrix_larger_than_a_form_shows_what_fits_and_says_how_to_score_the_rest():
    many = [Criterion(f"c{i}", f"Question {i}?", 1.0, ("no", "yes")) for i in range(120)]

    view = build_score_modal(card(*many), metadata={})

    assert len(view["blocks"]) == 100, "Slack's limit for a view"
    assert sum(b["block_id"].startswith(CRITERION_BLOCK) for b in inputs(view).values()) == 97
    told = [b for b in view["blocks"] if b["type"] == "context"]
    assert "first 97 of 120 criteria" in told[0]["elements"][0]["text"]
    assert "/reap score OIT-12 criterion=level" in told[0]["elements"][0]["text"]


def test_the_ranked_list_says_how_to_score_what_it_cannot_rank_yet():
    nothing = build_ranked_list([], title="Ranked candidates", unscored=3)
    assert "Score a candidate in a form with `/reap score <ref>`" in str(nothing)

    one = RankedLine(
        rank=1, ref="OIT-12", title="Wi-Fi", score=6, top=8, due=date(2027, 3, 1), status="on_track"
    )
    some = build_ranked_list([one], title="Ranked candidates", unscored=2)
    assert "1. *OIT-12* Wi-Fi · score 6 of 8" in str(some)
    assert some[-1] == {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": "2 more not scored yet: `/reap score <ref>` opens the Score form."}
        ],
    }
