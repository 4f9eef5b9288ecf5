"""Change requests: an owner asks to drop, re-date later or reassign; a coordinator decides.

The item keeps its committed values until a request is approved. A coordinator's own change in
their department applies at once with its reason logged; a second pending request on the same
item is refused (the database enforces it too). Every step is an AuditEvent on the item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.commitments import ChangeKind, RequestState, check_reason
from domain.errors import InvalidChange, NotFound, PermissionDenied
from domain.status import ItemStatus
from domain.text import NOTE_MAX, check_text
from storage.items import audit, get_item, reassign_item, redate_item, set_status
from storage.models import ActionItem, ChangeRequest, Department
from storage.outbox import assignment_key, skip_pending
from storage.permissions import Actor, ensure_can_edit, may_decide, policy_for

# Refused here rather than by the row, so a number too big for INTEGER reads as "no such request".
MAX_REQUEST_ID = 2**31 - 1


@dataclass(frozen=True)
class Outcome:
    """What a proposed change came to: applied at once (request is None) or a pending request."""

    item: ActionItem
    request: ChangeRequest | None


def describe(request: ChangeRequest) -> str:
    """The request in words, e.g. 'move the due date from 2027-03-01 to 2027-06-30'."""
    kind = ChangeKind(request.kind)
    if kind == ChangeKind.REDATE:
        return f"move the due date from {request.old_value or 'none'} to {request.new_value or 'none'}"
    if kind == ChangeKind.REASSIGN:
        return f"reassign from <@{request.old_value}> to <@{request.new_value}>"
    return "drop the item"


async def _apply(
    session: AsyncSession,
    *,
    item: ActionItem,
    kind: ChangeKind,
    value: str | None,
    actor: Actor,
    now: datetime,
    note: str,
) -> ActionItem:
    if kind == ChangeKind.REDATE:
        due = date.fromisoformat(value) if value else None
        return await redate_item(session, ref=item.ref, due=due, actor=actor, now=now, note=note)
    if kind == ChangeKind.REASSIGN:
        return await reassign_item(
            session, ref=item.ref, owner_id=str(value), actor=actor, now=now, note=note
        )
    return await set_status(session, ref=item.ref, status=ItemStatus.DROPPED, actor=actor, now=now, note=note)


async def pending_for(session: AsyncSession, *, item_id: int) -> ChangeRequest | None:
    """The item's pending request, if it has one."""
    return (await session.exec(select(ChangeRequest).where(ChangeRequest.open_item_id == item_id))).first()


async def pending_by_item(session: AsyncSession, *, item_ids: Sequence[int]) -> dict[int, ChangeRequest]:
    """The pending request of each of these items that has one."""
    if not item_ids:
        return {}
    rows = await session.exec(
        select(ChangeRequest).where(col(ChangeRequest.open_item_id).in_(list(item_ids)))
    )
    return {row.item_id: row for row in rows}


