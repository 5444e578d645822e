"""files people sent on a messaging app, waiting to be downloaded into the evidence store

Revision ID: 0008
Revises: 0007
A draft or report keeps only the evidence store's own reference; the platform's file id or media URL
waits here, encrypted, until the delivery loop has downloaded the file (storage/evidence.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "evidence_fetch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("source_enc", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ref"),
    )
    with op.batch_alter_table("evidence_fetch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_fetch_channel"), ["channel"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("evidence_fetch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_fetch_channel"))
    op.drop_table("evidence_fetch")
