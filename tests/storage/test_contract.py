"""Storage contract: deduplication, conversation rows, transcripts, outbox order, encryption at rest.

On both backends, through the production implementation: storage.writes (the step's writes) and
storage.outbox (delivery), on the connection Database.run_write gives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection, select, text

from bot.config import Config
from storage import dialect, outbox, writes
from storage.crypto import Cipher, DecryptError
from storage.db import Database
from storage.interface import Chat, ReplyClaim
from storage.interface import TranscriptLine as Line
from storage.models import utcnow
from storage.outbox import Pending
from tests.conftest import every_backend, raw_database_bytes, stored_text

T = TypeVar("T")


class Writer:
    """The production functions, each in its own transaction (as the step and delivery run them)."""

    def __init__(self, db: Database, config: Config) -> None:
        self.db = db
        self.cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)

    async def run(self, work: Callable[[Connection], T]) -> T:
        return await self.db.run_write(work)

    def claim_due(self, conn: Connection, channel: str, *, now: datetime, lease: timedelta) -> list[Pending]:
        """Each chat's oldest due message, claimed, as the delivery loop claims them (one by one)."""
        claimed = []
        for msg_id in outbox.due_messages(conn, channel, now=now):
            got = outbox.claim_one(conn, self.cipher, msg_id, now=now, lease=lease, max_attempts=5)
            if isinstance(got, Pending):
                claimed.append(got)
        return claimed


def store_for(db: Database, config: Config) -> Writer:
    return Writer(db, config)


def rows_of(conn: Connection, query: str, **values: Any) -> list[Any]:
    from sqlalchemy import text

    return list(conn.execute(text(query), values))


def test_pseudonyms_are_stable_and_do_not_contain_the_id(config: Config) -> None:
    cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
    key = cipher.pseudonym("telegram", "123456789")
    assert key == cipher.pseudonym("telegram", "123456789")
    assert key != cipher.pseudonym("whatsapp", "123456789")
    assert "123456789" not in key and len(key) == 64


def test_cipher_rejects_foreign_tokens(config: Config) -> None:
    from cryptography.fernet import Fernet

    mine = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
    other = Cipher([Fernet.generate_key().decode()], "y" * 40)
    with pytest.raises(DecryptError):
        mine.decrypt(other.encrypt("hello"))


@every_backend
async def test_a_delivery_id_counts_once(db: Database, config: Config) -> None:
    store = store_for(db, config)
    assert await store.run(lambda c: writes.record_receipt(c, store.cipher, "telegram", "1001"))

    def again(c: Connection) -> None:
        assert not writes.record_receipt(c, store.cipher, "telegram", "1001")
        assert writes.record_receipt(c, store.cipher, "whatsapp", "1001")

    await store.run(again)


@every_backend
async def test_rolled_back_receipt_is_not_kept(db: Database, config: Config) -> None:
    store = store_for(db, config)

    def crash(c: Connection) -> None:
        assert writes.record_receipt(c, store.cipher, "telegram", "77")
        raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await store.run(crash)
    assert await store.run(lambda c: writes.record_receipt(c, store.cipher, "telegram", "77"))


@every_backend
async def test_conversation_draft_is_encrypted_and_round_trips(db: Database, config: Config) -> None:
    store = store_for(db, config)

    def first(c: Connection) -> None:
        conv = writes.open_conversation(c, store.cipher, "console", "k1")
        assert conv.draft is None
        draft = {"step": "story", "answers": {"story": "CANARY-DRAFT-TEXT"}}
        writes.save_draft(c, store.cipher, conv.id, draft, at=utcnow())

    def second(c: Connection) -> None:
        conv = writes.open_conversation(c, store.cipher, "console", "k1")
        (step,) = rows_of(c, "SELECT step FROM conversation WHERE id = :id", id=conv.id)[0]
        assert step == "story"
        assert conv.draft == {"step": "story", "answers": {"story": "CANARY-DRAFT-TEXT"}}

    await store.run(first)
    await store.run(second)
    assert "CANARY-DRAFT-TEXT" not in await stored_text(db)
    if db.is_sqlite:
        assert b"CANARY-DRAFT-TEXT" not in raw_database_bytes(config)


