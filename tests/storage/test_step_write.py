"""The step's one write (storage.writes.record_step) on both backends: storage, not the caller, decides
what is sealed; a report takes the conversation's transcript; an anonymous one keeps no link to the chat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta

import pytest
from sqlalchemy import Connection, select, text

from bot.config import Config
from flows.types import ContactDetails, Media, ReportFields
from storage import writes
from storage.crypto import Cipher
from storage.db import Database
from storage.interface import Chat, NewReport, StepWrite, TranscriptLine
from storage.kept import exit_key
from storage.models import ChatMessage, utcnow
from tests.conftest import every_backend, stored_text

STORY = "CANARY-STORY-Bus-stop-shouting"
NAME = "CANARY-NAME-Jo-Bloggs"
PHONE = "+447700900123"
CHAT = Chat("telegram", "k" * 64, "CANARY-CHAT-ID-55501")


def fields(*, anonymous: bool, in_chat: bool = False) -> ReportFields:
    contact = ContactDetails(name=NAME, phone=PHONE, in_chat=in_chat)
    return ReportFields(
        role="victim",
        incident_types=("verbal",),
        motivations=("race",),
        description=STORY,
        occurred_on=date(2026, 3, 1),
        evidence=(Media("CANARY-FILE-ID", "photo"),),
        anonymous=anonymous,
        contact=contact,
        share_with=("police",),
    )


def cipher_of(config: Config) -> Cipher:
    return Cipher(config.security.encryption_keys, config.security.pseudonym_key)


async def submit(db: Database, cipher: Cipher, report: ReportFields, in_chat: bool) -> list[int]:
    at = utcnow()

    def work(conn: Connection) -> list[int]:
        conv = writes.open_conversation(conn, cipher, CHAT.channel, CHAT.chat_key)
        writes.record_step(
            conn,
            cipher,
            StepWrite(
                CHAT, conv.id, at, draft={"step": "story"}, lines=[TranscriptLine("in", "person", "hi", at)]
            ),
        )
        conv = writes.open_conversation(conn, cipher, CHAT.channel, CHAT.chat_key)
        new = NewReport("HC-2345-6789", asdict(report), in_chat=in_chat, code_hash=None)
        write = StepWrite(
            CHAT,
            conv.id,
            at,
            message_ref="CANARY-MESSAGE-REF",
            ended=True,
            report=new,
            lines=[TranscriptLine("out", "bot", "sent", at)],
            messages=[{"text": "Thank you"}],
        )
        return writes.record_step(conn, cipher, write)

    return await db.run_write(work)


async def one_row(db: Database, query: str) -> tuple[object, ...]:
    async with db.engine.connect() as conn:
        return tuple((await conn.execute(text(query))).one())


@every_backend
async def test_an_anonymous_report_is_sealed_and_keeps_nothing_of_the_chat(
    db: Database, config: Config
) -> None:
    cipher = cipher_of(config)
    ids = await submit(db, cipher, fields(anonymous=True), in_chat=False)
    assert len(ids) == 1
    role, kinds, chat_key, address, sealed = await one_row(
        db, "SELECT role, incident_types, chat_key, reply_address_enc, sealed_enc FROM report"
    )
    assert role == "victim" and "verbal" in str(kinds)
    assert chat_key is None and address is None
    opened = cipher.decrypt_json(str(sealed))
    assert opened["description"] == STORY
    assert opened["evidence"] == [{"ref": "CANARY-FILE-ID", "content_type": "photo"}]
    assert opened["contact"] is None  # an anonymous report keeps no contact details, even if given
    # The transcript went to the report in order; the conversation and its link to the chat are gone.
    assert await one_row(db, "SELECT count(*) FROM conversation") == (0,)
    assert await one_row(db, "SELECT count(*) FROM transcript_entry WHERE report_id IS NOT NULL") == (2,)
    # The person's message id stays for quick exit, under a pseudonym and the hour only: the chat_message
    # table has no column that could name the report or the conversation.
    async with db.transaction() as s:
        [kept] = (await s.execute(select(ChatMessage))).scalars().all()
    # Under a pseudonym of its own, which no other table uses: nothing joins it to the chat's other rows.
    assert kept.chat_key == exit_key(cipher, CHAT.channel, CHAT.address) != CHAT.chat_key
    assert cipher.decrypt(kept.ref_enc) == "CANARY-MESSAGE-REF"
    assert (kept.at.minute, kept.at.second, kept.at.microsecond) == (0, 0, 0)
    assert {c.name for c in ChatMessage.__table__.columns} == {"id", "channel", "chat_key", "at", "ref_enc"}
    assert await one_row(db, "SELECT count(*) FROM outbox WHERE report_id IS NULL") == (1,)
    everything = await stored_text(db)
    for canary in (STORY, NAME, PHONE, "CANARY-CHAT-ID", "CANARY-FILE-ID", "CANARY-MESSAGE-REF"):
        assert canary not in everything


@every_backend
async def test_a_report_answered_in_the_chat_keeps_its_contact_and_reply_address(
    db: Database, config: Config
) -> None:
    cipher = cipher_of(config)
    await submit(db, cipher, fields(anonymous=False, in_chat=True), in_chat=True)
    chat_key, address, sealed = await one_row(
        db, "SELECT chat_key, reply_address_enc, sealed_enc FROM report"
    )
    assert chat_key == CHAT.chat_key
    assert cipher.decrypt(str(address)) == CHAT.address
    contact = cipher.decrypt_json(str(sealed))["contact"]
    assert contact["name"] == NAME and contact["phone"] == PHONE and contact["in_chat"] is True
    assert await one_row(db, "SELECT count(*) FROM outbox WHERE report_id IS NOT NULL") == (1,)
    assert await one_row(db, "SELECT count(*) FROM chat_message") == (1,)
    everything = await stored_text(db)
    for canary in (STORY, NAME, PHONE, "CANARY-CHAT-ID", "CANARY-MESSAGE-REF"):
        assert canary not in everything


def _stored_for(conn: Connection, cipher: Cipher, chat: Chat) -> dict[str, list[tuple[object, ...]]]:
    """What one chat's steps stored, row by row, encrypted columns opened, ids and keys left out."""
    conversation = conn.execute(
        text("SELECT id, step, locale, updated_at, draft_enc FROM conversation WHERE chat_key = :k"),
        {"k": chat.chat_key},
    ).one()
    lines = conn.execute(
        text(
            "SELECT seq, at, direction, author, text_enc, report_id FROM transcript_entry"
            " WHERE conversation_id = :c ORDER BY seq"
        ),
        {"c": conversation[0]},
    ).all()
    sent = conn.execute(
        text(
            "SELECT channel, address_enc, message_enc, conversation_id = :c, report_id, created_at, attempts,"
            " next_attempt_at, priority, sent_at, failed_at FROM outbox WHERE chat_key = :k ORDER BY id"
        ),
        {"k": chat.chat_key, "c": conversation[0]},
    ).all()
    kept_ids = conn.execute(
        text("SELECT channel, at, ref_enc FROM chat_message WHERE chat_key = :k ORDER BY id"),
        {"k": exit_key(cipher, chat.channel, chat.address)},
    ).all()
    return {
        "conversation": [(*conversation[1:4], cipher.decrypt_json(conversation[4]))],
        "transcript": [(*r[:4], cipher.decrypt(r[4]), r[5]) for r in lines],
        "outbox": [
            (r[0], cipher.decrypt(r[1]) == chat.address, cipher.decrypt_json(r[2]), *r[3:]) for r in sent
        ],
        "chat_message": [(r[0], r[1], cipher.decrypt(r[2])) for r in kept_ids],
    }


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.postgres
async def test_a_step_that_goes_on_stores_in_one_statement_what_the_statements_one_by_one_store(
    db: Database, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On PostgreSQL a step whose conversation goes on writes its message id, draft, lines and replies in
    # one statement (storage.writes._record_in_one); the rows must be those of the general path.
    cipher = cipher_of(config)
    first, second = Chat("telegram", "a" * 64, "CHAT-A"), Chat("telegram", "b" * 64, "CHAT-B")
    at = utcnow()

    def steps(chat: Chat) -> Callable[[Connection], list[list[int]]]:
        def work(conn: Connection) -> list[list[int]]:
            ids = []
            for n, (lines, replies) in enumerate([(1, 0), (2, 1), (3, 2), (2, 3)]):
                conv = writes.open_conversation(conn, cipher, chat.channel, chat.chat_key)
                write = StepWrite(
                    chat,
                    conv.id,
                    at + timedelta(seconds=n),
                    message_ref=f"ref-{n}" if n % 2 else None,
                    draft={"step": f"q{n}", "locale": "pl", "answers": {"n": n}} if n != 2 else None,
                    lines=[
                        TranscriptLine("in" if i % 2 else "out", "person", f"line {n}.{i}", at)
                        for i in range(lines)
                    ],
                    messages=[{"text": f"reply {n}.{i}", "buttons": [["a", "b"]]} for i in range(replies)],
                )
                ids.append(writes.record_step(conn, cipher, write))
            return ids

        return work

    one_statement = await db.run_write(steps(first))
    monkeypatch.setattr(writes, "_goes_on", lambda write: False)
    one_by_one = await db.run_write(steps(second))
    assert [len(i) for i in one_statement] == [len(i) for i in one_by_one] == [0, 1, 2, 3]
    for ids in one_statement:
        assert ids == sorted(ids)

    def stored(conn: Connection) -> tuple[dict[str, list[tuple[object, ...]]], ...]:
        return _stored_for(conn, cipher, first), _stored_for(conn, cipher, second)

    fast, general = await db.run_write(stored)
    assert fast == general
    assert [line[4] for line in fast["transcript"]][:3] == ["line 0.0", "line 1.0", "line 1.1"]
    assert [m[2]["text"] for m in fast["outbox"]] == [
        "reply 1.0",
        "reply 2.0",
        "reply 2.1",
        "reply 3.0",
        "reply 3.1",
        "reply 3.2",
    ]
    assert fast["conversation"][0][:2] == ("q3", "pl") and len(fast["chat_message"]) == 2
