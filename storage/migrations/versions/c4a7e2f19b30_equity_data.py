"""equity data: measure kind, baseline quarter, source and breakdown; dimensions; scoring matrix

Revision ID: c4a7e2f19b30
Revises: b3f8c0d51e26
Create Date: 2026-11-30 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "c4a7e2f19b30"
down_revision: str | None = "b3f8c0d51e26"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STRING = sqlmodel.sql.sqltypes.AutoString
_OLD_DIRECTIONS = "direction IN ('increase', 'decrease')"
_DIRECTIONS = "direction IN ('increase', 'decrease', 'maintain')"


def upgrade() -> None:
    with op.batch_alter_table("plan") as batch:
        batch.add_column(sa.Column("min_group_count", sa.Integer(), nullable=False, server_default="10"))
    with op.batch_alter_table("measure") as batch:
        batch.add_column(sa.Column("kind", _STRING(length=16), nullable=False, server_default="level"))
        batch.add_column(sa.Column("baseline_quarter", _STRING(length=10), nullable=True))
        batch.add_column(sa.Column("source", _STRING(length=2000), nullable=True))
        batch.add_column(sa.Column("breakdown_dimension", _STRING(length=64), nullable=True))
        batch.add_column(sa.Column("breakdown_kind", _STRING(length=16), nullable=True))
        batch.add_column(sa.Column("reference_group", _STRING(length=64), nullable=True))
        batch.drop_constraint("ck_measure_direction", type_="check")
        batch.create_check_constraint("ck_measure_direction", _DIRECTIONS)
        batch.create_check_constraint("ck_measure_kind", "kind IN ('level', 'cumulative')")
    with op.batch_alter_table("measure_reading") as batch:
        batch.add_column(sa.Column("groups", sa.JSON(), nullable=True))
    op.create_table(
        "dimension",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", _STRING(length=32), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("key", _STRING(length=64), nullable=False),
        sa.Column("name", _STRING(length=200), nullable=False),
        sa.Column("source", _STRING(length=2000), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plan.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "key", name="uq_dimension_plan_key"),
    )
    op.create_index("ix_dimension_plan_id", "dimension", ["plan_id"], unique=False)
    op.create_table(
        "scoring_criterion",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", _STRING(length=32), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("key", _STRING(length=64), nullable=False),
        sa.Column("question", _STRING(length=300), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("levels", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["plan_id"], ["plan.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("plan_id", "key", name="uq_criterion_plan_key"),
    )
    op.create_index("ix_scoring_criterion_plan_id", "scoring_criterion", ["plan_id"], unique=False)
    op.create_table(
        "item_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", _STRING(length=32), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("criterion_key", _STRING(length=64), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("note", _STRING(length=2000), nullable=True),
        sa.Column("scored_by", _STRING(length=32), nullable=False),
        sa.Column("scored_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["action_item.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "criterion_key", name="uq_score_item_criterion"),
    )
    op.create_index("ix_item_score_item_id", "item_score", ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_item_score_item_id", table_name="item_score")
    op.drop_table("item_score")
    op.drop_index("ix_scoring_criterion_plan_id", table_name="scoring_criterion")
    op.drop_table("scoring_criterion")
    op.drop_index("ix_dimension_plan_id", table_name="dimension")
    op.drop_table("dimension")
    with op.batch_alter_table("measure_reading") as batch:
        batch.drop_column("groups")
    with op.batch_alter_table("measure") as batch:
        batch.drop_constraint("ck_measure_kind", type_="check")
        batch.drop_constraint("ck_measure_direction", type_="check")
        batch.create_check_constraint("ck_measure_direction", _OLD_DIRECTIONS)
        for column in ("reference_group", "breakdown_kind", "breakdown_dimension"):
            batch.drop_column(column)
        for column in ("source", "baseline_quarter", "kind"):
            batch.drop_column(column)
    with op.batch_alter_table("plan") as batch:
        batch.drop_column("min_group_count")
