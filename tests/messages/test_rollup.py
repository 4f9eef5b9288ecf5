"""The Slack rollup and the chart's alt text: trends, gaps, completions, requests, stale statuses in words."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from domain.equity import GroupInput, rate_breakdown
from domain.rollup import (
    STATUSES,
    Changes,
    DepartmentRollup,
    ItemLine,
    MeasureBreakdown,
    MeasureLine,
    RequestLine,
    Rollup,
    SeriesPoint,
    StaleStatus,
    StrategyRollup,
)
from domain.status import MeasureStatus
from messages.rollup import ALT_TEXT_LIMIT, build_chart_alt_text, build_department_summary, slack_messages

OWNER, OTHER, COORDINATOR = "U0OWNER", "U0OTHER", "U0COORD"
NAMES = {OWNER: "Ana Diaz", OTHER: "Ben Ode", COORDINATOR: "Cora Ord"}
RACE = {"black": "Black", "white": "White", "hispanic": "Hispanic or Latino"}


def race(overall: float, **values: float) -> Any:
    """A rate breakdown by race against the overall rate."""
    return rate_breakdown([GroupInput(key, value) for key, value in values.items()], overall=overall)


def item(ref: str, title: str, status: str, **fields: Any) -> ItemLine:
    """An item line owned by Ana Diaz."""
    fields.setdefault("due", None)
    fields.setdefault("days_overdue", 0)
    return ItemLine(
        ref=ref,
        title=title,
        owner_id=OWNER,
        owner_name=NAMES[OWNER],
        status=status,
        progress=0,
        last_note=None,
        **fields,
    )


INTERNET = MeasureLine(
    key="internet",
    name="Households with home internet",
    unit="%",
    baseline=60,
    latest=70,
    target=80,
    status=MeasureStatus.ON_TRACK,
    change=2,
    latest_quarter="FY2027-Q2",
    baseline_quarter="FY2026-Q4",
    target_quarter="FY2027-Q4",
    series=(
        SeriesPoint("FY2026-Q4", 60, 60),
        SeriesPoint("FY2027-Q1", 68, 65),
        SeriesPoint("FY2027-Q2", 70, 70),
    ),
    breakdown=MeasureBreakdown(
        dimension="race",
        dimension_name="Race and ethnicity",
        kind="rate",
        group_names=RACE,
        # Black's gap: -12 at the baseline, -18 last quarter, -15 now.
        current=race(70, black=55, white=80, hispanic=60),
        last=race(68, black=50, white=78, hispanic=60),
        baseline=race(60, black=48, white=70, hispanic=55),
    ),
    progress=0.5,
    expected=0.5,
)
BROKEN = MeasureLine(
    key="broken",
    name="Broken measure",
    unit="",
    baseline=20,
    latest=None,
    target=10,
    status=MeasureStatus.NEEDS_ATTENTION,
    change=None,
    problem="its target (10) is on the wrong side of its baseline (20)",
)
WIFI = item(
    "OIT-5", "Wi-Fi sites", "on_track", due=date(2026, 11, 10), days_overdue=10, updated_on=date(2026, 8, 1)
)
VERIFIED = item(
    "OIT-3",
    "Pay equity study",
    "done",
    completed_on=date(2026, 10, 12),
    evidence_url="https://city.example/report?a=1&b=2",
    verified_on=date(2026, 10, 14),
    verified_by=COORDINATOR,
)
AWAITING = item("OIT-2", "Hire an analyst", "done", completed_on=date(2026, 11, 2))
REDATE = RequestLine(
    id=7,
    ref="OIT-4",
    title="Mentoring",
    kind="redate",
    reason="Vendor <slipped> & delayed",
    requested_by=OWNER,
    requested_on=date(2026, 11, 2),
    days_waiting=18,
    old_due=date(2026, 12, 15),
    new_due=date(2027, 3, 31),
)
REASSIGN = RequestLine(
    id=9,
    ref="OIT-6",
    title="Device lending",
    kind="reassign",
    reason="On leave until March",
    requested_by=OWNER,
    requested_on=date(2026, 11, 19),
    days_waiting=1,
    old_owner=OWNER,
    new_owner=OTHER,
)


@pytest.fixture
def rollup() -> Rollup:
    """OIT with a broken-down measure, a broken one, completions, two requests and a stale status."""
    strategy = StrategyRollup(
        key="digital-equity",
        name="Digital equity",
        counts={s: {"on_track": 1, "done": 2}.get(s, 0) for s in STATUSES},
        percent_complete=70.0,
        on_time_rate=None,
        overdue=[WIFI],
        blocked=[],
        measures=[INTERNET, BROKEN],
    )
    department = DepartmentRollup(
        key="OIT",
        name="Office of Innovation and Technology",
        report_channel="C0OIT",
        coordinators=[COORDINATOR],
        strategies=[strategy],
        changes=Changes([], [], [], [], []),
        response_rate=None,
        non_responders=[],
        stale=[],
        orphaned=[],
        counts=strategy.counts,
        percent_complete=70.0,
        verified=1,
        awaiting_verification=1,
        completed=[VERIFIED, AWAITING],
        requests=[REDATE, REASSIGN],
        stale_status=[StaleStatus(WIFI, silent_since=date(2026, 8, 1))],
    )
    return Rollup(
        quarter="FY2027-Q2",
        as_of=date(2026, 11, 20),
        departments=[department],
        counts=strategy.counts,
        percent_complete=70.0,
        on_time_rate=None,
        response_rate=None,
        previous_quarter="FY2027-Q1",
        names=NAMES,
    )


def lines_of(rollup: Rollup) -> list[str]:
    """Every line of text in the thread replies."""
    _, replies = slack_messages(rollup)
    return [
        line
        for reply in replies
        for block in reply["blocks"]
        if "text" in block
        for line in block["text"]["text"].split("\n")
    ]


def test_a_measure_shows_its_trend_with_first_last_and_expected_values(rollup: Rollup):
    lines = lines_of(rollup)
    head = lines.index(
        "• *Households with home internet*: baseline 60% → latest 70% (FY2027-Q2) → target 80% by FY2027-Q4"
        " · :large_green_circle: on track · change +2"
    )
    assert lines[head + 1] == "   trend ▁▇█ 60% (FY2026-Q4) → 70% (FY2027-Q2); expected 70% by FY2027-Q2"


def test_a_broken_down_measure_says_its_largest_gap_and_whether_it_narrowed_in_words(rollup: Rollup):
    # Black: 55 against 70 overall is -15 (ratio 0.79); it was -18 last quarter and -12 at the baseline.
    assert (
        "   largest gap by Race and ethnicity: Black −15 (ratio 0.79);"
        " since last quarter: narrowed; since baseline: widened or held"
    ) in lines_of(rollup)


def test_a_measure_that_needs_attention_shows_its_reason(rollup: Rollup):
    assert (
        "• *Broken measure*: baseline 20 → latest — → target 10 · :warning: needs attention:"
        " its target (10) is on the wrong side of its baseline (20) · change —"
    ) in lines_of(rollup)


def test_completions_are_counted_verified_apart_from_awaiting_and_listed_with_their_evidence(rollup: Rollup):
    lines = lines_of(rollup)
    assert (
        "*:white_check_mark: Completions to date: 1 verified completed · 1 done, awaiting verification."
        " Completed this quarter, and any still awaiting verification*"
    ) in lines
    assert (
        "• *OIT-3* Pay equity study — Ana Diaz — completed 2026-10-12"
        " · <https://city.example/report?a=1&b=2|evidence>"
        " · :white_check_mark: verified by Cora Ord 2026-10-14"
    ) in lines
    assert (
        "• *OIT-2* Hire an analyst — Ana Diaz — completed 2026-11-02 · _no evidence link_"
        " · :hourglass_flowing_sand: done, awaiting verification"
    ) in lines


def test_pending_requests_say_what_who_why_and_since_when(rollup: Rollup):
    lines = lines_of(rollup)
    at = lines.index(
        "• *#7* OIT-4 Mentoring — Ana Diaz asks to move the due date from 2026-12-15 to 2027-03-31,"
        " since 2026-11-02 (18 days)"
    )
    assert lines[at + 1] == "> Vendor &lt;slipped&gt; &amp; delayed"
    assert (
        "• *#9* OIT-6 Device lending — Ana Diaz asks to reassign from Ana Diaz to Ben Ode,"
        " since 2026-11-19 (1 day)"
    ) in lines


def test_an_overdue_item_shows_overdue_with_its_typed_status_and_is_flagged_as_possibly_stale(rollup: Rollup):
    lines = lines_of(rollup)
    assert "• *OIT-5* Wi-Fi sites — Ana Diaz — *10 days overdue* (due 2026-11-10, marked on track)" in lines
    assert (
        "• *OIT-5* Wi-Fi sites — Ana Diaz — marked on track, but 10 days overdue and no update since"
        " 2026-08-01: status may be stale"
    ) in lines
    assert "• Completions to verify: 1" in lines and "• Change requests to decide: 2" in lines


def test_the_department_summary_line_counts_completions_requests_and_stale_statuses(rollup: Rollup):
    summary = build_department_summary(rollup.departments[0])
    assert summary.endswith(
        "*1 overdue* · 1 verified completed · 1 done, awaiting verification · 2 change requests waiting"
        " · 1 on track but status may be stale"
    )
    intro, _ = slack_messages(rollup)
    assert "1 verified completed, 1 awaiting verification · 2 change requests waiting" in str(intro["blocks"])


# --- the chart's alt text ------------------------------------------------------------------------


def _rollup(strategies: int, measures: int) -> Rollup:
    def strategy(n: int) -> StrategyRollup:
        return StrategyRollup(
            key=f"s{n}",
            name=f"Strategy {n}",
            counts={"on_track": 2, "blocked": 1},
            percent_complete=40.0,
            on_time_rate=None,
            overdue=[],
            blocked=[],
            measures=[
                MeasureLine(
                    key=f"m{n}-{k}",
                    name=f"Measure {n}.{k}",
                    unit="%",
                    baseline=0,
                    latest=10,
                    target=40,
                    status=MeasureStatus.AT_RISK,
                    change=None,
                    progress=0.25,
                    expected=0.5,
                    target_quarter="FY2027-Q4",
                    series=(SeriesPoint("FY2027-Q1", 0, 0), SeriesPoint("FY2027-Q2", 10, 20)),
                )
                for k in range(measures)
            ],
        )

    department = DepartmentRollup(
        key="OIT",
        name="Office of Innovation and Technology",
        report_channel=None,
        coordinators=[],
        strategies=[strategy(n) for n in range(strategies)],
        changes=Changes([], [], [], [], []),
        response_rate=None,
        non_responders=[],
        stale=[],
        orphaned=[],
    )
    return Rollup(
        quarter="FY2027-Q2",
        as_of=date(2026, 11, 30),
        departments=[department],
        counts={},
        percent_complete=40.0,
        on_time_rate=None,
        response_rate=None,
    )


def test_the_chart_alt_text_reads_every_part_including_the_trend_panels():
    alt = build_chart_alt_text(_rollup(strategies=1, measures=1))
    assert alt == (
        "Chart of the REAP rollup FY2027-Q2 as of 2026-11-30, in three parts."
        " Top left, items by status for each strategy: OIT Strategy 0: 2 on track, 1 blocked."
        " Top right, each measure's progress from its baseline to its target; below, a trend panel for"
        " each measure (readings as a solid line with their values, the expected line dashed, the target"
        " dotted): OIT Measure 0.0: 25% of the way (50% expected), at risk, trend from 0% in FY2027-Q1"
        " to 10% in FY2027-Q2, 20% expected by FY2027-Q2, target 40% by FY2027-Q4."
    )


def test_a_big_plans_alt_text_stays_within_slacks_limit_and_leaves_room_for_measures():
    alt = build_chart_alt_text(_rollup(strategies=60, measures=3))
    assert len(alt) <= ALT_TEXT_LIMIT
    strategies, measures = alt.split(" Top right")
    # Strategies take a third of the room at most; the measures (and their trends) get the rest.
    assert strategies.endswith(
        "OIT Strategy 3: 2 on track, 1 blocked; and 56 more strategies (see the rollup message)."
    )
    assert "below, trend panels for the first 16 measures" in measures
    assert measures.count("trend from 0% in FY2027-Q1") == 2
    assert measures.endswith("; and 178 more measures (see the rollup message).")


def test_long_names_are_clipped_in_the_alt_text():
    rollup = _rollup(strategies=1, measures=1)
    strategy = rollup.departments[0].strategies[0]
    long = replace(strategy.measures[0], name="Median days from project intake to completed equity review")
    rollup.departments[0].strategies[0] = replace(strategy, measures=[long])
    assert "OIT Median days from project intake to comp…: 25% of the way" in build_chart_alt_text(rollup)


def test_a_plan_without_measures_has_a_two_part_chart_in_its_alt_text():
    empty = build_chart_alt_text(_rollup(strategies=0, measures=0))
    assert empty == (
        "Chart of the REAP rollup FY2027-Q2 as of 2026-11-30, in two parts."
        " Top left, items by status for each strategy: no strategies."
        " Top right, each measure's progress from its baseline to its target: no measures."
    )
