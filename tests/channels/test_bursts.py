"""Nothing typed is lost to a burst (issue 11): a phone coming back online, a story sent in many parts or
several photos at once, from one chat. Real update JSON through the real app to the real PTB Bot and the
fake Bot API; Twilio posts signed with the real RequestValidator; a real SQLite database.

Telegram posts one chat's updates one after another (it waits for each answer before the next of that
chat), so its bursts are posted in sequence as fast as the app answers; Twilio posts every message at
once, so WhatsApp bursts are posted concurrently.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot.channels.telegram.send import Pacer
from bot.channels.telegram.webhook import TelegramChannel
from bot.channels.whatsapp.webhook import whatsapp_routes
from bot.config import Config
from bot.server import create_app
from bot.service import ReportService
from storage.db import Database
from storage.evidence import EvidenceStore
from storage.models import Conversation, EvidenceFetch, TranscriptEntry
from tests.channels.whatsapp_edge import PERSON, WHATSAPP_TOML, FakeTwilio, WhatsAppPerson, form, messages
from tests.fakes.telegram_api import TOKEN, FakeBotAPI

SECRET = "webhook-secret-0123456789abcdef"
CHAT = 424242777
# The default pace is 5 a second (bursts of 10); 10 a second (bursts of 20) keeps these tests short
# while a burst of 30 still goes past it. The old limit refused the 21st message on ("send your last
# message again") and dropped the rest.
TELEGRAM_TOML = f"""
[telegram]
token = "{TOKEN}"
webhook_secret = "{SECRET}"
api_base_url = "https://telegram.test/bot"

