"""The writes and reads of the application's step, synchronous and in Core statements (no ORM unit of work).

Each function runs on a sync `Connection` inside a transaction the caller opened and never commits. They
are the hot path: one message costs a handful of statements here. On a SQLite file storage.db runs the
step on its writer thread over the `sqlite3` driver (group commit); on PostgreSQL through
`AsyncConnection.run_sync`: one implementation for both (the differences are in storage.dialect).

`SqlStepStore` at the end is the implementation of storage.interface.StepStore the application uses;
`record_step` writes everything one step decided. Values arrive in clear and leave encrypted: what is
kept in clear (codes for counting) and what is sealed is decided here (`seal_report`), not by the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
    update,
)

from storage import chatpage, dialect, kept, models, outbox
from storage.crypto import Cipher
from storage.fetches import add_fetches, forget_fetches
from storage.interface import (
    Chat,
    ChatPage,
    Lockout,
    NewReport,
    OpenConversation,
    ReplyClaim,
    ReportStatus,
    StaffAnswer,
    StepWrite,
    TranscriptLine,
)

CONVERSATION: Table = models.Conversation.__table__  # type: ignore[attr-defined]
RECEIPT: Table = models.InboundReceipt.__table__  # type: ignore[attr-defined]
REPORT: Table = models.Report.__table__  # type: ignore[attr-defined]
TRANSCRIPT: Table = models.TranscriptEntry.__table__  # type: ignore[attr-defined]
OUTBOX: Table = models.OutboxMessage.__table__  # type: ignore[attr-defined]
SUBMISSION: Table = models.SubmissionCount.__table__  # type: ignore[attr-defined]
LOOKUP: Table = models.LookupFailure.__table__  # type: ignore[attr-defined]
AUDIT: Table = models.AuditEvent.__table__  # type: ignore[attr-defined]


# The statements of every step, built once (building a statement costs more than running it on SQLite).
# Values come as parameters; the SET clause of an UPDATE from the parameters named after columns.


def _receipt_insert(name: str) -> Any:
    return dialect.insert(name, RECEIPT).on_conflict_do_nothing().returning(RECEIPT.c.id)


def _conversation_upsert(name: str) -> Any:
    stmt = dialect.insert(name, CONVERSATION)
    return stmt.on_conflict_do_update(
        index_elements=[CONVERSATION.c.channel, CONVERSATION.c.chat_key],
        set_={"chat_key": stmt.excluded.chat_key},
    ).returning(CONVERSATION.c.id, CONVERSATION.c.draft_enc)


_RECEIPT_INSERT = dialect.per_dialect(_receipt_insert)
_CONVERSATION_UPSERT = dialect.per_dialect(_conversation_upsert)
_SAVE_DRAFT = update(CONVERSATION).where(CONVERSATION.c.id == bindparam("b_id"))
_LAST_SEQ_CONVERSATION = select(func.max(TRANSCRIPT.c.seq)).where(
    TRANSCRIPT.c.conversation_id == bindparam("b_owner")
)
_LAST_SEQ_REPORT = select(func.max(TRANSCRIPT.c.seq)).where(TRANSCRIPT.c.report_id == bindparam("b_owner"))
_TRANSCRIPT_INSERT = TRANSCRIPT.insert()
_OUTBOX_INSERT = OUTBOX.insert().returning(OUTBOX.c.id, sort_by_parameter_order=True)
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
_COUNT_EXPIRE = delete(SUBMISSION).where(SUBMISSION.c.window_start <= bindparam("b_before"))
_COUNT_FIND = select(SUBMISSION.c.id, SUBMISSION.c.count).where(
    SUBMISSION.c.sender_key == bindparam("b_sender")
)
_COUNT_INSERT = SUBMISSION.insert()
_COUNT_BUMP = update(SUBMISSION).where(SUBMISSION.c.id == bindparam("b_id"))


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
        "received_at": receipt_time(models.utcnow()),
    }
    return bool(dialect.rows(conn, _RECEIPT_INSERT[conn.dialect.name], values))


def open_conversation(conn: Connection, cipher: Cipher, channel: str, chat_key: str) -> OpenConversation:
    """The chat's conversation row, created if missing, locked until the transaction ends.

    One `INSERT ... ON CONFLICT DO UPDATE ... RETURNING`: SQLite is the only writer anyway (BEGIN
    IMMEDIATE); on PostgreSQL the statement either inserts or updates, atomically, and the updated row
    stays locked, so a second worker waits for this one's commit (and if that commit deleted the row, it
    inserts afresh). The no-op update changes nothing stored.
    """
    now = models.utcnow()
    values = {
        "channel": channel,
        "chat_key": chat_key,
        "step": "start",
        "locale": "en",
        "created_at": now,
        "updated_at": now,
    }
    ((conversation_id, token),) = dialect.rows(conn, _CONVERSATION_UPSERT[conn.dialect.name], values)
    draft = None if token is None else cipher.decrypt_json(token)
    return OpenConversation(int(conversation_id), draft if isinstance(draft, dict) else None)


def save_draft(
    conn: Connection, cipher: Cipher, conversation_id: int, draft: dict[str, Any], *, at: datetime
) -> None:
    """Store the draft encrypted; the step name stays in clear (it is not content)."""
    dialect.rows(conn, _SAVE_DRAFT, {"b_id": conversation_id, **_draft_values(cipher, draft, at=at)})


def _draft_values(cipher: Cipher, draft: dict[str, Any], *, at: datetime) -> dict[str, Any]:
    return {
        "draft_enc": cipher.encrypt_json(draft),
        "step": str(draft.get("step", "start"))[:64],
        "locale": str(draft.get("locale", "en"))[:16],
        "updated_at": at,  # the last message's time: retention counts from it
    }


def delete_conversation(conn: Connection, cipher: Cipher, conversation_id: int) -> None:
    """Remove a conversation, its transcript and what it sent (its report keeps its own copy).

    Messages not yet delivered stay, detached, and are deleted once delivered (an outbox row that
    belongs to no conversation and no report does not outlive its delivery). Delivered messages go
    now, except that the platform ids of delivered ones are kept, with the text scrubbed, for the
    quick exit ("clear the chat") until purge removes them.
    """
    owner = {"b_conversation": conversation_id}
    dialect.rows(conn, _DELETE_TRANSCRIPT, owner)
    dialect.rows(conn, _DELETE_DELIVERED, owner)
    dialect.rows(conn, _SCRUB_DELIVERED, {**owner, "b_blank": cipher.encrypt_json({"text": ""})})
    dialect.rows(conn, _DETACH_UNSENT, owner)
    dialect.rows(conn, _DELETE_CONVERSATION, owner)
    dialect.request_checkpoint(conn)  # the draft's old versions are in the WAL: see storage.db


def forget_chat(conn: Connection, channel: str, chat_key: str) -> int:
    """Delete every delivered message to this chat that no report keeps (for anonymous reports). Returns
    how many rows went. The platform ids kept for quick exit stay (storage.kept: under the chat's
    pseudonym and the hour only, nothing that names the report), so that `exit` can still clear the
    chat on the person's phone for as long as the platform allows."""
    result = conn.execute(_FORGET_DELIVERED, {"b_channel": channel, "b_chat": chat_key})
    dialect.request_checkpoint(conn)
    return int(result.rowcount or 0)


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
        ((last,),) = dialect.rows(conn, _LAST_SEQ_CONVERSATION, {"b_owner": conversation_id})
    else:
        ((last,),) = dialect.rows(conn, _LAST_SEQ_REPORT, {"b_owner": report_id})
    seq = int(last or 0)
    rows = [
        _line_values(cipher, line, conversation_id=conversation_id, report_id=report_id, seq=seq + i)
        for i, line in enumerate(lines, 1)
    ]
    dialect.insert_all(conn, _TRANSCRIPT_INSERT, rows)