@every_backend
async def test_transcript_keeps_order_and_moves_to_report(db: Database, config: Config) -> None:
    store = store_for(db, config)
    now = utcnow()

    def submit(c: Connection) -> int:
        conv = writes.open_conversation(c, store.cipher, "console", "k2")
        writes.append_transcript(c, store.cipher, [Line("in", "person", "one", now)], conversation_id=conv.id)
        writes.append_transcript(
            c,
            store.cipher,
            [Line("out", "bot", "two", now), Line("out", "bot", "three", now)],
            conversation_id=conv.id,
        )
        report_id = writes.create_report(
            c,
            store.cipher,
            reference="HC-2345-6789",
            channel="console",
            clear={"role": "victim"},
            sealed={"description": "x"},
            chat_key=None,
            reply_address=None,
            conversation_id=conv.id,
            at=now,
        )
        writes.delete_conversation(c, store.cipher, conv.id)
        return report_id

    report_id = await store.run(submit)

    def transcript(c: Connection) -> list[Line]:
        found = rows_of(
            c,
            "SELECT direction, author, text_enc, at FROM transcript_entry WHERE report_id = :id ORDER BY seq",
            id=report_id,
        )
        return [Line(d, a, store.cipher.decrypt(t), at) for d, a, t, at in found]

    lines = await store.run(transcript)
    assert [(line.direction, line.text) for line in lines] == [
        ("in", "one"),
        ("out", "two"),
        ("out", "three"),
    ]


@every_backend
async def test_outbox_delivers_each_chat_in_order(db: Database, config: Config) -> None:
    store = store_for(db, config)
    now = utcnow()

    def enqueue(c: Connection) -> None:
        writes.enqueue(
            c,
            store.cipher,
            channel="telegram",
            chat_key="a",
            address="1",
            messages=[{"text": "a1"}, {"text": "a2"}],
        )
        writes.enqueue(
            c, store.cipher, channel="telegram", chat_key="b", address="2", messages=[{"text": "b1"}]
        )

    await store.run(enqueue)
    first = await store.run(
        lambda c: store.claim_due(c, "telegram", now=now + timedelta(seconds=1), lease=timedelta(seconds=60))
    )
    assert sorted(p.message["text"] for p in first) == ["a1", "b1"]
    # a1 is leased but not sent: a2 must wait behind it, and nothing is claimed twice
    again = await store.run(
        lambda c: store.claim_due(c, "telegram", now=now + timedelta(seconds=2), lease=timedelta(seconds=60))
    )
    assert again == []

    def sent_then_next(c: Connection) -> list[Pending]:
        outbox.mark_sent(c, store.cipher, [p.id for p in first], at=now)
        return store.claim_due(c, "telegram", now=now + timedelta(seconds=3), lease=timedelta(seconds=60))

    nxt = await store.run(sent_then_next)
    assert [p.message["text"] for p in nxt] == ["a2"]
    assert [p.address for p in nxt] == ["1"]


