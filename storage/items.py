"""Every change to an action item: the row and its AuditEvents, written in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, event, or_, update
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.commitments import ChangeKind, EvidenceRequired, check_evidence, check_reason
from domain.errors import InvalidChange, NotFound, PermissionDenied
from domain.status import ItemStatus
from domain.text import DESCRIPTION_MAX, NOTE_MAX, TITLE_MAX, check_text
from storage.audit import event_row, record, record_all
from storage.bulk import insert_rows
from storage.models import (
    ActionItem,
    ActionItemCreate,
    ActionItemUpdate,
    AuditEvent,
    Department,
    Plan,
    Strategy,
)
from storage.outbox import owe_owner_change, owe_verification
from storage.permissions import (
    SYSTEM_ACTOR,
    Actor,
    ensure_can_edit,
    ensure_coordinator,
    ensure_may_commit,
    may_decide,
    policy_for,
)
from storage.queries.people import deciders


def _checked_note(note: str) -> str:
    # The last line of defence for every door: a note is stored whole or refused, never cut.
    return check_text(note, field="note", limit=NOTE_MAX, multiline=True)


def _check_item_text(title: str | None, description: str | None) -> None:
    if title is not None:
        check_text(title, field="title", limit=TITLE_MAX)
    if description is not None:
        check_text(description, field="description", limit=DESCRIPTION_MAX, multiline=True)


def audit(
    session: AsyncSession,
    *,
    item: ActionItem,
    actor: Actor,
    now: datetime,
    action: str,
    field: str | None = None,
    old: object = None,
    new: object = None,
    note: str | None = None,
) -> AuditEvent:
    """Append one AuditEvent about an item to the session."""
    return record(
        session,
        team_id=item.team_id,
        entity="item",
        entity_id=item.id,
        item_id=item.id,
        actor=actor.user_id,
        at=now,
        action=action,
        field=field,
        old=old,
        new=new,
        note=note,
    )


# Items this session's current transaction has locked, by (team, ref): see get_item.
_LOCKED = "reap_locked_items"


@event.listens_for(Session, "after_transaction_end")
def _locks_released(session: Session, transaction: SessionTransaction) -> None:
    # Any transaction's end, a savepoint's included: forgetting too often only costs a read.
    session.info.pop(_LOCKED, None)


async def get_item(session: AsyncSession, *, team_id: str, ref: str, lock: bool = False) -> ActionItem:
    """The item with this ref (case-insensitive), or NotFound.

    With `lock`, the row is locked until the transaction ends (PostgreSQL's FOR UPDATE; SQLite's
    writer already holds the database) and read afresh from it, so a change is never computed
    from values another transaction has since replaced. Locked once, it is not read again in the
    same transaction: several changes to one item in one form cost one read.
    """
    key = (team_id, ref.upper())
    locked: dict[tuple[str, str], ActionItem] = session.info.setdefault(_LOCKED, {})
    if lock and key in locked:
        return locked[key]
    query = select(ActionItem).where(ActionItem.team_id == team_id).where(ActionItem.ref == key[1])
    if lock:
        # The identity map would otherwise hand back what this session read before the lock.
        query = query.with_for_update().execution_options(populate_existing=True)
    item = (await session.exec(query)).first()
    if item is None:
        raise NotFound("item", key[1])
    if lock:
        locked[key] = item
    return item


async def _reserve_numbers(session: AsyncSession, *, department_id: int, count: int = 1) -> range:
    # One atomic increment: PostgreSQL row-locks the department, SQLite holds the write lock
    # from BEGIN IMMEDIATE, so concurrent creations never share a number.
    result = await session.exec(
        update(Department)
        .where(col(Department.id) == department_id)
        .values(next_number=Department.next_number + count)
        .returning(col(Department.next_number))
    )
    last = int(result.one()[0])
    return range(last - count + 1, last + 1)


async def create_item(
    session: AsyncSession,
    *,
    data: ActionItemCreate,
    actor: Actor,
    now: datetime,
) -> ActionItem:
    """Create an item in its strategy's department with the next ref, e.g. OIT-8."""
    return (await create_items(session, data=[data], actor=actor, now=now))[0]


