"""quarterly record: frozen quarter snapshots, their amendments, and DEI meeting decisions

Revision ID: f3b9d0c6e218
Revises: e5c2a9f47d13
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "f3b9d0c6e218"
down_revision: str | None = "e5c2a9f47d13"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STRING = sqlmodel.sql.sqltypes.AutoString
_INSTANT = storage.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "quarter_snapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", _STRING(length=32), nullable=False),
        sa.Column("quarter", _STRING(length=10), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("frozen_at", _INSTANT(timezone=True), nullable=False),
        sa.Column("frozen_by", _STRING(length=32), nullable=False),
        sa.Column("rollup", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("readings", sa.JSON(), nullable=False),
        sa.Column("responses", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "quarter", name="uq_snapshot_team_quarter"),
    )
    op.create_table(
        "amendment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", _STRING(length=32), nullable=False),
        sa.Column("quarter", _STRING(length=10), nullable=False),
        sa.Column("subject", _STRING(length=120), nullable=False),
        sa.Column("old", _STRING(length=300), nullable=True),
        sa.Column("new", _STRING(length=300), nullable=False),
        sa.Column("reason", _STRING(length=2000), nullable=False),
        sa.Column("amended_by", _STRING(length=32), nullable=False),
        sa.Column("amended_at", _INSTANT(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_amendment_team_quarter", "amendment", ["team_id", "quarter"], unique=False)
    op.create_table(
        "decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", _STRING(length=32), nullable=False),
        sa.Column("quarter", _STRING(length=10), nullable=False),
        sa.Column("text", _STRING(length=2000), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", _STRING(length=32), nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("followup_item_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", _STRING(length=32), nullable=False),
        sa.Column("decided_at", _INSTANT(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["followup_item_id"], ["action_item.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["action_item.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_decision_team_quarter", "decision", ["team_id", "quarter"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_decision_team_quarter", table_name="decision")
    op.drop_table("decision")
    op.drop_index("ix_amendment_team_quarter", table_name="amendment")
    op.drop_table("amendment")
    op.drop_table("quarter_snapshot")
