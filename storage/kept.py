"""Platform ids of a chat's messages, both ways, kept for quick exit (table chat_message).

Telegram lets a bot delete any message of a private chat, the person's and its own, for 48 hours. So
that `exit` can clear the chat even after a report was sent (an anonymous one too), each message's id is
kept, encrypted, under a pseudonym of the chat of its own (`exit_key`: HMAC of `quick-exit:<channel>`
and the chat id, which no other table uses, so nothing joins these rows to the chat's conversation or
its contactable reports without the key): no report id, no conversation id, and a time rounded down to
the hour (`kept_time`), which is all the deletion window needs. Ids go once quick exit used
them, or once they are too old for the platform to delete (`age_out`).

When ids age out (or the volume limit stops storing a flood of messages), the chat keeps one marker row
instead (channel `<channel>+old`, an empty id, dated by the week only): "this chat holds messages the
bot can no longer delete", so that quick exit never says the chat is closed while
such messages are still on the phone. The marker goes when quick exit has told the person, or when purge finds it older than the draft
retention (`expire_markers`). docs/security.md says what is kept, for how long, and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Connection, Table, delete, func, select

from storage import dialect, models
from storage.crypto import Cipher

CHAT_MESSAGE: Table = models.ChatMessage.__table__  # type: ignore[attr-defined]
OLDER = "+old"  # the channel suffix of a chat's marker row: older messages exist
ROUNDING = timedelta(hours=1)  # kept times are rounded down to the hour
# Past this age a kept id is surely too old for Telegram (48 hours, plus the rounding and a margin).
USELESS_AFTER = timedelta(hours=48) + ROUNDING + timedelta(minutes=30)


_INSERT = CHAT_MESSAGE.insert()


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def exit_key(cipher: Cipher, channel: str, chat_id: str) -> str:
    """The pseudonym under which a chat's message ids are kept: not the chat key (see the notes)."""
    return cipher.pseudonym(f"quick-exit:{channel}", chat_id)


def kept_time(at: datetime) -> datetime:
    """The hour a message was sent, not the moment (see the module's notes)."""
    return at.replace(minute=0, second=0, microsecond=0)


def keep(
    conn: Connection, cipher: Cipher, channel: str, chat_key: str, refs: Sequence[str], *, at: datetime
) -> None:
    """Keep the platform ids of messages of this chat (the person's or the bot's), encrypted."""
    rows = [row(cipher, channel, chat_key, r, at=at) for r in refs]
    if rows:
        dialect.insert_all(conn, _INSERT, rows)


ROW_KEYS = ("channel", "chat_key", "at", "ref_enc")  # the columns `row` gives


def row(cipher: Cipher, channel: str, chat_key: str, ref: str, *, at: datetime) -> dict[str, object]:
    """The row that keeps one platform id (see `keep`)."""
    return {"channel": channel, "chat_key": chat_key, "at": kept_time(at), "ref_enc": cipher.encrypt(ref)}


@dataclass(frozen=True)
class Kept:
    """What quick exit can try to delete in one chat, and what it cannot.

    `sure` are surely still deletable, `unsure` may be just past the window (try them one by one),
    `too_old` counts ids surely past it, `older` says messages exist whose ids aged out. `rows` are the
    rows read, to forget once used."""

    sure: tuple[str, ...] = ()
    unsure: tuple[str, ...] = ()
    too_old: int = 0
    older: bool = False
    rows: tuple[int, ...] = ()


def kept_for_exit(
    conn: Connection, cipher: Cipher, channel: str, chat_key: str, *, now: datetime, window: timedelta
) -> Kept:
    """The chat's kept ids, sorted by what the platform still allows (`window`: how long it lets a bot
    delete a message)."""
    found = conn.execute(
        select(CHAT_MESSAGE.c.id, CHAT_MESSAGE.c.channel, CHAT_MESSAGE.c.at, CHAT_MESSAGE.c.ref_enc).where(
            CHAT_MESSAGE.c.channel.in_((channel, channel + OLDER)), CHAT_MESSAGE.c.chat_key == chat_key
        )
    ).all()
    sure: list[str] = []
    unsure: list[str] = []
    too_old = 0
    for _, row_channel, at, token in sorted(found, key=lambda row: row[0]):
        if row_channel != channel:
            continue
        age = now - _aware(at)
        if age <= window:  # sent at or after `at`: surely younger than the window
            sure.append(cipher.decrypt(token))
        elif age <= window + ROUNDING:
            unsure.append(cipher.decrypt(token))
        else:
            too_old += 1
    older = any(row[1] != channel for row in found)
    return Kept(tuple(sure), tuple(unsure), too_old, older, tuple(int(row[0]) for row in found))


def forget(conn: Connection, rows: Sequence[int]) -> None:
    """Drop kept rows quick exit has used (deleted, or told the person it could not)."""
    if rows:
        conn.execute(delete(CHAT_MESSAGE).where(CHAT_MESSAGE.c.id.in_(list(rows))))
        dialect.request_checkpoint(conn)


def age_out(conn: Connection, cipher: Cipher, channel: str | None, *, before: datetime) -> int:
    """Drop ids kept before `before` (of one channel, or all), leaving each chat that had some one marker
    row (older messages exist). Returns how many ids went."""
    old = CHAT_MESSAGE.c.at < before
    ours: ColumnElement[bool] = ~CHAT_MESSAGE.c.channel.like("%" + OLDER)
    if channel is not None:
        ours = CHAT_MESSAGE.c.channel == channel
    chats = conn.execute(
        select(CHAT_MESSAGE.c.channel, CHAT_MESSAGE.c.chat_key, func.max(CHAT_MESSAGE.c.at))
        .where(ours, old)
        .group_by(CHAT_MESSAGE.c.channel, CHAT_MESSAGE.c.chat_key)
    ).all()
    if not chats:
        return 0
    gone = conn.execute(delete(CHAT_MESSAGE).where(ours, old)).rowcount or 0
    for chat_channel, chat_key, newest in chats:
        mark_older(conn, cipher, str(chat_channel), str(chat_key), at=_aware(newest))
    dialect.request_checkpoint(conn)
    return int(gone)


def mark_older(conn: Connection, cipher: Cipher, channel: str, chat_key: str, *, at: datetime) -> None:
    """Mark the chat as holding messages whose ids are not kept (aged out, or dropped by the volume
    limit): one marker row a chat, dated by the week of `at` only (it outlives the 48 hours, so it must
    not carry the hour of the messages, which a report sent then would share)."""
    marker = channel + OLDER
    conn.execute(
        delete(CHAT_MESSAGE).where(CHAT_MESSAGE.c.channel == marker, CHAT_MESSAGE.c.chat_key == chat_key)
    )
    week = kept_time(at).replace(hour=0) - timedelta(days=at.weekday())
    dialect.insert_all(
        conn, _INSERT, [{"channel": marker, "chat_key": chat_key, "at": week, "ref_enc": cipher.encrypt("")}]
    )


def expire_markers(conn: Connection, *, before: datetime) -> int:
    """Drop "older messages exist" markers last renewed before `before` (purge: the draft retention)."""
    result = conn.execute(
        delete(CHAT_MESSAGE).where(CHAT_MESSAGE.c.channel.like("%" + OLDER), CHAT_MESSAGE.c.at < before)
    )
    return int(result.rowcount or 0)
