"""The reminder policy: who is owed what on which local business day, and the digests planned."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cadence import Cadence, CadenceError
from domain.calendar import BusinessCalendar, build_calendar, local_reminder_instant
from domain.fiscal import FiscalQuarter
from domain.status import ItemStatus
from reminders.policy import (
    OPEN_STATUSES,
    ItemView,
    NudgeKind,
    PlannedDigest,
    Recipient,
    ReminderWindowError,
    digest_key,
    due_dates_owed_on,
    escalation_due,
    escalation_due_dates,
    nudge_kind,
    plan_digests,
    sending_slot,
    snooze_end_dates,
)

D = date.fromisoformat
NEW_YORK = ZoneInfo("America/New_York")
HONOLULU = ZoneInfo("Pacific/Honolulu")
KOLKATA = ZoneInfo("Asia/Kolkata")
KIRITIMATI = ZoneInfo("Pacific/Kiritimati")
TEAM = "T1"
SOON, TOMORROW, TODAY, OVERDUE, ENDED = (
    NudgeKind.DUE_SOON,
    NudgeKind.DUE_TOMORROW,
    NudgeKind.DUE_TODAY,
    NudgeKind.OVERDUE,
    NudgeKind.SNOOZE_ENDED,
)
# No weekend and no holidays, so the DST Sundays are sending days.
EVERY_DAY = BusinessCalendar(holidays=frozenset(), weekend=frozenset())


@cache
def pa_calendar() -> BusinessCalendar:
    """The US-PA calendar for 2026-2028, built once (Hypothesis tests cannot take fixtures)."""
    return build_calendar(["US-PA"], years=range(2026, 2029))


@pytest.fixture
def pa() -> BusinessCalendar:
    """The US-PA holiday calendar with a Saturday/Sunday weekend."""
    return pa_calendar()


def make_item(
    due: str | date | None,
    *,
    item_id: int = 1,
    owner: str | None = "U1",
    status: str = "on_track",
    snoozed_until: str | None = None,
    department_id: int = 1,
) -> ItemView:
    """An open item owned by U1 in department 1, due on `due`."""
    return ItemView(
        item_id=item_id,
        ref=f"OIT-{item_id}",
        owner_id=owner,
        due=D(due) if isinstance(due, str) else due,
        status=status,
        snoozed_until=D(snoozed_until) if snoozed_until else None,
        department_id=department_id,
    )


def days(start: date, end: date) -> Iterable[date]:
    """Every calendar day from start to end inclusive."""
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def schedule(
    item: ItemView, calendar: BusinessCalendar, cadence: Cadence, start: date, end: date
) -> dict[str, NudgeKind]:
    """The nudges owed for `item` on each day of [start, end], as {ISO date: kind}."""
    found = {}
    for day in days(start, end):
        kind = nudge_kind(item, day, calendar, cadence)
        if kind is not None:
            found[day.isoformat()] = kind
    return found


def utc(text: str) -> datetime:
    """An aware UTC instant from 'YYYY-MM-DDTHH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the cadence, day by day ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        pytest.param(
            "2027-03-31",
            {
                "2027-03-24": SOON,
                "2027-03-30": TOMORROW,
                "2027-03-31": TODAY,
                "2027-04-05": OVERDUE,
                "2027-04-08": OVERDUE,
            },
            id="mid-week",
        ),
        pytest.param(
            "2027-04-10",
            {
                "2027-04-05": SOON,  # seven days before is Saturday 3 April
                "2027-04-09": TOMORROW,
                "2027-04-12": TODAY,
                "2027-04-15": OVERDUE,
                "2027-04-20": OVERDUE,
            },
            id="due-on-a-saturday",
        ),
        pytest.param(
            "2026-09-14",
            {
                "2026-09-08": SOON,  # seven days before is Labor Day
                "2026-09-11": TOMORROW,
                "2026-09-14": TODAY,
                "2026-09-17": OVERDUE,
                "2026-09-22": OVERDUE,
                "2026-09-25": OVERDUE,
            },
            id="labor-day-monday-pushes-to-tuesday",
        ),
        pytest.param(
            "2026-11-30",
            {
                "2026-11-23": SOON,
                "2026-11-25": TOMORROW,  # before Thanksgiving and the day after
                "2026-11-30": TODAY,
                "2026-12-03": OVERDUE,
                "2026-12-08": OVERDUE,
                "2026-12-11": OVERDUE,
            },
            id="after-thanksgiving",
        ),
        pytest.param(
            "2026-11-26",
            {
                "2026-11-19": SOON,
                "2026-11-25": TOMORROW,
                "2026-11-30": TODAY,  # due on Thanksgiving: due-today waits for Monday
                "2026-12-03": OVERDUE,
                "2026-12-08": OVERDUE,
            },
            id="due-on-thanksgiving",
        ),
        pytest.param(
            "2027-07-05",
            {
                "2027-06-28": SOON,
                "2027-07-02": TOMORROW,
                "2027-07-06": TODAY,  # July 4 is observed on Monday 5 July
                "2027-07-09": OVERDUE,
                "2027-07-14": OVERDUE,
            },
            id="due-on-observed-independence-day",
        ),
        pytest.param(
            "2027-07-12",
            {
                "2027-07-06": SOON,  # seven days before is the observed holiday
                "2027-07-09": TOMORROW,
                "2027-07-12": TODAY,
                "2027-07-15": OVERDUE,
                "2027-07-20": OVERDUE,
                "2027-07-23": OVERDUE,
            },
            id="first-nudge-on-observed-holiday",
        ),
        pytest.param(
            "2028-02-29",
            {
                "2028-02-22": SOON,  # Tuesday, after Presidents' Day
                "2028-02-28": TOMORROW,
                "2028-02-29": TODAY,
                "2028-03-03": OVERDUE,
                "2028-03-08": OVERDUE,
            },
            id="leap-day-due",
        ),
        pytest.param(
            "2028-03-07",
            {
                "2028-02-29": SOON,
                "2028-03-06": TOMORROW,
                "2028-03-07": TODAY,
                "2028-03-10": OVERDUE,
                "2028-03-15": OVERDUE,
            },
            id="first-nudge-on-leap-day",
        ),
        pytest.param(
            "2026-12-31",
            {
                "2026-12-24": SOON,
                "2026-12-30": TOMORROW,
                "2026-12-31": TODAY,
                "2027-01-06": OVERDUE,  # New Year's Day and the weekend do not count
                "2027-01-11": OVERDUE,
            },
            id="quarter-end-into-new-year",
        ),
    ],
)
def test_default_cadence_nudges_on_these_days_and_no_others(
    pa: BusinessCalendar, due: str, expected: dict[str, NudgeKind]
) -> None:
    item = make_item(due)
    window = schedule(item, pa, Cadence(), D(due) - timedelta(days=10), D(due) + timedelta(days=12))
    assert window == expected