@dataclass(frozen=True)
class NewItem:
    """An item `insert_items` wrote: its id, ref and title (not an ORM object)."""

    id: int
    ref: str
    title: str


async def create_items(
    session: AsyncSession,
    *,
    data: Sequence[ActionItemCreate],
    actor: Actor,
    now: datetime,
) -> list[ActionItem]:
    """Create several items at once (refs reserved in one step per department), each audited."""
    created = await insert_items(session, data=data, actor=actor, now=now)
    if not created:
        return []
    query = select(ActionItem).where(col(ActionItem.id).in_([c.id for c in created]))
    loaded = {item.id: item for item in await session.exec(query)}
    return [loaded[c.id] for c in created]


async def insert_items(
    session: AsyncSession,
    *,
    data: Sequence[ActionItemCreate],
    actor: Actor,
    now: datetime,
    notes: Sequence[str | None] | None = None,
) -> list[NewItem]:
    """Create items in bulk, each audited (and noted, with `notes` beside `data`), without loading them.

    Refs are reserved in one step per department; the rows and their AuditEvents are written
    with one statement each and the ids read back with one more, however many items there are.
    """
    if not data:
        return []
    notes = list(notes) if notes is not None else [None] * len(data)
    for wanted, note in zip(data, notes, strict=True):
        _check_item_text(wanted.title, wanted.description)
        if note:
            _checked_note(note)
    departments: dict[int, Department] = {}
    for strategy_id in {d.strategy_id for d in data}:
        strategy = await session.get(Strategy, strategy_id)
        if strategy is None or strategy.team_id != actor.team_id:
            raise NotFound("strategy", str(strategy_id))
        departments[strategy_id] = await department_of_strategy(session, strategy=strategy)
    # Grouped once: asking each department about every item costs departments x items.
    by_department: dict[int, list[ActionItemCreate]] = {}
    for wanted in data:
        by_department.setdefault(departments[wanted.strategy_id].id or 0, []).append(wanted)
    known = {department.id or 0: department for department in departments.values()}
    for department_id, wanted_here in by_department.items():
        owners = {d.owner_id for d in wanted_here}
        if not (actor.is_admin or owners == {actor.user_id}):
            await ensure_coordinator(
                session,
                actor=actor,
                department_id=department_id,
                action=f"add items to {known[department_id].key}",
            )
    reserved: dict[int, range] = {}
    for department_id, wanted_here in by_department.items():
        reserved[department_id] = await _reserve_numbers(
            session, department_id=department_id, count=len(wanted_here)
        )
    numbers = {department_id: iter(span) for department_id, span in reserved.items()}
    rows: list[dict[str, Any]] = []
    for wanted, note in zip(data, notes, strict=True):
        department = departments[wanted.strategy_id]
        number = next(numbers[department.id or 0])
        done = wanted.status == ItemStatus.DONE
        rows.append(
            {
                "team_id": actor.team_id,
                "department_id": department.id or 0,
                "strategy_id": wanted.strategy_id,
                "number": number,
                "ref": f"{department.key}-{number}",
                "import_key": wanted.import_key,
                "title": wanted.title,
                "description": wanted.description,
                "owner_id": wanted.owner_id,
                "due": wanted.due,
                "status": ItemStatus(wanted.status).value,
                "progress": wanted.progress,
                "last_note": note or None,
                "completed_at": now if done else None,
                "evidence_url": wanted.evidence_url,
                # Done in the coordinators' own plan file counts as verified by it; done in Slack does not.
                "verified_at": now if done and actor.user_id == SYSTEM_ACTOR else None,
                "verified_by": actor.user_id if done and actor.user_id == SYSTEM_ACTOR else None,
                "created_by": actor.user_id,
                "created_at": wanted.created_at or now,
                "updated_at": now,
            }
        )
    await insert_rows(session, ActionItem, rows)
    # The numbers just reserved are this call's alone, so they find exactly the new rows.
    spans = [
        and_(
            col(ActionItem.department_id) == department_id, col(ActionItem.number).between(span[0], span[-1])
        )
        for department_id, span in reserved.items()
    ]
    query = select(col(ActionItem.id), col(ActionItem.department_id), col(ActionItem.number)).where(
        or_(*spans)
    )
    stored = (await session.exec(query)).all()
    ids = {(department_id, number): int(id_ or 0) for id_, department_id, number in stored}
    created = [NewItem(ids[(row["department_id"], row["number"])], row["ref"], row["title"]) for row in rows]
    events = []
    for item, note, wanted in zip(created, notes, data, strict=True):
        # The history starts when the commitment was made, which a plan file may date before the bot.
        made = wanted.created_at or now
        events.append(_audit_row(item, actor=actor, now=made, action="create", new=item.title))
        if note:
            events.append(_audit_row(item, actor=actor, now=now, action="note", note=note))
    await record_all(session, events)
    await _announce_new(session, created=created, data=data, actor=actor, now=now)
    return created


