"""Files people sent on a messaging app, waiting to be downloaded into the evidence store.

A step that keeps a photo, file, video or voice note gives it a reference of the evidence store at once
(the draft and the report keep only that) and leaves here the platform's file id or media URL, encrypted
(`add_fetches`). The delivery loop claims one at a time (a lease, like the outbox), downloads it, and
deletes the row (`fetched`): after that nothing links the file to the platform. Where the platform keeps
its own copy (Twilio's media), a `discard:` row takes the download's place until the loop has deleted
that copy (`stored_then_discard`). Sync Core statements on a connection whose transaction the caller
owns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Table, delete, insert, or_, select, update

from storage.crypto import Cipher
from storage.interface import Fetch
from storage.models import EvidenceFetch, utcnow

FETCH: Table = EvidenceFetch.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claimed:
    """A download claimed by one delivery loop, decrypted."""

    ref: str
    source: str
    content_type: str | None
    attempts: int


def add_fetches(
    conn: Connection, cipher: Cipher, channel: str, fetches: Sequence[Fetch], *, at: datetime
) -> None:
    """Leave each file to the delivery loop (in the step's transaction)."""
    if not fetches:
        return
    conn.execute(
        insert(FETCH),
        [
            {
                "ref": f.ref,
                "channel": channel,
                "content_type": f.content_type,
                "source_enc": cipher.encrypt(f.source),
                "created_at": at,
                "attempts": 0,
                "claimed_until": None,
            }
            for f in fetches
        ],
    )


def claim_fetch(
    conn: Connection, cipher: Cipher, channel: str, *, now: datetime, lease: timedelta
) -> Claimed | None:
    """The oldest download of this channel nobody holds now, held for `lease`; None when there is none."""
    row = conn.execute(
        select(FETCH.c.id, FETCH.c.ref, FETCH.c.source_enc, FETCH.c.content_type, FETCH.c.attempts)
        .where(FETCH.c.channel == channel, or_(FETCH.c.claimed_until.is_(None), FETCH.c.claimed_until < now))
        .order_by(FETCH.c.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    conn.execute(
        update(FETCH).where(FETCH.c.id == row.id).values(claimed_until=now + lease, attempts=row.attempts + 1)
    )
    return Claimed(row.ref, cipher.decrypt(row.source_enc), row.content_type, row.attempts + 1)


def fetched(conn: Connection, ref: str) -> bool:
    """The file is in the evidence store (or will never be): forget where it came from. False when the
    row was gone already (its draft ended without a report meanwhile: the file must go too)."""
    return bool(conn.execute(delete(FETCH).where(FETCH.c.ref == ref)).rowcount)


DISCARD = "discard:"  # the ref of a row that deletes a stored file's copy on the platform (Twilio media)


def stored_then_discard(conn: Connection, cipher: Cipher, claimed: Claimed, channel: str) -> bool:
    """The file is in the evidence store: its download row goes, and a row to delete the platform's copy
    takes its place (the delivery loop tries it, a bounded number of times). False as for `fetched`."""
    there = fetched(conn, claimed.ref)
    add_discard(conn, cipher, claimed, channel)
    return there


def add_discard(conn: Connection, cipher: Cipher, claimed: Claimed, channel: str) -> None:
    """Leave the platform's copy of a file to be deleted by the delivery loop."""
    conn.execute(
        insert(FETCH).values(
            ref=DISCARD + claimed.ref,
            channel=channel,
            content_type=None,
            source_enc=cipher.encrypt(claimed.source),
            created_at=utcnow(),
            attempts=0,
            claimed_until=None,
        )
    )


def forget_fetches(conn: Connection, refs: Sequence[str]) -> None:
    """Downloads no longer wanted (their draft ended without a report): never made."""
    if refs:
        conn.execute(delete(FETCH).where(FETCH.c.ref.in_(list(refs))))


def waiting(conn: Connection, refs: Sequence[str]) -> list[str]:
    """Which of these references are still waiting to be downloaded."""
    if not refs:
        return []
    return list(conn.execute(select(FETCH.c.ref).where(FETCH.c.ref.in_(list(refs)))).scalars())


def later(conn: Connection, ref: str, *, until: datetime) -> None:
    """The platform was away: try this download again from `until`."""
    conn.execute(update(FETCH).where(FETCH.c.ref == ref).values(claimed_until=until))
