"""What a chat showed, read back: the web chat's page rebuilt by a worker that did not hold it in memory
(bot/channels/web/page.py). Read-only; values leave decrypted, as for exports, and go nowhere but the
page of the session whose cookie was signed for this chat.

    ended      a quick exit of this chat was recorded (a receipt under a pseudonym of its marker)
    chat_page  the conversation's language, its last transcript lines and what it was sent (outbox form)
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, select

from storage import models
from storage.crypto import Cipher
from storage.interface import ChatPage, TranscriptLine

CONVERSATION: Table = models.Conversation.__table__  # type: ignore[attr-defined]
RECEIPT: Table = models.InboundReceipt.__table__  # type: ignore[attr-defined]
TRANSCRIPT: Table = models.TranscriptEntry.__table__  # type: ignore[attr-defined]
OUTBOX: Table = models.OutboxMessage.__table__  # type: ignore[attr-defined]


def ended(conn: Connection, channel: str, receipt_key: str) -> bool:
    """True when a receipt was recorded under this key (storage.writes.delivery_key of the marker)."""
    found = conn.execute(
        select(RECEIPT.c.id).where(RECEIPT.c.channel == channel, RECEIPT.c.delivery_id == receipt_key)
    ).first()
    return found is not None


def chat_page(
    conn: Connection, cipher: Cipher, channel: str, chat_key: str, *, receipt_key: str, limit: int
) -> ChatPage:
    """The chat's page as stored: nothing when it ended (its marker recorded) or has no conversation."""
    if ended(conn, channel, receipt_key):
        return ChatPage(ended=True)
    found = conn.execute(
        select(CONVERSATION.c.id, CONVERSATION.c.locale).where(
            CONVERSATION.c.channel == channel, CONVERSATION.c.chat_key == chat_key
        )
    ).first()
    if found is None:
        return ChatPage()
    conversation_id, locale = found
    rows = conn.execute(
        select(TRANSCRIPT.c.direction, TRANSCRIPT.c.author, TRANSCRIPT.c.text_enc, TRANSCRIPT.c.at)
        .where(TRANSCRIPT.c.conversation_id == conversation_id)
        .order_by(TRANSCRIPT.c.seq.desc())
        .limit(limit)
    ).all()
    lines = [TranscriptLine(str(d), str(a), cipher.decrypt(t), at) for d, a, t, at in reversed(rows)]
    tokens = conn.execute(
        select(OUTBOX.c.message_enc)
        .where(OUTBOX.c.conversation_id == conversation_id)
        .order_by(OUTBOX.c.id.desc())
        .limit(limit)
    ).scalars()
    sent = [message for message in (cipher.decrypt_json(t) for t in tokens) if isinstance(message, dict)]
    return ChatPage(locale=str(locale), lines=lines, sent=sent[::-1])
