"""Storage contract: deduplication, conversation rows, transcripts, outbox order, encryption at rest."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import Config
from storage.crypto import Cipher, DecryptError
from storage.db import Database
from storage.models import utcnow
from storage.store import Line, Store
from tests.conftest import every_backend, raw_database_bytes, stored_text


def store_for(config: Config) -> Store:
    return Store(Cipher(config.security.encryption_keys, config.security.pseudonym_key))


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
    store = store_for(config)
    async with db.transaction() as s:
        assert await store.record_receipt(s, "telegram", "1001")
    async with db.transaction() as s:
        assert not await store.record_receipt(s, "telegram", "1001")
        assert await store.record_receipt(s, "whatsapp", "1001")


@every_backend
async def test_rolled_back_receipt_is_not_kept(db: Database, config: Config) -> None:
    store = store_for(config)
    with pytest.raises(RuntimeError):
        async with db.transaction() as s:
            assert await store.record_receipt(s, "telegram", "77")
            raise RuntimeError("crash before commit")
    async with db.transaction() as s:
        assert await store.record_receipt(s, "telegram", "77")


@every_backend
async def test_conversation_draft_is_encrypted_and_round_trips(db: Database, config: Config) -> None:
    store = store_for(config)
    async with db.transaction() as s:
        conv = await store.lock_conversation(s, "console", "k1")
        assert store.read_draft(conv) is None
        await store.save_draft(s, conv, {"step": "story", "answers": {"story": "CANARY-DRAFT-TEXT"}})
    async with db.transaction() as s:
        conv = await store.lock_conversation(s, "console", "k1")
        assert conv.step == "story"
        assert store.read_draft(conv) == {"step": "story", "answers": {"story": "CANARY-DRAFT-TEXT"}}
    assert "CANARY-DRAFT-TEXT" not in await stored_text(db)
    if db.is_sqlite:
        assert b"CANARY-DRAFT-TEXT" not in raw_database_bytes(config)


@every_backend
async def test_transcript_keeps_order_and_moves_to_report(db: Database, config: Config) -> None:
    store = store_for(config)
    now = utcnow()
    async with db.transaction() as s:
        conv = await store.lock_conversation(s, "console", "k2")
        await store.append_transcript(s, [Line("in", "person", "one", now)], conversation_id=conv.id)
        await store.append_transcript(
            s, [Line("out", "bot", "two", now), Line("out", "bot", "three", now)], conversation_id=conv.id
        )
        report = await store.create_report(
            s,
            reference="HC-2345-6789",
            channel="console",
            clear={"role": "victim"},
            sealed={"description": "x"},
            chat_key=None,
            reply_address=None,
            conversation_id=conv.id,
            at=now,
        )
        await store.delete_conversation(s, conv.id)
    async with db.transaction() as s:
        lines = await store.transcript(s, report_id=report.id)
    assert [(line.direction, line.text) for line in lines] == [
        ("in", "one"),
        ("out", "two"),
        ("out", "three"),
    ]


@every_backend
async def test_outbox_delivers_each_chat_in_order(db: Database, config: Config) -> None:
    store = store_for(config)
    now = utcnow()
    async with db.transaction() as s:
        await store.enqueue(
            s, channel="telegram", chat_key="a", address="1", messages=[{"text": "a1"}, {"text": "a2"}]
        )
        await store.enqueue(s, channel="telegram", chat_key="b", address="2", messages=[{"text": "b1"}])
    async with db.transaction() as s:
        first = await store.claim_due(
            s, "telegram", now=now + timedelta(seconds=1), lease=timedelta(seconds=60)
        )
    assert sorted(p.message["text"] for p in first) == ["a1", "b1"]
    # a1 is leased but not sent: a2 must wait behind it, and nothing is claimed twice
    async with db.transaction() as s:
        again = await store.claim_due(
            s, "telegram", now=now + timedelta(seconds=2), lease=timedelta(seconds=60)
        )
    assert again == []
    async with db.transaction() as s:
        await store.mark_sent(s, [p.id for p in first], at=now)
        nxt = await store.claim_due(
            s, "telegram", now=now + timedelta(seconds=3), lease=timedelta(seconds=60)
        )
    assert [p.message["text"] for p in nxt] == ["a2"]
    assert [p.address for p in nxt] == ["1"]


async def test_sqlite_files_are_private_to_the_owner(db: Database, config: Config) -> None:
    import stat
    from pathlib import Path

    if not db.is_sqlite:
        pytest.skip("file modes are a SQLite matter")
    store = store_for(config)
    async with db.transaction() as s:
        await store.record_receipt(s, "console", "x")
    base = Path(db.url.split("///", 1)[1])
    for path in (base, Path(f"{base}-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_the_sqlite_fast_path_stores_exactly_what_sqlalchemy_would(db: Database) -> None:
    # storage.steps runs its built statements on the sqlite3 cursor with SQLAlchemy's own conversions;
    # the bytes stored must be the same as through SQLAlchemy (times, dates, JSON, booleans, NULLs).
    from datetime import UTC, date, datetime

    from sqlalchemy import Connection, text

    from storage import steps

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
        steps._rows(conn, steps._REPORT_INSERT, values)
        conn.execute(steps._REPORT_INSERT, {**values, "reference": "HC-BBBB-BBBB"})
        rows = conn.execute(text("SELECT * FROM report ORDER BY id")).all()
        return [tuple(v for k, v in r._mapping.items() if k not in ("id", "reference")) for r in rows]

    fast, through_sqlalchemy = await db.run_step(both)
    assert fast == through_sqlalchemy
    assert "2026-03-04 05:06:07.890123" in fast and '["verbal", "online"]' in fast