@pytest.mark.empty_database  # the file is made by storage, not copied by the tests' template
async def test_sqlite_files_are_private_to_the_owner(db: Database, config: Config) -> None:
    import stat
    from pathlib import Path

    if not db.is_sqlite:
        pytest.skip("file modes are a SQLite matter")
    store = store_for(db, config)
    await store.run(lambda c: writes.record_receipt(c, store.cipher, "console", "x"))
    base = Path(db.url.split("///", 1)[1])
    for path in (base, Path(f"{base}-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@every_backend
async def test_the_driver_fast_path_stores_exactly_what_sqlalchemy_would(db: Database) -> None:
    # storage.dialect runs the built statements of storage.writes on the driver (the sqlite3 cursor, the
    # asyncpg connection) with SQLAlchemy's own conversions; what is stored must be the same as through
    # SQLAlchemy (times, dates, JSON, booleans, NULLs).
    from datetime import UTC, date, datetime

    from sqlalchemy import text

    at = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    values = {
        "reference": "HC-AAAA-AAAA",
        "submitted_at": at,
        "channel": "telegram",
        "status": "new",
        "status_changed_at": None,
        "sealed_enc": "token",
        "staff_note_enc": None,
        "chat_key": "k" * 64,
        "reply_address_enc": None,
        "last_inbound_at": at,
        "role": "victim",
        "incident_types": ["verbal", "online"],
        "motivations": ["race"],
        "occurred_on": date(2026, 3, 1),
        "repeat": "yes",
        "support_requested": True,
        "anonymous": False,
        "share_with": ["police"],
    }

    def both(conn: Connection) -> list[tuple[object, ...]]:
        dialect.rows(conn, writes._REPORT_INSERT, values)
        conn.execute(writes._REPORT_INSERT, {**values, "reference": "HC-BBBB-BBBB"})
        rows = conn.execute(text("SELECT * FROM report ORDER BY id")).all()
        return [tuple(v for k, v in r._mapping.items() if k not in ("id", "reference")) for r in rows]

    fast, through_sqlalchemy = await db.run_write(both)
    assert fast == through_sqlalchemy
    if db.is_sqlite:
        assert "2026-03-04 05:06:07.890123" in fast and '["verbal", "online"]' in fast
    else:
        assert at in fast and ["verbal", "online"] in fast and date(2026, 3, 1) in fast


@every_backend
async def test_a_steps_replies_are_claimed_for_sending_only_when_nothing_of_the_chat_waits_before_them(
    db: Database, config: Config
) -> None:
    store = store_for(db, config)
    now = utcnow()
    until = now + timedelta(seconds=30)

    def queue(chat: str, texts: list[str]) -> Callable[[Connection], list[int]]:
        def work(c: Connection) -> list[int]:  # replies of a conversation (kept once sent)
            conversation = writes.open_conversation(c, store.cipher, "telegram", chat).id
            messages = [{"text": t} for t in texts]
            return writes.enqueue(
                c,
                store.cipher,
                channel="telegram",
                chat_key=chat,
                address="1",
                messages=messages,
                conversation_id=conversation,
                at=now,
            )

        return work

    def claim(chat: str, ids: list[int], quiet_since: datetime | None = None) -> Callable[[Connection], bool]:
        return lambda c: outbox.claim_fresh(
            c, ids, Chat("telegram", chat, "1"), ReplyClaim(until, quiet_since)
        )

    def attempts(ids: list[int]) -> Callable[[Connection], list[tuple[int, datetime]]]:
        table = writes.OUTBOX
        query = select(table.c.attempts, table.c.next_attempt_at).order_by(table.c.id)
        return lambda c: [
            (n, t if t.tzinfo else t.replace(tzinfo=UTC))
            for n, t in c.execute(query.where(table.c.id.in_(ids)))
        ]

    first = await store.run(queue("a", ["one", "two"]))
    assert await store.run(claim("a", first))
    claimed = await store.run(attempts(first))
    assert [n for n, _ in claimed] == [1, 1] and all(
        abs((t - until).total_seconds()) < 1e-3 for _, t in claimed
    )
    # The chat's earlier replies are still unsent: the next ones wait their turn, untouched.
    later = await store.run(queue("a", ["three"]))
    assert not await store.run(claim("a", later))
    assert [n for n, _ in await store.run(attempts(later))] == [0]
    # Another chat is not held up by it.
    other = await store.run(queue("b", ["hello"]))
    assert await store.run(claim("b", other))
    # Something went to the chat after `quiet_since`: its replies wait for the pacer.
    await store.run(lambda c: outbox.mark_sent(c, store.cipher, other, at=now, platform_ids=["9"]))
    again = await store.run(queue("b", ["again"]))
    assert not await store.run(claim("b", again, quiet_since=now - timedelta(seconds=1)))
    assert await store.run(claim("b", again, quiet_since=now))


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.postgres
async def test_a_write_on_a_pooled_connection_the_server_closed_runs_again_on_a_new_one(
    db: Database, config: Config
) -> None:
    # No ping before each checkout: a connection lost while idle in the pool (a server restart, an idle
    # timeout) fails at the transaction's BEGIN, before the work runs, and run_write takes a new one.
    store = store_for(db, config)
    pooled = await store.run(lambda c: c.execute(text("SELECT pg_backend_pid()")).scalar_one())
    other = Database(db.url)  # its own pool: not the connection to close
    try:
        async with other.engine.connect() as conn:
            closed = await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pooled})
            assert closed.scalar_one() is True
    finally:
        await other.dispose()
    runs = []

    def work(c: Connection) -> bool:
        runs.append(1)
        return writes.record_receipt(c, store.cipher, "console", "second")

    assert await store.run(work)
    assert len(runs) == 1  # the closed connection was found at BEGIN, before the work ran
    assert not await store.run(lambda c: writes.record_receipt(c, store.cipher, "console", "second"))
