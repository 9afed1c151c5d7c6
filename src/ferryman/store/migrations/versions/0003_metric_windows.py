"""windowed metric buckets, one row per endpoint, version, role, process and time bucket

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "metric_windows",
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("version", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("process", sa.String(length=100), nullable=False),
        sa.Column("bucket_start", sa.DateTime(), nullable=False),
        sa.Column("bucket_seconds", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "version", "role", "process", "bucket_start"),
    )
    op.create_index(
        "ix_metric_windows_endpoint_start", "metric_windows", ["endpoint", "bucket_start"]
    )
    op.create_index("ix_metric_windows_bucket_start", "metric_windows", ["bucket_start"])


def downgrade() -> None:

    op.drop_index("ix_metric_windows_bucket_start", table_name="metric_windows")
    op.drop_index("ix_metric_windows_endpoint_start", table_name="metric_windows")
    op.drop_table("metric_windows")
