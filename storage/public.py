"""What an item says in public: its public update (English, Spanish) and Spanish title, set by a coordinator.

Nothing an owner types reaches the public dashboard by itself: a coordinator of the item's
department (or a DEI coordinator, or an admin, or the plan file) writes the public update, or
approves an owner's words by setting them here. Every change is audited.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from domain.text import NOTE_MAX, TITLE_MAX, check_text
from storage.items import audit, get_item
from storage.models import ActionItem
from storage.permissions import Actor, ensure_coordinator

# Which column each language's public update lives in.
UPDATE_FIELDS = {"en": "public_update", "es": "public_update_es"}


async def set_public_update(
    session: AsyncSession, *, actor: Actor, ref: str, text: str, now: datetime, lang: str = "en"
) -> ActionItem:
    """Set (or, with empty text, clear) an item's public update in `lang`: coordinators only, audited."""
    item = await get_item(session, team_id=actor.team_id, ref=ref, lock=True)
    await ensure_coordinator(
        session, actor=actor, department_id=item.department_id, action=f"publish an update on {item.ref}"
    )
    field = UPDATE_FIELDS[lang]
    value = check_text(text.strip(), field="public update", limit=NOTE_MAX, multiline=True) or None
    old = getattr(item, field)
    if old == value:
        return item
    setattr(item, field, value)
    item.public_update_by = actor.user_id
    item.public_update_at = now
    session.add(item)
    audit(session, item=item, actor=actor, now=now, action="update", field=field, old=old, new=value)
    return item


async def set_spanish_title(
    session: AsyncSession, *, actor: Actor, ref: str, title: str | None, now: datetime
) -> ActionItem:
    """Set (or clear) the Spanish title the public dashboard shows: coordinators only, audited."""
    item = await get_item(session, team_id=actor.team_id, ref=ref, lock=True)
    await ensure_coordinator(
        session, actor=actor, department_id=item.department_id, action=f"translate {item.ref}"
    )
    value = check_text(title.strip(), field="title_es", limit=TITLE_MAX) if title else None
    if item.title_es == (value or None):
        return item
    old, item.title_es = item.title_es, value or None
    session.add(item)
    audit(session, item=item, actor=actor, now=now, action="update", field="title_es", old=old, new=value)
    return item
