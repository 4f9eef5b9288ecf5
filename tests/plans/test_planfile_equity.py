"""The plan file carries the equity data: measures with baseline and target quarters, breakdowns,
readings by group, the scoring matrix and its scores, the change policy and evidence."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from domain.fiscal import FiscalQuarter
from plans.planfile import PlanFileError, import_plan, parse_plan_file
from reports.rollup import render_json
from storage.engine import Sessions, transaction
from storage.models import ActionItem, ItemScore, Plan
from storage.queries.rollup import build_rollup

DEMO = Path(__file__).resolve().parents[2] / "examples" / "oit-reap.yaml"
TEAM = "T0REAP"
NOW = datetime(2026, 11, 30, 15, tzinfo=UTC)


def demo() -> str:
    """The demo plan file's text."""
    return DEMO.read_text(encoding="utf-8")


def edit(text: str, old: str, new: str) -> str:
    """Replace the one occurrence of `old`, so an edit can never silently miss."""
    assert text.count(old) == 1, f"expected exactly one {old!r}"
    return text.replace(old, new)


async def run_import(sessions: Sessions, text: str, *, now: datetime = NOW) -> None:
    """Parse and import `text` into TEAM, committed."""
    async with transaction(sessions) as session:
        await import_plan(
            session, document=parse_plan_file(text, filename="oit-reap.yaml"), team_id=TEAM, now=now
        )


async def demo_report(sessions: Sessions) -> dict:
    """The demo plan's FY2027-Q2 rollup as the JSON report gives it."""
    await run_import(sessions, demo())
    async with sessions() as session:
        rollup = await build_rollup(
            session, team_id=TEAM, quarter=FiscalQuarter(2027, 2), as_of=date(2027, 1, 6)
        )
    return json.loads(render_json(rollup))


def measures(report: dict) -> dict[str, dict]:
    """Every measure object of the report, by key."""
    return {m["key"]: m for s in report["departments"][0]["strategies"] for m in s["measures"]}


async def test_on_the_demo_plan_measures_that_are_progressing_show_on_track(sessions: Sessions):
    statuses = {key: m["status"] for key, m in measures(await demo_report(sessions)).items()}
    assert statuses == {
        "projects-equity-scored": "on_track",
        "days-to-equity-review": "on_track",
        "partnership-hires": "on_track",
        "pipeline-hires": "on_track",
        "staff-equity-trained": "on_track",
        "devices-high-need-tracts": "on_track",
        # 83 -> 86 of 90 is 43% of the way with 50% of the year gone; Wi-Fi waited on permits.
        "home-internet": "at_risk",
        "wifi-sites-high-need": "at_risk",
    }


async def test_the_json_report_gives_every_groups_value_gap_and_ratio_or_index_by_hand(sessions: Sessions):
    found = measures(await demo_report(sessions))
    internet = found["home-internet"]
    assert internet["breakdown"] | {} == {
        "dimension": "need",
        "name": "Neighborhood need",
        "kind": "rate",
        "reference": 93.0,
        "min_count": 10,
        "largest_gap": "high-need",
        "narrowed_since_last": True,  # 75 vs 93 was 18 points; 78 vs 93 is 15
        "narrowed_since_baseline": True,  # 71 vs 92 was 21 points
    }
    groups = {g["key"]: g for g in internet["groups"]}
    assert (groups["high-need"]["gap"], groups["high-need"]["ratio"]) == (-15.0, pytest.approx(78 / 93))
    assert (groups["moderate-need"]["gap"], groups["moderate-need"]["ratio"]) == (
        -6.0,
        pytest.approx(87 / 93),
    )
    assert groups["low-need"]["reference"] is True
    assert [p["value"] for p in internet["series"]] == [83, 85, 86]

    devices = {g["key"]: g for g in found["devices-high-need-tracts"]["groups"]}
    assert found["devices-high-need-tracts"]["latest"] == 2600  # the total of its groups
    assert devices["high-need"]["share"] == pytest.approx(1480 / 2600)
    assert devices["high-need"]["gap"] == pytest.approx((1480 / 2600 - 0.30) * 100)
    assert devices["low-need"]["index"] == pytest.approx((300 / 2600) / 0.30)

    hires = {g["key"]: g for g in found["pipeline-hires"]["groups"]}
    assert hires["black"]["gap"] == pytest.approx((18 / 39 - 0.39) * 100)
    assert hires["white"]["index"] == pytest.approx((11 / 39) / 0.34)
    for small in ("hispanic", "asian", "other"):  # 7, 2 and 1 hires: never shown
        assert hires[small] == {"key": small, "name": hires[small]["name"], "suppressed": True}
    assert found["pipeline-hires"]["breakdown"]["largest_gap"] == "black"


