"""The step's one write (storage.writes.record_step) on both backends: storage, not the caller, decides
what is sealed; a report takes the conversation's transcript; an anonymous one keeps no link to the chat."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

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
