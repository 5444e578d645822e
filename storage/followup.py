"""Staff follow-up on a report: its review status and notes, and the way back to a reporter's chat.

Like storage.store, every function runs inside the caller's transaction and encrypts on the way in.
The reply address exists only for a reporter who asked to be contacted in the chat; an anonymous report
has none, and nothing here can find the chat of a report that has none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage import dialect
from storage.crypto import Cipher
from storage.export import aware, iso_utc
from storage.models import Conversation, Report

STATUSES = ("new", "in-progress", "closed")


async def lock_report(s: AsyncSession, reference: str) -> Report | None:
    """The report with this reference, locked until the transaction ends (PostgreSQL; SQLite locks all)."""
    query = select(Report).where(col(Report.reference) == reference)
    return (await s.execute(dialect.locked_in(query, s))).scalar_one_or_none()


async def review(
    s: AsyncSession, cipher: Cipher, report: Report, *, status: str, note: str | None, at: datetime
) -> None:
    """Set a report's status; a note is added to its (encrypted) list of staff notes, oldest first."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}")
    if status != report.status:
        report.status = status
        report.status_changed_at = at
    if note:
        notes: list[Any] = []
        if report.staff_note_enc:
            stored = cipher.decrypt_json(report.staff_note_enc)
            notes = (
                stored if isinstance(stored, list) else [{"at": None, "status": None, "text": str(stored)}]
            )
        notes.append({"at": iso_utc(at), "status": status, "text": note})
        report.staff_note_enc = cipher.encrypt_json(notes)
    s.add(report)
    await s.flush()


async def last_inbound(s: AsyncSession, report: Report) -> datetime | None:
    """When the reporter last wrote, as far as anything kept can tell (WhatsApp's 24-hour window).

    The report's own time, or the time of the chat's draft in progress if it is later. Reports are
    never stamped with later messages: a report so stamped would carry the times of any anonymous
    report the same chat sends afterwards, and link the two. A draft's time goes with the draft.
    """
    times = [aware(report.last_inbound_at)] if report.last_inbound_at is not None else []
    if report.chat_key is not None:
        draft = await s.execute(
            select(col(Conversation.updated_at)).where(
                col(Conversation.channel) == report.channel, col(Conversation.chat_key) == report.chat_key
            )
        )
        times += [aware(at) for at in draft.scalars() if at is not None]
    return max(times, default=None)


def reply_address(cipher: Cipher, report: Report) -> str | None:
    """The chat to reply to, decrypted; None unless the reporter asked to be contacted in the chat."""
    if report.anonymous or not report.reply_address_enc or not report.chat_key:
        return None
    return cipher.decrypt(report.reply_address_enc)
