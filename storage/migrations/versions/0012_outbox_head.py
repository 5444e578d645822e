"""outbox heads: one row a chat with unsent messages, so that delivery's search reads chats, not messages

Revision ID: 0012
Revises: 0011
Delivery's search for due messages walked every unsent row in (priority, id) order and checked for each
whether it was its chat's oldest: with a backlog in which no chat was due (every chat's oldest message in
flight or paced) it read them all, 18-29 ms on SQLite and 73-78 ms on PostgreSQL with 26,000 unsent in
1,000 chats. `outbox_head` holds each chat's oldest unsent message, its priority and next attempt;
delivery reads the heads in (priority, id) order (ix_outbox_head_order, which also holds the next
attempt, so a head not due is passed over in the index) and looks at the message only for a head that is due.

Triggers on `outbox` keep it, in the transaction of every write to the outbox whatever code makes it
(a step's replies, staff follow-ups, claims, results, purges, erasure and its cascades): an inserted
unsent message becomes its chat's head when the chat has none, and a change to (or the deletion of) a
chat's head recomputes the chat's head from its unsent messages. On PostgreSQL each trigger first locks
the chat's head row and then reads in a new statement, so two transactions writing the same chat take
turns and the second sees what the first committed (a message inserted while the head is being sent is
never left without a head). The table is filled from the unsent messages already queued.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The chat's head, made again from its unsent messages (:c and :k are the chat; see _sqlite).
_REFRESH = """
    DELETE FROM outbox_head WHERE channel = :c AND chat_key = :k;
    INSERT INTO outbox_head (channel, chat_key, message_id, priority, next_attempt_at)
        SELECT channel, chat_key, id, priority, next_attempt_at FROM outbox
        WHERE id = (SELECT min(id) FROM outbox WHERE channel = :c AND chat_key = :k AND sent_at IS NULL AND failed_at IS NULL);
"""

_IS_HEAD = "(SELECT message_id FROM outbox_head WHERE channel = OLD.channel AND chat_key = OLD.chat_key)"


def _sqlite() -> list[str]:
    """SQLite: one writer at a time, so a trigger never races another transaction."""
    old = _REFRESH.replace(":c", "OLD.channel").replace(":k", "OLD.chat_key")
    new = _REFRESH.replace(":c", "NEW.channel").replace(":k", "NEW.chat_key")
    return [
        """CREATE TRIGGER outbox_head_insert AFTER INSERT ON outbox
        WHEN NEW.sent_at IS NULL AND NEW.failed_at IS NULL
        BEGIN
            INSERT OR IGNORE INTO outbox_head (channel, chat_key, message_id, priority, next_attempt_at)
            VALUES (NEW.channel, NEW.chat_key, NEW.id, NEW.priority, NEW.next_attempt_at);
        END""",
        f"""CREATE TRIGGER outbox_head_update AFTER UPDATE ON outbox
        WHEN OLD.sent_at IS NULL AND OLD.failed_at IS NULL
            AND (OLD.id = {_IS_HEAD} OR OLD.channel != NEW.channel OR OLD.chat_key != NEW.chat_key)
        BEGIN {old} {new} END""",
        f"""CREATE TRIGGER outbox_head_delete AFTER DELETE ON outbox
        WHEN OLD.sent_at IS NULL AND OLD.failed_at IS NULL AND OLD.id = {_IS_HEAD}
        BEGIN {old} END""",
    ]


# Statements apart by two blank lines (asyncpg runs one statement at a time).
_PG_FUNCTIONS = """
CREATE FUNCTION outbox_head_refresh(c text, k text, changed bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    head bigint;
BEGIN
    -- Lock the chat's head first: a transaction writing the same chat waits here, and the statements
    -- below (each with a new snapshot) see what it committed.
    SELECT message_id INTO head FROM outbox_head WHERE channel = c AND chat_key = k FOR UPDATE;
    IF changed IS NOT NULL AND head IS DISTINCT FROM changed THEN
        RETURN;  -- not the head: the chat's head is unchanged
    END IF;
    REFRESH
END $$;


CREATE FUNCTION outbox_head_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- DO UPDATE (not DO NOTHING) locks an existing head, so a transaction sending it waits.
        INSERT INTO outbox_head (channel, chat_key, message_id, priority, next_attempt_at)
        VALUES (NEW.channel, NEW.chat_key, NEW.id, NEW.priority, NEW.next_attempt_at)
        ON CONFLICT (channel, chat_key) DO UPDATE SET message_id = outbox_head.message_id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND (OLD.channel != NEW.channel OR OLD.chat_key != NEW.chat_key) THEN
        PERFORM outbox_head_refresh(OLD.channel, OLD.chat_key, NULL);
        PERFORM outbox_head_refresh(NEW.channel, NEW.chat_key, NULL);
    ELSE
        PERFORM outbox_head_refresh(OLD.channel, OLD.chat_key, OLD.id);
    END IF;
    RETURN NULL;
END $$;


-- Only unsent messages matter: a message once sent or failed never waits again.
CREATE TRIGGER outbox_head_insert AFTER INSERT ON outbox
FOR EACH ROW WHEN (NEW.sent_at IS NULL AND NEW.failed_at IS NULL) EXECUTE FUNCTION outbox_head_keep();


CREATE TRIGGER outbox_head_change AFTER UPDATE OR DELETE ON outbox
FOR EACH ROW WHEN (OLD.sent_at IS NULL AND OLD.failed_at IS NULL) EXECUTE FUNCTION outbox_head_keep();
"""


def upgrade() -> None:
    op.create_table(
        "outbox_head",
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("chat_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "chat_key"),
    )
    op.create_index(
        "ix_outbox_head_order",
        "outbox_head",
        ["channel", "priority", "message_id", "next_attempt_at"],
        unique=False,
    )
    # "Was this chat sent to lately?" reads the few messages sent after a moment ago, not the whole outbox
    # (PostgreSQL otherwise scanned the table once a search: 4.4 ms with 31,000 rows).
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"], unique=False)
    if op.get_context().dialect.name == "postgresql":
        functions = _PG_FUNCTIONS.replace("REFRESH", _REFRESH.replace(":c", "c").replace(":k", "k").strip())
        for statement in functions.split("\n\n\n"):
            op.execute(statement)
    else:
        for statement in _sqlite():
            op.execute(statement)
    op.execute(
        """INSERT INTO outbox_head (channel, chat_key, message_id, priority, next_attempt_at)
        SELECT o.channel, o.chat_key, o.id, o.priority, o.next_attempt_at FROM outbox o
        WHERE o.id IN (SELECT min(id) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL
                       GROUP BY channel, chat_key)"""
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER outbox_head_change ON outbox")
        op.execute("DROP TRIGGER outbox_head_insert ON outbox")
        op.execute("DROP FUNCTION outbox_head_keep()")
        op.execute("DROP FUNCTION outbox_head_refresh(text, text, bigint)")
    else:
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER outbox_head_{name}")
    op.drop_index("ix_outbox_sent_at", table_name="outbox")
    op.drop_index("ix_outbox_head_order", table_name="outbox_head")
    op.drop_table("outbox_head")
