"""SQLModel tables for the whole REAP domain; every row is scoped to a Slack workspace (`team_id`)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import JSON, CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.commitments import EVIDENCE_MAX, ChangeKind, RequestState
from domain.equity import DEFAULT_MIN_COUNT
from domain.measures import MeasureKind
from domain.status import Direction, ItemStatus, Role
from domain.text import DESCRIPTION_MAX, NAME_MAX, NOTE_MAX, TITLE_MAX, UNIT_MAX
from storage.types import UTCDateTime


class NotificationState(StrEnum):
    """Outbox row states: pending -> sending -> sent | failed | ambiguous | skipped."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"
    SKIPPED = "skipped"


def _status_check(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name)


# --- Department -------------------------------------------------------------------------------


class DepartmentBase(SQLModel):
    """Fields shared by every Department shape."""

    key: str = Field(max_length=16, description="Short key used in item refs, e.g. OIT")
    name: str = Field(max_length=NAME_MAX)
    report_channel: str | None = Field(default=None, max_length=32)


class DepartmentCreate(DepartmentBase):
    """What it takes to create a department."""


class Department(DepartmentBase, table=True):
    """A city department with its own plan, report channel and coordinators."""

    __table_args__ = (UniqueConstraint("team_id", "key", name="uq_department_team_key"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32, index=True)
    next_number: int = Field(default=0, description="Last item number handed out for refs")
    created_at: datetime = Field(sa_type=UTCDateTime)


# --- Person -----------------------------------------------------------------------------------


class PersonBase(SQLModel):
    """Fields shared by every Person shape."""

    user_id: str = Field(max_length=32, description="Slack user id")
    name: str = Field(default="", max_length=NAME_MAX)
    title: str | None = Field(
        default=None, max_length=NAME_MAX, description="Job title, e.g. Equity Program Manager"
    )
    tz: str | None = Field(default=None, max_length=64, description="IANA time zone from users.info")
    role: str = Field(default=Role.MEMBER.value, max_length=16)
    department_id: int | None = Field(default=None, foreign_key="department.id")


class PersonCreate(PersonBase):
    """What it takes to create a person."""


class PersonUpdate(SQLModel):
    """Fields a refresh from Slack or an admin may change."""

    name: str | None = None
    title: str | None = None
    tz: str | None = None
    role: str | None = None
    department_id: int | None = None
    active: bool | None = None


class Person(PersonBase, table=True):
    """Someone in the workspace the bot knows about."""

    __table_args__ = (
        UniqueConstraint("team_id", "user_id", name="uq_person_team_user"),
        # The planner lists a team's distinct time zones every tick by skipping through this index.
        Index("ix_person_team_tz", "team_id", "tz"),
        _status_check("role", tuple(r.value for r in Role), "ck_person_role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    active: bool = Field(default=True)
    paused_until: date | None = Field(default=None)
    refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


# --- Plan and Strategy ------------------------------------------------------------------------


class PlanBase(SQLModel):
    """Fields shared by every Plan shape."""

    key: str = Field(max_length=64)
    title: str = Field(max_length=TITLE_MAX)
    start_date: date
    end_date: date


class Plan(PlanBase, table=True):
    """A department's action plan over a range of fiscal years."""

    __table_args__ = (UniqueConstraint("team_id", "key", name="uq_plan_team_key"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    department_id: int = Field(foreign_key="department.id", index=True)
    cadence: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # Breakdown groups counting fewer than this are never shown (privacy), see domain.equity.
    min_group_count: int = Field(default=DEFAULT_MIN_COUNT)
    # domain.commitments.ChangePolicy as a mapping; None means the defaults.
    policy: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    # domain.public.PublicSettings as a mapping (licence, opt-ins, "as of", Spanish names); None: defaults.
    public: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    created_at: datetime = Field(sa_type=UTCDateTime)


class Dimension(SQLModel, table=True):
    """A way a plan breaks its measures down, e.g. race or neighbourhood, with its groups."""

    __table_args__ = (UniqueConstraint("plan_id", "key", name="uq_dimension_plan_key"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    key: str = Field(max_length=64)
    name: str = Field(max_length=NAME_MAX)
    source: str | None = Field(default=None, max_length=NOTE_MAX)
    # [{"key", "name", "population_share" (0..1 or null)}] in the plan file's order.
    groups: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


class ScoringCriterion(SQLModel, table=True):
    """One question of a plan's equity scoring matrix, its weight and its labelled levels."""

    __tablename__ = "scoring_criterion"
    __table_args__ = (UniqueConstraint("plan_id", "key", name="uq_criterion_plan_key"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    plan_id: int = Field(foreign_key="plan.id", index=True)
    key: str = Field(max_length=64)
    question: str = Field(max_length=TITLE_MAX)
    weight: float
    levels: list[str] = Field(default_factory=list, sa_type=JSON)
    position: int = Field(default=0)


class ItemScore(SQLModel, table=True):
    """An item's level on one criterion, kept with the weight it counted at when it was given."""

    __tablename__ = "item_score"
    __table_args__ = (UniqueConstraint("item_id", "criterion_key", name="uq_score_item_criterion"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    item_id: int = Field(foreign_key="action_item.id", index=True)
    criterion_key: str = Field(max_length=64)
    level: int
    weight: float
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    scored_by: str = Field(max_length=32)
    scored_at: datetime = Field(sa_type=UTCDateTime)


class StrategyBase(SQLModel):
    """Fields shared by every Strategy shape."""

    key: str = Field(max_length=64)
    name: str = Field(max_length=NAME_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    position: int = Field(default=0)


class Strategy(StrategyBase, table=True):
    """A priority strategy of a plan, e.g. Digital equity."""

    __table_args__ = (UniqueConstraint("plan_id", "key", name="uq_strategy_plan_key"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    plan_id: int = Field(foreign_key="plan.id", index=True)


# --- ActionItem -------------------------------------------------------------------------------


class ActionItemBase(SQLModel):
    """Fields shared by every ActionItem shape."""

    title: str = Field(max_length=TITLE_MAX)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    owner_id: str | None = Field(default=None, max_length=32, description="Slack user id")
    due: date | None = Field(default=None)


class ActionItemCreate(ActionItemBase):
    """What it takes to create an item: its strategy (by id) and optional import key."""

    strategy_id: int
    import_key: str | None = None
    status: ItemStatus = ItemStatus.NOT_STARTED
    progress: int = Field(default=0, ge=0, le=100)
    # A plan file may say when an item was really committed to, and link its evidence of completion.
    created_at: datetime | None = None
    evidence_url: str | None = Field(default=None, max_length=EVIDENCE_MAX)


class ActionItemUpdate(SQLModel):
    """The fields a general update may change; anything left None stays as it is."""

    title: str | None = Field(default=None, max_length=TITLE_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    status: ItemStatus | None = None
    progress: int | None = Field(default=None, ge=0, le=100)
    strategy_id: int | None = None


class ActionItem(ActionItemBase, table=True):
    """One action item of a plan, with a human ref like OIT-7."""

    __tablename__ = "action_item"
    __table_args__ = (
        UniqueConstraint("team_id", "ref", name="uq_item_team_ref"),
        UniqueConstraint("department_id", "number", name="uq_item_department_number"),
        UniqueConstraint("department_id", "import_key", name="uq_item_department_import_key"),
        _status_check("status", tuple(s.value for s in ItemStatus), "ck_item_status"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="ck_item_progress"),
        Index("ix_item_team_owner_status", "team_id", "owner_id", "status"),
        Index("ix_item_team_status_due", "team_id", "status", "due"),
        Index("ix_item_team_due", "team_id", "due"),
        Index("ix_item_team_updated", "team_id", "updated_at"),
        Index("ix_item_team_snoozed", "team_id", "snoozed_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    department_id: int = Field(foreign_key="department.id")
    strategy_id: int = Field(foreign_key="strategy.id", index=True)
    number: int
    ref: str = Field(max_length=32)
    import_key: str | None = Field(default=None, max_length=100)
    status: str = Field(default=ItemStatus.NOT_STARTED.value, max_length=16)
    progress: int = Field(default=0)
    # The column is wider than NOTE_MAX (it predates the limit); every write checks NOTE_MAX.
    last_note: str | None = Field(default=None, max_length=4000)
    snoozed_until: date | None = Field(default=None)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    evidence_url: str | None = Field(default=None, max_length=EVIDENCE_MAX)
    # Set when a coordinator confirms the evidence; a done item without it awaits verification.
    verified_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    verified_by: str | None = Field(default=None, max_length=32)
    # What the public dashboard says about the item: written (or approved) by a coordinator, in
    # English and optionally Spanish; nothing else an owner types is ever published by default.
    title_es: str | None = Field(default=None, max_length=TITLE_MAX)
    public_update: str | None = Field(default=None, max_length=NOTE_MAX)
    public_update_es: str | None = Field(default=None, max_length=NOTE_MAX)
    public_update_by: str | None = Field(default=None, max_length=32)
    public_update_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def status_enum(self) -> ItemStatus:
        """The status as an ItemStatus."""
        return ItemStatus(self.status)


# --- Change requests --------------------------------------------------------------------------


class ChangeRequest(SQLModel, table=True):
    """A requested change to a commitment (drop, later due date, reassignment) awaiting a coordinator."""

    __tablename__ = "change_request"
    __table_args__ = (
        # Set to the item id while pending and cleared when decided: one pending request per item,
        # enforced by the database on both backends (NULLs never collide in a unique constraint).
        UniqueConstraint("open_item_id", name="uq_change_request_open_item"),
        _status_check("kind", tuple(k.value for k in ChangeKind), "ck_change_request_kind"),
        _status_check("state", tuple(s.value for s in RequestState), "ck_change_request_state"),
        Index("ix_change_request_team_state", "team_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    item_id: int = Field(foreign_key="action_item.id", index=True)
    department_id: int = Field(foreign_key="department.id")
    open_item_id: int | None = Field(default=None)
    kind: str = Field(max_length=16)
    old_value: str | None = Field(default=None, max_length=64)
    new_value: str | None = Field(default=None, max_length=64)
    reason: str = Field(max_length=NOTE_MAX)
    requested_by: str = Field(max_length=32)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    state: str = Field(default=RequestState.PENDING.value, max_length=16)
    decided_by: str | None = Field(default=None, max_length=32)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decision_note: str | None = Field(default=None, max_length=NOTE_MAX)
    resurfaced_on: date | None = Field(default=None)


# --- Measures ---------------------------------------------------------------------------------


class MeasureBase(SQLModel):
    """Fields shared by every Measure shape."""

    key: str = Field(max_length=64)
    name: str = Field(max_length=TITLE_MAX)
    unit: str = Field(default="", max_length=UNIT_MAX)
    baseline: float
    target: float
    target_date: date
    direction: str = Field(default=Direction.INCREASE.value, max_length=16)
    owner_id: str | None = Field(default=None, max_length=32)
    kind: str = Field(default=MeasureKind.LEVEL.value, max_length=16)
    baseline_quarter: str | None = Field(default=None, max_length=10, description="e.g. FY2026-Q4")
    source: str | None = Field(default=None, max_length=NOTE_MAX, description="Where the data comes from")
    breakdown_dimension: str | None = Field(default=None, max_length=64, description="A Dimension key")
    breakdown_kind: str | None = Field(default=None, max_length=16)
    reference_group: str | None = Field(default=None, max_length=64)


class MeasureCreate(MeasureBase):
    """What it takes to create a measure."""

    strategy_id: int


class Measure(MeasureBase, table=True):
    """A performance measure of a strategy: baseline, target and direction."""

    __table_args__ = (
        UniqueConstraint("team_id", "key", name="uq_measure_team_key"),
        _status_check("direction", tuple(d.value for d in Direction), "ck_measure_direction"),
        _status_check("kind", tuple(k.value for k in MeasureKind), "ck_measure_kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    strategy_id: int = Field(foreign_key="strategy.id", index=True)


class MeasureReadingBase(SQLModel):
    """Fields shared by every MeasureReading shape."""

    quarter: str = Field(max_length=10, description="Fiscal quarter label, e.g. FY2027-Q2")
    value: float
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    # {group key: {"value": v, "n": count or null}} for a broken-down measure; null otherwise.
    groups: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class MeasureReading(MeasureReadingBase, table=True):
    """One quarter's reading of a measure."""

    __tablename__ = "measure_reading"
    __table_args__ = (UniqueConstraint("measure_id", "quarter", name="uq_reading_measure_quarter"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    measure_id: int = Field(foreign_key="measure.id", index=True)
    recorded_by: str = Field(max_length=32)
    recorded_at: datetime = Field(sa_type=UTCDateTime)


# --- Audit ------------------------------------------------------------------------------------


class AuditEvent(SQLModel, table=True):
    """Append-only record of who changed what, when, from what to what, and why."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_item_at", "item_id", "at"),
        Index("ix_audit_team_at", "team_id", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    entity: str = Field(default="item", max_length=16)
    entity_id: int | None = None
    item_id: int | None = Field(default=None, foreign_key="action_item.id")
    actor: str = Field(max_length=32)
    at: datetime = Field(sa_type=UTCDateTime)
    action: str = Field(max_length=32)
    field: str | None = Field(default=None, max_length=32)
    old: str | None = Field(default=None, max_length=4000)
    new: str | None = Field(default=None, max_length=4000)
    note: str | None = Field(default=None, max_length=4000)


# --- Quarterly check-ins ----------------------------------------------------------------------


class CheckInCycle(SQLModel, table=True):
    """One quarterly check-in: when it opens, when it is due, and the DEI meeting date."""

    __tablename__ = "checkin_cycle"
    __table_args__ = (UniqueConstraint("team_id", "quarter", name="uq_cycle_team_quarter"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    quarter: str = Field(max_length=10)
    meeting_date: date
    opens_on: date | None = None
    due_on: date | None = None
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    opened_by: str | None = Field(default=None, max_length=32)


class CheckInResponse(SQLModel, table=True):
    """An owner's answer for one item in one check-in cycle."""

    __tablename__ = "checkin_response"
    __table_args__ = (UniqueConstraint("cycle_id", "item_id", name="uq_response_cycle_item"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    cycle_id: int = Field(foreign_key="checkin_cycle.id", index=True)
    item_id: int = Field(foreign_key="action_item.id")
    responder: str = Field(max_length=32)
    status: str = Field(max_length=16)
    progress: int
    note: str | None = Field(default=None, max_length=NOTE_MAX)
    responded_at: datetime = Field(sa_type=UTCDateTime)


# --- The quarterly record ---------------------------------------------------------------------


class QuarterSnapshot(SQLModel, table=True):
    """A closed quarter frozen as it stood: the computed rollup, every item and reading, the answers.

    Written once when the quarter's check-in closes and never rewritten; late corrections are
    Amendments beside it.
    """

    __tablename__ = "quarter_snapshot"
    __table_args__ = (UniqueConstraint("team_id", "quarter", name="uq_snapshot_team_quarter"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    quarter: str = Field(max_length=10)
    as_of: date
    frozen_at: datetime = Field(sa_type=UTCDateTime)
    frozen_by: str = Field(max_length=32)
    rollup: dict[str, Any] = Field(sa_type=JSON)
    items: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    readings: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    responses: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


class Amendment(SQLModel, table=True):
    """A correction to a closed quarter, with its reason and author, shown beside the frozen value."""

    __table_args__ = (Index("ix_amendment_team_quarter", "team_id", "quarter"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    quarter: str = Field(max_length=10)
    subject: str = Field(max_length=120, description="What was corrected, e.g. 'measure staff-trained'")
    old: str | None = Field(default=None, max_length=300)
    new: str = Field(max_length=300)
    reason: str = Field(max_length=NOTE_MAX)
    amended_by: str = Field(max_length=32)
    amended_at: datetime = Field(sa_type=UTCDateTime)


class Decision(SQLModel, table=True):
    """A decision recorded at a quarter's DEI meeting; one with an owner and a date has a follow-up item."""

    __table_args__ = (Index("ix_decision_team_quarter", "team_id", "quarter"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    quarter: str = Field(max_length=10, description="The quarter whose DEI meeting took it")
    text: str = Field(max_length=NOTE_MAX)
    item_id: int | None = Field(default=None, foreign_key="action_item.id", description="What it is about")
    owner_id: str | None = Field(default=None, max_length=32)
    due: date | None = None
    followup_item_id: int | None = Field(default=None, foreign_key="action_item.id")
    decided_by: str = Field(max_length=32)
    decided_at: datetime = Field(sa_type=UTCDateTime)


# --- Outbox and inbound de-duplication --------------------------------------------------------


class NotificationBase(SQLModel):
    """What a planner says is owed: who gets what, keyed so it is owed only once."""

    team_id: str = Field(max_length=32)
    key: str = Field(max_length=200)
    kind: str = Field(max_length=32)
    recipient: str = Field(max_length=32, description="Slack user or channel id")
    local_date: date | None = None
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    send_after: datetime = Field(sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)


class NotificationCreate(NotificationBase):
    """An owed message before it is stored (cheap to build by the thousand in a tick)."""


class Notification(NotificationBase, table=True):
    """The outbox: one row per message the bot owes someone, unique by `key`."""

    __table_args__ = (
        UniqueConstraint("key", name="uq_notification_key"),
        Index("ix_notification_state_send_after", "state", "send_after"),
        # A button press on a sent message finds the rows it came from by the message's (channel, ts).
        Index("ix_notification_channel_ts", "channel", "ts"),
        _status_check("state", tuple(s.value for s in NotificationState), "ck_notification_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    state: str = Field(default=NotificationState.PENDING.value, max_length=16)
    attempts: int = Field(default=0)
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    channel: str | None = Field(default=None, max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ProcessedEvent(SQLModel, table=True):
    """An Events API delivery already handled; the unique event_id stops Slack's retries twice over."""

    __tablename__ = "processed_event"
    __table_args__ = (UniqueConstraint("team_id", "event_id", name="uq_processed_event"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    event_id: str = Field(max_length=64)
    received_at: datetime = Field(sa_type=UTCDateTime, index=True)


class Heartbeat(SQLModel, table=True):
    """The last tick of each running instance, for /healthz and alerting."""

    instance_id: str = Field(primary_key=True, max_length=64)
    last_tick_at: datetime = Field(sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class ProfileSync(SQLModel, table=True):
    """Each workspace's daily users.list pass: the organisation's day it is for, the next page's
    cursor (None once the pass is done), and when Slack lets it go on (Retry-After, back-off)."""

    __tablename__ = "profile_sync"

    team_id: str = Field(primary_key=True, max_length=32)
    day: date | None = None
    cursor: str | None = Field(default=None, max_length=1000)
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class SendPace(SQLModel, table=True):
    """A send budget every instance books from: the next free slot (Unix seconds) of one budget."""

    __tablename__ = "send_pace"

    budget: str = Field(primary_key=True, max_length=64)
    tat: float = Field(default=0.0, description="theoretical arrival time of the next send")


class Installation(SQLModel, table=True):
    """A workspace (or, for an org-wide install, an Enterprise Grid org) the bot serves.

    Learned from auth.test with a bot token, or written by the OAuth flow. Uninstalling keeps
    the row and every row of the workspace's data, marked by `uninstalled_at`: nothing is planned
    or sent for it any more, and a reinstall clears the mark.
    """

    team_id: str = Field(primary_key=True, max_length=32)
    team_name: str = Field(default="", max_length=200)
    bot_user_id: str = Field(default="", max_length=32)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    enterprise_id: str | None = Field(default=None, max_length=32)
    is_enterprise_install: bool = Field(default=False)
    uninstalled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# Bolt's OAuth flow keeps its tokens and install states in slack_sdk's own tables. They are
# declared on our metadata too, with slack_sdk's own column builders, so Alembic manages them on
# the project's engine beside every other table.
SLACK_INSTALLATIONS = SQLAlchemyInstallationStore.build_installations_table(
    SQLModel.metadata, "slack_installations"
)
SLACK_BOTS = SQLAlchemyInstallationStore.build_bots_table(SQLModel.metadata, "slack_bots")
SLACK_OAUTH_STATES = SQLAlchemyOAuthStateStore.build_oauth_states_table(
    SQLModel.metadata, "slack_oauth_states"
)
