"""commitments: change requests, evidence and verification, plan policy, roles dei and admin

Revision ID: d81f3b6a2c57
Revises: c4a7e2f19b30
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "d81f3b6a2c57"
down_revision: str | None = "c4a7e2f19b30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STRING = sqlmodel.sql.sqltypes.AutoString
_INSTANT = storage.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("person") as batch:
        batch.drop_constraint("ck_person_role", type_="check")
        batch.create_check_constraint("ck_person_role", "role IN ('member', 'coordinator', 'dei', 'admin')")
    with op.batch_alter_table("plan") as batch:
        batch.add_column(sa.Column("policy", sa.JSON(), nullable=True))
    with op.batch_alter_table("action_item") as batch:
        batch.add_column(sa.Column("evidence_url", _STRING(length=500), nullable=True))
        batch.add_column(sa.Column("verified_at", _INSTANT(timezone=True), nullable=True))
        batch.add_column(sa.Column("verified_by", _STRING(length=32), nullable=True))
    op.create_table(
        "change_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", _STRING(length=32), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("open_item_id", sa.Integer(), nullable=True),
        sa.Column("kind", _STRING(length=16), nullable=False),
        sa.Column("old_value", _STRING(length=64), nullable=True),
        sa.Column("new_value", _STRING(length=64), nullable=True),
        sa.Column("reason", _STRING(length=2000), nullable=False),
        sa.Column("requested_by", _STRING(length=32), nullable=False),
        sa.Column("requested_at", _INSTANT(timezone=True), nullable=False),
        sa.Column("state", _STRING(length=16), nullable=False),
        sa.Column("decided_by", _STRING(length=32), nullable=True),
        sa.Column("decided_at", _INSTANT(timezone=True), nullable=True),
        sa.Column("decision_note", _STRING(length=2000), nullable=True),
        sa.Column("resurfaced_on", sa.Date(), nullable=True),
        sa.CheckConstraint("kind IN ('drop', 'redate', 'reassign')", name="ck_change_request_kind"),
        sa.CheckConstraint("state IN ('pending', 'approved', 'declined')", name="ck_change_request_state"),
        sa.ForeignKeyConstraint(["department_id"], ["department.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["action_item.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_item_id", name="uq_change_request_open_item"),
    )
    op.create_index("ix_change_request_item_id", "change_request", ["item_id"], unique=False)
    op.create_index("ix_change_request_team_state", "change_request", ["team_id", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_change_request_team_state", table_name="change_request")
    op.drop_index("ix_change_request_item_id", table_name="change_request")
    op.drop_table("change_request")
    with op.batch_alter_table("action_item") as batch:
        batch.drop_column("verified_by")
        batch.drop_column("verified_at")
        batch.drop_column("evidence_url")
    with op.batch_alter_table("plan") as batch:
        batch.drop_column("policy")
    with op.batch_alter_table("person") as batch:
        batch.drop_constraint("ck_person_role", type_="check")
        batch.create_check_constraint("ck_person_role", "role IN ('member', 'coordinator')")