async def _announce_new(
    session: AsyncSession,
    *,
    created: Sequence[NewItem],
    data: Sequence[ActionItemCreate],
    actor: Actor,
    now: datetime,
) -> None:
    # Whoever a person gives new open items (the Add form, `/reap add ... owner @x`) hears of them
    # once, in their next digest. A plan file's new items are the plan being written down, not a
    # hand-over; an owner it changes is told through reassign_item.
    if actor.user_id == SYSTEM_ACTOR:
        return
    given: dict[str, list[tuple[int, str]]] = {}
    for item, wanted in zip(created, data, strict=True):
        if wanted.owner_id is not None and ItemStatus(wanted.status).is_open:
            given.setdefault(wanted.owner_id, []).append((item.id, item.ref))
    for owner, items in given.items():
        await owe_owner_change(
            session,
            team_id=actor.team_id,
            items=items,
            owner=owner,
            previous=None,
            actor=actor.user_id,
            now=now,
        )


def _audit_row(item: NewItem, *, actor: Actor, now: datetime, **fields: Any) -> dict[str, Any]:
    return event_row(
        team_id=actor.team_id,
        entity="item",
        entity_id=item.id,
        item_id=item.id,
        actor=actor.user_id,
        at=now,
        **fields,
    )


async def department_by_key(session: AsyncSession, *, team_id: str, key: str) -> Department:
    """The workspace's department with this key (any case), or NotFound naming the key."""
    wanted = key.strip().upper()
    department = (
        await session.exec(
            select(Department).where(Department.team_id == team_id).where(Department.key == wanted)
        )
    ).first()
    if department is None:
        raise NotFound("department", wanted)
    return department


async def department_of_strategy(session: AsyncSession, *, strategy: Strategy) -> Department:
    """The department whose plan holds this strategy."""
    plan = await session.get(Plan, strategy.plan_id)
    department = await session.get(Department, plan.department_id) if plan else None
    if department is None:
        raise NotFound("department for strategy", strategy.key)
    return department


def _set(
    session: AsyncSession,
    *,
    item: ActionItem,
    field: str,
    value: object,
    actor: Actor,
    now: datetime,
    note: str | None,
    action: str = "update",
) -> bool:
    old = getattr(item, field)
    if old == value:
        return False
    setattr(item, field, value)
    item.updated_at = now
    audit(
        session,
        item=item,
        actor=actor,
        now=now,
        action=action,
        field=field,
        old=old,
        new=value,
        note=note,
    )
    return True


def _apply_status(
    session: AsyncSession,
    *,
    item: ActionItem,
    status: ItemStatus,
    actor: Actor,
    now: datetime,
    note: str | None,
) -> bool:
    changed = _set(
        session,
        item=item,
        field="status",
        value=status.value,
        actor=actor,
        now=now,
        note=note,
        action="status",
    )
    if not changed:
        return False
    if status == ItemStatus.DONE:
        item.completed_at = now
        _set(session, item=item, field="progress", value=100, actor=actor, now=now, note=None)
        item.snoozed_until = None
    elif item.completed_at is not None:
        item.completed_at = None
    return True


