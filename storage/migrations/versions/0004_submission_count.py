"""report counters for the hourly cap

Revision ID: 0004
Revises: 0003
How many reports a sender submitted in the current hour, under a pseudonym of its own; purged after an
hour (bot/limits.py, docs/limits.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "submission_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("window_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("submission_count", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_submission_count_sender_key"), ["sender_key"], unique=True)
        batch_op.create_index(batch_op.f("ix_submission_count_window_start"), ["window_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("submission_count", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_count_window_start"))
        batch_op.drop_index(batch_op.f("ix_submission_count_sender_key"))

    op.drop_table("submission_count")