def test_an_overdue_item_crosses_from_one_fiscal_quarter_into_the_next(pa: BusinessCalendar) -> None:
    item = make_item("2026-12-31")
    assert FiscalQuarter.containing(D("2026-12-31")).label == "FY2027-Q2"
    overdue = [
        day
        for day, kind in schedule(item, pa, Cadence(), D("2027-01-01"), D("2027-01-31")).items()
        if kind is OVERDUE
    ]
    # MLK Day (18 January) does not count either.
    assert overdue == ["2027-01-06", "2027-01-11", "2027-01-14", "2027-01-20", "2027-01-25", "2027-01-28"]
    assert {FiscalQuarter.containing(D(day)).label for day in overdue} == {"FY2027-Q3"}


@pytest.mark.parametrize(
    ("cadence", "due", "expected"),
    [
        pytest.param(
            Cadence(first_days_before=5),
            "2027-04-08",
            {"2027-04-05": SOON, "2027-04-07": TOMORROW, "2027-04-08": TODAY, "2027-04-13": OVERDUE},
            id="five-days-before-lands-on-saturday-so-monday",
        ),
        pytest.param(
            Cadence(first_days_before=0),
            "2027-03-31",
            {"2027-03-30": TOMORROW, "2027-03-31": TODAY, "2027-04-05": OVERDUE},
            id="no-first-nudge",
        ),
        pytest.param(
            Cadence(business_days_before=0),
            "2027-03-31",
            {"2027-03-24": SOON, "2027-03-31": TODAY, "2027-04-05": OVERDUE},
            id="no-day-before-nudge",
        ),
        pytest.param(
            Cadence(business_days_before=2),
            "2027-03-31",
            {"2027-03-24": SOON, "2027-03-29": TOMORROW, "2027-03-31": TODAY, "2027-04-05": OVERDUE},
            id="two-business-days-before",
        ),
        pytest.param(
            Cadence(first_days_before=1),
            "2027-03-31",
            {"2027-03-30": TOMORROW, "2027-03-31": TODAY, "2027-04-05": OVERDUE},
            id="first-nudge-on-the-day-before-nudge-is-skipped",
        ),
        pytest.param(
            Cadence(first_days_before=3, business_days_before=5),
            "2027-03-31",
            {"2027-03-24": TOMORROW, "2027-03-31": TODAY, "2027-04-05": OVERDUE},
            id="first-nudge-after-the-day-before-nudge-is-skipped",
        ),
        pytest.param(
            Cadence(first_days_before=1, business_days_before=0),
            "2027-04-05",
            {"2027-04-05": TODAY, "2027-04-08": OVERDUE},
            id="first-nudge-rolling-onto-the-due-day-is-skipped",
        ),
        pytest.param(
            Cadence(first_days_before=3, business_days_before=0),
            "2027-04-05",
            {"2027-04-02": SOON, "2027-04-05": TODAY, "2027-04-08": OVERDUE},
            id="first-nudge-friday-before-monday-due",
        ),
        pytest.param(
            Cadence(overdue_every=0),
            "2027-03-31",
            {"2027-03-24": SOON, "2027-03-30": TOMORROW, "2027-03-31": TODAY},
            id="no-overdue-nudges",
        ),
        pytest.param(
            Cadence(first_days_before=0, business_days_before=0, overdue_every=1),
            "2027-03-31",
            {
                "2027-03-31": TODAY,
                "2027-04-01": OVERDUE,
                "2027-04-02": OVERDUE,
                "2027-04-05": OVERDUE,
                "2027-04-06": OVERDUE,
            },
            id="overdue-every-business-day",
        ),
    ],
)
def test_a_plan_cadence_moves_or_turns_off_steps(
    pa: BusinessCalendar, cadence: Cadence, due: str, expected: dict[str, NudgeKind]
) -> None:
    item = make_item(due)
    window = schedule(item, pa, cadence, D(due) - timedelta(days=10), D(due) + timedelta(days=6))
    assert window == expected


