"""send pace: a chat.postMessage budget shared by every instance

Revision ID: 9d4b2e61f0a7
Revises: 7c1e5a9d2b40
Create Date: 2026-11-29 09:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "9d4b2e61f0a7"
down_revision: str | None = "7c1e5a9d2b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "send_pace",
        sa.Column("budget", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("budget"),
    )


def downgrade() -> None:
    op.drop_table("send_pace")
