"""The service step's reads and writes, synchronous and in Core statements (no ORM unit of work).

Each function runs on a sync `Connection` inside a transaction the caller opened and never commits.
They are the hot path: one message costs a handful of statements here. On SQLite the caller runs them
on a dedicated thread over the `sqlite3` driver (see storage.db.Database.run_step); on PostgreSQL
through `AsyncConnection.run_sync`, so there is one implementation for both. storage.store's async
methods of the same names delegate here too.

Values arrive in clear and leave encrypted, as in storage.store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, and_, bindparam, delete, func, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.crypto import Cipher, DecryptError
from storage.db import request_checkpoint
from storage.models import (
    AuditEvent,
    ChatMessage,
    Conversation,
    InboundReceipt,
    LookupFailure,
    OutboxMessage,
    Report,
    SubmissionCount,
    TranscriptEntry,
    utcnow,
)

CONVERSATION: Table = Conversation.__table__  # type: ignore[attr-defined]
RECEIPT: Table = InboundReceipt.__table__  # type: ignore[attr-defined]
REPORT: Table = Report.__table__  # type: ignore[attr-defined]
TRANSCRIPT: Table = TranscriptEntry.__table__  # type: ignore[attr-defined]
OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
CHAT_MESSAGE: Table = ChatMessage.__table__  # type: ignore[attr-defined]
SUBMISSION: Table = SubmissionCount.__table__  # type: ignore[attr-defined]
LOOKUP: Table = LookupFailure.__table__  # type: ignore[attr-defined]
AUDIT: Table = AuditEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TranscriptLine:
    """One transcript line to append."""

    direction: str  # "in" | "out"
    author: str  # "person" | "bot" | "staff"
    text: str
    at: datetime


@dataclass(frozen=True)
class ConversationRow:
    """The locked conversation: its id and its encrypted draft (None before it started)."""

    id: int
    draft_enc: str | None


# The statements of every step, built once (building a statement costs more than running it on SQLite).
# Values come as parameters; the SET clause of an UPDATE from the parameters named after columns.


def _receipt_insert(insert: Any) -> Any:
    return insert(RECEIPT).on_conflict_do_nothing().returning(RECEIPT.c.id)


def _conversation_upsert(insert: Any) -> Any:
    stmt = insert(CONVERSATION)
    return stmt.on_conflict_do_update(
        index_elements=[CONVERSATION.c.channel, CONVERSATION.c.chat_key],
        set_={"chat_key": stmt.excluded.chat_key},
    ).returning(CONVERSATION.c.id, CONVERSATION.c.draft_enc)


_RECEIPT_INSERT = {"sqlite": _receipt_insert(sqlite.insert), "postgresql": _receipt_insert(postgresql.insert)}
_CONVERSATION_UPSERT = {
    "sqlite": _conversation_upsert(sqlite.insert),
    "postgresql": _conversation_upsert(postgresql.insert),
}
_SAVE_DRAFT = update(CONVERSATION).where(CONVERSATION.c.id == bindparam("b_id"))
_LAST_SEQ_CONVERSATION = select(func.max(TRANSCRIPT.c.seq)).where(
    TRANSCRIPT.c.conversation_id == bindparam("b_owner")
)
_LAST_SEQ_REPORT = select(func.max(TRANSCRIPT.c.seq)).where(TRANSCRIPT.c.report_id == bindparam("b_owner"))
_TRANSCRIPT_INSERT = TRANSCRIPT.insert()
_OUTBOX_INSERT = OUTBOX.insert().returning(OUTBOX.c.id, sort_by_parameter_order=True)
_CHAT_MESSAGE_INSERT = CHAT_MESSAGE.insert()
_REFERENCE_EXISTS = select(REPORT.c.id).where(REPORT.c.reference == bindparam("b_reference"))
# A report sent: the report, its transcript taken over, the conversation and what it sent let go.
_REPORT_INSERT = REPORT.insert().returning(REPORT.c.id)
_TRANSCRIPT_TO_REPORT = (
    update(TRANSCRIPT)
    .where(TRANSCRIPT.c.conversation_id == bindparam("b_conversation"))
    .values(report_id=bindparam("b_report"), conversation_id=null())
)
_MINE = OUTBOX.c.conversation_id == bindparam("b_conversation")
_DONE = or_(OUTBOX.c.sent_at.is_not(None), OUTBOX.c.failed_at.is_not(None))
_DELETE_TRANSCRIPT = delete(TRANSCRIPT).where(TRANSCRIPT.c.conversation_id == bindparam("b_conversation"))
_DELETE_DELIVERED = delete(OUTBOX).where(_MINE, _DONE, OUTBOX.c.platform_ids_enc.is_(None))
_SCRUB_DELIVERED = update(OUTBOX).where(_MINE, _DONE).values(message_enc=bindparam("b_blank"))
_DETACH_UNSENT = update(OUTBOX).where(_MINE).values(conversation_id=null())
_DELETE_CONVERSATION = delete(CONVERSATION).where(CONVERSATION.c.id == bindparam("b_conversation"))
_FORGET_DELIVERED = delete(OUTBOX).where(
    OUTBOX.c.channel == bindparam("b_channel"),
    OUTBOX.c.chat_key == bindparam("b_chat"),
    OUTBOX.c.report_id.is_(None),
    _DONE,
)
_FORGET_MESSAGE_IDS = delete(CHAT_MESSAGE).where(
    CHAT_MESSAGE.c.channel == bindparam("b_channel"), CHAT_MESSAGE.c.chat_key == bindparam("b_chat")
)
_COUNT_EXPIRE = delete(SUBMISSION).where(SUBMISSION.c.window_start <= bindparam("b_before"))
_COUNT_FIND = select(SUBMISSION.c.id, SUBMISSION.c.count).where(
    SUBMISSION.c.sender_key == bindparam("b_sender")
)
_COUNT_INSERT = SUBMISSION.insert()
_COUNT_BUMP = update(SUBMISSION).where(SUBMISSION.c.id == bindparam("b_id"))


@dataclass(frozen=True)
class _Prepared:
    """A built statement compiled once for SQLite's driver: its SQL, and its parameters in order with
    each type's own conversion (as SQLAlchemy would apply it)."""

    sql: str
    names: tuple[str, ...]
    convert: tuple[Callable[[Any], Any] | None, ...]

    def args(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            v if f is None else f(v)
            for v, f in zip((values[n] for n in self.names), self.convert, strict=True)
        )


