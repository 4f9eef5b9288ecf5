"""The pure reminder policy: the nudges and escalations owed on a day, and the digests a tick plans.

Everything here takes the day or the instant as a parameter; nothing reads a clock or a database.
The inverse functions (`due_dates_owed_on`, `escalation_due_dates`, `snooze_end_dates`) let the
planner's query fetch only the items owed on a day, so a tick costs what is owed, not the plan size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from domain.cadence import Cadence
from domain.calendar import BusinessCalendar, local_date_and_hour, local_reminder_instant
from domain.errors import ReapError

OPEN_STATUSES = frozenset({"not_started", "on_track", "at_risk", "off_track", "blocked"})
_ONE_DAY = timedelta(days=1)


class NudgeKind(StrEnum):
    """Why an owner is nudged about an item on a given day."""

    DUE_SOON = "due_soon"
    DUE_TOMORROW = "due_tomorrow"
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"
    SNOOZE_ENDED = "snooze_ended"


class ReminderWindowError(ReapError, ValueError):
    """The reminder hour does not come before the quiet hour on a 24-hour clock."""

    def __init__(self, reminder_hour: int, reminder_minute: int, quiet_hour: int) -> None:
        super().__init__(
            f"reminders start at {reminder_hour:02d}:{reminder_minute:02d} and stop at quiet hour"
            f" {quiet_hour}; the start must be a time of day (00:00-23:59) before the quiet hour"
            " (1-24)"
        )


@dataclass(frozen=True)
class ItemView:
    """The few facts about an action item that the policy needs."""

    item_id: int
    ref: str
    owner_id: str | None
    due: date | None
    status: str
    snoozed_until: date | None
    department_id: int


def _regular_kind(due: date, day: date, calendar: BusinessCalendar, cadence: Cadence) -> NudgeKind | None:
    # `day` is a business day here. The steps land on strictly increasing days
    # (soon < tomorrow < today < overdue), so at most one matches.
    due_today = calendar.on_or_after(due)
    if day == due_today:
        return NudgeKind.DUE_TODAY
    if day > due_today:
        every = cadence.overdue_every
        late = calendar.business_days_between(due_today, day)
        return NudgeKind.OVERDUE if every and late % every == 0 else None
    before = cadence.business_days_before
    tomorrow = calendar.add_business_days(due, -before) if before else None
    if day == tomorrow:
        return NudgeKind.DUE_TOMORROW
    if cadence.first_days_before and day == calendar.on_or_after(
        due - timedelta(days=cadence.first_days_before)
    ):
        # A first nudge that would land on or after the day-before nudge adds nothing.
        if tomorrow is not None and day >= tomorrow:
            return None
        return NudgeKind.DUE_SOON
    return None


def nudge_kind(item: ItemView, day: date, calendar: BusinessCalendar, cadence: Cadence) -> NudgeKind | None:
    """The nudge `item`'s owner is owed on local day `day`; None if none (or not a business day)."""
    if item.status not in OPEN_STATUSES or item.due is None:
        return None
    if not calendar.is_business_day(day):
        return None
    if item.snoozed_until is not None and day < item.snoozed_until:
        return None
    regular = _regular_kind(item.due, day, calendar, cadence)
    if regular is not None:
        return regular
    # A snooze ending on a weekend or holiday ends, for nudging, on the next business day.
    if (
        item.snoozed_until is not None
        and calendar.on_or_after(item.snoozed_until) == day
        and item.due - timedelta(days=cadence.first_days_before) <= day
    ):
        return NudgeKind.SNOOZE_ENDED
    return None


def escalation_due(item: ItemView, day: date, calendar: BusinessCalendar, cadence: Cadence) -> bool:
    """Whether `item` is escalated to its department's coordinators on local business day `day`."""
    if item.status not in OPEN_STATUSES or item.due is None or not cadence.escalate_after:
        return False
    if not calendar.is_business_day(day):
        return False
    # A snoozed item "gets nothing until the snooze ends", escalations included.
    if item.snoozed_until is not None and day < item.snoozed_until:
        return False
    late = calendar.business_days_between(calendar.on_or_after(item.due), day)
    beyond = late - cadence.escalate_after
    if beyond == 0:
        return True
    return beyond > 0 and cadence.escalate_every > 0 and beyond % cadence.escalate_every == 0