def _line_values(
    cipher: Cipher, line: TranscriptLine, *, conversation_id: int | None, report_id: int | None, seq: int
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "report_id": report_id,
        "seq": seq,
        "at": line.at,
        "direction": line.direction,
        "author": line.author,
        "text_enc": cipher.encrypt(line.text),
    }


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
    report_id = int(dialect.rows(conn, _REPORT_INSERT, values)[0][0])
    if conversation_id is not None:
        dialect.rows(conn, _TRANSCRIPT_TO_REPORT, {"b_conversation": conversation_id, "b_report": report_id})
    return report_id


def reference_exists(conn: Connection, reference: str) -> bool:
    """True when a report already has this reference."""
    return bool(dialect.rows(conn, _REFERENCE_EXISTS, {"b_reference": reference}))


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


def report_answers(conn: Connection, cipher: Cipher, reference: str) -> dict[str, Any] | None:
    """What a report in a series may lend to the next one: its role and partners (in clear) and its sealed
    answers (organisation, who did it, contact), decrypted. Only after the person proved it is theirs."""
    row = conn.execute(
        select(REPORT.c.role, REPORT.c.share_with, REPORT.c.anonymous, REPORT.c.sealed_enc).where(
            REPORT.c.reference == reference
        )
    ).first()
    if row is None:
        return None
    sealed = cipher.decrypt_json(row[3])
    answers: dict[str, Any] = dict(sealed) if isinstance(sealed, dict) else {}
    answers.update(role=row[0], share_with=list(row[1] or []), anonymous=bool(row[2]))
    return answers


