"""outbox priority: replies to people in a conversation go before staff follow-ups

Revision ID: 0010
Revises: 0009
`outbox.priority` is 0 for what the bot says in a conversation and 1 for a staff follow-up
(`reportbot reply`). Delivery claims due messages in (priority, id) order, so a queue of follow-ups never
holds up the answer to someone in the middle of a report; each chat's own messages still go in id order.
The partial index of unsent messages becomes (channel, priority, id) so that the claim reads in that order.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT = "sent_at IS NULL AND failed_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_index("ix_outbox_unsent")
        batch_op.create_index(
            "ix_outbox_unsent",
            ["channel", "priority", "id"],
            unique=False,
            sqlite_where=sa.text(UNSENT),
            postgresql_where=sa.text(UNSENT),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unsent")
        batch_op.create_index(
            "ix_outbox_unsent",
            ["channel", "id"],
            unique=False,
            sqlite_where=sa.text(UNSENT),
            postgresql_where=sa.text(UNSENT),
        )
        batch_op.drop_column("priority")
