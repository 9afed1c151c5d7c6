"""endpoints: privacy policy, capture sampling rate and log retention

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.add_column(sa.Column("privacy", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column("capture_sample_rate", sa.Float(), nullable=False, server_default="1.0")
        )
        batch.add_column(sa.Column("log_retention_days", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("endpoints") as batch:
        batch.drop_column("log_retention_days")
        batch.drop_column("capture_sample_rate")
        batch.drop_column("privacy")