@pytest.mark.parametrize("status", sorted(OPEN_STATUSES))
def test_every_open_status_is_chased(pa: BusinessCalendar, status: str) -> None:
    item = make_item("2027-03-31", status=status)
    assert nudge_kind(item, D("2027-03-31"), pa, Cadence()) is TODAY
    assert escalation_due(item, D("2027-04-07"), pa, Cadence())


@pytest.mark.parametrize(
    "item",
    [
        make_item("2027-03-31", status="done"),
        make_item("2027-03-31", status="dropped"),
        make_item(None),
    ],
    ids=["done", "dropped", "no-due-date"],
)
def test_done_dropped_and_undated_items_get_nothing(pa: BusinessCalendar, item: ItemView) -> None:
    span = list(days(D("2027-03-01"), D("2027-06-30")))
    assert [day for day in span if nudge_kind(item, day, pa, Cadence())] == []
    assert [day for day in span if escalation_due(item, day, pa, Cadence())] == []


def test_open_statuses_match_the_storage_lifecycle() -> None:
    assert {s.value for s in ItemStatus if s.is_open} == OPEN_STATUSES


# --- snooze -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due", "snoozed_until", "day", "expected"),
    [
        pytest.param("2027-03-31", "2027-04-02", "2027-03-31", None, id="due-today-is-snoozed"),
        pytest.param("2027-03-31", "2027-04-02", "2027-04-01", None, id="still-snoozed"),
        pytest.param("2027-03-31", "2027-04-02", "2027-04-02", ENDED, id="ends-while-overdue"),
        pytest.param("2027-03-31", "2027-04-02", "2027-04-05", OVERDUE, id="cadence-resumes"),
        pytest.param("2027-03-31", "2027-04-05", "2027-04-05", OVERDUE, id="regular-kind-wins"),
        pytest.param("2027-03-31", "2027-04-10", "2027-04-10", None, id="ends-on-saturday"),
        pytest.param("2027-03-31", "2027-04-10", "2027-04-12", ENDED, id="saturday-end-so-monday"),
        pytest.param("2027-04-07", "2027-04-02", "2027-04-02", ENDED, id="ends-within-a-week-of-due"),
        pytest.param("2027-04-09", "2027-04-02", "2027-04-02", SOON, id="ends-on-first-nudge-day"),
        pytest.param("2027-04-12", "2027-04-02", "2027-04-02", None, id="ends-too-early-to-mention"),
        pytest.param("2027-04-12", "2027-04-02", "2027-04-05", SOON, id="then-first-nudge"),
        pytest.param("2027-06-30", "2027-04-02", "2027-04-02", None, id="due-far-away"),
        pytest.param("2027-03-31", "2027-03-01", "2027-03-24", SOON, id="long-ended"),
    ],
)
def test_a_snoozed_item_waits_and_is_owed_a_nudge_when_the_snooze_ends(
    pa: BusinessCalendar, due: str, snoozed_until: str, day: str, expected: NudgeKind | None
) -> None:
    item = make_item(due, snoozed_until=snoozed_until)
    assert nudge_kind(item, D(day), pa, Cadence()) is expected


def test_a_snoozed_item_is_not_escalated_until_the_snooze_ends(pa: BusinessCalendar) -> None:
    snoozed = make_item("2027-03-31", snoozed_until="2027-04-09")
    assert not escalation_due(snoozed, D("2027-04-07"), pa, Cadence())
    assert escalation_due(replace(snoozed, snoozed_until=None), D("2027-04-07"), pa, Cadence())
    assert escalation_due(snoozed, D("2027-04-14"), pa, Cadence())


# --- escalation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cadence", "due", "expected"),
    [
        pytest.param(Cadence(), "2027-03-31", ["2027-04-07", "2027-04-14", "2027-04-21"], id="default"),
        pytest.param(Cadence(escalate_every=0), "2027-03-31", ["2027-04-07"], id="never-repeat"),
        pytest.param(Cadence(escalate_after=0), "2027-03-31", [], id="never-escalate"),
        pytest.param(
            Cadence(escalate_after=2, escalate_every=2),
            "2027-04-14",
            [
                "2027-04-16",
                "2027-04-20",
                "2027-04-22",
                "2027-04-26",
                "2027-04-28",
                "2027-04-30",
                "2027-05-04",
                "2027-05-06",
            ],
            id="after-two-then-every-two",
        ),
        pytest.param(
            Cadence(),
            "2026-12-31",
            ["2027-01-08", "2027-01-15", "2027-01-25"],  # New Year's Day and MLK Day skipped
            id="across-new-year",
        ),
        pytest.param(
            Cadence(), "2027-04-10", ["2027-04-19", "2027-04-26", "2027-05-03"], id="due-on-saturday"
        ),
    ],
)
def test_coordinators_hear_after_five_business_days_overdue_then_every_five(
    pa: BusinessCalendar, cadence: Cadence, due: str, expected: list[str]
) -> None:
    item = make_item(due)
    span = days(D(due) - timedelta(days=3), D(due) + timedelta(days=25))
    assert [d.isoformat() for d in span if escalation_due(item, d, pa, cadence)] == expected


