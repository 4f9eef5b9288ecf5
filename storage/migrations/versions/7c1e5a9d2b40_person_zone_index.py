"""person zone index: the planner's distinct-zone lookup skips through it

Revision ID: 7c1e5a9d2b40
Revises: 530f17d79d1f
Create Date: 2026-11-29 09:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "7c1e5a9d2b40"
down_revision: str | None = "530f17d79d1f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_person_team_tz", "person", ["team_id", "tz"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_person_team_tz", table_name="person")
