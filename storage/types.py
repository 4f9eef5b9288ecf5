"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class NaiveDatetimeError(ValueError):
    """A naive datetime reached the database boundary."""

    def __init__(self, value: datetime) -> None:
        super().__init__(f"refusing to store naive datetime {value.isoformat()}; give it a time zone")


class UTCDateTime(TypeDecorator[datetime]):
    """An instant stored as UTC: timestamptz on PostgreSQL, UTC text on SQLite, aware UTC on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise NaiveDatetimeError(value)
        value = value.astimezone(UTC)
        # SQLite keeps wall-clock text and drops the offset, so normalise to UTC before it sees it;
        # that also keeps lexical order equal to time order for range queries.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