# --- cadence settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (None, Cadence()),
        ({}, Cadence()),
        ({"overdue_every": 2}, Cadence(overdue_every=2)),
        ({"escalate_every": 0, "first_days_before": 10}, Cadence(10, 1, 3, 5, 0)),
    ],
)
def test_a_plan_file_cadence_overrides_only_what_it_names(
    values: dict[str, object] | None, expected: Cadence
) -> None:
    assert Cadence.from_mapping(values) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"overdue_every": -1}, "cadence overdue_every: must be between 0 and 365, not -1"),
        ({"escalate_after": 400}, "cadence escalate_after: must be between 0 and 365, not 400"),
        ({"first_days_before": "7"}, "cadence first_days_before: must be a whole number, not '7'"),
        ({"escalate_every": True}, "cadence escalate_every: must be a whole number, not True"),
        ({"overdue_every": 2.5}, "cadence overdue_every: must be a whole number, not 2.5"),
        ({"every": 3}, "cadence every: is not a setting; use first_days_before, "),
        (["overdue_every"], "cadence: expected a mapping of settings, not list"),
    ],
)
def test_a_bad_cadence_is_refused_naming_the_setting(values: object, message: str) -> None:
    with pytest.raises(CadenceError) as caught:
        Cadence.from_mapping(values)  # type: ignore[arg-type]
    assert message in str(caught.value)


# --- the inverse the planner queries with -----------------------------------------------------


def test_due_dates_owed_on_a_tuesday_lists_each_kind(pa: BusinessCalendar) -> None:
    owed = due_dates_owed_on(D("2027-03-30"), pa, Cadence(), horizon_days=20)
    assert owed == {
        D("2027-04-06"): SOON,
        D("2027-03-31"): TOMORROW,
        D("2027-03-30"): TODAY,
        # due-today Thursday 25 March, and the Friday/weekend/Monday group before it
        D("2027-03-25"): OVERDUE,
        D("2027-03-22"): OVERDUE,
        D("2027-03-21"): OVERDUE,
        D("2027-03-20"): OVERDUE,
        D("2027-03-17"): OVERDUE,
        D("2027-03-12"): OVERDUE,
    }


def test_due_dates_owed_on_a_monday_include_the_weekend_before_even_with_no_horizon(
    pa: BusinessCalendar,
) -> None:
    owed = due_dates_owed_on(D("2027-04-05"), pa, Cadence(), horizon_days=0)
    assert owed == {
        D("2027-04-03"): TODAY,
        D("2027-04-04"): TODAY,
        D("2027-04-05"): TODAY,
        D("2027-04-06"): TOMORROW,
        # Seven days before Saturday 10 to Monday 12 April is this weekend or today.
        D("2027-04-10"): SOON,
        D("2027-04-11"): SOON,
        D("2027-04-12"): SOON,
    }


def test_nothing_is_owed_on_a_weekend_or_holiday(pa: BusinessCalendar) -> None:
    for day in (D("2027-04-03"), D("2026-11-26")):
        assert due_dates_owed_on(day, pa, Cadence()) == {}
        assert escalation_due_dates(day, pa, Cadence()) == frozenset()
        assert snooze_end_dates(day, pa) == frozenset()


def test_escalation_due_dates_list_each_repeat(pa: BusinessCalendar) -> None:
    owed = escalation_due_dates(D("2027-04-14"), pa, Cadence(), horizon_days=30)
    assert owed == {D("2027-04-07"), D("2027-03-31"), D("2027-03-24"), D("2027-03-17")}


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    """A calendar with a random weekend and a random cluster of holidays around 2027."""
    weekend = draw(
        st.sampled_from(
            [frozenset({5, 6}), frozenset({4, 5}), frozenset({6}), frozenset(), frozenset({0, 2, 4})]
        )
    )
    holidays = draw(
        st.frozensets(st.dates(min_value=date(2026, 10, 1), max_value=date(2027, 8, 31)), max_size=40)
    )
    return BusinessCalendar(holidays=holidays, weekend=weekend)


cadences = st.builds(
    Cadence,
    first_days_before=st.integers(0, 14),
    business_days_before=st.integers(0, 5),
    overdue_every=st.integers(0, 6),
    escalate_after=st.integers(0, 8),
    escalate_every=st.integers(0, 6),
)
mid_2027 = st.dates(min_value=date(2027, 1, 1), max_value=date(2027, 6, 30))
horizons = st.integers(min_value=0, max_value=60)


def _forward_edge(day: date, calendar: BusinessCalendar, cadence: Cadence) -> date:
    # Far enough ahead that no due date beyond it can be owed a pre-due nudge on `day`.
    ahead = calendar.add_business_days(day, cadence.business_days_before + 1)
    return max(ahead, day + timedelta(days=cadence.first_days_before)) + timedelta(days=10)


@settings(max_examples=200, deadline=None)
@given(calendar=calendars(), cadence=cadences, day=mid_2027, horizon=horizons)
def test_due_dates_owed_on_is_exactly_the_inverse_of_nudge_kind(
    calendar: BusinessCalendar, cadence: Cadence, day: date, horizon: int
) -> None:
    owed = due_dates_owed_on(day, calendar, cadence, horizon_days=horizon)
    oldest = day - timedelta(days=horizon)
    for due in days(oldest - timedelta(days=10), _forward_edge(day, calendar, cadence)):
        kind = nudge_kind(make_item(due), day, calendar, cadence)
        # Only overdue items past the horizon are left to nudge_kind alone.
        expected = None if kind is OVERDUE and due < oldest else kind
        assert owed.get(due) == expected, due


@settings(max_examples=200, deadline=None)
@given(calendar=calendars(), cadence=cadences, day=mid_2027, horizon=horizons)
def test_escalation_due_dates_is_exactly_the_inverse_of_escalation_due(
    calendar: BusinessCalendar, cadence: Cadence, day: date, horizon: int
) -> None:
    owed = escalation_due_dates(day, calendar, cadence, horizon_days=horizon)
    oldest = day - timedelta(days=horizon)
    for due in days(oldest - timedelta(days=10), day + timedelta(days=10)):
        escalated = escalation_due(make_item(due), day, calendar, cadence)
        assert (due in owed) == (escalated and due >= oldest), due


