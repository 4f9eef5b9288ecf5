"""Writing many rows of one table at once, for imports: one statement, not one per row."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession


def defaults(model: type[SQLModel]) -> dict[str, Any]:
    """The model's field defaults (every field but the primary key that has one)."""
    table = model.__table__  # type: ignore[attr-defined]
    keys = {c.key for c in table.primary_key.columns}
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in model.model_fields.items()
        if name not in keys and name in table.columns and not info.is_required()
    }


async def insert_rows(
    session: AsyncSession, model: type[SQLModel], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Insert rows (column values, the same keys in each; the model's defaults fill the columns they
    leave out) with one executemany.

    Pending ORM changes are flushed first, so rows may refer to them. The rows are not loaded
    into the session: read them back (one SELECT) where their ids are needed.
    """
    if not rows:
        return
    # Core, not the ORM's bulk insert: it spends more on each row than the database does, and
    # leaves out NULL values (for server defaults, which our models have none of), splitting
    # the batch wherever the NULLs differ. Every row names every column, so it is one batch.
    await session.flush()
    # Callers give every row the same keys, so the defaults to add are the same for all of them.
    missing = {name: value for name, value in defaults(model).items() if name not in rows[0]}
    params = [{**row, **missing} for row in rows] if missing else list(rows)
    connection = await session.connection()
    await connection.execute(insert(model.__table__), params)  # type: ignore[attr-defined]
