"""partial indexes for delivery: unsent messages in order, and the oldest unsent one of each chat

Revision ID: 0006
Revises: 0005
Claiming the next messages to deliver found each chat's oldest unsent message by grouping every unsent
row: 25 ms with 25,000 unsent, on the step thread. With these two partial indexes (only unsent rows are
in them) it reads the unsent messages in order and looks up each one's chat: under 1 ms. They replace
ix_outbox_pending, which only that query used.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = "sent_at IS NULL AND failed_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_pending")
        batch_op.create_index(
            "ix_outbox_unsent",
            ["channel", "id"],
            unique=False,
            sqlite_where=sa.text(UNSENT),
            postgresql_where=sa.text(UNSENT),
        )
        batch_op.create_index(
            "ix_outbox_unsent_chat",
            ["channel", "chat_key", "id"],
            unique=False,
            sqlite_where=sa.text(UNSENT),
            postgresql_where=sa.text(UNSENT),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unsent_chat")
        batch_op.drop_index("ix_outbox_unsent")
        batch_op.create_index("ix_outbox_pending", ["sent_at", "next_attempt_at"], unique=False)