@settings(max_examples=200, deadline=None)
@given(
    calendar=calendars(),
    cadence=cadences,
    day=mid_2027,
    due_offset=st.integers(-40, 30),
    snooze_offset=st.none() | st.integers(-10, 10),
)
def test_the_planner_query_finds_every_snoozed_or_unsnoozed_item_owed_a_nudge(
    calendar: BusinessCalendar,
    cadence: Cadence,
    day: date,
    due_offset: int,
    snooze_offset: int | None,
) -> None:
    due = day + timedelta(days=due_offset)
    snoozed_until = None if snooze_offset is None else day + timedelta(days=snooze_offset)
    item = replace(make_item(due), snoozed_until=snoozed_until)
    # The query a planner runs: unsnoozed items by due date, plus snoozes ending today.
    found: NudgeKind | None = None
    if snoozed_until is None or snoozed_until <= day:
        found = due_dates_owed_on(day, calendar, cadence, horizon_days=60).get(due)
        if (
            found is None
            and snoozed_until in snooze_end_dates(day, calendar)
            and due <= day + timedelta(days=cadence.first_days_before)
        ):
            found = ENDED
    assert found == nudge_kind(item, day, calendar, cadence)


# --- sending windows --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2027-03-30T12:59", None),  # 08:59 EDT
        ("2027-03-30T13:00", "2027-03-30"),  # 09:00 EDT
        ("2027-03-30T21:59", "2027-03-30"),  # 17:59 EDT
        ("2027-03-30T22:00", None),  # 18:00 EDT: the quiet hour
        ("2027-03-31T03:59", None),  # 23:59 EDT
        ("2027-04-03T15:00", None),  # Saturday
        ("2026-11-26T15:00", None),  # Thanksgiving
        ("2027-01-04T14:00", "2027-01-04"),  # 09:00 EST
        ("2027-01-04T13:59", None),
    ],
)
def test_sending_slot_is_the_local_business_day_between_nine_and_six(
    pa: BusinessCalendar, now: str, expected: str | None
) -> None:
    slot = sending_slot(utc(now), NEW_YORK, pa, reminder_hour=9, quiet_hour=18)
    assert slot == (D(expected) if expected else None)


@pytest.mark.parametrize(
    ("reminder_hour", "reminder_minute", "quiet_hour"),
    [(18, 0, 18), (19, 0, 18), (24, 0, 25), (-1, 0, 18), (9, 60, 18), (0, 0, 0)],
)
def test_a_reminder_time_not_before_the_quiet_hour_is_refused(
    pa: BusinessCalendar, reminder_hour: int, reminder_minute: int, quiet_hour: int
) -> None:
    with pytest.raises(ReminderWindowError, match="before the quiet hour"):
        sending_slot(
            utc("2027-03-30T13:00"),
            NEW_YORK,
            pa,
            reminder_hour=reminder_hour,
            quiet_hour=quiet_hour,
            reminder_minute=reminder_minute,
        )


def test_a_quiet_hour_of_24_keeps_the_window_open_until_midnight(pa: BusinessCalendar) -> None:
    late = utc("2027-03-31T03:59")  # 23:59 EDT on Tuesday
    assert sending_slot(late, NEW_YORK, pa, reminder_hour=9, quiet_hour=24) == D("2027-03-30")


def ticks(start: datetime, end: datetime, every: timedelta) -> list[datetime]:
    """Tick instants from start (inclusive) to end (exclusive)."""
    found = []
    while start < end:
        found.append(start)
        start += every
    return found


@pytest.mark.parametrize(
    ("transition", "hour", "minute", "quiet", "opens_utc", "window_ticks"),
    [
        pytest.param("2027-03-14", 9, 0, 18, "2027-03-14T13:00", 108, id="spring-forward-9"),
        pytest.param("2026-11-01", 9, 0, 18, "2026-11-01T14:00", 108, id="fall-back-9"),
        # 02:00 does not exist: the window opens at 03:00 EDT and is an hour short.
        pytest.param("2027-03-14", 2, 0, 5, "2027-03-14T07:00", 24, id="spring-forward-2"),
        pytest.param("2027-03-14", 2, 30, 5, "2027-03-14T07:00", 24, id="spring-forward-2-30"),
        # 01:00-01:59 happen twice: the window opens at the first and is an hour long.
        pytest.param("2026-11-01", 1, 0, 3, "2026-11-01T05:00", 36, id="fall-back-1"),
        pytest.param("2026-11-01", 1, 30, 3, "2026-11-01T05:30", 30, id="fall-back-1-30"),
    ],
)
def test_dst_days_give_exactly_one_sending_day_each(
    transition: str, hour: int, minute: int, quiet: int, opens_utc: str, window_ticks: int
) -> None:
    day = D(transition)
    start = local_reminder_instant(day - timedelta(days=1), 0, NEW_YORK)
    sweep = ticks(start, start + timedelta(hours=72), timedelta(minutes=5))
    open_ticks: dict[date, list[datetime]] = {}
    for tick in sweep:
        slot = sending_slot(
            tick, NEW_YORK, EVERY_DAY, reminder_hour=hour, quiet_hour=quiet, reminder_minute=minute
        )
        if slot is not None:
            open_ticks.setdefault(slot, []).append(tick)
    assert sorted(open_ticks) == [day - timedelta(days=1), day, day + timedelta(days=1)]
    for slot_day, opened in open_ticks.items():
        # One unbroken run per day, starting at the local reminder time.
        assert opened[0] == local_reminder_instant(slot_day, hour, NEW_YORK, minute=minute)
        assert opened[-1] - opened[0] == timedelta(minutes=5) * (len(opened) - 1)
    assert open_ticks[day][0] == utc(opens_utc)
    assert len(open_ticks[day]) == window_ticks

    # Planned against an "insert if absent" store, a daily nudge goes out once per day.
    store = run_ticks(
        sweep,
        [make_item(day - timedelta(days=30))],
        cadence=Cadence(overdue_every=1),
        calendar=EVERY_DAY,
        reminder_hour=hour,
        reminder_minute=minute,
        quiet_hour=quiet,
    )
    assert sorted(store) == [
        f"T1:digest:U1:{d}" for d in (day - timedelta(days=1), day, day + timedelta(days=1))
    ]