def _dates_rolling_to(target: date, calendar: BusinessCalendar) -> Iterable[date]:
    # Every date d with on_or_after(d) == target: target and the non-business days just before it.
    day = target
    yield day
    day -= _ONE_DAY
    while not calendar.is_business_day(day):
        yield day
        day -= _ONE_DAY


def due_dates_owed_on(
    day: date, calendar: BusinessCalendar, cadence: Cadence, *, horizon_days: int = 400
) -> dict[date, NudgeKind]:
    """Every due date whose open, unsnoozed item is owed a nudge on `day`, mapped to the kind.

    Exactly the inverse of `nudge_kind` for items with no snooze in force, except that overdue
    items due more than `horizon_days` before `day` are left out. The planner queries by these.
    """
    owed: dict[date, NudgeKind] = {}
    if not calendar.is_business_day(day):
        return owed
    oldest = day - timedelta(days=horizon_days)
    every = cadence.overdue_every
    if every:
        due_today = calendar.add_business_days(day, -every)
        while due_today >= oldest:
            for due in _dates_rolling_to(due_today, calendar):
                if due >= oldest:
                    owed[due] = NudgeKind.OVERDUE
            due_today = calendar.add_business_days(due_today, -every)
    for due in _dates_rolling_to(day, calendar):
        owed[due] = NudgeKind.DUE_TODAY
    before = cadence.business_days_before
    if before:
        # add_business_days(due, -before) == day exactly for due in (the (before-1)-th business
        # day after `day`, the before-th business day after `day`].
        low = calendar.add_business_days(day, before - 1)
        high = calendar.add_business_days(low, 1)
        due = low + _ONE_DAY
        while due <= high:
            owed[due] = NudgeKind.DUE_TOMORROW
            due += _ONE_DAY
    if cadence.first_days_before:
        offset = timedelta(days=cadence.first_days_before)
        for shifted in _dates_rolling_to(day, calendar):
            due = shifted + offset
            tomorrow = calendar.add_business_days(due, -before) if before else None
            if (tomorrow is None or day < tomorrow) and day < calendar.on_or_after(due):
                owed[due] = NudgeKind.DUE_SOON
    return owed


def escalation_due_dates(
    day: date, calendar: BusinessCalendar, cadence: Cadence, *, horizon_days: int = 400
) -> frozenset[date]:
    """Every due date whose open, unsnoozed item is escalated on `day` (escalation_due inverted)."""
    if not cadence.escalate_after or not calendar.is_business_day(day):
        return frozenset()
    oldest = day - timedelta(days=horizon_days)
    found: set[date] = set()
    due_today = calendar.add_business_days(day, -cadence.escalate_after)
    while due_today >= oldest:
        found.update(due for due in _dates_rolling_to(due_today, calendar) if due >= oldest)
        if not cadence.escalate_every:
            break
        due_today = calendar.add_business_days(due_today, -cadence.escalate_every)
    return frozenset(found)


def snooze_end_dates(day: date, calendar: BusinessCalendar) -> frozenset[date]:
    """Every `snoozed_until` whose snooze ends, for nudging, on business day `day`."""
    if not calendar.is_business_day(day):
        return frozenset()
    return frozenset(_dates_rolling_to(day, calendar))


@dataclass(frozen=True)
class Recipient:
    """Someone the bot may DM: their zone and, while paused, the first day they hear again."""

    user_id: str
    zone: ZoneInfo
    paused_until: date | None = None
    active: bool = True

    def hears_on(self, day: date) -> bool:
        """Whether this person may be messaged on their local day `day`."""
        return self.active and (self.paused_until is None or day >= self.paused_until)


@dataclass(frozen=True)
class Slot:
    """A recipient's sending day: the local date a digest is for, in their zone."""

    local_date: date
    zone: ZoneInfo


def _check_window(reminder_hour: int, reminder_minute: int, quiet_hour: int) -> None:
    if not (0 <= reminder_hour <= 23 and 0 <= reminder_minute <= 59 and reminder_hour < quiet_hour <= 24):
        raise ReminderWindowError(reminder_hour, reminder_minute, quiet_hour)


