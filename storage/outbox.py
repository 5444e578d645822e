"""Outbox delivery, synchronous and in Core statements: which messages are due, claiming them (a batch in
one transaction, or a step's own replies in the step's transaction), and what each send gave (sent, retry
later, failed for good).

The order of claims: replies to people in a conversation (priority 0) before staff follow-ups
(priority 1), then oldest first; only a chat's oldest unsent message can be claimed, so each chat's
messages go in order whichever worker sends them, and (with `quiet_since`) not sooner after the chat's
last sent message than the platform's per-chat pace allows.

Each function runs on a sync `Connection` inside a transaction the caller opened and never commits (the
delivery loop runs them through storage.db.Database.run_write). Messages leave here decrypted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Integer,
    Table,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql

from storage import dialect
from storage.crypto import Cipher, DecryptError
from storage.interface import Chat, ReplyClaim
from storage.models import AuditEvent, OutboxHead, OutboxMessage

OUTBOX: Table = OutboxMessage.__table__  # type: ignore[attr-defined]
AUDIT: Table = AuditEvent.__table__  # type: ignore[attr-defined]
HEAD: Table = OutboxHead.__table__  # type: ignore[attr-defined]


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


# What a step writes for a person in a conversation, and what staff write to a reporter later.
CONVERSATION = 0
FOLLOW_UP = 1


def _unsent(channel: str) -> tuple[Any, ...]:
    return (OUTBOX.c.channel == channel, OUTBOX.c.sent_at.is_(None), OUTBOX.c.failed_at.is_(None))


def _due(now: Any, fresh_before: Any) -> Any:
    """Due now: its next attempt has come, and a message never tried is old enough (a webhook may
    still be delivering a fresh one in its response; a message already tried is not left waiting)."""
    return and_(
        OUTBOX.c.next_attempt_at <= now,
        or_(OUTBOX.c.attempts > literal_column("0"), OUTBOX.c.created_at <= fresh_before),
    )


@dataclass(frozen=True)
class Due:
    """Which of the messages due now a round takes: at most `limit` (one a chat), only `chat_key`'s when
    set, none never tried that was written after `fresh_before`, and (with `quiet_since`) none of a chat
    that had a message sent to it after that time."""

    fresh_before: datetime | None = None
    limit: int = 50
    chat_key: str | None = None
    quiet_since: datetime | None = None


def due_messages(conn: Connection, channel: str, *, now: datetime, which: Due = Due()) -> list[int]:
    """Ids of the messages to try now, conversation replies before staff follow-ups, then oldest first:
    each chat's oldest unsent message, when it is due (and, with `which.quiet_since`, when nothing was
    sent to its chat after that time). Nothing is claimed here (see claim_one).

    A chat's oldest unsent message stays its oldest until it is sent or failed (later messages have
    larger ids), so an id read here can still be claimed in its turn without breaking the chat's order.

    It reads `outbox_head` (one row a chat with unsent messages, kept by triggers: migration 0012) in
    (priority, id) order, passes over in the index the heads whose next attempt has not come, and looks
    at the message itself only for a head that is due: its cost follows the chats waiting, not the
    messages (26,000 unsent in 1,000 chats, none due: 0.6 ms on SQLite, 1-2 ms on PostgreSQL).
    """
    query = (
        select(HEAD.c.message_id)
        .join(OUTBOX, OUTBOX.c.id == HEAD.c.message_id)
        .where(
            HEAD.c.channel == channel,
            HEAD.c.next_attempt_at <= now,
            *_unsent(channel),
            _due(now, which.fresh_before or now),
        )
        .order_by(HEAD.c.priority, HEAD.c.message_id)
        .limit(which.limit)
    )
    if which.quiet_since is not None:
        query = query.where(~_sent_lately(HEAD.c.channel, HEAD.c.chat_key, which.quiet_since))
    if which.chat_key is not None:
        query = query.where(HEAD.c.chat_key == which.chat_key)
    if conn.dialect.name == dialect.POSTGRESQL:
        # The loop runs this statement again and again: PostgreSQL's generic plan for a prepared statement
        # guesses that a third of the outbox was sent "lately" and scans it all (10 ms with 31,000 rows);
        # planned for the moment given, it reads the few recent ones through ix_outbox_sent_at (0.1 ms).
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
    return [int(row[0]) for row in conn.execute(query)]


def repair_heads(conn: Connection, channel: str) -> int:
    """Make `outbox_head` agree with the unsent messages of `channel` again; the number of chats mended.

    The triggers of migration 0012 keep the heads in every write's own transaction, so this finds nothing
    in normal running. It is the net under them: a chat whose head were ever missing or stale would get
    no reply at all (delivery reads only heads), so the delivery loop runs this in its housekeeping. Each
    chat found out of line is made again from its messages as they are now: on PostgreSQL by the
    triggers' own function, which locks the chat's head first, so a write racing this one is not undone.
    """
    oldest = select(func.min(OUTBOX.c.id)).where(*_unsent(channel)).group_by(OUTBOX.c.chat_key)
    wanted = {
        row[0]: tuple(row[1:])
        for row in conn.execute(
            select(OUTBOX.c.chat_key, OUTBOX.c.id, OUTBOX.c.priority, OUTBOX.c.next_attempt_at).where(
                OUTBOX.c.id.in_(oldest)
            )
        )
    }
    held = {
        row[0]: tuple(row[1:])
        for row in conn.execute(
            select(HEAD.c.chat_key, HEAD.c.message_id, HEAD.c.priority, HEAD.c.next_attempt_at).where(
                HEAD.c.channel == channel
            )
        )
    }
    wrong = sorted(k for k in wanted.keys() | held.keys() if wanted.get(k) != held.get(k))
    for chat_key in wrong:
        if conn.dialect.name == dialect.POSTGRESQL:
            conn.execute(text("SELECT outbox_head_refresh(:c, :k, NULL)"), {"c": channel, "k": chat_key})
            continue
        conn.execute(delete(HEAD).where(HEAD.c.channel == channel, HEAD.c.chat_key == chat_key))
        if chat_key in wanted:
            message_id, priority, next_attempt_at = wanted[chat_key]
            conn.execute(
                insert(HEAD).values(
                    channel=channel,
                    chat_key=chat_key,
                    message_id=message_id,
                    priority=priority,
                    next_attempt_at=next_attempt_at,
                )
            )
    return len(wrong)


def _sent_lately(channel: Any, chat_key: Any, since: Any) -> Any:
    """EXISTS: a message went to this chat after `since` (read through the chat_key index)."""
    sent = OUTBOX.alias("sent")
    return (
        select(sent.c.id)
        .where(sent.c.chat_key == chat_key, sent.c.channel == channel, sent.c.sent_at > since)
        .exists()
    )


def _earlier_waiting() -> Any:
    """EXISTS: a message of the chat older than `b_first` is still waiting (read through
    ix_outbox_unsent_chat)."""
    waiting = OUTBOX.alias("waiting")
    return (
        select(waiting.c.id)
        .where(
            waiting.c.channel == bindparam("b_channel"),
            waiting.c.chat_key == bindparam("b_chat"),
            waiting.c.sent_at.is_(None),
            waiting.c.failed_at.is_(None),
            waiting.c.id < bindparam("b_first"),
        )
        .exists()
    )


# claim_fresh's statements, built once (a step runs them; building them each time cost more than
# running them). The answer is typed as an integer so that SQLite's driver runs it straight.
_FRESH_BLOCKED = select(type_coerce(_earlier_waiting(), Integer))
_FRESH_BLOCKED_QUIET = select(
    type_coerce(
        or_(
            _earlier_waiting(),
            _sent_lately(bindparam("b_channel"), bindparam("b_chat"), bindparam("b_since")),
        ),
        Integer,
    )
)
_FRESH_CLAIM = (
    update(OUTBOX)
    .where(OUTBOX.c.id == bindparam("b_id"))
    .values(
        attempts=OUTBOX.c.attempts + literal_column("1"),
        next_attempt_at=bindparam("b_until"),
        last_error=null(),
    )
)


# On PostgreSQL the check and the claim are one statement (one round trip instead of one and one a reply):
# the condition does not depend on the row, so either every reply is claimed or none.
_FRESH_CLAIM_ALL = {
    quiet: (
        update(OUTBOX)
        .where(
            OUTBOX.c.id == any_(bindparam("b_ids", type_=postgresql.ARRAY(Integer))),
            ~or_(
                _earlier_waiting(),
                *(
                    [_sent_lately(bindparam("b_channel"), bindparam("b_chat"), bindparam("b_since"))]
                    if quiet
                    else []
                ),
            ),
        )
        .values(
            attempts=OUTBOX.c.attempts + literal_column("1"),
            next_attempt_at=bindparam("b_until", type_=OUTBOX.c.next_attempt_at.type),
            last_error=null(),
        )
        .returning(OUTBOX.c.id)
    )
    for quiet in (False, True)
}


def claim_fresh(conn: Connection, ids: Sequence[int], chat: Chat, claim: ReplyClaim) -> bool:
    """Inside the step's own transaction: claim the replies it just wrote (`ids`, in order) for the
    process that will send them right after the commit, leased until `claim.until`. Only when nothing
    of the chat is waiting before them (nor, with `claim.quiet_since`, was sent to it after that time):
    otherwise they wait in the outbox for their turn and are claimed like any other. True when claimed.

    The attempt is counted as claim_one counts it; a crash after the commit loses nothing: when the
    lease runs out, the delivery loop of any worker takes them."""
    if not ids:
        return False
    of_chat = {"b_channel": chat.channel, "b_chat": chat.chat_key, "b_first": min(ids)}
    if conn.dialect.name == dialect.POSTGRESQL:
        return _claim_all(conn, ids, of_chat, claim)
    if claim.quiet_since is None:
        [(blocked,)] = dialect.rows(conn, _FRESH_BLOCKED, of_chat)
    else:
        since = {**of_chat, "b_since": claim.quiet_since}
        [(blocked,)] = dialect.rows(conn, _FRESH_BLOCKED_QUIET, since)
    if blocked:
        return False
    for msg_id in ids:
        dialect.rows(conn, _FRESH_CLAIM, {"b_id": msg_id, "b_until": claim.until})
    return True


def _claim_all(conn: Connection, ids: Sequence[int], of_chat: dict[str, Any], claim: ReplyClaim) -> bool:
    values = {**of_chat, "b_ids": list(ids), "b_until": claim.until}
    if claim.quiet_since is not None:
        values["b_since"] = claim.quiet_since
    return bool(dialect.rows(conn, _FRESH_CLAIM_ALL[claim.quiet_since is not None], values))


# Why claim_one did not hand over a message: someone else has it (or it is done, or not due yet), or
# it was marked failed on the way (its attempts are used up, or it cannot be read).
TAKEN = "taken"
ATTEMPTS_EXHAUSTED = "attempts_exhausted"
UNREADABLE = "unreadable"


class _Claimed(NamedTuple):
    id: int
    channel: str
    chat_key: str
    address_enc: str
    message_enc: str
    attempts: int
    conversation_id: int | None
    report_id: int | None


def _claim_select(name: str) -> Any:
    """A message, if it can be claimed now: unsent, not failed, due (see _due). Another worker claiming
    it now (PostgreSQL, FOR UPDATE SKIP LOCKED): it is theirs."""
    query = select(*(OUTBOX.c[field] for field in _Claimed._fields)).where(
        OUTBOX.c.id == bindparam("b_id"),
        OUTBOX.c.sent_at.is_(None),
        OUTBOX.c.failed_at.is_(None),
        _due(bindparam("b_now"), bindparam("b_fresh")),
    )
    return dialect.locked(query, name, skip_locked=True)


_CLAIM_SELECT = dialect.per_dialect(_claim_select)  # built once: a round claims up to 50 in a row


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
    stmt = _CLAIM_SELECT[conn.dialect.name]
    found = dialect.rows(conn, stmt, {"b_id": msg_id, "b_now": now, "b_fresh": fresh_before or now})
    if not found:
        return TAKEN
    row = _Claimed(*found[0])
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
    claim = {"b_id": msg_id, "attempts": row.attempts + 1, "next_attempt_at": now + lease, "last_error": None}
    dialect.rows(conn, _CLAIM_UPDATE, claim)
    return pending


def claim_many(
    conn: Connection,
    cipher: Cipher,
    ids: Sequence[int],
    *,
    now: datetime,
    lease: timedelta,
    max_attempts: int,
    fresh_before: datetime | None = None,
) -> list[Pending | str]:
    """claim_one for each id, in one transaction (one commit for a batch of claims)."""
    return [
        claim_one(
            conn, cipher, msg_id, now=now, lease=lease, max_attempts=max_attempts, fresh_before=fresh_before
        )
        for msg_id in ids
    ]


def claim_due(
    conn: Connection,
    cipher: Cipher,
    *,
    channel: str,
    now: datetime,
    lease: timedelta,
    max_attempts: int,
    which: Due = Due(),
) -> list[Pending | str]:
    """due_messages, then claim_many, in one transaction: one commit claims a round's batch."""
    ids = due_messages(conn, channel, now=now, which=which)
    return claim_many(
        conn, cipher, ids, now=now, lease=lease, max_attempts=max_attempts, fresh_before=which.fresh_before
    )


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
    conn: Connection,
    cipher: Cipher,
    ids: Sequence[int],
    *,
    at: datetime,
    platform_ids: Sequence[str] = (),
    also: Callable[[Connection], object] | None = None,
) -> None:
    """Record delivery (and the platform's message ids, encrypted). `also` writes what the sender keeps
    of the send in the same transaction (quick exit's ids: bot.delivery.KeptMessages).

    A message that belongs to no conversation and no report (the last words of an erased draft or
    of an anonymous report) is deleted instead: once delivered, nothing of it stays.
    """
    if also is not None:
        also(conn)
    ids = list(ids)
    if conn.execute(delete(OUTBOX).where(OUTBOX.c.id.in_(ids), *_orphan())).rowcount:
        dialect.request_checkpoint(conn)
    values: dict[str, Any] = {"sent_at": at, "last_error": None}
    if platform_ids:
        values["platform_ids_enc"] = cipher.encrypt_json(list(platform_ids))
    conn.execute(update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(**values))


def mark_retry(
    conn: Connection, msg_id: int, *, at: datetime, error: str | None, attempts: int | None = None
) -> None:
    """Try again at a later time; `attempts` sets the count back (a try that did not count). Without an
    error it is a claimed message handed back unsent (a stop, a pause): any worker may take it at `at`."""
    values: dict[str, Any] = {"next_attempt_at": at, "last_error": error[:200] if error else None}
    if attempts is not None:
        values["attempts"] = attempts
    conn.execute(update(OUTBOX).where(OUTBOX.c.id == msg_id).values(**values))


def mark_failed(conn: Connection, msg_id: int, *, at: datetime, error: str) -> None:
    """Give up on a message the platform will never accept (an orphan is deleted, see mark_sent)."""
    if conn.execute(delete(OUTBOX).where(OUTBOX.c.id == msg_id, *_orphan())).rowcount:
        dialect.request_checkpoint(conn)
    conn.execute(update(OUTBOX).where(OUTBOX.c.id == msg_id).values(failed_at=at, last_error=error[:200]))