# --- planning digests -------------------------------------------------------------------------


def plan(
    now: datetime,
    items: Iterable[ItemView],
    *,
    people: Mapping[str, Recipient] | None = None,
    coordinators: Mapping[int, Sequence[str]] | None = None,
    calendar: BusinessCalendar | None = None,
    cadence: Cadence | None = None,
    **window: int,
) -> list[PlannedDigest]:
    """plan_digests for team T1 with New York as the default zone and the US-PA calendar."""
    return plan_digests(
        team_id=TEAM,
        now=now,
        items=items,
        people=people or {},
        coordinators=coordinators or {},
        default_zone=NEW_YORK,
        calendar=calendar or pa_calendar(),
        cadence=cadence or Cadence(),
        **window,
    )


def run_ticks(
    instants: Iterable[datetime], items: Sequence[ItemView], **kwargs: object
) -> dict[str, tuple[PlannedDigest, datetime]]:
    """Plan at each instant into an insert-if-absent store: key -> (first digest, when planned)."""
    store: dict[str, tuple[PlannedDigest, datetime]] = {}
    for now in instants:
        for digest in plan(now, items, **kwargs):  # type: ignore[arg-type]
            store.setdefault(digest.key, (digest, now))
    return store


def test_digest_keys_name_team_kind_recipient_and_local_date() -> None:
    assert digest_key("T1", "digest", "U123", D("2027-03-30")) == "T1:digest:U123:2027-03-30"


def test_one_owner_gets_one_digest_listing_every_item_owed_today() -> None:
    items = [
        make_item("2027-04-06", item_id=3),  # first nudge
        make_item("2027-03-31", item_id=1),  # due tomorrow
        make_item("2027-03-30", item_id=2),  # due today
        make_item("2027-03-25", item_id=4),  # overdue by 3
        make_item("2027-03-26", item_id=5),  # overdue by 2: not today
        make_item("2027-03-30", item_id=6, owner="U2"),
        make_item("2027-03-30", item_id=7, status="done"),
    ]
    planned = plan(utc("2027-03-30T13:00"), items)
    assert planned == [
        PlannedDigest(
            key="T1:digest:U1:2027-03-30",
            team_id=TEAM,
            kind="digest",
            recipient="U1",
            local_date=D("2027-03-30"),
            items=((1, TOMORROW), (2, TODAY), (3, SOON), (4, OVERDUE)),
        ),
        PlannedDigest(
            key="T1:digest:U2:2027-03-30",
            team_id=TEAM,
            kind="digest",
            recipient="U2",
            local_date=D("2027-03-30"),
            items=((6, TODAY),),
        ),
    ]


def test_nobody_is_planned_a_digest_when_nothing_is_owed() -> None:
    assert plan(utc("2027-03-30T13:00"), [make_item("2027-03-26")]) == []


def test_owners_in_three_zones_hear_about_one_due_date_at_their_own_nine() -> None:
    people = {
        "UH": Recipient("UH", HONOLULU),
        "UK": Recipient("UK", KOLKATA),
        "UX": Recipient("UX", KIRITIMATI),
    }
    items = [make_item("2027-03-31", item_id=i, owner=u) for i, u in enumerate(people, 1)]
    sweep = ticks(utc("2027-03-29T18:00"), utc("2027-04-01T12:00"), timedelta(minutes=5))
    store = run_ticks(sweep, items, people=people)
    firsts = {key: (digest.items[0][1], when) for key, (digest, when) in store.items()}
    assert firsts == {
        "T1:digest:UX:2027-03-30": (TOMORROW, utc("2027-03-29T19:00")),
        "T1:digest:UX:2027-03-31": (TODAY, utc("2027-03-30T19:00")),
        "T1:digest:UK:2027-03-30": (TOMORROW, utc("2027-03-30T03:30")),
        "T1:digest:UK:2027-03-31": (TODAY, utc("2027-03-31T03:30")),
        "T1:digest:UH:2027-03-30": (TOMORROW, utc("2027-03-30T19:00")),
        "T1:digest:UH:2027-03-31": (TODAY, utc("2027-03-31T19:00")),
    }


def test_an_owner_without_a_known_zone_hears_at_nine_in_the_default_zone() -> None:
    items = [make_item("2027-03-30", owner="U9")]
    assert plan(utc("2027-03-30T12:55"), items) == []
    [digest] = plan(utc("2027-03-30T13:00"), items)
    assert (digest.recipient, digest.local_date) == ("U9", D("2027-03-30"))


