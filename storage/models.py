"""The tables. Anything a person typed, and every chat id or phone number, is stored encrypted.

Columns named `*_enc` hold MultiFernet tokens (see storage.crypto); `ENCRYPTED_COLUMNS` lists them all
so that key rotation cannot miss one. Codes used for counting (role, kinds, motivations, dates, status)
are kept in clear: they say nothing about who reported. Times are aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Now, timezone-aware UTC (SQLModel stores aware datetimes and returns them in UTC)."""
    return datetime.now(UTC)


class Conversation(SQLModel, table=True):
    """A chat in progress: the flow's saved draft, keyed by a pseudonym of the chat id."""

    __tablename__ = "conversation"
    __table_args__ = (UniqueConstraint("channel", "chat_key", name="uq_conversation_chat"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    chat_key: str = Field(max_length=64)  # HMAC-SHA256 of the chat id; never the id itself
    step: str = Field(default="start", max_length=64)
    draft_enc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    locale: str = Field(default="en", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class InboundReceipt(SQLModel, table=True):
    """One delivery we have acted on; the unique constraint turns a repeat into a no-op."""

    __tablename__ = "inbound_receipt"
    __table_args__ = (UniqueConstraint("channel", "delivery_id", name="uq_receipt_delivery"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    delivery_id: str = Field(max_length=128)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class Report(SQLModel, table=True):
    """A submitted report. `sealed_enc` holds every free-text field and the contact details."""

    __tablename__ = "report"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=16, unique=True)
    submitted_at: datetime = Field(default_factory=utcnow, index=True)
    channel: str = Field(max_length=16)
    role: str | None = Field(default=None, max_length=32)
    incident_types: list[str] = Field(default_factory=list, sa_type=JSON)
    motivations: list[str] = Field(default_factory=list, sa_type=JSON)
    occurred_on: date | None = None
    repeat: str | None = Field(default=None, max_length=16)
    support_requested: bool | None = None
    anonymous: bool = True
    share_with: list[str] = Field(default_factory=list, sa_type=JSON)
    status: str = Field(default="new", max_length=16)
    status_changed_at: datetime | None = None
    sealed_enc: str = Field(sa_column=Column(Text, nullable=False))
    staff_note_enc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Only when the person asked to be contacted in the chat; an anonymous report keeps neither.
    chat_key: str | None = Field(default=None, max_length=64, index=True)
    reply_address_enc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_inbound_at: datetime | None = None  # the person's last message (WhatsApp's 24-hour window)
    # The secret code shown once beside the reference, as a keyed hash (storage.crypto.Cipher.code_hash):
    # with it, `status REFERENCE CODE` shows staff messages in any chat. Added in revision 0007.
    code_hash: str | None = Field(default=None, max_length=160)
    # The earlier report this one adds to (`add REFERENCE` in the chat), by reference. Added in revision 0009.
    linked_to: str | None = Field(default=None, max_length=16, index=True)
    # The language the person reported in (a catalog locale: "en", "pl", ...). Added in revision 0011.
    language: str = Field(default="en", max_length=16)


class TranscriptEntry(SQLModel, table=True):
    """One message either way, belonging to a conversation until its report is submitted."""

    __tablename__ = "transcript_entry"
    __table_args__ = (
        Index("ix_transcript_conversation", "conversation_id", "seq"),
        Index("ix_transcript_report", "report_id", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", ondelete="CASCADE")
    report_id: int | None = Field(default=None, foreign_key="report.id", ondelete="CASCADE")
    seq: int
    at: datetime = Field(default_factory=utcnow)
    direction: str = Field(max_length=3)  # "in" | "out"
    author: str = Field(default="bot", max_length=8)  # "person" | "bot" | "staff"
    text_enc: str = Field(sa_column=Column(Text, nullable=False))


class OutboxMessage(SQLModel, table=True):
    """A message committed with its cause and delivered after commit; retried until sent."""

    __tablename__ = "outbox"
    # The foreign keys are indexed: ending a conversation or erasing a report finds its messages by
    # them (and SQLite's foreign-key checks scan the whole table without an index).
    # Delivery looks only at unsent messages, in order, and at the oldest unsent one of each chat: two
    # partial indexes hold just those rows (storage.outbox.due_messages).
    __table_args__ = (
        Index(
            "ix_outbox_unsent",
            "channel",
            "priority",
            "id",
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
        Index(
            "ix_outbox_unsent_chat",
            "channel",
            "chat_key",
            "id",
            sqlite_where=text("sent_at IS NULL AND failed_at IS NULL"),
            postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
        ),
        Index("ix_outbox_conversation", "conversation_id"),
        Index("ix_outbox_report", "report_id"),
        # "was this chat sent to lately" reads only what was sent after a moment ago (due_messages)
        Index("ix_outbox_sent_at", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    chat_key: str = Field(max_length=64, index=True)  # orders delivery per chat; a pseudonym
    address_enc: str = Field(sa_column=Column(Text, nullable=False))
    message_enc: str = Field(sa_column=Column(Text, nullable=False))
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", ondelete="SET NULL")
    report_id: int | None = Field(default=None, foreign_key="report.id", ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    # 0: what the bot says in a conversation; 1: a staff follow-up. Delivery claims in (priority, id)
    # order, so follow-ups never hold up someone in the middle of a report (storage.outbox.due_messages).
    priority: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    sent_at: datetime | None = None
    failed_at: datetime | None = None  # given up: the platform refused for good
    last_error: str | None = Field(default=None, max_length=200)  # an error class or code, never content
    platform_ids_enc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class OutboxHead(SQLModel, table=True):
    """The head of each chat's queue: its oldest unsent outbox message, with that message's priority and
    next attempt, so that delivery reads one row a chat instead of every unsent message
    (storage.outbox.due_messages). Kept by database triggers on `outbox` (migration 0012), in the same
    transaction as every write to it, whichever code writes; nothing in it is plaintext."""

    __tablename__ = "outbox_head"
    __table_args__ = (Index("ix_outbox_head_order", "channel", "priority", "message_id", "next_attempt_at"),)

    channel: str = Field(max_length=16, primary_key=True)
    chat_key: str = Field(max_length=64, primary_key=True)  # a pseudonym, as on outbox
    message_id: int  # outbox.id of the chat's oldest unsent message
    priority: int
    next_attempt_at: datetime


class ChatMessage(SQLModel, table=True):
    """The platform id of a message the person sent, kept (encrypted) only so that quick exit can delete
    it; useless after 48 hours (the platform allows no deletion later) and purged then. The bot's own
    message ids live on their outbox rows (`platform_ids_enc`)."""

    __tablename__ = "chat_message"

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    chat_key: str = Field(max_length=64, index=True)  # a pseudonym, as on conversation
    at: datetime = Field(default_factory=utcnow, index=True)
    ref_enc: str = Field(sa_column=Column(Text, nullable=False))


class EvidenceFetch(SQLModel, table=True):
    """A file a person sent on a messaging app, still to be downloaded by the delivery loop into the
    evidence store under `ref` (the only reference the draft or report keeps). The platform's id or URL
    (`source_enc`, encrypted) lives here only until the download, then the row goes."""

    __tablename__ = "evidence_fetch"

    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(max_length=64, unique=True)  # the evidence store's own random reference
    channel: str = Field(max_length=16, index=True)
    content_type: str | None = Field(default=None, max_length=100)
    source_enc: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    claimed_until: datetime | None = None


class SubmissionCount(SQLModel, table=True):
    """How many reports one sender submitted in the current hour, for the abuse limit; nothing else.

    `sender_key` is a pseudonym of its own (not the conversation's chat key, so no table joins on it),
    `window_start` is rounded down to 10 minutes, and rows older than an hour are deleted, so an
    anonymous report is linked to nobody for longer than that.
    """

    __tablename__ = "submission_count"

    id: int | None = Field(default=None, primary_key=True)
    sender_key: str = Field(max_length=64, unique=True, index=True)
    window_start: datetime = Field(index=True)
    count: int = 0


class LookupFailure(SQLModel, table=True):
    """Failed `status` look-ups (no such reference, or a wrong code) in the current hour, for the lockout.

    One row per chat, under a pseudonym of its own (`status-lookup:<channel>`, which no other table uses),
    and one row for all chats together (`scope` = "all"). Counts and times only; deleted once the window
    and any lockout are over (docs/limits.md).
    """

    __tablename__ = "lookup_failure"

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=64, unique=True, index=True)
    window_start: datetime = Field(index=True)
    failures: int = 0
    locked_until: datetime | None = None


class ReportLink(SQLModel, table=True):
    """Two reports of one series that the reporter did not join themselves: linked by staff
    (`reportbot link`), or the link an erased report had (kept as references only, so the rest of its
    series stays together). A report's own `linked_to` is the link the person made. Added in revision 0009."""

    __tablename__ = "report_link"

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=16, index=True)
    other: str = Field(max_length=16, index=True)
    note_enc: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # staff's note
    at: datetime = Field(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """Who did what to which report, when. Never any report content."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=32)  # export, reply, erase, purge, rotate-keys, review, ...
    reference: str | None = Field(default=None, max_length=16)
    count: int = 0
    detail: str | None = Field(default=None, max_length=500)  # options such as format or partner id
    # Every reference the action touched (an export or a purge touches many); references say nothing
    # about who reported or what happened. Added in revision 0002.
    refs: list[str] | None = Field(default=None, sa_type=JSON)


ENCRYPTED_COLUMNS: dict[type[SQLModel], tuple[str, ...]] = {
    Conversation: ("draft_enc",),
    Report: ("sealed_enc", "staff_note_enc", "reply_address_enc"),
    TranscriptEntry: ("text_enc",),
    OutboxMessage: ("address_enc", "message_enc", "platform_ids_enc"),
    ChatMessage: ("ref_enc",),
    ReportLink: ("note_enc",),
    EvidenceFetch: ("source_enc",),  # a platform's file id or URL, until the download
}

ALL_TABLES: tuple[type[SQLModel], ...] = (
    Conversation,
    InboundReceipt,
    Report,
    TranscriptEntry,
    OutboxMessage,
    OutboxHead,
    ChatMessage,
    SubmissionCount,
    LookupFailure,
    ReportLink,
    AuditEvent,
    EvidenceFetch,
)


def table_names() -> list[str]:
    """Names of every table this code knows."""
    return [str(t.__tablename__) for t in ALL_TABLES]