async def _editable(session: AsyncSession, *, ref: str, actor: Actor, action: str) -> ActionItem:
    item = await get_item(session, team_id=actor.team_id, ref=ref, lock=True)
    await ensure_can_edit(session, actor=actor, item=item, action=f"{action} {item.ref}")
    return item


def _note(session: AsyncSession, *, item: ActionItem, note: str | None, actor: Actor, now: datetime) -> None:
    if note:
        item.last_note = _checked_note(note)
        item.updated_at = now


async def update_item(
    session: AsyncSession,
    *,
    ref: str,
    changes: ActionItemUpdate,
    actor: Actor,
    now: datetime,
    note: str | None = None,
) -> ActionItem:
    """Apply a partial update (title, description, status, progress, strategy), auditing each field."""
    _check_item_text(changes.title, changes.description)
    if note:
        _checked_note(note)
    item = await _editable(session, ref=ref, actor=actor, action="update")
    if changes.strategy_id is not None and changes.strategy_id != item.strategy_id:
        strategy = await session.get(Strategy, changes.strategy_id)
        if strategy is None or strategy.team_id != actor.team_id:
            raise NotFound("strategy", str(changes.strategy_id))
        _set(
            session,
            item=item,
            field="strategy_id",
            value=changes.strategy_id,
            actor=actor,
            now=now,
            note=note,
        )
    for field in ("title", "description", "progress"):
        value = getattr(changes, field)
        if value is not None:
            _set(session, item=item, field=field, value=value, actor=actor, now=now, note=note)
    if changes.status is not None:
        status = ItemStatus(changes.status)
        await _check_status_change(session, item=item, status=status, actor=actor, evidence=None, now=now)
        if _apply_status(session, item=item, status=status, actor=actor, now=now, note=note):
            await _after_status(session, item=item, actor=actor, now=now)
    _note(session, item=item, note=note, actor=actor, now=now)
    return item


async def set_status(
    session: AsyncSession,
    *,
    ref: str,
    status: ItemStatus,
    actor: Actor,
    now: datetime,
    note: str | None = None,
    evidence: str | None = None,
) -> ActionItem:
    """Change an item's status (done and dropped included), with an optional note.

    Dropping may need a coordinator's approval, completing may need evidence, and a done item is
    reopened only with a real status and progress (see `reopen_item`).
    """
    item = await _editable(session, ref=ref, actor=actor, action="change the status of")
    await _check_status_change(session, item=item, status=status, actor=actor, evidence=evidence, now=now)
    if _apply_status(session, item=item, status=status, actor=actor, now=now, note=note):
        await _after_status(session, item=item, actor=actor, now=now)
    _note(session, item=item, note=note, actor=actor, now=now)
    return item


async def _check_status_change(
    session: AsyncSession,
    *,
    item: ActionItem,
    status: ItemStatus,
    actor: Actor,
    evidence: str | None,
    now: datetime,
) -> None:
    if status.value == item.status:
        if evidence and status == ItemStatus.DONE:
            # Evidence added to an item already done (say, after a send-back asked for it).
            _set(
                session,
                item=item,
                field="evidence_url",
                value=check_evidence(evidence),
                actor=actor,
                now=now,
                note=None,
            )
        return
    if status == ItemStatus.DROPPED:
        await ensure_may_commit(session, actor=actor, item=item, kind=ChangeKind.DROP)
    if item.status == ItemStatus.DONE and status.is_open and actor.user_id != SYSTEM_ACTOR:
        raise InvalidChange(
            f"{item.ref} is done. To reopen it, say where it really stands and why: "
            f'/reap reopen {item.ref} <status> <0-100>% "reason"'
        )
    if status == ItemStatus.DONE:
        link = check_evidence(evidence) if evidence else None
        policy = await policy_for(session, item=item)
        if policy.evidence_required and not (link or item.evidence_url) and actor.user_id != SYSTEM_ACTOR:
            raise EvidenceRequired(
                f"{item.ref} needs evidence of completion: a link to what was delivered. "
                f'Finish it with /reap done {item.ref} <link> ["note"], or put the link in the Update form.'
            )
        if link:
            _set(session, item=item, field="evidence_url", value=link, actor=actor, now=now, note=None)