# By the statement's identity and the parameter names; the statement is kept with it, so that its id
# cannot be reused by another object. Only the statements built once below are passed.
_prepared: dict[tuple[int, frozenset[str]], tuple[Any, _Prepared | None]] = {}


def _prepare(stmt: Any, conn: Connection, keys: frozenset[str]) -> _Prepared | None:
    """The statement for the raw driver, or None where SQLAlchemy must run it itself: a column default
    computed in Python, or a returned column that needs converting."""
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=sorted(keys))
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.positiontup is None:
        return None
    if any(
        c.type.dialect_impl(dialect).result_processor(dialect, None) is not None
        for c in stmt.exported_columns
    ):
        return None
    names = tuple(compiled.positiontup)
    if not set(names) <= keys:
        return None
    # The dialect's own form of each type (SQLite's DATETIME writes its fixed text format; the generic
    # DateTime under a TypeDecorator would hand the driver an aware datetime to print as it likes).
    convert = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
    return _Prepared(compiled.string, names, convert)


def _rows(conn: Connection, stmt: Any, values: dict[str, Any]) -> list[Sequence[Any]]:
    """Run one built statement with one set of values and return its rows (if it returns any).

    On SQLite this skips SQLAlchemy's execution machinery (about 20 microseconds a statement against 3
    on the driver, most of a step's database cost): the statement is compiled once per set of parameter
    names and run on the driver's cursor in the same transaction. Elsewhere SQLAlchemy runs it.
    """
    if conn.dialect.name == "sqlite":
        key = (id(stmt), frozenset(values))
        if key not in _prepared:
            _prepared[key] = (stmt, _prepare(stmt, conn, key[1]))
        prepared = _prepared[key][1]
        if prepared is not None:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(prepared.sql, prepared.args(values))
                return list(cursor.fetchall())
            finally:
                cursor.close()
    result = conn.execute(stmt, values)
    return list(result) if result.returns_rows else []