def last_report_in_chat(conn: Connection, channel: str, chat_key: str) -> str | None:
    """The reference of the newest report that asked for contact in this chat, if any."""
    found = conn.execute(
        select(REPORT.c.reference)
        .where(REPORT.c.channel == channel, REPORT.c.chat_key == chat_key)
        .order_by(REPORT.c.submitted_at.desc(), REPORT.c.id.desc())
        .limit(1)
    ).scalar()
    return None if found is None else str(found)


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
    first = dialect.insert(conn.dialect.name, LOOKUP).values(
        scope=scope, window_start=now, failures=1, locked_until=None
    )
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
    dialect.rows(conn, _COUNT_EXPIRE, {"b_before": at - window})
    found = dialect.rows(conn, _COUNT_FIND, {"b_sender": sender_key})
    if not found:
        dialect.rows(conn, _COUNT_INSERT, {"sender_key": sender_key, "window_start": start, "count": 1})
        return True
    row_id, count = found[0]
    if count >= limit:
        return False
    dialect.rows(conn, _COUNT_BUMP, {"b_id": row_id, "count": count + 1})
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
    priority: int = 0,
) -> list[int]:
    """Put messages in the outbox, in order; returns their ids. `priority` 1 is a staff follow-up, which
    goes after every conversation's replies (storage.outbox.due_messages)."""
    rows = _outbox_rows(
        cipher,
        channel=channel,
        chat_key=chat_key,
        address=address,
        messages=messages,
        conversation_id=conversation_id,
        report_id=report_id,
        at=at or models.utcnow(),
        priority=priority,
    )
    return [int(found[0]) for found in dialect.insert_all(conn, _OUTBOX_INSERT, rows)]


def _outbox_rows(
    cipher: Cipher,
    *,
    channel: str,
    chat_key: str,
    address: str,
    messages: Iterable[dict[str, Any]],
    conversation_id: int | None,
    report_id: int | None,
    at: datetime,
    priority: int,
) -> list[dict[str, Any]]:
    address_enc = cipher.encrypt(address)
    return [
        {
            "channel": channel,
            "chat_key": chat_key,
            "address_enc": address_enc,
            "message_enc": cipher.encrypt_json(message),
            "conversation_id": conversation_id,
            "report_id": report_id,
            "created_at": at,
            "attempts": 0,
            "next_attempt_at": at,
            "priority": priority,
        }
        for message in messages
    ]


def remember_message(
    conn: Connection, cipher: Cipher, channel: str, chat_key: str, ref: str, *, at: datetime
) -> None:
    """Keep the platform id of a message the person sent (encrypted, under the chat's quick-exit
    pseudonym `chat_key` (storage.kept.exit_key) and the hour only), for quick exit (storage.kept)."""
    kept.keep(conn, cipher, channel, chat_key, [ref], at=at)


# -- what a report keeps in clear, what it seals -----------------------------------------------------