async def propose_change(
    session: AsyncSession,
    *,
    actor: Actor,
    ref: str,
    kind: ChangeKind,
    value: str | None,
    reason: str | None,
    today: date,
    now: datetime,
) -> Outcome:
    """Apply a change to a commitment at once where the actor may, or record a request for approval.

    `value` is the new due date (ISO) for a re-date and the new owner's user id for a reassignment.
    """
    item = await get_item(session, team_id=actor.team_id, ref=ref, lock=True)
    await ensure_can_edit(
        session, actor=actor, item=item, action=f"{kind.label.split(' the ')[0]} {item.ref}"
    )
    new_due = date.fromisoformat(value) if kind == ChangeKind.REDATE and value else None
    if kind == ChangeKind.REDATE and new_due is not None and new_due < today and new_due != item.due:
        raise InvalidChange(
            f"{new_due.isoformat()} is in the past; pick a due date from today on. Nothing was changed."
        )
    if kind == ChangeKind.DROP and not item.status_enum.is_open:
        raise InvalidChange(f"{item.ref} is {item.status_enum.label}; only open items can be dropped.")
    policy = await policy_for(session, item=item)
    needed = policy.needs_approval(kind, old_due=item.due, new_due=new_due)
    if kind == ChangeKind.REASSIGN and item.owner_id is None:
        needed = False  # giving an unowned item an owner moves no commitment
    if needed:
        reason = check_reason(reason, what=kind.label)
    if reason:
        check_text(reason, field="reason", limit=NOTE_MAX, multiline=True)
    if not needed or await may_decide(session, actor=actor, department_id=item.department_id):
        changed = await _apply(
            session, item=item, kind=kind, value=value, actor=actor, now=now, note=reason or ""
        )
        return Outcome(changed, None)
    if (pending := await pending_for(session, item_id=item.id or 0)) is not None:
        raise InvalidChange(
            f"{item.ref} already has a request waiting for a coordinator"
            f" (#{pending.id}: {describe(pending)}). Wait for their decision; nothing was changed."
        )
    old = {ChangeKind.REDATE: item.due.isoformat() if item.due else None, ChangeKind.REASSIGN: item.owner_id}
    request = ChangeRequest(
        team_id=item.team_id,
        item_id=item.id or 0,
        department_id=item.department_id,
        open_item_id=item.id,
        kind=kind.value,
        old_value=old.get(kind),
        new_value=value,
        reason=reason or "",
        requested_by=actor.user_id,
        requested_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(request)
            await session.flush()
    except IntegrityError:
        # Two requests raced past the check above; the database let one through.
        raise InvalidChange(
            f"{item.ref} already has a request waiting for a coordinator; nothing was changed."
        ) from None
    audit(
        session,
        item=item,
        actor=actor,
        now=now,
        action="request",
        field=kind.value,
        new=f"#{request.id}: {describe(request)}",
        note=reason,
    )
    return Outcome(item, request)


async def get_request(
    session: AsyncSession, *, team_id: str, request_id: int, lock: bool = False
) -> ChangeRequest:
    """A change request by its number, or NotFound."""
    if not 0 < request_id <= MAX_REQUEST_ID:
        raise NotFound("request", f"#{request_id}")
    query = (
        select(ChangeRequest).where(ChangeRequest.team_id == team_id).where(ChangeRequest.id == request_id)
    )
    if lock:
        # Read afresh from the locked row, not from what this session may have read before it.
        query = query.with_for_update().execution_options(populate_existing=True)
    request = (await session.exec(query)).first()
    if request is None:
        raise NotFound("request", f"#{request_id}")
    return request


async def decide_request(
    session: AsyncSession,
    *,
    actor: Actor,
    request_id: int,
    approve: bool,
    note: str | None,
    now: datetime,
) -> tuple[ChangeRequest, ActionItem]:
    """Approve (the change applies now) or decline (with a reason) a pending request."""
    request = await get_request(session, team_id=actor.team_id, request_id=request_id, lock=True)
    if request.state != RequestState.PENDING:
        raise InvalidChange(f"Request #{request.id} was already {request.state} by <@{request.decided_by}>.")
    if request.requested_by == actor.user_id:
        raise InvalidChange(f"Request #{request.id} is your own; another coordinator decides it.")
    if not await may_decide(session, actor=actor, department_id=request.department_id):
        department = await session.get(Department, request.department_id)
        key = department.key if department else "its department"
        raise PermissionDenied(
            f"decide request #{request.id}",
            f"Requests in {key} are decided by its coordinators, DEI coordinators or admins.",
        )
    if note:
        check_text(note, field="note", limit=NOTE_MAX, multiline=True)
    if not approve:
        note = check_reason(note, what=f"decline request #{request.id}")
    # Locked and read afresh, as get_item does: the change applies to the item as it is now.
    item = await session.get(ActionItem, request.item_id, with_for_update=True, populate_existing=True)
    if item is None:
        raise NotFound("item", f"of request #{request.id}")
    kind = ChangeKind(request.kind)
    if approve:
        why = f"approved request #{request.id}: {request.reason}" + (f" ({note})" if note else "")
        item = await _apply(
            session, item=item, kind=kind, value=request.new_value, actor=actor, now=now, note=why
        )
        if kind == ChangeKind.REASSIGN and request.old_value == request.requested_by:
            # The owner who asked to hand the item over hears the decision at once; the digest
            # need not tell them again that it has gone.
            told = assignment_key(item.team_id, request.requested_by, item.id or 0, now)
            await skip_pending(session, keys=[told], reason=f"told by the decision on request #{request.id}")
    request.state = (RequestState.APPROVED if approve else RequestState.DECLINED).value
    request.decided_by, request.decided_at, request.decision_note = actor.user_id, now, note
    request.open_item_id = None
    audit(
        session,
        item=item,
        actor=actor,
        now=now,
        action="approve" if approve else "decline",
        field=kind.value,
        new=f"#{request.id}: {describe(request)}",
        note=note,
    )
    return request, item


@dataclass(frozen=True)
class PendingRequest:
    """A pending request with its item, for lists and the Home tab."""

    request: ChangeRequest
    item: ActionItem


async def pending_requests(
    session: AsyncSession, *, team_id: str, department_ids: Sequence[int] | None = None
) -> list[PendingRequest]:
    """Pending requests (in some departments, or all), oldest first."""
    query = (
        select(ChangeRequest, ActionItem)
        .join(ActionItem, col(ActionItem.id) == col(ChangeRequest.item_id))
        .where(ChangeRequest.team_id == team_id)
        .where(ChangeRequest.state == RequestState.PENDING.value)
        .order_by(col(ChangeRequest.requested_at), col(ChangeRequest.id))
    )
    if department_ids is not None:
        query = query.where(col(ChangeRequest.department_id).in_(list(department_ids)))
    return [PendingRequest(request, item) for request, item in await session.exec(query)]


async def awaiting_verification(
    session: AsyncSession, *, team_id: str, department_ids: Sequence[int] | None = None
) -> list[ActionItem]:
    """Done items no coordinator has verified yet."""
    query = (
        select(ActionItem)
        .where(ActionItem.team_id == team_id)
        .where(ActionItem.status == ItemStatus.DONE.value)
        .where(col(ActionItem.verified_at).is_(None))
        .order_by(col(ActionItem.completed_at))
    )
    if department_ids is not None:
        query = query.where(col(ActionItem.department_id).in_(list(department_ids)))
    return list(await session.exec(query))


async def mark_surfaced(session: AsyncSession, *, days: Mapping[int, date]) -> None:
    """Record the day each pending request was last put before its deciders (resurfaced_on)."""
    for request_id, day in sorted(days.items()):
        await session.exec(
            update(ChangeRequest)
            .where(col(ChangeRequest.id) == request_id)
            .where(or_(col(ChangeRequest.resurfaced_on).is_(None), col(ChangeRequest.resurfaced_on) < day))
            .values(resurfaced_on=day)
        )
