"""public dashboard: each item's public update (and Spanish title), each plan's publishing choices

Revision ID: a6d2c81e4f95
Revises: f3b9d0c6e218
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import storage.types

revision: str = "a6d2c81e4f95"
down_revision: str | None = "f3b9d0c6e218"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STRING = sqlmodel.sql.sqltypes.AutoString
_INSTANT = storage.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("plan") as batch:
        batch.add_column(sa.Column("public", sa.JSON(), nullable=True))
    with op.batch_alter_table("action_item") as batch:
        batch.add_column(sa.Column("title_es", _STRING(length=300), nullable=True))
        batch.add_column(sa.Column("public_update", _STRING(length=2000), nullable=True))
        batch.add_column(sa.Column("public_update_es", _STRING(length=2000), nullable=True))
        batch.add_column(sa.Column("public_update_by", _STRING(length=32), nullable=True))
        batch.add_column(sa.Column("public_update_at", _INSTANT(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_item") as batch:
        batch.drop_column("public_update_at")
        batch.drop_column("public_update_by")
        batch.drop_column("public_update_es")
        batch.drop_column("public_update")
        batch.drop_column("title_es")
    with op.batch_alter_table("plan") as batch:
        batch.drop_column("public")
