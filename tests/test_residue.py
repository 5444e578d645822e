"""No residue: after anything is deleted, nothing of it stays in the SQLite file, its -wal or its -shm.

Every encrypted value the database ever held during a conversation (each version of the draft, each
transcript line, each queued message) is collected as it is written; after the deletion, the raw bytes of
the three files are searched for each value that no row keeps any more, and for the chat's pseudonym.
`secure_delete` overwrites freed space in the database file only: without a checkpoint the old pages stay
in the write-ahead log (issue 13, item 5).
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, select

from bot.cli import main
from bot.config import Config
from bot.console import ConsoleSender
from bot.outbox import Outbox
from bot.service import Envelope, ReportService
from flows.types import Inbound
from storage.db import Database
from storage.models import ENCRYPTED_COLUMNS, Report
from tests.conftest import raw_database_bytes
from tests.reporting import ANONYMOUS, CANARY_CHAT_ID, IN_CHAT, START, script
from tests.test_telegram import Phone, phone, tg_config  # noqa: F401  (fixtures)

LATER = datetime(2026, 3, 18, 11, 0, tzinfo=UTC)


async def stored_tokens(db: Database) -> set[str]:
    """Every encrypted value in the database now."""
    found: set[str] = set()
    async with db.transaction() as s:
        for table, columns in ENCRYPTED_COLUMNS.items():
            for name in columns:
                column = getattr(table, name)
                found.update(t for t in (await s.execute(select(column))).scalars() if t is not None)
    return found


async def settled(db: Database) -> None:
    """Wait until a checkpoint asked for by the last step has run (a no-op step queues behind it)."""

    def nothing(_conn: Connection) -> None:
        return None

    await db.run_step(nothing)


async def talk(
    service: ReportService, lines: list[str], seen: set[str], *, at: datetime = START
) -> list[str]:
    """Send each line through the service, delivering its replies; collect every encrypted value written."""
    references = []
    for i, text in enumerate(lines):
        env = Envelope("console", CANARY_CHAT_ID, Inbound(text=text), received_at=at.replace(second=i % 60))
        outcome = await service.handle(env)
        if outcome.reference:
            references.append(outcome.reference)
        seen |= await stored_tokens(service.db)
        await Outbox(service.db, service.store, lock=service.sqlite_writer).drain(
            ConsoleSender(io.StringIO(), terminal=False)
        )
    await settled(service.db)
    return references


def residue(config: Config, gone: set[str], pseudonym: str | None) -> list[str]:
    """Which of the deleted values (and the pseudonym) are still somewhere in the raw files."""
    raw = raw_database_bytes(config)
    left = [token[:24] + "..." for token in gone if token.encode() in raw]
    if pseudonym is not None and pseudonym.encode() in raw:
        left.append("the chat pseudonym")
    return left


async def test_an_anonymous_report_leaves_no_draft_in_the_wal(db: Database, config: Config) -> None:
    service = ReportService(config, db)
    seen: set[str] = set()
    [reference] = await talk(service, script(config, ANONYMOUS), seen)
    gone = seen - await stored_tokens(db)
    assert len(gone) > 20, "every version of the draft was written and then deleted"
    assert residue(config, gone, service.chat_key("console", CANARY_CHAT_ID)) == []
    async with db.transaction() as s:
        assert (await s.execute(select(Report.reference))).scalar_one() == reference


async def test_a_report_with_contact_leaves_no_draft_in_the_wal(db: Database, config: Config) -> None:
    service = ReportService(config, db)
    seen: set[str] = set()
    await talk(service, script(config, IN_CHAT), seen)
    gone = seen - await stored_tokens(db)
    assert len(gone) > 20
    assert residue(config, gone, None) == []  # the report keeps the pseudonym, to reply in the chat


async def test_stop_exit_and_delete_leave_nothing_on_disk(db: Database, config: Config) -> None:
    service = ReportService(config, db)
    pseudonym = service.chat_key("console", CANARY_CHAT_ID)
    for word in ("stop", "exit", "delete"):
        seen: set[str] = set()
        await talk(service, script(config, ANONYMOUS, until="when"), seen)  # the story has been told
        await talk(service, [word], seen, at=LATER)
        assert await stored_tokens(db) == set(), word
        assert residue(config, seen, pseudonym) == [], word


async def test_erase_and_purge_leave_nothing_on_disk(db: Database, config: Config, config_path: Path) -> None:
    service = ReportService(config, db)
    seen: set[str] = set()
    [reference] = await talk(service, script(config, IN_CHAT), seen)
    pseudonym = service.chat_key("console", CANARY_CHAT_ID)
    assert await asyncio.to_thread(main, ["--config", str(config_path), "erase", reference]) == 0
    assert await stored_tokens(db) == set()
    assert residue(config, seen, pseudonym) == []

    # A draft left idle since March is past the 30 days of retention: purge deletes it.
    seen = set()
    await talk(service, script(config, ANONYMOUS, until="when"), seen)
    assert await asyncio.to_thread(main, ["--config", str(config_path), "purge"]) == 0
    assert await stored_tokens(db) == set()
    assert residue(config, seen, pseudonym) == []


async def test_telegram_quick_exit_leaves_no_message_ids_on_disk(phone: Phone, tg_config: Config) -> None:  # noqa: F811
    """Quick exit deletes the chat's messages on Telegram, then forgets their ids: those go from disk too.
    (The ids are forgotten while "Chat closed." is being sent; recording that orphan message as sent
    deletes it and asks for the checkpoint, storage.steps.mark_sent.)"""
    await phone.say("hi")
    await phone.press("Continue")
    await phone.press("No")
    await phone.say("help")
    seen = await stored_tokens(phone.db)
    assert await phone.say("exit") == ["Chat closed."]
    await phone.settle()
    await settled(phone.db)
    gone = seen - await stored_tokens(phone.db)
    assert len(gone) >= 3, "the draft and the kept ids of the person's messages were deleted"
    assert residue(tg_config, gone, None) == []
