"""Promises to reporters, checked by reading the database afterwards: anonymity, `delete`, erase, purge,
key rotation and the audit trail. Staff commands run through the real CLI (`bot.cli.main`)."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.channels.console.chat import ConsoleSender
from bot.cli import main
from bot.config import Config, load_config
from bot.delivery import Outbox
from bot.service import ReportService
from storage.crypto import Cipher, DecryptError
from storage.db import Database
from storage.maintenance import rotate_keys, stale_values
from storage.models import (
    ENCRYPTED_COLUMNS,
    AuditEvent,
    Conversation,
    InboundReceipt,
    OutboxMessage,
    Report,
    TranscriptEntry,
)
from storage.store import Store
from tests.conftest import every_backend_postgresql_slow, raw_database_bytes, stored_text
from tests.reporting import (
    ANONYMOUS,
    CANARY_CHAT_ID,
    CANARY_STORY,
    IN_CHAT,
    converse,
    script,
)


async def deliver_all(service: ReportService) -> str:
    out = io.StringIO()
    await Outbox(service.db, service.store, lock=service.sqlite_writer).drain(
        ConsoleSender(out, terminal=False)
    )
    return out.getvalue()


async def all_rows(db: Database, table: type) -> list:
    async with db.transaction() as s:
        return list((await s.execute(select(table))).scalars())


async def decrypted_values(db: Database, cipher: Cipher) -> list[str]:
    """Every encrypted value in the database, decrypted."""
    values = []
    for table, columns in ENCRYPTED_COLUMNS.items():
        for row in await all_rows(db, table):
            for name in columns:
                token = getattr(row, name)
                if token is not None:
                    values.append(cipher.decrypt(token))
    return values


async def cli(*args: str) -> int:
    """Run `reportbot ARGS` in a thread (it runs its own event loop, as from a shell)."""
    return await asyncio.to_thread(main, list(args))


@every_backend_postgresql_slow
async def test_an_anonymous_report_keeps_no_link_to_the_chat(db: Database, config: Config) -> None:
    service = ReportService(config, db)
    outcomes = await converse(service, script(config, ANONYMOUS), delivery_prefix="tg")
    reference = outcomes[-1].reference
    assert reference is not None
    shown = await deliver_all(service)
    assert reference in shown  # the person saw their reference

    [report] = await all_rows(db, Report)
    assert (report.reference, report.anonymous, report.chat_key, report.reply_address_enc) == (
        reference,
        True,
        None,
        None,
    )
    assert await all_rows(db, Conversation) == []
    assert await all_rows(db, OutboxMessage) == []  # delivered, then gone: no address, no pseudonym
    pseudonym = service.chat_key("console", CANARY_CHAT_ID)
    text = await stored_text(db)
    assert pseudonym not in text
    assert CANARY_CHAT_ID not in text
    receipts = await all_rows(db, InboundReceipt)
    assert len(receipts) == len(outcomes)
    # Delivery ids are kept only as pseudonyms. (Not a search for "tg-" in the dump: ciphertext is
    # url-safe base64, whose alphabet holds "t", "g" and "-", so that matched by chance now and then.)
    raw_ids = {f"tg-{i}" for i in range(len(outcomes))}
    assert not raw_ids & {r.delivery_id for r in receipts}
    assert all(len(r.delivery_id) == 64 for r in receipts)
    for value in await decrypted_values(db, service.cipher):
        assert CANARY_CHAT_ID not in value and pseudonym not in value
    assert any(CANARY_STORY in v for v in await decrypted_values(db, service.cipher))  # the story is kept


@every_backend_postgresql_slow
async def test_a_report_with_contact_in_chat_keeps_the_reply_address(db: Database, config: Config) -> None:
    service = ReportService(config, db)
    outcomes = await converse(service, script(config, IN_CHAT))
    await deliver_all(service)
    [report] = await all_rows(db, Report)
    assert report.reference == outcomes[-1].reference and report.anonymous is False
    assert report.chat_key == service.chat_key("console", CANARY_CHAT_ID)
    assert service.cipher.decrypt(report.reply_address_enc) == CANARY_CHAT_ID
    assert CANARY_CHAT_ID not in await stored_text(db)  # in clear nowhere


async def test_the_delete_word_overwrites_the_draft_on_disk(db: Database, config: Config) -> None:
    service = ReportService(config, db)
    lines = script(config, ANONYMOUS, until="when")  # the story has been told
    await converse(service, lines)
    await deliver_all(service)
    [conv] = await all_rows(db, Conversation)
    tokens = [conv.draft_enc] + [t.text_enc for t in await all_rows(db, TranscriptEntry)]
    tokens += [m.message_enc for m in await all_rows(db, OutboxMessage)]
    before = raw_database_bytes(config)
    assert all(t.encode() in before for t in tokens[:1])

    [outcome] = await converse(service, ["delete"], start=datetime(2026, 3, 18, 10, 5, tzinfo=UTC))
    assert outcome.step is None
    await deliver_all(service)
    assert await all_rows(db, Conversation) == []
    assert await all_rows(db, TranscriptEntry) == []
    assert await all_rows(db, OutboxMessage) == []
    from storage.maintenance import checkpoint

    await checkpoint(db)
    after = raw_database_bytes(config)
    for token in tokens:
        assert token.encode() not in after


@every_backend_postgresql_slow
async def test_erase_removes_a_report_and_everything_linked(
    db: Database, config: Config, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = ReportService(config, db)
    keep = await converse(service, script(config, ANONYMOUS), chat_id="555000111")
    outcomes = await converse(service, script(config, IN_CHAT))
    reference = outcomes[-1].reference
    assert reference is not None
    [report] = [r for r in await all_rows(db, Report) if r.reference == reference]
    tokens = [report.sealed_enc, report.reply_address_enc]
    tokens += [t.text_enc for t in await all_rows(db, TranscriptEntry) if t.report_id == report.id]
    assert len(tokens) > 10

    assert await cli("--config", str(config_path), "erase", reference.lower()) == 0
    out = capsys.readouterr().out
    assert f"erased {reference}" in out and "transcript_entries=" in out

    refs = [r.reference for r in await all_rows(db, Report)]
    assert refs == [keep[-1].reference]  # the other report is untouched
    assert [t for t in await all_rows(db, TranscriptEntry) if t.report_id == report.id] == []
    assert [m for m in await all_rows(db, OutboxMessage) if m.report_id == report.id] == []
    text = await stored_text(db)
    for token in tokens:
        assert token not in text
    if db.is_sqlite:
        raw = raw_database_bytes(config)
        for token in tokens:
            assert token.encode() not in raw  # secure_delete and a truncated WAL: the bytes are gone
    [event] = await all_rows(db, AuditEvent)
    assert (event.action, event.reference, event.count) == ("erase", reference, 1)
    assert event.actor

    assert await cli("--config", str(config_path), "erase", reference) == 1  # nothing left to erase
    assert "no report" in capsys.readouterr().err
    assert await cli("--config", str(config_path), "erase", "HC-0000") == 1
    assert len(await all_rows(db, AuditEvent)) == 1


@every_backend_postgresql_slow
async def test_purge_deletes_by_age_and_prints_counts_only(
    db: Database, config: Config, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = ReportService(config, db)
    now = datetime.now(UTC)
    old = now - timedelta(days=config.service.report_retention_days + 1)
    stale = now - timedelta(days=config.service.draft_retention_days + 1)
    old_report = await converse(service, script(config, ANONYMOUS), chat_id="1001", start=old)
    await converse(service, script(config, IN_CHAT), chat_id="1002", start=now - timedelta(days=3))
    await converse(service, script(config, IN_CHAT, until="when"), chat_id="1003", start=stale)
    await converse(service, script(config, IN_CHAT, until="when"), chat_id="1004", start=now)
    await deliver_all(service)

    assert await cli("--config", str(config_path), "purge") == 0
    out = capsys.readouterr().out
    assert "drafts=1" in out and "reports=1" in out
    assert "receipts=" in out and "outbox_messages=" in out
    assert CANARY_STORY not in out and "HC-" not in out

    reports = await all_rows(db, Report)
    assert len(reports) == 1 and reports[0].reference != old_report[-1].reference
    [draft] = await all_rows(db, Conversation)
    assert draft.chat_key == service.chat_key("console", "1004")
    entries = await all_rows(db, TranscriptEntry)
    assert {t.conversation_id for t in entries if t.report_id is None} == {draft.id}
    assert {t.report_id for t in entries if t.conversation_id is None} == {reports[0].id}
    [event] = await all_rows(db, AuditEvent)
    assert (event.action, event.count, event.refs) == ("purge", 2, [old_report[-1].reference])
    assert "drafts=1" in (event.detail or "")

    assert await cli("--config", str(config_path), "purge") == 0  # again: nothing more to do
    assert "drafts=0, reports=0" in capsys.readouterr().out


def with_keys(config_path: Path, keys: list[str]) -> Config:
    text = config_path.read_text(encoding="utf-8")
    listed = ", ".join(f'"{k}"' for k in keys)
    config_path.write_text(re.sub(r"encryption_keys = \[.*\]", f"encryption_keys = [{listed}]", text))
    return load_config(config_path, env={})


@every_backend_postgresql_slow
async def test_rotate_keys_survives_an_interruption_and_frees_the_old_key(
    db: Database, config: Config, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old_key = config.security.encryption_keys[0]
    service = ReportService(config, db)
    await converse(service, script(config, IN_CHAT), chat_id="2001")
    draft_lines = script(config, IN_CHAT)
    await converse(service, draft_lines[:8], chat_id="2002")  # a draft in progress
    before = sorted(await decrypted_values(db, service.cipher))

    new_key = Fernet.generate_key().decode()
    both = with_keys(config_path, [new_key, old_key])
    store = Store(Cipher(both.security.encryption_keys, both.security.pseudonym_key))
    stale = await stale_values(db, store)
    assert stale == len(before)
    part = await rotate_keys(db, store, actor="test", batch_size=3, max_batches=2)  # interrupted
    assert part.complete is False and 0 < part.rotated <= 3 * 2 * 3
    assert 0 < await stale_values(db, store) < stale

    assert await cli("--config", str(config_path), "rotate-keys", "--batch-size", "4") == 0
    out = capsys.readouterr().out
    assert "0 left under older keys" in out and "can now be removed" in out
    assert await stale_values(db, store) == 0

    only_new = with_keys(config_path, [new_key])
    new_cipher = Cipher(only_new.security.encryption_keys, only_new.security.pseudonym_key)
    assert sorted(await decrypted_values(db, new_cipher)) == before  # everything still reads
    with pytest.raises(DecryptError):  # and the old key alone no longer reads anything
        Cipher([old_key], config.security.pseudonym_key).decrypt((await all_rows(db, Report))[0].sealed_enc)
    # The person carries on with the draft under the new key only.
    fresh = ReportService(only_new, db)
    rest = await converse(
        fresh, draft_lines[8:], chat_id="2002", start=datetime(2026, 3, 18, 10, 1, tzinfo=UTC)
    )
    assert rest[-1].reference is not None
    events = [e for e in await all_rows(db, AuditEvent) if e.action == "rotate-keys"]
    assert [e.detail for e in events] == ["stopped early; run again", "complete"]
    assert sum(e.count for e in events) == stale


async def test_audit_lists_who_did_what_without_content(
    db: Database, config: Config, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = ReportService(config, db)
    outcomes = await converse(service, script(config, IN_CHAT))
    reference = outcomes[-1].reference
    assert reference is not None
    async with db.transaction() as s:  # what the staff tools record (export of two reports)
        await service.store.audit(
            s,
            actor="alice",
            action="export",
            count=2,
            references=[reference, "HC-2222-3333"],
            detail="format=jsonl",
        )
    assert await cli("--config", str(config_path), "purge") == 0
    assert await cli("--config", str(config_path), "erase", reference) == 0
    capsys.readouterr()

    assert await cli("--config", str(config_path), "audit") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[2] for line in lines] == ["erase", "purge", "export"]  # newest first
    assert "alice" in lines[2] and "count=2" in lines[2] and "HC-2222-3333" in lines[2]
    assert f"refs={reference}" in lines[0]
    assert CANARY_STORY not in "\n".join(lines)

    assert await cli("--config", str(config_path), "audit", "--action", "export") == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1
    assert await cli("--config", str(config_path), "audit", "--reference", reference) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    assert await cli("--config", str(config_path), "audit", "--since", "31/12/2026") == 1
    assert "not a date" in capsys.readouterr().err