def sending_slot(
    now: datetime,
    zone: ZoneInfo,
    calendar: BusinessCalendar,
    *,
    reminder_hour: int,
    quiet_hour: int,
    reminder_minute: int = 0,
) -> date | None:
    """The local business day a digest may go out for at `now` in `zone`; None outside the window.

    The window opens at local_reminder_instant(reminder time) and closes at the quiet hour, so a
    skipped wall time opens it at the end of the DST gap and a repeated hour never opens it twice.
    """
    _check_window(reminder_hour, reminder_minute, quiet_hour)
    local_date, _ = local_date_and_hour(now, zone)
    if not calendar.is_business_day(local_date):
        return None
    opens = local_reminder_instant(local_date, reminder_hour, zone, minute=reminder_minute)
    if now < opens:
        return None
    if quiet_hour < 24 and now >= local_reminder_instant(local_date, quiet_hour, zone):
        return None
    return local_date


def digest_key(team_id: str, kind: str, recipient: str, local_date: date) -> str:
    """The outbox's unique key for one recipient's digest of one kind on one local date."""
    return f"{team_id}:{kind}:{recipient}:{local_date.isoformat()}"


DigestKind = Literal["digest"]
Reason = NudgeKind | Literal["escalation"]
# Why an item is in a coordinator's digest: it is well overdue in their department.
ESCALATED: Literal["escalation"] = "escalation"


@dataclass(frozen=True)
class PlannedDigest:
    """One DM the bot owes: a recipient's digest for a local date, with each item and why it is in it."""

    key: str
    team_id: str
    kind: DigestKind
    recipient: str
    local_date: date
    items: tuple[tuple[int, Reason], ...]


def plan_digests(
    *,
    team_id: str,
    now: datetime,
    items: Iterable[ItemView],
    people: Mapping[str, Recipient],
    coordinators: Mapping[int, Sequence[str]],
    default_zone: ZoneInfo,
    calendar: BusinessCalendar,
    cadence: Cadence,
    reminder_hour: int = 9,
    quiet_hour: int = 18,
    reminder_minute: int = 0,
) -> list[PlannedDigest]:
    """The digests owed at `now`: one per person with anything owed, whatever their roles.

    Each recipient's day is their own local date (their zone, or `default_zone` when they have
    none or are not in `people`); nothing goes out outside their sending window. A person's digest
    lists the items they own that `nudge_kind` owes on their day (none while they are paused or
    inactive) and, for a coordinator, their department's items `escalation_due` on the
    coordinator's own local day; those go out even while the owner is paused, but not to a paused
    or inactive coordinator. An item a coordinator owns and that escalates is listed once, as theirs.
    """
    _check_window(reminder_hour, reminder_minute, quiet_hour)
    slots: dict[str, Slot | None] = {}
    # Thousands of recipients share a handful of zones; the window is worked out once per zone.
    zone_days: dict[str, date | None] = {}

    def slot_of(user_id: str) -> Slot | None:
        if user_id not in slots:
            who = people.get(user_id) or Recipient(user_id, default_zone)
            if who.zone.key not in zone_days:
                zone_days[who.zone.key] = sending_slot(
                    now,
                    who.zone,
                    calendar,
                    reminder_hour=reminder_hour,
                    quiet_hour=quiet_hour,
                    reminder_minute=reminder_minute,
                )
            day = zone_days[who.zone.key]
            slots[user_id] = Slot(day, who.zone) if day is not None and who.hears_on(day) else None
        return slots[user_id]

    owed: dict[str, dict[int, Reason]] = {}
    days: dict[str, date] = {}
    for item in items:
        if item.owner_id is not None and (slot := slot_of(item.owner_id)) is not None:
            kind = nudge_kind(item, slot.local_date, calendar, cadence)
            if kind is not None:
                owed.setdefault(item.owner_id, {})[item.item_id] = kind
                days[item.owner_id] = slot.local_date
        for coordinator in dict.fromkeys(coordinators.get(item.department_id, ())):
            slot = slot_of(coordinator)
            if slot is not None and escalation_due(item, slot.local_date, calendar, cadence):
                owed.setdefault(coordinator, {}).setdefault(item.item_id, ESCALATED)
                days[coordinator] = slot.local_date

    return [
        PlannedDigest(
            key=digest_key(team_id, "digest", recipient, days[recipient]),
            team_id=team_id,
            kind="digest",
            recipient=recipient,
            local_date=days[recipient],
            items=tuple(sorted(reasons.items())),
        )
        for recipient, reasons in sorted(owed.items())
    ]
