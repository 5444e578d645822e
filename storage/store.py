"""Reads and writes used by the service's one step and by the outbox. Every function runs inside a
transaction the caller opened (storage.db.Database.transaction) and never commits by itself.

Values arrive here in clear and leave encrypted: this module is the only place that calls the cipher
on the way in, so nothing a person typed can reach a table unencrypted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import steps
from storage.crypto import Cipher
from storage.models import (
    AuditEvent,
    ChatMessage,
    Conversation,
    InboundReceipt,
    OutboxMessage,
    Report,
    SubmissionCount,
    TranscriptEntry,
    utcnow,
)
from storage.steps import Pending
from storage.steps import TranscriptLine as Line

__all__ = ["Line", "Pending", "Store"]

T = TypeVar("T")


class Store:
    """The storage operations of one deployment (one cipher)."""

    def __init__(self, cipher: Cipher) -> None:
        self.cipher = cipher

    # -- inbound ---------------------------------------------------------------------------------

    def _delivery_key(self, channel: str, delivery_id: str) -> str:
        # A Twilio MessageSid leads back to the sender through Twilio's API: keep only a pseudonym of it.
        return self.cipher.pseudonym(f"delivery:{channel}", delivery_id)

    async def record_receipt(self, s: AsyncSession, channel: str, delivery_id: str) -> bool:
        """Record a delivery id; False when it was recorded before (a repeat to ignore).

        On PostgreSQL a second worker inserting the same id waits on the unique index until the first
        commits (then it is a repeat) or rolls back (then it is recorded here).
        """
        return await _on_connection(
            s, lambda conn: steps.record_receipt(conn, self.cipher, channel, delivery_id)
        )

    async def has_receipt(self, s: AsyncSession, channel: str, delivery_id: str) -> bool:
        """True when this delivery has been acted on (committed)."""
        found = await s.execute(
            select(col(InboundReceipt.id)).where(
                col(InboundReceipt.channel) == channel,
                col(InboundReceipt.delivery_id) == self._delivery_key(channel, delivery_id),
            )
        )
        return found.first() is not None

    async def lock_conversation(self, s: AsyncSession, channel: str, chat_key: str) -> Conversation:
        """The chat's conversation row, created if missing, locked until the transaction ends.

        SQLite: the transaction began with BEGIN IMMEDIATE, so it is the only writer anyway. PostgreSQL:
        `SELECT ... FOR UPDATE` makes a second worker wait for this one's commit. If that commit deleted
        the row (a report was submitted, a draft erased), the waiting worker finds nothing and inserts
        afresh, hence the loop.
        """
        query = (
            select(Conversation)
            .where(col(Conversation.channel) == channel, col(Conversation.chat_key) == chat_key)
            .execution_options(populate_existing=True)
        )
        if _dialect(s) == "postgresql":
            query = query.with_for_update()
        for _ in range(5):
            now = utcnow()
            stmt = _insert(s, Conversation).values(
                channel=channel, chat_key=chat_key, step="start", locale="en", created_at=now, updated_at=now
            )
            await s.execute(stmt.on_conflict_do_nothing())
            row = (await s.execute(query)).scalar_one_or_none()
            if row is not None:
                return row
        raise RuntimeError("could not lock the conversation row after 5 tries")

    def read_draft(self, conv: Conversation) -> dict[str, Any] | None:
        """The decrypted draft, or None for a conversation that has not started."""
        if conv.draft_enc is None:
            return None
        value = self.cipher.decrypt_json(conv.draft_enc)
        return value if isinstance(value, dict) else None

    async def save_draft(
        self, s: AsyncSession, conv: Conversation, draft: dict[str, Any], *, at: datetime | None = None
    ) -> None:
        """Store the draft encrypted (see storage.steps.save_draft)."""
        assert conv.id is not None
        conv_id = conv.id
        await _on_connection(
            s, lambda conn: steps.save_draft(conn, self.cipher, conv_id, draft, at=at or utcnow())
        )

    async def delete_conversation(self, s: AsyncSession, conversation_id: int) -> None:
        """Remove a conversation, its transcript and what it sent (its report keeps its own copy).

        Messages not yet delivered stay, detached, and are deleted once delivered (an outbox row that
        belongs to no conversation and no report does not outlive its delivery). Delivered messages go
        now, except that the platform ids of delivered ones are kept, with the text scrubbed, for the
        quick exit ("clear the chat") until purge removes them.
        """
        await _on_connection(s, lambda conn: steps.delete_conversation(conn, self.cipher, conversation_id))

    async def forget_chat(self, s: AsyncSession, channel: str, chat_key: str) -> int:
        """Delete every delivered message to this chat that no report keeps, and the kept ids of messages
        from it (for anonymous reports).

        Called when an anonymous report is submitted: what remains of the chat's messages could
        otherwise be matched to the report by time. Returns how many rows went.
        """
        return await _on_connection(s, lambda conn: steps.forget_chat(conn, channel, chat_key))

    # -- transcript ------------------------------------------------------------------------------

    async def append_transcript(
        self,
        s: AsyncSession,
        lines: Sequence[Line],
        *,
        conversation_id: int | None = None,
        report_id: int | None = None,
    ) -> None:
        """Append lines, encrypted, after the last one of this conversation or report."""
        await _on_connection(
            s,
            lambda conn: steps.append_transcript(
                conn, self.cipher, lines, conversation_id=conversation_id, report_id=report_id
            ),
        )

    async def transcript(self, s: AsyncSession, *, report_id: int) -> list[Line]:
        """A report's transcript, decrypted, in order."""
        rows = (
            await s.execute(
                select(TranscriptEntry)
                .where(col(TranscriptEntry.report_id) == report_id)
                .order_by(col(TranscriptEntry.seq))
            )
        ).scalars()
        return [Line(r.direction, r.author, self.cipher.decrypt(r.text_enc), r.at) for r in rows]

    # -- reports ---------------------------------------------------------------------------------

    async def create_report(
        self,
        s: AsyncSession,
        *,
        reference: str,
        channel: str,
        clear: dict[str, Any],
        sealed: dict[str, Any],
        chat_key: str | None,
        reply_address: str | None,
        conversation_id: int | None,
        at: datetime,
    ) -> Report:
        """Store a report; move the conversation's transcript to it (see storage.steps.create_report)."""
        report_id = await _on_connection(
            s,
            lambda conn: steps.create_report(
                conn,
                self.cipher,
                reference=reference,
                channel=channel,
                clear=clear,
                sealed=sealed,
                chat_key=chat_key,
                reply_address=reply_address,
                conversation_id=conversation_id,
                at=at,
            ),
        )
        report = await s.get(Report, report_id)
        assert report is not None
        return report

    async def reference_exists(self, s: AsyncSession, reference: str) -> bool:
        """True when a report already has this reference."""
        return await _on_connection(s, lambda conn: steps.reference_exists(conn, reference))

    async def report_by_reference(self, s: AsyncSession, reference: str) -> Report | None:
        """The report with this reference, if any."""
        return (
            await s.execute(select(Report).where(col(Report.reference) == reference))
        ).scalar_one_or_none()

    def sealed(self, report: Report) -> dict[str, Any]:
        """A report's encrypted fields, decrypted."""
        value = self.cipher.decrypt_json(report.sealed_enc)
        return value if isinstance(value, dict) else {}

    async def staff_replies(self, s: AsyncSession, report_id: int) -> list[str]:
        """Texts staff sent to the reporter, oldest first."""
        rows = (
            await s.execute(
                select(TranscriptEntry)
                .where(col(TranscriptEntry.report_id) == report_id, col(TranscriptEntry.author) == "staff")
                .order_by(col(TranscriptEntry.seq))
            )
        ).scalars()
        return [self.cipher.decrypt(r.text_enc) for r in rows]

    async def count_submission(
        self, s: AsyncSession, sender_key: str, *, at: datetime, limit: int, window: timedelta
    ) -> bool:
        """Count one more report for this sender in the current window; False (nothing counted) when
        the sender already reached `limit`. Windows older than `window` are deleted on the way."""
        return await _on_connection(
            s, lambda conn: steps.count_submission(conn, sender_key, at=at, limit=limit, window=window)
        )

    async def purge_submission_counts(self, s: AsyncSession, *, before: datetime) -> int:
        """Delete report counters whose window started before a time (retention: one hour)."""
        result = await s.execute(delete(SubmissionCount).where(col(SubmissionCount.window_start) < before))
        return int(getattr(result, "rowcount", 0) or 0)

    # -- outbox ----------------------------------------------------------------------------------

    async def enqueue(
        self,
        s: AsyncSession,
        *,
        channel: str,
        chat_key: str,
        address: str,
        messages: Iterable[dict[str, Any]],
        conversation_id: int | None = None,
        report_id: int | None = None,
        at: datetime | None = None,
    ) -> list[int]:
        """Put messages in the outbox, in order; returns their ids."""
        return await _on_connection(
            s,
            lambda conn: steps.enqueue(
                conn,
                self.cipher,
                channel=channel,
                chat_key=chat_key,
                address=address,
                messages=list(messages),
                conversation_id=conversation_id,
                report_id=report_id,
                at=at,
            ),
        )

    async def claim_due(
        self, s: AsyncSession, channel: str, *, now: datetime, lease: timedelta, limit: int = 100
    ) -> list[Pending]:
        """Claim due messages (see storage.steps.claim_due, which does the work)."""
        return await _on_connection(
            s, lambda conn: steps.claim_due(conn, self.cipher, channel, now=now, lease=lease, limit=limit)
        )

    async def mark_sent(
        self, s: AsyncSession, ids: Sequence[int], *, at: datetime, platform_ids: Sequence[str] = ()
    ) -> None:
        """Record delivery (see storage.steps.mark_sent)."""
        await _on_connection(
            s, lambda conn: steps.mark_sent(conn, self.cipher, ids, at=at, platform_ids=platform_ids)
        )

    async def mark_retry(self, s: AsyncSession, msg_id: int, *, at: datetime, error: str) -> None:
        """Try again at a later time."""
        await _on_connection(s, lambda conn: steps.mark_retry(conn, msg_id, at=at, error=error))

    async def mark_failed(self, s: AsyncSession, msg_id: int, *, at: datetime, error: str) -> None:
        """Give up on a message the platform will never accept (see storage.steps.mark_failed)."""
        await _on_connection(s, lambda conn: steps.mark_failed(conn, msg_id, at=at, error=error))

    async def pending_count(self, s: AsyncSession, channel: str | None = None) -> int:
        """How many messages wait to be delivered."""
        query = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(col(OutboxMessage.sent_at).is_(None), col(OutboxMessage.failed_at).is_(None))
        )
        if channel:
            query = query.where(col(OutboxMessage.channel) == channel)
        return int((await s.execute(query)).scalar() or 0)

    # -- message ids for quick exit --------------------------------------------------------------

    async def remember_message(
        self, s: AsyncSession, channel: str, chat_key: str, ref: str, *, at: datetime
    ) -> None:
        """Keep the platform id of a message the person sent (encrypted), for quick exit."""
        await _on_connection(
            s, lambda conn: steps.remember_message(conn, self.cipher, channel, chat_key, ref, at=at)
        )

    async def message_refs(
        self, s: AsyncSession, channel: str, chat_key: str, *, since: datetime
    ) -> list[str]:
        """Platform ids of this chat's messages since a time, both ways, oldest first."""
        refs: list[tuple[datetime, str]] = []
        incoming = await s.execute(
            select(col(ChatMessage.at), col(ChatMessage.ref_enc)).where(
                col(ChatMessage.channel) == channel,
                col(ChatMessage.chat_key) == chat_key,
                col(ChatMessage.at) >= since,
            )
        )
        refs.extend((at, self.cipher.decrypt(token)) for at, token in incoming.all())
        outgoing = await s.execute(
            select(col(OutboxMessage.sent_at), col(OutboxMessage.platform_ids_enc)).where(
                col(OutboxMessage.channel) == channel,
                col(OutboxMessage.chat_key) == chat_key,
                col(OutboxMessage.sent_at) >= since,
                col(OutboxMessage.platform_ids_enc).is_not(None),
            )
        )
        for at, token in outgoing.all():
            if at is not None and token is not None:
                refs.extend((at, str(ref)) for ref in self.cipher.decrypt_json(token))
        return [ref for _, ref in sorted(refs, key=lambda pair: pair[0])]

    async def forget_messages(
        self, s: AsyncSession, channel: str, chat_key: str | None, *, before: datetime | None = None
    ) -> None:
        """Drop kept message ids: a chat's (after quick exit), every chat's (None), or only those before a time."""
        incoming = delete(ChatMessage).where(col(ChatMessage.channel) == channel)
        outgoing = update(OutboxMessage).where(
            col(OutboxMessage.channel) == channel, col(OutboxMessage.platform_ids_enc).is_not(None)
        )
        if chat_key is not None:
            incoming = incoming.where(col(ChatMessage.chat_key) == chat_key)
            outgoing = outgoing.where(col(OutboxMessage.chat_key) == chat_key)
        if before is not None:
            incoming = incoming.where(col(ChatMessage.at) < before)
            outgoing = outgoing.where(col(OutboxMessage.sent_at) < before)
        await s.execute(incoming)
        await s.execute(outgoing.values(platform_ids_enc=None))

    # -- audit -----------------------------------------------------------------------------------

    async def audit(
        self,
        s: AsyncSession,
        *,
        actor: str,
        action: str,
        reference: str | None = None,
        count: int = 0,
        detail: str | None = None,
        references: Sequence[str] = (),
    ) -> None:
        """Record who did what, to which references, how many; never content."""
        refs = sorted(set(references)) if references else None
        if reference is None and refs is not None and len(refs) == 1:
            reference = refs[0]
        s.add(
            AuditEvent(
                actor=actor[:64],
                action=action[:32],
                reference=reference,
                count=count,
                detail=detail[:500] if detail else None,
                refs=refs,
            )
        )
        await s.flush()


async def _on_connection(s: AsyncSession, fn: Callable[[Connection], T]) -> T:
    """Run a storage.steps function on the session's connection, in its transaction, after flushing what
    the session holds (Core statements do not flush by themselves)."""
    await s.flush()
    return await s.run_sync(lambda sync: fn(sync.connection()))


def _dialect(s: AsyncSession) -> str:
    return s.get_bind().dialect.name


def _insert(s: AsyncSession, table: Any) -> Any:
    """An INSERT that supports ON CONFLICT DO NOTHING on both SQLite and PostgreSQL."""
    if _dialect(s) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def day_start(d: date) -> datetime:
    """Midnight UTC at the start of a day."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)