async def _after_status(session: AsyncSession, *, item: ActionItem, actor: Actor, now: datetime) -> None:
    if item.status != ItemStatus.DONE:
        item.verified_at = item.verified_by = None
        return
    policy = await policy_for(session, item=item)
    # Verification is a second pair of eyes: a coordinator finishing someone else's item is one,
    # as is the plan file (the coordinators' own document); an owner finishing their own is not.
    vouched = actor.user_id == SYSTEM_ACTOR or (
        actor.user_id != item.owner_id
        and await may_decide(session, actor=actor, department_id=item.department_id)
    )
    if not policy.verification or vouched:
        item.verified_at, item.verified_by = now, actor.user_id
        audit(session, item=item, actor=actor, now=now, action="verify", field="verified", new="yes")
        return
    if item.verified_at is None:
        # Whoever verifies it hears of the completion in their next digest, with a Verify button.
        found = await deciders(session, team_id=item.team_id, department_ids=[item.department_id])
        await owe_verification(
            session,
            team_id=item.team_id,
            item_id=item.id or 0,
            completed_at=item.completed_at,
            deciders=[p.user_id for p in found.get(item.department_id, []) if p.user_id != item.owner_id],
            now=now,
        )


async def complete_item(
    session: AsyncSession,
    *,
    ref: str,
    actor: Actor,
    now: datetime,
    note: str | None = None,
    evidence: str | None = None,
) -> ActionItem:
    """Mark an item done (with its evidence link where the plan asks for one); done twice is done once."""
    return await set_status(
        session, ref=ref, status=ItemStatus.DONE, actor=actor, now=now, note=note, evidence=evidence
    )


async def verify_item(session: AsyncSession, *, ref: str, actor: Actor, now: datetime) -> ActionItem:
    """A coordinator confirms a done item's evidence; the owner cannot verify their own item."""
    item = await get_item(session, team_id=actor.team_id, ref=ref, lock=True)
    if not await may_decide(session, actor=actor, department_id=item.department_id):
        raise PermissionDenied(
            f"verify {item.ref}", "Its department's coordinators, DEI coordinators or admins verify."
        )
    if item.status != ItemStatus.DONE:
        raise InvalidChange(f"{item.ref} is {item.status_enum.label}, not done; there is nothing to verify.")
    if item.verified_at is not None:
        raise InvalidChange(f"{item.ref} was already verified by <@{item.verified_by}>.")
    if item.owner_id == actor.user_id:
        raise InvalidChange(f"{item.ref} is yours; another coordinator verifies it.")
    item.verified_at, item.verified_by = now, actor.user_id
    audit(session, item=item, actor=actor, now=now, action="verify", field="verified", old="no", new="yes")
    return item


async def reopen_item(
    session: AsyncSession,
    *,
    ref: str,
    status: ItemStatus,
    percent: int,
    reason: str,
    actor: Actor,
    now: datetime,
) -> ActionItem:
    """Reopen a done item (or send it back unverified) at a real status and progress, with a reason."""
    reason = check_reason(reason, what=f"reopen {ref.upper()}")
    _checked_note(reason)
    if not status.is_open:
        raise InvalidChange(f"Reopen to an open status (not {status.label}).")
    if not 0 <= percent <= 99:
        raise InvalidChange(
            f"A reopened item is not finished: give its progress from 0 to 99%, not {percent}%."
        )
    item = await _editable(session, ref=ref, actor=actor, action="reopen")
    if item.status != ItemStatus.DONE:
        raise InvalidChange(f"{item.ref} is {item.status_enum.label}, not done; there is nothing to reopen.")
    _apply_status(session, item=item, status=status, actor=actor, now=now, note=reason)
    _set(session, item=item, field="progress", value=percent, actor=actor, now=now, note=reason)
    if item.evidence_url:
        _set(session, item=item, field="evidence_url", value=None, actor=actor, now=now, note=reason)
    item.verified_at = item.verified_by = None
    item.last_note = reason
    return item


