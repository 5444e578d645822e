"""What the application asks of storage, as protocols, and the plain values that cross between them.

The application's step (bot.app.step) works through `StepStore`: a few reads and checks while the flow
decides, then ONE `record_step` with everything the step wrote. The SQL implementation behind it is
storage.writes.SqlStepStore (SQLite and PostgreSQL, storage.dialect). Every call runs on a sync
`Connection` inside the transaction storage.db.Database.run_write opened; none commits.

Values cross in clear: the implementation decides what is encrypted (everything a person typed, every
address) and what is kept in clear (codes for counting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection

GLOBAL_SCOPE = "all"  # the look-up failure count of every chat together (see StepStore.count_lookup_failure)


@dataclass(frozen=True)
class TranscriptLine:
    """One transcript line to append."""

    direction: str  # "in" | "out"
    author: str  # "person" | "bot" | "staff"
    text: str
    at: datetime


@dataclass(frozen=True)
class OpenConversation:
    """The chat's conversation, locked until the transaction ends: its id and its draft (None before the
    conversation started)."""

    id: int
    draft: dict[str, Any] | None


@dataclass(frozen=True)
class Chat:
    """Whom a step is with: the channel, the chat's pseudonym, and the platform address to reply to
    (stored encrypted, only with what is sent to it or with a report that asked for contact there)."""

    channel: str
    chat_key: str
    address: str


@dataclass(frozen=True)
class ReplyClaim:
    """A step may claim its own replies for sending right after its commit, leased until `until`, when
    nothing went to the chat after `quiet_since` (None: whenever)."""

    until: datetime
    quiet_since: datetime | None = None


@dataclass(frozen=True)
class NewReport:
    """A report submitted by this step.

    `answers` is the report as plain data (the fields of flows.types.ReportFields, nested values as
    mappings); storage decides which are kept in clear and which sealed. `in_chat`: the reporter asked to
    be contacted in this chat, so the report keeps the chat's pseudonym and reply address and the
    conversation's messages; otherwise nothing links the report to the chat.
    """

    reference: str
    answers: Mapping[str, Any]
    in_chat: bool
    code_hash: str | None = None


@dataclass(frozen=True)
class StepWrite:
    """Everything one step writes, after its receipt was recorded and its conversation opened.

    - `conversation_id`: the open conversation, or None for a message kept outside any (nothing but the
      outbox is written then).
    - `message_ref`: the platform id of the person's message, kept encrypted for quick exit.
    - `draft`: the draft to save; None leaves the stored one as it is.
    - `ended`: the conversation is over (erased, or `report` submitted): it goes, with its transcript.
    - `report`: the report this step submitted, if any (`ended` must be set).
    - `lines`: transcript lines, both ways, kept with the conversation or the report (not when erased).
    - `messages`: replies to deliver, in the outbox's stored form, in order.
    - `fetches`: files the answers now keep, to be downloaded by the delivery loop (storage.fetches).
    - `dropped`: evidence references the draft no longer keeps (it ended without a report): their
      downloads are not made; the caller deletes the files after the commit.
    - `ids_dropped`: the chat's next messages will not be stored (the volume limit), so their ids are
      unknown: quick exit must say it could not delete everything (storage.kept.mark_older).
    """

    chat: Chat
    conversation_id: int | None
    at: datetime
    message_ref: str | None = None
    draft: dict[str, Any] | None = None
    ended: bool = False
    report: NewReport | None = None
    lines: Sequence[TranscriptLine] = ()
    messages: Sequence[dict[str, Any]] = ()
    fetches: Sequence[Fetch] = ()
    ids_dropped: bool = False
    dropped: Sequence[str] = ()


@dataclass(frozen=True)
class StaffAnswer:
    """The reporter writing back to staff: `lines` join report `report_id`'s transcript, `messages` go
    out on it to `chat`, in order, and its last-inbound time moves on to `at`."""

    report_id: int
    chat: Chat
    at: datetime
    lines: Sequence[TranscriptLine] = ()
    messages: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True)
class Fetch:
    """A file sent on a messaging app: the evidence store reference the answers keep, and where the
    delivery loop downloads it from (the platform's file id or media URL, stored encrypted until then)."""

    ref: str
    source: str
    content_type: str | None = None


@dataclass(frozen=True)
class ChatPage:
    """A chat as stored, for a page another worker showed (storage.chatpage): whether it ended (quick
    exit), its conversation's language, its last transcript lines and the replies it was sent (outbox
    form), oldest first. Empty when there is no conversation."""

    ended: bool = False
    locale: str | None = None
    lines: Sequence[TranscriptLine] = ()
    sent: Sequence[dict[str, Any]] = ()


@dataclass(frozen=True)
class Lockout:
    """`failures` failed status look-ups within `window` lock a scope out for `lasts`."""

    failures: int
    window: timedelta
    lasts: timedelta


@dataclass(frozen=True)
class ReportStatus:
    """What a status query may tell (no content), and what decides whether staff messages are shown."""

    id: int
    reference: str
    status: str
    submitted_at: datetime
    channel: str
    chat_key: str | None  # the reporter's chat, only for a report that asked for contact in the chat
    code_hash: str | None


class StepStore(Protocol):
    """The storage operations of the application's step, on the step's connection."""

    def record_receipt(self, conn: Connection, channel: str, delivery_id: str) -> bool:
        """Record a delivery id; False when it was recorded before (a repeat to ignore)."""
        ...

    def open_conversation(self, conn: Connection, channel: str, chat_key: str) -> OpenConversation:
        """The chat's conversation, created if missing, locked until the transaction ends."""
        ...

    def reference_exists(self, conn: Connection, reference: str) -> bool:
        """True when a report already has this reference."""
        ...

    def count_submission(
        self, conn: Connection, sender_key: str, *, at: datetime, limit: int, window: timedelta
    ) -> bool:
        """Count one more report for this sender; False (nothing counted) at `limit` in the window."""
        ...

    def report_status(self, conn: Connection, reference: str) -> ReportStatus | None:
        """The report with this reference, for a status look-up, if any."""
        ...

    def staff_replies(self, conn: Connection, report_id: int) -> list[str]:
        """Texts staff sent to the reporter, oldest first."""
        ...

    def report_answers(self, conn: Connection, reference: str) -> dict[str, Any] | None:
        """A report's role, partners and sealed answers, decrypted, for the next report of its series."""
        ...

    def last_report_in_chat(self, conn: Connection, channel: str, chat_key: str) -> str | None:
        """The newest report that asked for contact in this chat, by reference."""
        ...

    def locked_out(self, conn: Connection, scopes: Sequence[str], *, now: datetime) -> bool:
        """True while any of these scopes (a chat's pseudonym, GLOBAL_SCOPE) is locked out of look-ups."""
        ...

    def count_lookup_failure(self, conn: Connection, scope: str, rule: Lockout, *, now: datetime) -> bool:
        """Count a failed look-up; True when this failure starts a lockout."""
        ...

    def audit(self, conn: Connection, *, action: str, detail: str, count: int, at: datetime) -> None:
        """An audit event by the service itself: counts and words, never content."""
        ...

    def record_step(self, conn: Connection, write: StepWrite) -> list[int]:
        """Write everything the step decided; returns the ids of the outbox messages, in order."""
        ...

    def claim_fresh(self, conn: Connection, ids: Sequence[int], chat: Chat, claim: ReplyClaim) -> bool:
        """Claim the step's own replies for sending right after the commit, when nothing of the chat
        waits before them (storage.outbox.claim_fresh); True when claimed."""
        ...

    def staff_thread(self, conn: Connection, chat: Chat, *, since: datetime) -> tuple[int, str, str] | None:
        """(id, reference, language) of the report of this chat that staff wrote to last, at or after
        `since`; the language is the catalog locale the person reported in."""
        ...

    def chat_locale(self, conn: Connection, channel: str, chat_key: str) -> str | None:
        """The language (catalog locale) of this chat's conversation, if it has one; creates nothing."""
        ...

    def answer_staff(self, conn: Connection, answer: StaffAnswer) -> list[int]:
        """Write what the reporter wrote back to staff (see StaffAnswer). Returns the outbox ids."""
        ...

    def chat_ended(self, conn: Connection, channel: str, marker: str) -> bool:
        """True when `record_receipt(channel, marker)` recorded this marker (a quick exit). Reads only."""
        ...

    def chat_page(
        self, conn: Connection, channel: str, chat_key: str, *, marker: str, limit: int
    ) -> ChatPage:
        """The chat as stored (ChatPage), its last `limit` lines and replies, decrypted. Reads only."""
        ...