def _insert_all(conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> list[Sequence[Any]]:
    """Insert rows in order and return what the statement returns for them, in the same order. On
    SQLite one driver call a row (cheaper there than SQLAlchemy's one statement for all); elsewhere one
    statement for all, so that PostgreSQL keeps a single round trip."""
    if conn.dialect.name == "sqlite":
        return [found for row in rows for found in _rows(conn, stmt, row)]
    if not rows:
        return []
    result = conn.execute(stmt, rows)
    return list(result) if result.returns_rows else []


def delivery_key(cipher: Cipher, channel: str, delivery_id: str) -> str:
    # A Twilio MessageSid leads back to the sender through Twilio's API: keep only a pseudonym of it.
    return cipher.pseudonym(f"delivery:{channel}", delivery_id)


def receipt_time(now: datetime) -> datetime:
    """The time a receipt keeps: the hour, not the moment. A receipt is found again from the delivery id
    (a Twilio MessageSid, which Twilio's API lists for the sender); an exact time would then match the
    transcript and `submitted_at` of an anonymous report to the microsecond. Rounded down, it still says
    when the receipt may be purged (it is kept 47 to 48 hours, see storage.maintenance)."""
    return now.replace(minute=0, second=0, microsecond=0)


def record_receipt(conn: Connection, cipher: Cipher, channel: str, delivery_id: str) -> bool:
    """Record a delivery id; False when it was recorded before (a repeat to ignore).

    On PostgreSQL a second worker inserting the same id waits on the unique index until the first
    commits (then it is a repeat) or rolls back (then it is recorded here).
    """
    values = {
        "channel": channel,
        "delivery_id": delivery_key(cipher, channel, delivery_id),
        "received_at": receipt_time(utcnow()),
    }
    return bool(_rows(conn, _RECEIPT_INSERT[conn.dialect.name], values))


def lock_conversation(conn: Connection, channel: str, chat_key: str) -> ConversationRow:
    """The chat's conversation row, created if missing, locked until the transaction ends.

    One `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`: SQLite is the only writer anyway (BEGIN
    IMMEDIATE); on PostgreSQL the statement either inserts or updates, atomically, and the updated row
    stays locked, so a second worker waits for this one's commit (and if that commit deleted the row, it
    inserts afresh). The no-op update changes nothing stored.
    """
    now = utcnow()
    values = {
        "channel": channel,
        "chat_key": chat_key,
        "step": "start",
        "locale": "en",
        "created_at": now,
        "updated_at": now,
    }
    (row,) = _rows(conn, _CONVERSATION_UPSERT[conn.dialect.name], values)
    return ConversationRow(int(row[0]), row[1])


def save_draft(
    conn: Connection, cipher: Cipher, conversation_id: int, draft: dict[str, Any], *, at: datetime
) -> None:
    """Store the draft encrypted; the step name stays in clear (it is not content)."""
    values = {
        "b_id": conversation_id,
        "draft_enc": cipher.encrypt_json(draft),
        "step": str(draft.get("step", "start"))[:64],
        "locale": str(draft.get("locale", "en"))[:16],
        "updated_at": at,  # the last message's time: retention counts from it
    }
    _rows(conn, _SAVE_DRAFT, values)


def delete_conversation(conn: Connection, cipher: Cipher, conversation_id: int) -> None:
    """Remove a conversation, its transcript and what it sent (its report keeps its own copy).

    Messages not yet delivered stay, detached, and are deleted once delivered (an outbox row that
    belongs to no conversation and no report does not outlive its delivery). Delivered messages go
    now, except that the platform ids of delivered ones are kept, with the text scrubbed, for the
    quick exit ("clear the chat") until purge removes them.
    """
    owner = {"b_conversation": conversation_id}
    _rows(conn, _DELETE_TRANSCRIPT, owner)
    _rows(conn, _DELETE_DELIVERED, owner)
    _rows(conn, _SCRUB_DELIVERED, {**owner, "b_blank": cipher.encrypt_json({"text": ""})})
    _rows(conn, _DETACH_UNSENT, owner)
    _rows(conn, _DELETE_CONVERSATION, owner)
    request_checkpoint(conn)  # the draft's old versions are in the WAL: see storage.db


def forget_chat(conn: Connection, channel: str, chat_key: str) -> int:
    """Delete every delivered message to this chat that no report keeps, and the kept ids of messages
    from it (for anonymous reports). Returns how many rows went."""
    chat = {"b_channel": channel, "b_chat": chat_key}
    result = conn.execute(_FORGET_DELIVERED, chat)
    kept = conn.execute(_FORGET_MESSAGE_IDS, chat)
    request_checkpoint(conn)
    return int(result.rowcount or 0) + int(kept.rowcount or 0)


def append_transcript(
    conn: Connection,
    cipher: Cipher,
    lines: Sequence[TranscriptLine],
    *,
    conversation_id: int | None = None,
    report_id: int | None = None,
) -> None:
    """Append lines, encrypted, after the last one of this conversation or report."""
    if not lines:
        return
    if conversation_id is not None:
        ((last,),) = _rows(conn, _LAST_SEQ_CONVERSATION, {"b_owner": conversation_id})
    else:
        ((last,),) = _rows(conn, _LAST_SEQ_REPORT, {"b_owner": report_id})
    seq = int(last or 0)
    rows = []
    for line in lines:
        seq += 1
        rows.append(
            {
                "conversation_id": conversation_id,
                "report_id": report_id,
                "seq": seq,
                "at": line.at,
                "direction": line.direction,
                "author": line.author,
                "text_enc": cipher.encrypt(line.text),
            }
        )
    _insert_all(conn, _TRANSCRIPT_INSERT, rows)


def create_report(
    conn: Connection,
    cipher: Cipher,
    *,
    reference: str,
    channel: str,
    clear: dict[str, Any],
    sealed: dict[str, Any],
    chat_key: str | None,
    reply_address: str | None,
    conversation_id: int | None,
    at: datetime,
    code_hash: str | None = None,
) -> int:
    """Store a report; move the conversation's transcript to it. `clear` holds codes only."""
    values = {
        "code_hash": code_hash,
        "reference": reference,
        "submitted_at": at,
        "channel": channel,
        "status": "new",
        "status_changed_at": None,
        "sealed_enc": cipher.encrypt_json(sealed),
        "staff_note_enc": None,
        "chat_key": chat_key,
        "reply_address_enc": cipher.encrypt(reply_address) if reply_address else None,
        "last_inbound_at": at if chat_key else None,
        **clear,
    }
    report_id = int(_rows(conn, _REPORT_INSERT, values)[0][0])
    if conversation_id is not None:
        _rows(conn, _TRANSCRIPT_TO_REPORT, {"b_conversation": conversation_id, "b_report": report_id})
    return report_id


def reference_exists(conn: Connection, reference: str) -> bool:
    """True when a report already has this reference."""
    return bool(_rows(conn, _REFERENCE_EXISTS, {"b_reference": reference}))


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


def report_status(conn: Connection, reference: str) -> ReportStatus | None:
    """The report with this reference (id, status, submitted time, its chat and code hash), if any."""
    row = conn.execute(
        select(
            REPORT.c.id,
            REPORT.c.reference,
            REPORT.c.status,
            REPORT.c.submitted_at,
            REPORT.c.channel,
            REPORT.c.chat_key,
            REPORT.c.code_hash,
        ).where(REPORT.c.reference == reference)
    ).first()
    return None if row is None else ReportStatus(int(row[0]), *row[1:])


GLOBAL_SCOPE = "all"  # the lookup_failure row that counts every chat's failures together


def locked_out(conn: Connection, scopes: Sequence[str], *, now: datetime) -> bool:
    """True while any of these scopes (a chat's pseudonym, GLOBAL_SCOPE) is locked out of look-ups."""
    found = conn.execute(
        select(LOOKUP.c.locked_until).where(
            LOOKUP.c.scope.in_(list(scopes)), LOOKUP.c.locked_until.is_not(None)
        )
    ).scalars()
    return any(_aware(until) > now for until in found)


def count_lookup_failure(
    conn: Connection, scope: str, *, now: datetime, limit: int, window: timedelta, lockout: timedelta
) -> bool:
    """Count one failed look-up for a scope; True when this failure starts a lockout (at `limit` failures
    in the window). Windows and lockouts that are over are deleted on the way (counts only, no history)."""
    conn.execute(
        delete(LOOKUP).where(
            LOOKUP.c.window_start <= now - window,
            or_(LOOKUP.c.locked_until.is_(None), LOOKUP.c.locked_until <= now),
        )
    )
    # One statement, so that two workers counting for the same scope at once both count (PostgreSQL
    # waits on the unique index instead of failing).
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    first = insert(LOOKUP).values(scope=scope, window_start=now, failures=1, locked_until=None)
    counted = first.on_conflict_do_update(
        index_elements=[LOOKUP.c.scope], set_={"failures": LOOKUP.c.failures + 1}
    ).returning(LOOKUP.c.failures)
    failures = int(conn.execute(counted).scalar_one())
    locks = failures == limit
    if locks:
        conn.execute(update(LOOKUP).where(LOOKUP.c.scope == scope).values(locked_until=now + lockout))
    return locks


def audit(conn: Connection, *, action: str, detail: str, count: int, at: datetime) -> None:
    """An audit event written by the service itself (actor "service"): counts and words, never content."""
    conn.execute(
        AUDIT.insert().values(
            at=at, actor="service", action=action, reference=None, count=count, detail=detail, refs=None
        )
    )


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def staff_replies(conn: Connection, cipher: Cipher, report_id: int) -> list[str]:
    """Texts staff sent to the reporter, oldest first."""
    rows = conn.execute(
        select(TRANSCRIPT.c.text_enc)
        .where(TRANSCRIPT.c.report_id == report_id, TRANSCRIPT.c.author == "staff")
        .order_by(TRANSCRIPT.c.seq)
    )
    return [cipher.decrypt(token) for (token,) in rows]


def count_submission(
    conn: Connection, sender_key: str, *, at: datetime, limit: int, window: timedelta
) -> bool:
    """Count one more report for this sender in the current window; False (nothing counted) when
    the sender already reached `limit`. Windows older than `window` are deleted on the way."""
    start = at - timedelta(minutes=at.minute % 10, seconds=at.second, microseconds=at.microsecond)
    _rows(conn, _COUNT_EXPIRE, {"b_before": at - window})
    found = _rows(conn, _COUNT_FIND, {"b_sender": sender_key})
    if not found:
        _rows(conn, _COUNT_INSERT, {"sender_key": sender_key, "window_start": start, "count": 1})
        return True
    row_id, count = found[0]
    if count >= limit:
        return False
    _rows(conn, _COUNT_BUMP, {"b_id": row_id, "count": count + 1})
    return True


def enqueue(
    conn: Connection,
    cipher: Cipher,
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
    now = at or utcnow()
    address_enc = cipher.encrypt(address)
    rows = [
        {
            "channel": channel,
            "chat_key": chat_key,
            "address_enc": address_enc,
            "message_enc": cipher.encrypt_json(message),
            "conversation_id": conversation_id,
            "report_id": report_id,
            "created_at": now,
            "attempts": 0,
            "next_attempt_at": now,
        }
        for message in messages
    ]
    return [int(found[0]) for found in _insert_all(conn, _OUTBOX_INSERT, rows)]


def remember_message(
    conn: Connection, cipher: Cipher, channel: str, chat_key: str, ref: str, *, at: datetime
) -> None:
    """Keep the platform id of a message the person sent (encrypted), for quick exit."""
    values = {"channel": channel, "chat_key": chat_key, "at": at, "ref_enc": cipher.encrypt(ref)}
    _rows(conn, _CHAT_MESSAGE_INSERT, values)


# -- outbox delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """An outbox message claimed for delivery, decrypted."""

    id: int
    channel: str
    chat_key: str
    address: str
    message: dict[str, Any]
    attempts: int
    conversation_id: int | None
    report_id: int | None


_CLAIM_UPDATE = update(OUTBOX).where(OUTBOX.c.id == bindparam("b_id"))


def claim_due(
    conn: Connection, cipher: Cipher, channel: str, *, now: datetime, lease: timedelta, limit: int = 100
) -> list[Pending]:
    """Claim due messages: the oldest unsent one of each chat, so that each chat keeps its order.

    Only a chat's oldest unsent message can be claimed, and only when it is due; a claim pushes
    next_attempt_at forward by `lease`, so no worker takes the chat's next message, nor this one
    again, while it is being delivered. A worker that dies leaves it to be retried after the lease.
    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets two workers claim at once without waiting on or
    taking each other's rows, and the conditions are checked again on the row it locks, so a
    message another worker has just claimed or sent is passed over.
    """
    unsent = (OUTBOX.c.channel == channel, OUTBOX.c.sent_at.is_(None), OUTBOX.c.failed_at.is_(None))
    # Unsent messages in order (ix_outbox_unsent), each kept only if it is the oldest unsent one of its
    # chat (looked up in ix_outbox_unsent_chat): no grouping of the whole queue.
    earlier = OUTBOX.alias("earlier")
    oldest_of_chat = (
        select(func.min(earlier.c.id))
        .where(
            earlier.c.channel == OUTBOX.c.channel,
            earlier.c.chat_key == OUTBOX.c.chat_key,
            earlier.c.sent_at.is_(None),
            earlier.c.failed_at.is_(None),
        )
        .scalar_subquery()
    )
    query = (
        select(
            OUTBOX.c.id,
            OUTBOX.c.channel,
            OUTBOX.c.chat_key,
            OUTBOX.c.address_enc,
            OUTBOX.c.message_enc,
            OUTBOX.c.attempts,
            OUTBOX.c.conversation_id,
            OUTBOX.c.report_id,
        )
        .where(*unsent, OUTBOX.c.next_attempt_at <= now, OUTBOX.c.id == oldest_of_chat)
        .order_by(OUTBOX.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = conn.execute(query).all()
    if not rows:
        return []
    until = now + lease
    conn.execute(
        _CLAIM_UPDATE,
        [{"b_id": row.id, "attempts": row.attempts + 1, "next_attempt_at": until} for row in rows],
    )
    return [
        Pending(
            id=int(row.id),
            channel=row.channel,
            chat_key=row.chat_key,
            address=cipher.decrypt(row.address_enc),
            message=cipher.decrypt_json(row.message_enc),
            attempts=row.attempts + 1,
            conversation_id=row.conversation_id,
            report_id=row.report_id,
        )
        for row in rows
    ]


def _unsent(channel: str) -> tuple[Any, ...]:
    return (OUTBOX.c.channel == channel, OUTBOX.c.sent_at.is_(None), OUTBOX.c.failed_at.is_(None))


def _due(now: datetime, fresh_before: datetime) -> Any:
    """Due now: its next attempt has come, and a message never tried is old enough (a webhook may
    still be delivering a fresh one in its response; a message already tried is not left waiting)."""
    return and_(
        OUTBOX.c.next_attempt_at <= now,
        or_(OUTBOX.c.attempts > 0, OUTBOX.c.created_at <= fresh_before),
    )


def due_messages(
    conn: Connection,
    channel: str,
    *,
    now: datetime,
    fresh_before: datetime | None = None,
    limit: int = 100,
    chat_key: str | None = None,
) -> list[int]:
    """Ids of the messages to try now, oldest first: each chat's oldest unsent message, when it is due.
    Nothing is claimed here (see claim_one).

    A chat's oldest unsent message stays its oldest until it is sent or failed (later messages have
    larger ids), so an id read here can still be claimed in its turn without breaking the chat's order.
    """
    earlier = OUTBOX.alias("earlier")
    oldest_of_chat = (
        select(func.min(earlier.c.id))
        .where(
            earlier.c.channel == OUTBOX.c.channel,
            earlier.c.chat_key == OUTBOX.c.chat_key,
            earlier.c.sent_at.is_(None),
            earlier.c.failed_at.is_(None),
        )
        .scalar_subquery()
    )
    query = (
        select(OUTBOX.c.id)
        .where(*_unsent(channel), _due(now, fresh_before or now), OUTBOX.c.id == oldest_of_chat)
        .order_by(OUTBOX.c.id)
        .limit(limit)
    )
    if chat_key is not None:
        query = query.where(OUTBOX.c.chat_key == chat_key)
    return [int(row[0]) for row in conn.execute(query)]


# Why claim_one did not hand over a message: someone else has it (or it is done, or not due yet), or
# it was marked failed on the way (its attempts are used up, or it cannot be read).
TAKEN = "taken"
ATTEMPTS_EXHAUSTED = "attempts_exhausted"
UNREADABLE = "unreadable"


def claim_one(
    conn: Connection,
    cipher: Cipher,
    msg_id: int,
    *,
    now: datetime,
    lease: timedelta,
    max_attempts: int,
    fresh_before: datetime | None = None,
) -> Pending | str:
    """Claim one message for one send: counts the attempt and leases it for `lease` (no other worker,
    nor this one, takes it or its chat's next message meanwhile). Returns the message, or why not.

    A message whose attempts are used up is marked failed instead (so the limit also holds for
    messages whose sender crashed or raised before any result was written), and so is one that does
    not decrypt; both are audited by reason, never by content or id.
    """
    query = select(
        OUTBOX.c.id,
        OUTBOX.c.channel,
        OUTBOX.c.chat_key,
        OUTBOX.c.address_enc,
        OUTBOX.c.message_enc,
        OUTBOX.c.attempts,
        OUTBOX.c.conversation_id,
        OUTBOX.c.report_id,
    ).where(
        OUTBOX.c.id == msg_id,
        OUTBOX.c.sent_at.is_(None),
        OUTBOX.c.failed_at.is_(None),
        _due(now, fresh_before or now),
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # another worker claiming it now: it is theirs
    row = conn.execute(query).first()
    if row is None:
        return TAKEN
    if row.attempts >= max_attempts:
        fail_for_good(conn, msg_id, channel=row.channel, at=now, reason=ATTEMPTS_EXHAUSTED)
        return ATTEMPTS_EXHAUSTED
    try:
        pending = Pending(
            id=int(row.id),
            channel=row.channel,
            chat_key=row.chat_key,
            address=cipher.decrypt(row.address_enc),
            message=cipher.decrypt_json(row.message_enc),
            attempts=row.attempts + 1,
            conversation_id=row.conversation_id,
            report_id=row.report_id,
        )
    except (DecryptError, ValueError):
        fail_for_good(conn, msg_id, channel=row.channel, at=now, reason=UNREADABLE)
        return UNREADABLE
    # last_error is cleared while the message is in flight: a row leased and without an error is being
    # sent now (or its sender died); one with an error waits for its retry.
    conn.execute(
        _CLAIM_UPDATE,
        {"b_id": msg_id, "attempts": row.attempts + 1, "next_attempt_at": now + lease, "last_error": None},
    )
    return pending


def fail_for_good(conn: Connection, msg_id: int, *, channel: str, at: datetime, reason: str) -> None:
    """Mark a message failed (see mark_failed) and audit it: the channel and the reason, nothing else."""
    mark_failed(conn, msg_id, at=at, error=reason)
    conn.execute(
        AUDIT.insert().values(
            at=at,
            actor="delivery",
            action="delivery-failed",
            count=1,
            detail=f"channel={channel}; reason={reason}"[:500],
        )
    )


def _orphan() -> tuple[Any, ...]:
    """Conditions of an outbox row that belongs to no conversation and no report."""
    return (OUTBOX.c.conversation_id.is_(None), OUTBOX.c.report_id.is_(None))


def mark_sent(
    conn: Connection, cipher: Cipher, ids: Sequence[int], *, at: datetime, platform_ids: Sequence[str] = ()
) -> None:
    """Record delivery (and the platform's message ids, encrypted, for quick exit).

    A message that belongs to no conversation and no report (the last words of an erased draft or
    of an anonymous report) is deleted instead: once delivered, nothing of it stays.
    """
    ids = list(ids)
    if conn.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(ids), *_orphan())).rowcount:
        request_checkpoint(conn)
    values: dict[str, Any] = {"sent_at": at, "last_error": None}
    if platform_ids:
        values["platform_ids_enc"] = cipher.encrypt_json(list(platform_ids))
    conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(**values))


def mark_retry(
    conn: Connection, msg_id: int, *, at: datetime, error: str, attempts: int | None = None
) -> None:
    """Try again at a later time; `attempts` sets the count back (a try that did not count)."""
    values: dict[str, Any] = {"next_attempt_at": at, "last_error": error[:200]}
    if attempts is not None:
        values["attempts"] = attempts
    conn.execute(update(OUTBOX).where(OUTBOX.c.id == msg_id).values(**values))


def mark_failed(conn: Connection, msg_id: int, *, at: datetime, error: str) -> None:
    """Give up on a message the platform will never accept (an orphan is deleted, see mark_sent)."""
    if conn.execute(delete(OUTBOX).where(OUTBOX.c.id == msg_id, *_orphan())).rowcount:
        request_checkpoint(conn)
    conn.execute(update(OUTBOX).where(OUTBOX.c.id == msg_id).values(failed_at=at, last_error=error[:200]))
