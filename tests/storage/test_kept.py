"""The message ids quick exit keeps (storage/kept.py): what it may still delete, when ids age out into a
marker, and when the marker goes. Real SQLite and PostgreSQL, real encryption; time given explicitly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, select

from bot.config import Config
from storage import kept
from storage.crypto import Cipher
from storage.db import Database
from storage.maintenance import purge
from storage.models import ChatMessage
from storage.store import Store
from tests.conftest import every_backend

NOW = datetime(2026, 3, 19, 15, 40, tzinfo=UTC)  # a Thursday
WINDOW = timedelta(hours=47, minutes=50)  # Telegram's 48 hours, less the sender's margin


def cipher_of(config: Config) -> Cipher:
    return Cipher(config.security.encryption_keys, config.security.pseudonym_key)


async def rows(db: Database) -> list[ChatMessage]:
    async with db.transaction() as s:
        return list((await s.execute(select(ChatMessage).order_by(ChatMessage.id))).scalars())


@every_backend
async def test_ids_are_sorted_by_what_telegram_still_allows_and_age_into_one_marker(
    db: Database, config: Config
) -> None:
    cipher = cipher_of(config)
    ages = {
        "1": timedelta(minutes=5),
        "2": timedelta(hours=47),  # sent 16:40 two days ago, kept as 16:00: 47h40 at most, inside
        "3": timedelta(hours=47, minutes=45),  # sent 15:55, kept as 15:00: maybe past, so unsure
        "5": timedelta(hours=48, minutes=20),  # sent 15:20, kept as 15:00: unsure (in truth past)
        "4": timedelta(hours=52),  # surely past
    }

    def seed(conn: Connection) -> None:
        for ref, age in ages.items():
            kept.keep(conn, cipher, "telegram", "chat-a", [ref], at=NOW - age)
        kept.keep(conn, cipher, "telegram", "chat-b", ["9"], at=NOW)

    await db.run_write(seed)
    stored = await rows(db)
    assert all((r.at.minute, r.at.second) == (0, 0) for r in stored)  # the hour, never the moment

    found = await db.run_write(
        lambda c: kept.kept_for_exit(c, cipher, "telegram", "chat-a", now=NOW, window=WINDOW)
    )
    assert found.sure == ("1", "2")  # batched with deleteMessages
    assert found.unsure == ("3", "5")  # deleteMessage one by one: its answer says what happened
    assert found.too_old == 1 and not found.older

    gone = await db.run_write(lambda c: kept.age_out(c, cipher, "telegram", before=NOW - kept.USELESS_AFTER))
    assert gone == 1
    found = await db.run_write(
        lambda c: kept.kept_for_exit(c, cipher, "telegram", "chat-a", now=NOW, window=WINDOW)
    )
    assert found.too_old == 0 and found.older  # "older messages exist" instead of the id
    [marker] = [r for r in await rows(db) if r.channel == "telegram" + kept.OLDER]
    assert marker.chat_key == "chat-a" and cipher.decrypt(marker.ref_enc) == ""
    assert marker.at.replace(tzinfo=UTC) == datetime(2026, 3, 16, tzinfo=UTC)  # the Monday of that week only


@every_backend
async def test_purge_ages_ids_out_and_drops_markers_after_the_draft_retention(
    db: Database, config: Config
) -> None:
    cipher = cipher_of(config)
    store = Store(cipher)
    days = config.service.draft_retention_days
    await db.run_write(
        lambda c: kept.keep(c, cipher, "telegram", "chat-a", ["7"], at=NOW - timedelta(days=3))
    )
    await purge(db, store, draft_retention_days=days, report_retention_days=2555, actor="t", now=NOW)
    assert [(r.channel, r.chat_key) for r in await rows(db)] == [("telegram+old", "chat-a")]

    later = NOW + timedelta(days=days + 8)
    await purge(db, store, draft_retention_days=days, report_retention_days=2555, actor="t", now=later)
    assert await rows(db) == []
