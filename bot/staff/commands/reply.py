"""`reportbot reply REF TEXT`: send staff's words to a reporter who asked to be contacted in the chat.

The message goes through the outbox and the channel's sender, like every other message the service sends,
becomes part of the report's transcript (author `staff`) and is audited.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot.channels import ChannelUnavailable, followup_refusal
from bot.channels.base import DeletesMessages, Sender
from bot.config import Config
from bot.delivery import KeptMessages, Outbox
from bot.render import to_dict
from bot.staff.context import StaffContext, StaffError, opened, undecryptable_refused
from bot.staff.registry import Command
from bot.staff.selection import normalise_reference
from flows import catalog, languages
from flows.types import Outbound
from storage import followup
from storage.models import OutboxMessage, Report
from storage.outbox import FOLLOW_UP
from storage.store import Line

IN_FLIGHT = "in_flight"


@dataclass
class ReplyResult:
    """What happened to a staff reply, as far as this command could see it."""

    reference: str
    state: str  # "sent" | "queued" (the outbox will deliver it) | "failed" (it never will)
    reason: str | None = None  # why it is queued or failed: a code such as forbidden, retry_after
    waiting_before: int = 0  # earlier messages to the same chat that go first

    @property
    def delivered(self) -> bool:
        return self.state == "sent"

    def describe(self) -> str:
        """One line for the person at the terminal."""
        ref = self.reference
        if self.state == "sent":
            return f"reportbot reply: sent to the reporter of {ref}"
        if self.state == "failed":
            return (
                f"reportbot reply: NOT delivered to the reporter of {ref}: the channel refused it "
                f"for good ({self.reason}); it will not be retried"
            )
        return f"reportbot reply: queued for the reporter of {ref}; {self._why_queued()}; it will be retried"

    def _why_queued(self) -> str:
        if self.reason == IN_FLIGHT:
            return "the running server is sending this chat's messages now and has not confirmed them yet"
        if self.waiting_before:
            return f"{self.waiting_before} earlier message(s) to the same chat are waiting to go first"
        return f"the channel did not take it yet ({self.reason or 'not tried yet'})"


async def send_reply(
    staff: StaffContext, reference: str, text: str, *, now: datetime | None = None
) -> ReplyResult:
    """Send staff's words to the reporter's chat, keep them in the transcript, audit, deliver."""
    ref = normalise_reference(reference)
    words = text.strip()
    if not words:
        raise StaffError("the message is empty; nothing was sent")
    now = now or datetime.now(UTC)
    async with staff.db.transaction() as s:
        report = await followup.lock_report(s, ref)
        if report is None or report.id is None:
            raise StaffError(f"no report has the reference {ref}")
        address, chat_key = await _reply_address(staff, s, ref, report, now)
        try:
            sender = staff.senders(report.channel)
        except ChannelUnavailable as exc:
            raise StaffError(f"{ref}: {exc}. Nothing was sent.") from None
        # In the language the person reported in (their words as staff wrote them).
        locale = report.language if report.language in catalog.CATALOGS else catalog.DEFAULT_LOCALE
        message = Outbound(text=catalog.text(locale, "staff.reply", reference=ref, reply=words), step="staff")
        message = languages.directed(message, locale)
        [msg_id] = await staff.store.enqueue(
            s,
            channel=report.channel,
            chat_key=chat_key,
            address=address,
            messages=[to_dict(message)],
            report_id=report.id,
            at=now,
            priority=FOLLOW_UP,  # after the replies of people in a conversation (storage.outbox)
        )
        await staff.store.append_transcript(s, [Line("out", "staff", words, now)], report_id=report.id)
        await staff.store.audit(s, actor=staff.who, action="reply", reference=ref, count=1)
    return await _deliver(staff, sender, ref, msg_id, chat_key)


async def _reply_address(
    staff: StaffContext, s: AsyncSession, ref: str, report: Report, now: datetime
) -> tuple[str, str]:
    """(address, chat key) of the chat to write to, or StaffError saying why this reporter cannot be
    written to there now."""
    if report.anonymous:
        raise StaffError(
            f"{ref} is anonymous: the reporter asked not to be contacted, and no way back to "
            "them is kept. Nothing was sent."
        )
    address = followup.reply_address(staff.cipher, report)
    if address is None or report.chat_key is None:
        raise StaffError(
            f"{ref}: the reporter did not ask to be contacted in the chat. Use the contact "
            "details in the export (phone or email) instead. Nothing was sent."
        )
    last = await followup.last_inbound(s, report)
    refusal = followup_refusal(staff.config, report.channel, last, now)
    if refusal is not None:
        raise StaffError(f"{ref}: {refusal}. Nothing was sent.")
    return address, report.chat_key


@dataclass(frozen=True)
class _Seen:
    """The reply's outbox row as one look at the database found it."""

    row: OutboxMessage | None
    waiting_before: int  # earlier messages of the chat not sent or failed yet
    moving: int  # messages of the chat up to the reply that someone claimed and has not finished


