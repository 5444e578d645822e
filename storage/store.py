"""Storage operations outside the application's step, on an AsyncSession: staff replies and exports,
quick exit's message ids, maintenance. Every method runs inside a transaction the caller opened
(storage.db.Database.transaction) and never commits by itself.

The step itself writes through storage.interface.StepStore (storage.writes); the writes both share run
the same functions of storage.writes on the session's connection, so values are encrypted the same way.
Values arrive in clear and leave encrypted.

`transcript`, `create_report`, `sealed`, `pending_count` and `remember_message` are used only by tests
of the channels and of staff commands (to seed and read rows); they go when those tests move.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import kept, writes
from storage.crypto import Cipher
from storage.interface import TranscriptLine as Line
from storage.models import (
    AuditEvent,
    ChatMessage,
    OutboxMessage,
    Report,
    SubmissionCount,
    TranscriptEntry,
)
from storage.outbox import Pending

__all__ = ["Line", "Pending", "Store"]

T = TypeVar("T")


class Store:
    """The storage operations of one deployment (one cipher)."""

    def __init__(self, cipher: Cipher) -> None:
        self.cipher = cipher

    # -- inbound ---------------------------------------------------------------------------------

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
            lambda conn: writes.append_transcript(
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

    async def create_report(self, s: AsyncSession, **fields: Any) -> Report:
        """Store a report; move the conversation's transcript to it (storage.writes.create_report takes
        the same keyword arguments)."""
        report_id = await _on_connection(s, lambda conn: writes.create_report(conn, self.cipher, **fields))
        report = await s.get(Report, report_id)
        assert report is not None
        return report

    async def reference_exists(self, s: AsyncSession, reference: str) -> bool:
        """True when a report already has this reference."""
        return await _on_connection(s, lambda conn: writes.reference_exists(conn, reference))

    async def report_by_reference(self, s: AsyncSession, reference: str) -> Report | None:
        """The report with this reference, if any."""
        return (
            await s.execute(select(Report).where(col(Report.reference) == reference))
        ).scalar_one_or_none()

    def sealed(self, report: Report) -> dict[str, Any]:
        """A report's encrypted fields, decrypted."""
        value = self.cipher.decrypt_json(report.sealed_enc)
        return value if isinstance(value, dict) else {}

    async def purge_submission_counts(self, s: AsyncSession, *, before: datetime) -> int:
        """Delete report counters whose window started before a time (retention: one hour)."""
        result = await s.execute(delete(SubmissionCount).where(col(SubmissionCount.window_start) < before))
        return int(getattr(result, "rowcount", 0) or 0)

    # -- outbox ----------------------------------------------------------------------------------

    async def enqueue(self, s: AsyncSession, **fields: Any) -> list[int]:
        """Put messages in the outbox, in order; returns their ids (storage.writes.enqueue takes the same
        keyword arguments: channel, chat_key, address, messages, conversation_id, report_id, at)."""
        return await _on_connection(s, lambda conn: writes.enqueue(conn, self.cipher, **fields))

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
            s, lambda conn: writes.remember_message(conn, self.cipher, channel, chat_key, ref, at=at)
        )

    async def message_refs(
        self, s: AsyncSession, channel: str, chat_key: str, *, since: datetime
    ) -> list[str]:
        """Platform ids of this chat's messages kept at or after a time, both ways, oldest first."""
        found = await s.execute(
            select(col(ChatMessage.ref_enc))
            .where(
                col(ChatMessage.channel) == channel,
                col(ChatMessage.chat_key) == chat_key,
                col(ChatMessage.at) >= kept.kept_time(since),
            )
            .order_by(col(ChatMessage.at), col(ChatMessage.id))
        )
        return [self.cipher.decrypt(token) for (token,) in found.all()]

    async def kept_for_exit(
        self, s: AsyncSession, channel: str, chat_key: str, *, now: datetime, window: timedelta
    ) -> kept.Kept:
        """What quick exit can try to delete in this chat (storage.kept.kept_for_exit)."""
        return await _on_connection(
            s, lambda conn: kept.kept_for_exit(conn, self.cipher, channel, chat_key, now=now, window=window)
        )

    async def forget_kept(self, s: AsyncSession, rows: Sequence[int]) -> None:
        """Drop kept ids quick exit has used."""
        await _on_connection(s, lambda conn: kept.forget(conn, rows))

    async def forget_messages(self, s: AsyncSession, channel: str | None, *, before: datetime) -> int:
        """Drop kept ids too old for the platform to delete (of one channel, or all), leaving each chat a
        marker that older messages exist (storage.kept.age_out)."""
        return await _on_connection(s, lambda conn: kept.age_out(conn, self.cipher, channel, before=before))

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
    """Run a storage.writes function on the session's connection, in its transaction, after flushing what
    the session holds (Core statements do not flush by themselves)."""
    await s.flush()
    return await s.run_sync(lambda sync: fn(sync.connection()))