async def test_the_demo_candidates_rank_by_weighted_score(sessions: Sessions):
    report = await demo_report(sessions)
    ranked = [(c["rank"], c["ref"], c["score"], c["top"]) for c in report["departments"][0]["ranked"]]
    # need x3, barriers x2, community x1: most/fully/consulted = 9+4+1, many/fully/co-designed = 6+4+2,
    # some/partly/consulted = 3+2+1; the top is 9+4+2.
    assert ranked == [(1, "OIT-15", 14.0, 15.0), (2, "OIT-16", 12.0, 15.0), (3, "OIT-17", 6.0, 15.0)]


async def test_a_reweighted_criterion_leaves_earlier_scores_at_their_weight(sessions: Sessions):
    await run_import(sessions, demo())
    text = edit(demo(), "        weight: 3\n", "        weight: 5\n")
    text = edit(
        text,
        "scores: {need: some, barriers: partly, community: consulted}",
        "scores: {need: many, barriers: partly, community: consulted}",
    )
    await run_import(sessions, text)
    async with sessions() as session:
        rows = {
            (s.item_id, s.criterion_key): (s.level, s.weight) for s in await session.exec(select(ItemScore))
        }
        items = {i.import_key: i.id for i in await session.exec(select(ActionItem))}
    assert rows[(items["candidate-library-hotspots"], "need")] == (3, 3.0)  # scored before: keeps 3
    assert rows[(items["candidate-permit-portal-redesign"], "need")] == (2, 5.0)  # rescored: the new weight


async def test_the_plans_policy_and_done_items_evidence_are_imported(sessions: Sessions):
    await run_import(sessions, demo())
    async with sessions() as session:
        plan = (await session.exec(select(Plan))).one()
        done = (await session.exec(select(ActionItem).where(ActionItem.status == "done"))).one()
    assert plan.policy == {
        "approval": ["drop", "reassign", "redate"],
        "due_allowance_days": 0,
        "evidence_required": True,
        "verification": True,
    }
    assert done.evidence_url == "https://example.org/oit/hbcu-recruitment-agreements"
    assert done.verified_by == "system", "the coordinators' own file vouches for what it says is done"
    assert done.created_at == datetime(2026, 6, 15, 12, tzinfo=UTC)


BAD_MEASURES = [
    pytest.param(
        "            baseline: 15\n",
        "            baseline: 45\n",
        "plans[0].strategies[2].measures[2].target",
        "measure wifi-sites-high-need: a measure meant to increase from 45 needs a target above it, not 40",
        id="target-on-the-wrong-side",
    ),
    pytest.param(
        "              FY2027-Q2: {value: 26,",
        "              FY2030-Q2: {value: 26,",
        "plans[0].strategies[2].measures[2].readings.FY2030-Q2",
        "measure wifi-sites-high-need: FY2030-Q2 is outside the measure's quarters"
        " (readings run from FY2026-Q4 to FY2028-Q4)",
        id="reading-outside-the-window",
    ),
    pytest.param(
        "FY2027-Q2: {groups: {high-need: 1480, moderate-need: 820, low-need: 300}}",
        "FY2027-Q2: {groups: {high-need: 480, moderate-need: 320, low-need: 300}}",
        "plans[0].strategies[2].measures[0].readings.FY2027-Q2",
        "measure devices-high-need-tracts:"
        " a cumulative count cannot fall from 1150 to 1100 without a note saying why",
        id="cumulative-falls-without-a-note",
    ),
    pytest.param(
        "low-need: {value: 93, n: 611}",
        "far-north: {value: 93, n: 611}",
        "plans[0].strategies[2].measures[1].readings.FY2027-Q2.groups.far-north",
        "measure home-internet: not a group of need",
        id="unknown-group",
    ),
    pytest.param(
        "breakdown: {dimension: race, kind: representation}",
        "breakdown: {dimension: zip, kind: representation}",
        "plans[0].strategies[1].measures[1].breakdown.dimension",
        "measure pipeline-hires: unknown dimension 'zip' (plan: race, need)",
        id="unknown-dimension",
    ),
    pytest.param(
        "scores: {need: most, barriers: fully, community: consulted}",
        "scores: {need: all, barriers: fully, community: consulted}",
        "plans[0].items[0].scores.need",
        "'all' is not a level of need (levels: 0 none, 1 some, 2 many, 3 most)",
        id="unknown-level",
    ),
    pytest.param(
        "            target_quarter: FY2027-Q4\n            direction: decrease\n",
        "            direction: decrease\n",
        "plans[0].strategies[0].measures[1].target_quarter",
        "measure days-to-equity-review:"
        " give the quarter the target is due (target_quarter) or its target_date",
        id="no-target-quarter",
    ),
]


@pytest.mark.parametrize(("old", "new", "path", "reason"), BAD_MEASURES)
async def test_a_bad_measure_refuses_the_whole_file_naming_the_measure_and_field(
    sessions: Sessions, old: str, new: str, path: str, reason: str
):
    with pytest.raises(PlanFileError) as refused:
        parse_plan_file(edit(demo(), old, new), filename="oit-reap.yaml")
    assert str(refused.value) == f"oit-reap.yaml: {path}: {reason}"