async def _look(staff: StaffContext, msg_id: int, chat_key: str) -> _Seen:
    now = datetime.now(UTC)
    unfinished = (
        col(OutboxMessage.chat_key) == chat_key,
        col(OutboxMessage.sent_at).is_(None),
        col(OutboxMessage.failed_at).is_(None),
    )
    count = select(func.count()).select_from(OutboxMessage)
    async with staff.db.transaction() as s:
        row = (
            await s.execute(select(OutboxMessage).where(col(OutboxMessage.id) == msg_id))
        ).scalar_one_or_none()
        before = await s.execute(count.where(*unfinished, col(OutboxMessage.id) < msg_id))
        in_flight = await s.execute(  # claimed by someone, no result yet (see steps.claim_one)
            count.where(
                *unfinished,
                col(OutboxMessage.id) <= msg_id,
                col(OutboxMessage.attempts) > 0,
                col(OutboxMessage.last_error).is_(None),
                col(OutboxMessage.next_attempt_at) > now,
            )
        )
        return _Seen(row, int(before.scalar() or 0), int(in_flight.scalar() or 0))


def _settled(ref: str, seen: _Seen) -> ReplyResult | None:
    """What happened to the reply, once it was sent or failed for good; None while it waits."""
    row = seen.row
    if row is None or row.sent_at is not None:
        return ReplyResult(ref, "sent")  # (a staff reply keeps its row: it belongs to the report)
    if row.failed_at is not None:
        return ReplyResult(ref, "failed", row.last_error)
    return None


async def _deliver(staff: StaffContext, sender: Sender, ref: str, msg_id: int, chat_key: str) -> ReplyResult:
    """Deliver this chat's messages up to the reply, then say what happened to it. While another
    process (the running server) is sending a message of this chat, wait for it a little, up to
    `settle_within` seconds, and try again: a reply it sends is reported as sent."""
    outbox = Outbox(staff.db, staff.store)
    if isinstance(sender, DeletesMessages):  # its ids kept for the person's quick exit, like the server's
        sender = KeptMessages(sender, outbox)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + staff.settle_within
    calm = 0  # looks in a row at nothing moving: the server may finish between our try and our look
    while True:
        # Only this chat: another chat's messages are the server's to send (it can clear a chat).
        await outbox.drain(sender, chat_key=chat_key)
        seen = await _look(staff, msg_id, chat_key)
        settled = _settled(ref, seen)
        if settled is not None:
            return settled
        calm = 0 if seen.moving else calm + 1
        if calm >= 2 or loop.time() >= deadline:
            reason = IN_FLIGHT if seen.moving else seen.row.last_error if seen.row else None
            return ReplyResult(ref, "queued", reason, seen.waiting_before)
        if seen.moving:
            await asyncio.sleep(0.05)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REF")
    parser.add_argument(
        "text",
        metavar="TEXT",
        help="your message, in quotes; - reads it from stdin (keeps it out of ps and history)",
    )


async def run(args: argparse.Namespace, config: Config) -> int:
    async with opened(config) as staff:
        text = sys.stdin.read() if args.text == "-" else args.text
        with undecryptable_refused():
            result = await send_reply(staff, args.reference, text.strip())
    print(result.describe())
    return 1 if result.state == "failed" else 0


COMMAND = Command(
    "reply",
    "send a message to a reporter who asked to be contacted in the chat",
    run,
    options=_options,
    order=120,
)