# Codes kept in clear for counting: nothing here identifies anyone or repeats what they typed.
CLEAR_FIELDS = (
    "role",
    "incident_types",
    "motivations",
    "occurred_on",
    "repeat",
    "support_requested",
    "anonymous",
    "share_with",
    "linked_to",
    "language",
)
_LISTS = ("incident_types", "motivations", "share_with")
_CONTACT = ("name", "phone", "email", "in_chat", "safe_times", "notes", "by", "leave_message", "no_calls")
_SEALED_TEXT = ("someone_else_knows", "description", "occurred_at_text", "offender", "injuries", "witnesses")


def seal_report(answers: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A submitted report's answers split into (the codes kept in clear, everything a person typed or
    that could identify them, to be stored encrypted). An anonymous report keeps no contact details."""
    clear = {name: answers.get(name) for name in CLEAR_FIELDS}
    for name in _LISTS:
        clear[name] = list(clear[name] or ())
    clear["language"] = str(clear["language"] or "en")[:16]
    sealed = {name: answers.get(name) for name in _SEALED_TEXT}
    sealed["organisation"] = answers.get("organisation")
    sealed["location"] = {
        "text": answers.get("location_text"),
        "latitude": answers.get("latitude"),
        "longitude": answers.get("longitude"),
    }
    sealed["evidence"] = [
        {"ref": item["ref"], "content_type": item.get("content_type")} for item in answers.get("evidence", ())
    ]
    sealed["contact"] = _sealed_contact(answers)
    # The order the sealed JSON has always had (a stored value compared across versions stays the same).
    order = ("organisation", *_SEALED_TEXT[:3], "location", *_SEALED_TEXT[3:], "evidence", "contact")
    kept = {name: sealed[name] for name in order}
    if answers.get("helper_agreed") or answers.get("helper_contact"):  # someone helping another to report
        kept["helper"] = {"agreed": answers.get("helper_agreed"), "contact": answers.get("helper_contact")}
    return clear, kept


def _sealed_contact(answers: Mapping[str, Any]) -> dict[str, Any] | None:
    """The contact details to seal: none for an anonymous report, whatever it carried."""
    given = answers.get("contact")
    if given is None or answers.get("anonymous", True):
        return None
    return {name: given.get(name) for name in _CONTACT}


# -- one step's writes --------------------------------------------------------------------------------


def record_step(conn: Connection, cipher: Cipher, write: StepWrite) -> list[int]:
    """Write everything one step decided (see storage.interface.StepWrite); the outbox ids, in order.

    A submitted report takes over the conversation's transcript, then the conversation goes; an
    anonymous report also takes what the chat was sent with it (storage.writes.forget_chat; the ids kept
    for quick exit stay, see storage.kept), and this
    step's replies belong to nothing, so they are deleted once delivered. An erased conversation keeps no
    transcript, so no line is written for it.
    """
    chat = write.chat
    if conn.dialect.driver == "asyncpg" and _goes_on(write):
        return _record_in_one(conn, cipher, write)
    _keep_ids(conn, cipher, write)
    add_fetches(conn, cipher, chat.channel, write.fetches, at=write.at)
    forget_fetches(conn, write.dropped)
    report = write.report
    report_id = _submit(conn, cipher, write, report) if report is not None else None
    conversation_id = _end_or_save(conn, cipher, write)
    # Both sides in one append (one round trip): after the lines the report took over, or on the
    # conversation.
    if report_id is not None:
        append_transcript(conn, cipher, write.lines, report_id=report_id)
    elif conversation_id is not None:
        append_transcript(conn, cipher, write.lines, conversation_id=conversation_id)
    in_chat = report_id if report is not None and report.in_chat else None
    return _enqueue_to(conn, cipher, chat, write.messages, conversation_id, in_chat, at=write.at)


def _keep_ids(conn: Connection, cipher: Cipher, write: StepWrite) -> None:
    """The person's message id kept for quick exit, or the mark that ids were not kept."""
    if write.message_ref is None and not write.ids_dropped:
        return
    chat = write.chat
    exit_key = kept.exit_key(cipher, chat.channel, chat.address)
    if write.message_ref is not None:
        remember_message(conn, cipher, chat.channel, exit_key, write.message_ref, at=write.at)
    if write.ids_dropped:
        kept.mark_older(conn, cipher, chat.channel, exit_key, at=write.at)