def test_the_owner_zone_decides_the_day_not_the_default_zone() -> None:
    # 13:00 UTC on Tuesday is 09:00 in New York but 03:00 on Tuesday in Honolulu.
    people = {"U1": Recipient("U1", HONOLULU)}
    assert plan(utc("2027-03-30T13:00"), [make_item("2027-03-30")], people=people) == []
    [digest] = plan(utc("2027-03-30T19:00"), [make_item("2027-03-30")], people=people)
    assert digest.items == ((1, TODAY),)


@pytest.mark.parametrize(
    ("paused_until", "day", "expected"),
    [
        pytest.param(
            None,
            "2027-04-05",
            {
                "T1:digest:U1:2027-04-05": ((1, OVERDUE),),
                "T1:digest:C1:2027-04-05": ((2, "escalation"),),
            },
            id="not-paused",
        ),
        pytest.param(
            "2027-04-06",
            "2027-04-05",
            {"T1:digest:C1:2027-04-05": ((2, "escalation"),)},
            id="paused-owner-still-escalated",
        ),
        pytest.param(
            "2027-04-06",
            "2027-04-06",
            {"T1:digest:U1:2027-04-06": ((2, OVERDUE),)},
            id="pause-until-is-the-first-day-back",
        ),
    ],
)
def test_a_paused_owner_hears_nothing_but_their_coordinator_still_gets_escalations(
    paused_until: str | None, day: str, expected: dict[str, tuple[object, ...]]
) -> None:
    people = {"U1": Recipient("U1", NEW_YORK, D(paused_until) if paused_until else None)}
    items = [make_item("2027-03-31", item_id=1), make_item("2027-03-29", item_id=2)]
    now = local_reminder_instant(D(day), 10, NEW_YORK)
    planned = plan(now, items, people=people, coordinators={1: ["C1"]})
    assert {digest.key: digest.items for digest in planned} == expected


def test_a_paused_or_inactive_coordinator_gets_no_escalation() -> None:
    people = {
        "C1": Recipient("C1", NEW_YORK, paused_until=D("2027-04-10")),
        "C2": Recipient("C2", NEW_YORK, active=False),
        "C3": Recipient("C3", NEW_YORK),
    }
    planned = plan(
        utc("2027-04-05T14:00"),
        [make_item("2027-03-29", owner=None)],
        people=people,
        coordinators={1: ["C1", "C2", "C3", "C3"]},
    )
    assert [(d.kind, d.recipient, d.items) for d in planned] == [("digest", "C3", ((1, "escalation"),))]


def test_an_inactive_owner_gets_no_digest() -> None:
    people = {"U1": Recipient("U1", NEW_YORK, active=False)}
    assert plan(utc("2027-03-30T14:00"), [make_item("2027-03-30")], people=people) == []


def test_escalations_follow_the_coordinators_own_local_day() -> None:
    # Due Wednesday 31 March: escalated on Wednesday 7 April. At 19:00 UTC on 6 April it is
    # already 09:00 on 7 April in Kiritimati but still Tuesday afternoon in New York.
    people = {"CX": Recipient("CX", KIRITIMATI), "CN": Recipient("CN", NEW_YORK)}
    items = [make_item("2027-03-31")]
    coordinators = {1: ["CX", "CN"]}
    early = plan(utc("2027-04-06T19:00"), items, people=people, coordinators=coordinators)
    assert [(d.key, d.items) for d in early] == [("T1:digest:CX:2027-04-07", ((1, "escalation"),))]
    later = plan(utc("2027-04-07T13:00"), items, people=people, coordinators=coordinators)
    assert [d.key for d in later] == ["T1:digest:CN:2027-04-07"]


def test_a_tick_after_the_quiet_hour_sends_nothing_and_the_day_is_not_replayed() -> None:
    items = [make_item("2027-03-31", item_id=1), make_item("2027-04-01", item_id=2)]
    assert plan(utc("2027-03-30T21:59"), items)[0].items == ((1, TOMORROW),)
    assert plan(utc("2027-03-30T22:00"), items) == []
    # Down from 18:00 Tuesday until 09:05 Wednesday: Tuesday's nudge is gone for good.
    store = run_ticks([utc("2027-03-30T22:30"), utc("2027-03-31T13:05")], items)
    assert {key: digest.items for key, (digest, _) in store.items()} == {
        "T1:digest:U1:2027-03-31": ((1, TODAY), (2, TOMORROW)),
    }


def test_after_downtime_the_next_tick_sends_only_what_is_owed_today_once() -> None:
    items = [
        make_item("2027-03-31", item_id=1),  # due tomorrow yesterday, due today today
        make_item("2027-04-01", item_id=2),  # due tomorrow today
        make_item("2027-03-26", item_id=3),  # overdue by 3 today
        make_item("2027-03-25", item_id=4),  # overdue by 3 yesterday (missed), by 4 today
    ]
    # The last tick before the outage was 08:00 Tuesday; the next is 16:00 Wednesday, then 16:01.
    store = run_ticks([utc("2027-03-30T12:00"), utc("2027-03-31T20:00"), utc("2027-03-31T20:01")], items)
    assert {key: (digest.items, when) for key, (digest, when) in store.items()} == {
        "T1:digest:U1:2027-03-31": (
            ((1, TODAY), (2, TOMORROW), (3, OVERDUE)),
            utc("2027-03-31T20:00"),
        ),
    }


