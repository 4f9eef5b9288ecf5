"""notification message index: rebuilds find their rows by (channel, ts)

Revision ID: b3f8c0d51e26
Revises: 9d4b2e61f0a7
Create Date: 2026-11-29 09:42:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b3f8c0d51e26"
down_revision: str | None = "9d4b2e61f0a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_notification_channel_ts", "notification", ["channel", "ts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notification_channel_ts", table_name="notification")