# -- PostgreSQL: a step whose conversation goes on, in one statement -------------------------------------
#
# Most steps answer and go on: the person's message id kept, the draft saved, transcript lines and replies
# added. On PostgreSQL each statement is a round trip (and a worker's CPU for it), so these four go as one
# statement of data-modifying CTEs, run in the same transaction: the same rows, with the same values, as
# the statements above write (tests/storage/test_step_write.py compares them). The transcript's next
# numbers come from the same statement's snapshot, which holds the conversation locked (open_conversation)
# so no other step of the chat adds lines in between.


def _goes_on(write: StepWrite) -> bool:
    """A step of a conversation that goes on, with nothing but the common writes (see above)."""
    others = write.ended or write.report is not None or write.ids_dropped or write.fetches or write.dropped
    small = max(len(write.lines), len(write.messages)) <= dialect.MULTI_MAX
    return write.conversation_id is not None and not others and small


def _record_in_one(conn: Connection, cipher: Cipher, write: StepWrite) -> list[int]:
    conversation_id = write.conversation_id
    assert conversation_id is not None
    values: dict[str, Any] = {"b_id": conversation_id}
    kept_row = _kept_values(cipher, write)
    values.update(kept_row)
    if write.draft is not None:
        values.update({f"d_{k}": v for k, v in _draft_values(cipher, write.draft, at=write.at).items()})
    for i, line in enumerate(write.lines):
        line_values = _line_values(cipher, line, conversation_id=conversation_id, report_id=None, seq=0)
        values.update({f"l_{k}__{i}": line_values[k] for k in _LINE_KEYS})
    messages = _outbox_rows(
        cipher,
        channel=write.chat.channel,
        chat_key=write.chat.chat_key,
        address=write.chat.address,
        messages=write.messages,
        conversation_id=conversation_id,
        report_id=None,
        at=write.at,
        priority=0,
    )
    for i, message in enumerate(messages):
        values.update({f"o_{k}__{i}": v for k, v in message.items()})
    stmt = _in_one(bool(kept_row), write.draft is not None, len(write.lines), len(messages))
    found = dialect.rows(conn, stmt, values)
    return [int(r[0]) for r in found] if messages else []


def _kept_values(cipher: Cipher, write: StepWrite) -> dict[str, Any]:
    """The parameters of the kept message id (none without one)."""
    if write.message_ref is None:
        return {}
    chat = write.chat
    exit_key = kept.exit_key(cipher, chat.channel, chat.address)
    row = kept.row(cipher, chat.channel, exit_key, write.message_ref, at=write.at)
    return {f"k_{k}": v for k, v in row.items()}


_LINE_KEYS = ("at", "direction", "author", "text_enc")
_OUTBOX_KEYS = (
    "channel",
    "chat_key",
    "address_enc",
    "message_enc",
    "conversation_id",
    "report_id",
    "created_at",
    "attempts",
    "next_attempt_at",
    "priority",
)
_DRAFT_KEYS = ("draft_enc", "step", "locale", "updated_at")
_one_statement: dict[tuple[bool, bool, int, int], Any] = {}


def _in_one(keep: bool, draft: bool, lines: int, messages: int) -> Any:
    """The one statement for a shape of step (built once a shape): kept message id, draft, lines, replies."""
    shape = (keep, draft, lines, messages)
    found = _one_statement.get(shape)
    if found is None:
        conversation = bindparam("b_id", type_=CONVERSATION.c.id.type)
        ctes = [
            *([_keep_cte()] if keep else []),
            *([_draft_cte(conversation)] if draft else []),
            *([_lines_cte(conversation, lines)] if lines else []),
        ]
        found = _one_statement[shape] = _replies_select(messages).add_cte(*ctes)
    return found


def _keep_cte() -> Any:
    table = kept.CHAT_MESSAGE
    keep = table.insert().values({k: bindparam(f"k_{k}", type_=table.c[k].type) for k in kept.ROW_KEYS})
    return keep.cte("kept")