[limits]
messages_per_second = 10
"""
AGAIN = "send your last message again"
STORY_ASK = "In your own words"
EVIDENCE_ASK = "photos, screenshots or videos"
PREFERRED = ("Continue", "No", "It happened to me", "Yesterday", "Not sure")


async def conversation_lines(service: ReportService, channel: str, chat: str) -> tuple[list[str], str]:
    """(the person's transcript lines in order, the draft as JSON) of a chat's open conversation."""
    key = service.chat_key(channel, chat)
    async with service.db.transaction() as s:
        conv = (
            await s.execute(
                select(Conversation).where(Conversation.channel == channel, Conversation.chat_key == key)
            )
        ).scalar_one()
        rows = (
            await s.execute(
                select(TranscriptEntry)
                .where(TranscriptEntry.conversation_id == conv.id, TranscriptEntry.direction == "in")
                .order_by(TranscriptEntry.seq)
            )
        ).scalars()
        lines = [service.cipher.decrypt(r.text_enc) for r in rows]
        draft = json.dumps(service.cipher.decrypt_json(conv.draft_enc)) if conv.draft_enc else ""
    return lines, draft


def in_order(haystack: str, needles: list[str]) -> bool:
    """Every needle appears in the haystack, each after the one before."""
    at = -1
    for needle in needles:
        at = haystack.find(needle, at + 1)
        if at < 0:
            return False
    return True


# -- Telegram ----------------------------------------------------------------------------------------


@dataclass
class TelegramPhone:
    api: FakeBotAPI
    client: httpx.AsyncClient
    channel: TelegramChannel
    service: ReportService

    async def post(self, update: dict[str, Any]) -> httpx.Response:
        # As Telegram writes JSON: anything outside ASCII escaped (lone surrogates too, as "\ud800").
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
        return await self.client.post("/telegram/webhook", content=json.dumps(update), headers=headers)

    async def settle(self) -> None:
        async with asyncio.timeout(20):
            while True:
                await self.channel.idle()
                async with self.service.db.transaction() as s:
                    if await self.channel.outbox.store.pending_count(s, "telegram") == 0:
                        return
                await asyncio.sleep(0.02)

    def last(self) -> Any:
        return [m for m in self.api.screen(CHAT) if m.from_bot][-1]

    async def act(self, update: dict[str, Any]) -> None:
        assert (await self.post(update)).status_code == 200
        await self.settle()

    async def reach(self, phrase: str) -> None:
        """Answer questions the way a hurried person would until the bot asks `phrase`."""
        await self.act(self.api.text(CHAT, "/start"))
        for _ in range(40):
            last = self.last()
            if phrase in last.text:
                return
            labels = [label for label, _ in last.buttons]
            if not labels:
                await self.act(self.api.text(CHAT, "skip"))
                continue
            if "Done" in labels:  # pick all that fit: one, then Done
                ticked = any(label.startswith("\u2705") for label in labels)
                pick = "Done" if ticked else labels[0]
            else:
                pick = next((p for p in PREFERRED if p in labels), labels[0])
            data = dict(last.buttons)[pick]
            await self.act(self.api.press(CHAT, last.message_id, data))
        raise AssertionError(f"never reached {phrase!r}")


async def telegram_phone(config: Config) -> AsyncIterator[TelegramPhone]:
    api = FakeBotAPI()
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    channel = TelegramChannel(config, service, api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05)
    app = create_app(config, service, [channel.routes()])
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://rb.test") as c,
    ):
        yield TelegramPhone(api, c, channel, service)
    await db.dispose()


@pytest_asyncio.fixture
async def telegram(make_config: Any) -> AsyncIterator[TelegramPhone]:
    async for phone in telegram_phone(make_config(TELEGRAM_TOML)):
        yield phone


@pytest_asyncio.fixture
async def telegram_small_window(make_config: Any) -> AsyncIterator[TelegramPhone]:
    extra = "window_messages = 8\nwindow_kept = 5\nwindow_minutes = 10\n"
    async for phone in telegram_phone(make_config(TELEGRAM_TOML + extra)):
        yield phone


@pytest.mark.slow  # 30 updates of one chat, each run at the chat's pace (real time)
async def test_telegram_a_story_in_30_parts_in_one_second_is_kept_whole_and_in_order(
    telegram: TelegramPhone,
) -> None:
    await telegram.reach(STORY_ASK)
    before, _ = await conversation_lines(telegram.service, "telegram", str(CHAT))
    parts = [f"part {i:02d} of what happened" for i in range(1, 31)]
    updates = [telegram.api.text(CHAT, p) for p in parts]  # message ids grow, as on the phone
    for update in updates:  # Telegram's way: the next update of a chat once the last was answered
        assert (await telegram.post(update)).status_code == 200
    await telegram.settle()

    lines, draft = await conversation_lines(telegram.service, "telegram", str(CHAT))
    assert lines[len(before) :] == parts  # every part, in the order sent
    assert in_order(draft, parts)  # and every part is in the story
    said = telegram.api.bot_texts(CHAT)
    assert not any(AGAIN in t or "sent a lot of messages" in t for t in said)


@pytest.mark.slow  # 30 updates of one chat, each run at the chat's pace (real time)
async def test_telegram_updates_of_one_chat_posted_at_once_are_all_run_in_arrival_order(
    telegram: TelegramPhone,
) -> None:
    await telegram.reach(STORY_ASK)
    parts = [f"piece {i:02d}" for i in range(1, 31)]
    updates = [telegram.api.text(CHAT, p) for p in parts]
    responses = await asyncio.gather(*(telegram.post(u) for u in updates))
    assert {r.status_code for r in responses} == {200}
    await telegram.settle()
    lines, draft = await conversation_lines(telegram.service, "telegram", str(CHAT))
    assert [line for line in lines if line.startswith("piece")] == parts
    assert in_order(draft, parts)


@pytest.mark.slow  # 12 photos of one chat, each run at the chat's pace (real time), then downloaded
async def test_telegram_several_photos_at_once_are_all_kept_as_evidence(telegram: TelegramPhone) -> None:
    await telegram.reach(EVIDENCE_ASK)
    files = [f"AgACAgQAAxkBAAIBphoto-{i:02d}" for i in range(1, 13)]
    for file_id in files:
        telegram.api.files[file_id] = file_id.encode()  # each photo's bytes: its own id
    for file_id in files:  # a media group arrives as one update a photo
        assert (await telegram.post(telegram.api.photo(CHAT, file_id))).status_code == 200
    await telegram.settle()
    lines, _ = await conversation_lines(telegram.service, "telegram", str(CHAT))
    assert sum(1 for line in lines if line.startswith("[image/jpeg]")) == len(files)
    # Each kept in the order sent, downloaded by the delivery loop into the evidence store.
    config = telegram.service.config
    store = EvidenceStore(config.data_path, config.security.encryption_keys)
    async with asyncio.timeout(10):
        while True:
            async with telegram.service.db.transaction() as s:
                conv = (await s.execute(select(Conversation))).scalar_one()
                left = (await s.execute(select(func.count()).select_from(EvidenceFetch))).scalar()
            if not left:
                break
            telegram.channel.delivery.kick()
            await asyncio.sleep(0.02)
    evidence = telegram.service.cipher.decrypt_json(conv.draft_enc)["answers"]["evidence"]
    assert [store.read(item["ref"]).decode() for item in evidence] == files
    assert not any(AGAIN in t for t in telegram.api.bot_texts(CHAT))


async def test_telegram_past_the_volume_limit_the_person_is_told_once_and_what_was_kept_stays(
    telegram_small_window: TelegramPhone,
) -> None:
    phone = telegram_small_window
    sent = [f"line {i:02d}" for i in range(1, 21)]
    for text in sent:
        assert (await phone.post(phone.api.text(CHAT, text))).status_code == 200
    await phone.settle()
    said = phone.api.bot_texts(CHAT)
    told = [t for t in said if "sent a lot of messages" in t]
    full = [t for t in said if "can't keep any more messages" in t]
    assert len(told) == 1 and len(full) == 1  # each said once
    assert "Please wait 10 minutes" in told[0] and "kept them all" in told[0]
    lines, _ = await conversation_lines(phone.service, "telegram", str(CHAT))
    assert lines == sent[:13]  # 8 read and answered, 5 kept unanswered, in order
    assert not any(AGAIN in t for t in said)
    # "exit" still works past the limit: the chat is cleared and the draft deleted.
    await phone.act(phone.api.text(CHAT, "exit"))
    assert phone.api.called("deleteMessages")


# -- WhatsApp ----------------------------------------------------------------------------------------


@dataclass
class WhatsAppApp:
    person: WhatsAppPerson
    service: ReportService


async def whatsapp_app(config: Config) -> AsyncIterator[WhatsAppApp]:
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    routes = whatsapp_routes(config, service, http_client=FakeTwilio(), redeliver_every=0.05)
    app = create_app(config, service, [routes])
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="https://x") as c,
    ):
        yield WhatsAppApp(WhatsAppPerson(c, service), service)
    await db.dispose()


@pytest_asyncio.fixture
async def whatsapp(make_config: Any) -> AsyncIterator[WhatsAppApp]:
    # The default pace (5 a second, bursts of 10): Twilio posts all 30 at once and each waits its turn.
    config = make_config(WHATSAPP_TOML.replace("messages_per_second = 1000", "messages_per_second = 5"))
    async for app in whatsapp_app(config):
        yield app


async def whatsapp_reach(person: WhatsAppPerson, phrase: str) -> None:
    said = await person.send("Hi")
    for _ in range(40):
        if phrase in said:
            return
        options = dict((label, n) for n, label in re.findall(r"^(\d+)\. (.+?)(?: \u2713)?$", said, re.M))
        if not options:
            said = await person.send("skip")
            continue
        if "Done" in options:
            said = await person.send(next(iter(options.values())))
            if "Pick all that fit" in said or "Done" in said.splitlines()[-1]:
                said = await person.send("done")
            continue
        pick = next((p for p in PREFERRED if p in options), next(iter(options)))
        said = await person.send(options[pick])
    raise AssertionError(f"never reached {phrase!r}")


@pytest.mark.slow  # Twilio posts signed one by one, then the whole outbox delivered
async def test_whatsapp_30_messages_posted_at_once_are_all_kept_in_order_with_no_send_again(
    whatsapp: WhatsAppApp,
) -> None:
    person = whatsapp.person
    await whatsapp_reach(person, STORY_ASK)
    parts = [f"part {i:02d} of what happened" for i in range(1, 31)]
    posts = [form(p, person.next_sid()) for p in parts]
    responses = await asyncio.gather(*(person.post(f) for f in posts))
    assert {r.status_code for r in responses} == {200}
    replies = [m for r in responses for m in messages(r)]
    assert len(replies) >= len(parts)  # every message answered in its own response
    assert not any(AGAIN in m or "sent a lot of messages" in m for m in replies)
    lines, draft = await conversation_lines(whatsapp.service, "whatsapp", PERSON)
    assert [line for line in lines if line.startswith("part")] == parts
    assert in_order(draft, parts)


@pytest.mark.slow  # Twilio posts signed one by one, then the whole outbox delivered
async def test_whatsapp_several_photos_at_once_are_all_kept_as_evidence(whatsapp: WhatsAppApp) -> None:
    person = whatsapp.person
    await whatsapp_reach(person, EVIDENCE_ASK)
    urls = [
        f"https://api.twilio.com/2010-04-01/Accounts/AC5e/Messages/MM{i:02d}/Media/ME{i:02d}"
        for i in range(10)
    ]
    posts = [
        form(
            "",
            person.next_sid(),
            NumMedia="1",
            MediaUrl0=u,
            MediaContentType0="image/jpeg",
            MessageType="image",
        )
        for u in urls
    ]
    responses = await asyncio.gather(*(person.post(f) for f in posts))
    assert {r.status_code for r in responses} == {200}
    lines, _ = await conversation_lines(whatsapp.service, "whatsapp", PERSON)
    assert sum(1 for line in lines if line.startswith("[image/jpeg]")) == len(urls)
    # Each kept, in order, as a download left to the delivery loop (the draft holds store references).
    async with whatsapp.service.db.transaction() as s:
        rows = (await s.execute(select(EvidenceFetch).order_by(EvidenceFetch.id))).scalars().all()
        conv = (await s.execute(select(Conversation))).scalar_one()
    evidence = whatsapp.service.cipher.decrypt_json(conv.draft_enc)["answers"]["evidence"]
    assert [r.ref for r in rows] == [item["ref"] for item in evidence]
    assert [whatsapp.service.cipher.decrypt(r.source_enc) for r in rows] == urls