def test_an_owner_who_is_also_a_coordinator_gets_one_digest_with_their_escalations() -> None:
    items = [
        make_item("2027-03-31", item_id=1),
        make_item("2027-04-07", item_id=2),
        make_item("2027-03-31", item_id=3, owner="U2"),
    ]
    planned = plan(utc("2027-04-07T13:00"), items, coordinators={1: ["U1"]})
    assert [(d.key, d.items) for d in planned] == [
        ("T1:digest:U1:2027-04-07", ((1, "escalation"), (2, TODAY), (3, "escalation"))),
    ]


def test_an_item_owed_its_owner_and_escalated_to_them_is_listed_once_as_theirs() -> None:
    items = [make_item("2027-03-31", item_id=1)]  # overdue and escalated on 7 April
    cadence = Cadence(overdue_every=1)
    planned = plan(utc("2027-04-07T13:00"), items, coordinators={1: ["U1"]}, cadence=cadence)
    assert [(d.key, d.items) for d in planned] == [("T1:digest:U1:2027-04-07", ((1, OVERDUE),))]


def test_a_snoozed_item_is_left_out_of_the_digest_until_the_snooze_ends() -> None:
    items = [
        make_item("2027-03-31", item_id=1, snoozed_until="2027-04-02"),
        make_item("2027-03-31", item_id=2),
    ]
    assert plan(utc("2027-03-31T13:00"), items)[0].items == ((2, TODAY),)
    assert plan(utc("2027-04-02T13:00"), items)[0].items == ((1, ENDED),)


# --- the store never sees a duplicate ---------------------------------------------------------

ZONES = [
    NEW_YORK,
    HONOLULU,
    KOLKATA,
    KIRITIMATI,
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("Australia/Lord_Howe"),
    ZoneInfo("Asia/Kathmandu"),
    ZoneInfo("Pacific/Pago_Pago"),
]
BASE = datetime(2026, 1, 5, tzinfo=UTC)
USERS = ("U1", "U2", "U3", "C1", "C2")


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[datetime], list[ItemView], dict[str, Recipient]]:
    """Random tick instants, items and people (some paused, some in the default zone)."""
    start = BASE + timedelta(minutes=draw(st.integers(0, 2 * 365 * 24 * 60)))
    # Mostly short gaps (several ticks inside one sending window), some long outages.
    gap_minutes = st.integers(1, 90) | st.integers(1, 3 * 24 * 60)
    gaps = draw(st.lists(gap_minutes, min_size=5, max_size=40))
    instants = [start]
    for gap in gaps:
        instants.append(instants[-1] + timedelta(minutes=gap))
    people: dict[str, Recipient] = {}
    for user in USERS:
        zone = draw(st.none() | st.sampled_from(ZONES))
        if zone is not None:
            pause = draw(st.none() | st.integers(-5, 20))
            paused_until = None if pause is None else start.date() + timedelta(days=pause)
            people[user] = Recipient(user, zone, paused_until)
    items = [
        ItemView(
            item_id=number,
            ref=f"OIT-{number}",
            owner_id=draw(st.sampled_from(["U1", "U2", "U3", "C2", None])),
            due=start.date() + timedelta(days=draw(st.integers(-25, 15))),
            status=draw(st.sampled_from(["on_track", "at_risk", "blocked", "done"])),
            snoozed_until=draw(
                st.none() | st.builds(lambda n: start.date() + timedelta(days=n), st.integers(0, 15))
            ),
            department_id=draw(st.sampled_from([1, 2])),
        )
        for number in range(1, draw(st.integers(3, 12)) + 1)
    ]
    return instants, items, people


@settings(max_examples=200, deadline=None)
@given(world=worlds(), cadence=cadences)
def test_planned_digests_never_duplicate_or_replay_over_any_tick_sequence(
    world: tuple[list[datetime], list[ItemView], dict[str, Recipient]], cadence: Cadence
) -> None:
    instants, items, people = world
    calendar = pa_calendar()
    coordinators = {1: ["C1"], 2: ["C2", "U1"]}
    stored: dict[str, tuple[str, str, date]] = {}
    owner_of: dict[tuple[str, str, date], str] = {}
    last_day: dict[tuple[str, str], date] = {}
    by_id = {item.item_id: item for item in items}
    for now in instants:
        planned = plan(
            now, items, people=people, coordinators=coordinators, calendar=calendar, cadence=cadence
        )
        assert len({digest.key for digest in planned}) == len(planned)
        for digest in planned:
            what = (digest.recipient, digest.kind, digest.local_date)
            zone = people[digest.recipient].zone if digest.recipient in people else NEW_YORK
            assert sending_slot(now, zone, calendar, reminder_hour=9, quiet_hour=18) == digest.local_date
            assert digest.items
            for item_id, why in digest.items:
                item = by_id[item_id]
                if why == "escalation":
                    assert digest.recipient in coordinators[item.department_id]
                    assert escalation_due(item, digest.local_date, calendar, cadence)
                else:
                    assert item.owner_id == digest.recipient
                    assert nudge_kind(item, digest.local_date, calendar, cadence) == why
            if digest.key in stored:
                assert stored[digest.key] == what
                continue
            # A new row: one key per recipient, kind and day, and days only move forward.
            assert owner_of.setdefault(what, digest.key) == digest.key
            stream = (digest.recipient, digest.kind)
            assert last_day.get(stream, date.min) < digest.local_date
            last_day[stream] = digest.local_date
            stored[digest.key] = what