def _draft_cte(conversation: Any) -> Any:
    saved = (
        update(CONVERSATION)
        .where(CONVERSATION.c.id == conversation)
        .values({k: bindparam(f"d_{k}", type_=CONVERSATION.c[k].type) for k in _DRAFT_KEYS})
    )
    return saved.cte("draft")


def _lines_cte(conversation: Any, lines: int) -> Any:
    """The lines numbered after the conversation's last (the `last` CTE comes with it)."""
    last = (
        select(func.coalesce(func.max(TRANSCRIPT.c.seq), 0).label("seq"))
        .where(TRANSCRIPT.c.conversation_id == conversation)
        .cte("last")
    )
    each = [
        select(
            conversation,
            last.c.seq + (i + 1),
            *(bindparam(f"l_{k}__{i}", type_=TRANSCRIPT.c[k].type) for k in _LINE_KEYS),
        )
        for i in range(lines)
    ]
    added = TRANSCRIPT.insert().from_select(
        ["conversation_id", "seq", *_LINE_KEYS], each[0] if lines == 1 else union_all(*each)
    )
    return added.cte("lines")


def _replies_select(messages: int) -> Any:
    """The replies inserted, their ids in order (serial ids follow the VALUES order)."""
    if not messages:
        return select(literal(0))
    rows = [
        {k: bindparam(f"o_{k}__{i}", type_=OUTBOX.c[k].type) for k in _OUTBOX_KEYS} for i in range(messages)
    ]
    sent = OUTBOX.insert().values(rows).returning(OUTBOX.c.id).cte("sent")
    return select(sent.c.id).order_by(sent.c.id)


def _enqueue_to(
    conn: Connection,
    cipher: Cipher,
    chat: Chat,
    messages: Sequence[dict[str, Any]],
    conversation_id: int | None,
    report_id: int | None,
    *,
    at: datetime,
) -> list[int]:
    """`enqueue` for one chat of the interface (its channel, key and address)."""
    return enqueue(
        conn,
        cipher,
        channel=chat.channel,
        chat_key=chat.chat_key,
        address=chat.address,
        messages=messages,
        conversation_id=conversation_id,
        report_id=report_id,
        at=at,
    )


def _end_or_save(conn: Connection, cipher: Cipher, write: StepWrite) -> int | None:
    """End the conversation or save its draft; the conversation that goes on (None when it ended)."""
    conversation_id = write.conversation_id
    if conversation_id is None:
        return None
    if not write.ended:
        if write.draft is not None:
            save_draft(conn, cipher, conversation_id, write.draft, at=write.at)
        return conversation_id
    delete_conversation(conn, cipher, conversation_id)
    if write.report is not None and not write.report.in_chat:
        forget_chat(conn, write.chat.channel, write.chat.chat_key)
    return None


def _submit(conn: Connection, cipher: Cipher, write: StepWrite, report: NewReport) -> int:
    clear, sealed = seal_report(report.answers)
    return create_report(
        conn,
        cipher,
        reference=report.reference,
        channel=write.chat.channel,
        clear=clear,
        sealed=sealed,
        chat_key=write.chat.chat_key if report.in_chat else None,
        reply_address=write.chat.address if report.in_chat else None,
        conversation_id=write.conversation_id,
        at=write.at,
        code_hash=report.code_hash,
    )


