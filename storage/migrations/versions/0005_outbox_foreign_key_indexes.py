"""indexes on the outbox's foreign keys

Revision ID: 0005
Revises: 0004
Ending a conversation (a report sent, a draft erased) and erasing a report find their outbox rows by
`conversation_id` and `report_id`; without these indexes each of those, and each of SQLite's foreign-key
checks, read the whole outbox, which grows with every message sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_conversation", ["conversation_id"], unique=False)
        batch_op.create_index("ix_outbox_report", ["report_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_report")
        batch_op.drop_index("ix_outbox_conversation")
