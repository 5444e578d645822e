"""initial schema

Revision ID: 0001
Revises:
The tables of the first release (storage/models.py at that time).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)

    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("chat_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("step", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("draft_enc", sa.Text(), nullable=True),
        sa.Column("locale", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "chat_key", name="uq_conversation_chat"),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conversation_updated_at"), ["updated_at"], unique=False)

    op.create_table(
        "inbound_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("delivery_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "delivery_id", name="uq_receipt_delivery"),
    )
    with op.batch_alter_table("inbound_receipt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_receipt_received_at"), ["received_at"], unique=False)

    op.create_table(
        "report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("submitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("incident_types", sa.JSON(), nullable=False),
        sa.Column("motivations", sa.JSON(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=True),
        sa.Column("repeat", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("support_requested", sa.Boolean(), nullable=True),
        sa.Column("anonymous", sa.Boolean(), nullable=False),
        sa.Column("share_with", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("status_changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("sealed_enc", sa.Text(), nullable=False),
        sa.Column("staff_note_enc", sa.Text(), nullable=True),
        sa.Column("chat_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reply_address_enc", sa.Text(), nullable=True),
        sa.Column("last_inbound_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("reference"),
    )
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_chat_key"), ["chat_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_report_submitted_at"), ["submitted_at"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("chat_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("address_enc", sa.Text(), nullable=False),
        sa.Column("message_enc", sa.Text(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("platform_ids_enc", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_chat_key"), ["chat_key"], unique=False)
        batch_op.create_index("ix_outbox_pending", ["sent_at", "next_attempt_at"], unique=False)

    op.create_table(
        "transcript_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("direction", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("author", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("text_enc", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["report_id"], ["report.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("transcript_entry", schema=None) as batch_op:
        batch_op.create_index("ix_transcript_conversation", ["conversation_id", "seq"], unique=False)
        batch_op.create_index("ix_transcript_report", ["report_id", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transcript_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_transcript_report")
        batch_op.drop_index("ix_transcript_conversation")

    op.drop_table("transcript_entry")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_outbox_chat_key"))

    op.drop_table("outbox")
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_submitted_at"))
        batch_op.drop_index(batch_op.f("ix_report_chat_key"))

    op.drop_table("report")
    with op.batch_alter_table("inbound_receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_receipt_received_at"))

    op.drop_table("inbound_receipt")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_updated_at"))

    op.drop_table("conversation")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))

    op.drop_table("audit_event")