class SqlStepStore:
    """storage.interface.StepStore on SQLite or PostgreSQL, for one deployment (one cipher)."""

    def __init__(self, cipher: Cipher) -> None:
        self.cipher = cipher

    def record_receipt(self, conn: Connection, channel: str, delivery_id: str) -> bool:
        return record_receipt(conn, self.cipher, channel, delivery_id)

    def open_conversation(self, conn: Connection, channel: str, chat_key: str) -> OpenConversation:
        return open_conversation(conn, self.cipher, channel, chat_key)

    def reference_exists(self, conn: Connection, reference: str) -> bool:
        return reference_exists(conn, reference)

    def claim_fresh(self, conn: Connection, ids: Sequence[int], chat: Chat, claim: ReplyClaim) -> bool:
        return outbox.claim_fresh(conn, ids, chat, claim)

    def count_submission(
        self, conn: Connection, sender_key: str, *, at: datetime, limit: int, window: timedelta
    ) -> bool:
        return count_submission(conn, sender_key, at=at, limit=limit, window=window)

    def report_status(self, conn: Connection, reference: str) -> ReportStatus | None:
        return report_status(conn, reference)

    def staff_replies(self, conn: Connection, report_id: int) -> list[str]:
        return staff_replies(conn, self.cipher, report_id)

    def report_answers(self, conn: Connection, reference: str) -> dict[str, Any] | None:
        return report_answers(conn, self.cipher, reference)

    def last_report_in_chat(self, conn: Connection, channel: str, chat_key: str) -> str | None:
        return last_report_in_chat(conn, channel, chat_key)

    def locked_out(self, conn: Connection, scopes: Sequence[str], *, now: datetime) -> bool:
        return locked_out(conn, scopes, now=now)

    def count_lookup_failure(self, conn: Connection, scope: str, rule: Lockout, *, now: datetime) -> bool:
        return count_lookup_failure(
            conn, scope, now=now, limit=rule.failures, window=rule.window, lockout=rule.lasts
        )

    def audit(self, conn: Connection, *, action: str, detail: str, count: int, at: datetime) -> None:
        audit(conn, action=action, detail=detail, count=count, at=at)

    def record_step(self, conn: Connection, write: StepWrite) -> list[int]:
        return record_step(conn, self.cipher, write)

    def staff_thread(self, conn: Connection, chat: Chat, *, since: datetime) -> tuple[int, str, str] | None:
        report_id = staff_thread(conn, chat.channel, chat.chat_key, since=since)
        if report_id is None:
            return None
        reference, language = conn.execute(
            select(REPORT.c.reference, REPORT.c.language).where(REPORT.c.id == report_id)
        ).one()
        return report_id, str(reference), str(language or "en")

    def chat_locale(self, conn: Connection, channel: str, chat_key: str) -> str | None:
        found = conn.execute(
            select(CONVERSATION.c.locale).where(
                CONVERSATION.c.channel == channel, CONVERSATION.c.chat_key == chat_key
            )
        ).scalar()
        return None if found is None else str(found)

    def chat_ended(self, conn: Connection, channel: str, marker: str) -> bool:
        return chatpage.ended(conn, channel, delivery_key(self.cipher, channel, marker))

    def chat_page(
        self, conn: Connection, channel: str, chat_key: str, *, marker: str, limit: int
    ) -> ChatPage:
        key = delivery_key(self.cipher, channel, marker)
        return chatpage.chat_page(conn, self.cipher, channel, chat_key, receipt_key=key, limit=limit)

    def answer_staff(self, conn: Connection, answer: StaffAnswer) -> list[int]:
        answered_staff(conn, answer.report_id, at=answer.at)
        append_transcript(conn, self.cipher, answer.lines, report_id=answer.report_id)
        return _enqueue_to(
            conn, self.cipher, answer.chat, answer.messages, None, answer.report_id, at=answer.at
        )


def staff_thread(conn: Connection, channel: str, chat_key: str, *, since: datetime) -> int | None:
    """The report of this chat that staff wrote to most recently, if they did at or after `since`.

    Only reports contactable in the chat keep their chat key, so an anonymous report is never found.
    """
    row = conn.execute(
        select(REPORT.c.id)
        .select_from(REPORT.join(TRANSCRIPT, TRANSCRIPT.c.report_id == REPORT.c.id))
        .where(
            REPORT.c.channel == channel,
            REPORT.c.chat_key == chat_key,
            TRANSCRIPT.c.author == "staff",
            TRANSCRIPT.c.at >= since,
        )
        .order_by(TRANSCRIPT.c.at.desc(), TRANSCRIPT.c.seq.desc())
        .limit(1)
    ).first()
    return None if row is None else int(row[0])


def answered_staff(conn: Connection, report_id: int, *, at: datetime) -> str:
    """The reporter wrote back on a report (its WhatsApp window opens again): its reference."""
    conn.execute(update(REPORT).where(REPORT.c.id == report_id).values(last_inbound_at=at))
    return str(conn.execute(select(REPORT.c.reference).where(REPORT.c.id == report_id)).scalar_one())