async def drop_item(
    session: AsyncSession, *, ref: str, actor: Actor, now: datetime, note: str | None = None
) -> ActionItem:
    """Drop an item (it stays in the plan and its history; it is never deleted)."""
    return await set_status(session, ref=ref, status=ItemStatus.DROPPED, actor=actor, now=now, note=note)


async def set_progress(
    session: AsyncSession,
    *,
    ref: str,
    percent: int,
    actor: Actor,
    now: datetime,
    note: str | None = None,
) -> ActionItem:
    """Set percent complete (0-100)."""
    if not 0 <= percent <= 100:
        raise InvalidChange(f"Progress must be between 0 and 100, not {percent}.")
    item = await _editable(session, ref=ref, actor=actor, action="update the progress of")
    _set(session, item=item, field="progress", value=percent, actor=actor, now=now, note=note)
    _note(session, item=item, note=note, actor=actor, now=now)
    return item


async def reassign_item(
    session: AsyncSession,
    *,
    ref: str,
    owner_id: str,
    actor: Actor,
    now: datetime,
    note: str | None = None,
) -> ActionItem:
    """Give an item to a new owner (taking it from someone may need a coordinator's approval)."""
    item = await _editable(session, ref=ref, actor=actor, action="reassign")
    previous = item.owner_id
    if item.owner_id is not None and item.owner_id != owner_id:
        await ensure_may_commit(session, actor=actor, item=item, kind=ChangeKind.REASSIGN)
    changed = _set(
        session,
        item=item,
        field="owner_id",
        value=owner_id,
        actor=actor,
        now=now,
        note=note,
        action="reassign",
    )
    if changed:
        # The new owner is given the item and the previous one told, each in their next digest.
        await owe_owner_change(
            session,
            team_id=item.team_id,
            items=[(item.id or 0, item.ref)],
            owner=owner_id,
            previous=previous,
            actor=actor.user_id,
            now=now,
        )
    _note(session, item=item, note=note, actor=actor, now=now)
    return item


async def redate_item(
    session: AsyncSession,
    *,
    ref: str,
    due: date | None,
    actor: Actor,
    now: datetime,
    note: str | None = None,
) -> ActionItem:
    """Move an item's due date (later than the plan allows needs approval); a new date ends any snooze."""
    item = await _editable(session, ref=ref, actor=actor, action="change the due date of")
    if due != item.due:
        await ensure_may_commit(session, actor=actor, item=item, kind=ChangeKind.REDATE, new_due=due)
    if _set(session, item=item, field="due", value=due, actor=actor, now=now, note=note, action="redate"):
        item.snoozed_until = None
    _note(session, item=item, note=note, actor=actor, now=now)
    return item


async def snooze_item(
    session: AsyncSession, *, ref: str, until: date, actor: Actor, now: datetime
) -> ActionItem:
    """Silence reminders about an item until a date."""
    item = await _editable(session, ref=ref, actor=actor, action="snooze")
    if not item.status_enum.is_open:
        raise InvalidChange(f"{item.ref} is {item.status_enum.label}; there is nothing to snooze.")
    _set(
        session,
        item=item,
        field="snoozed_until",
        value=until,
        actor=actor,
        now=now,
        note=None,
        action="snooze",
    )
    return item


async def add_note(session: AsyncSession, *, ref: str, text: str, actor: Actor, now: datetime) -> ActionItem:
    """Attach a note to an item."""
    if not text.strip():
        raise InvalidChange("A note needs some text.")
    item = await _editable(session, ref=ref, actor=actor, action="add a note to")
    item.last_note = _checked_note(text)
    item.updated_at = now
    audit(session, item=item, actor=actor, now=now, action="note", note=text)
    return item
