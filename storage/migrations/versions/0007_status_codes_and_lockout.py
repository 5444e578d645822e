"""secret codes for status look-ups, and the look-up lockout

Revision ID: 0007
Revises: 0006
A report keeps a slow keyed hash of the secret code shown beside its reference; failed `status` look-ups
are counted per chat (under a pseudonym of their own) and for all chats, for the lockout (docs/limits.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True)
        )
    op.create_table(
        "lookup_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("window_start", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lookup_failure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lookup_failure_scope"), ["scope"], unique=True)
        batch_op.create_index(batch_op.f("ix_lookup_failure_window_start"), ["window_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lookup_failure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lookup_failure_window_start"))
        batch_op.drop_index(batch_op.f("ix_lookup_failure_scope"))
    op.drop_table("lookup_failure")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_column("code_hash")
