"""`reportbot reply` on Telegram and WhatsApp: a report made through the channel's real webhook, then the
staff reply delivered by the channel's real sender. Only the network edge is fake: the Bot API
(tests/fakes/telegram_api.py) and twilio's HTTP client (tests/channels/whatsapp_edge.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from bot.channels.telegram.send import Pacer, TelegramSender
from bot.channels.telegram.webhook import TelegramChannel
from bot.channels.whatsapp.send import database_lookup, make_sender
from bot.channels.whatsapp.webhook import whatsapp_routes
from bot.config import Config
from bot.server import create_app
from bot.service import ReportService
from bot.staff import Staff, StaffError
from storage.db import Database
from storage.models import OutboxMessage, Report
from storage.schema import upgrade
from tests.channels.whatsapp_edge import BOT_NUMBER, PERSON, WHATSAPP_TOML, FakeTwilio, WhatsAppPerson
from tests.fakes.telegram_api import TOKEN, FakeBotAPI
from tests.staff.conversation import CONTACT_IN_CHAT

SECRET = "staff-test-secret-0123456789"
CHAT = 515151
WORDS = "Hello, this is Sam from the council. We have read your report. Can we call you on Monday?"
REFERENCE = re.compile(r"Your reference is (HC-[A-Z0-9]{4}-[A-Z0-9]{4})")


async def last_heard(db: Database, reference: str, ago: timedelta) -> None:
    """As if the person's last message came `ago` before now (WhatsApp's 24-hour window)."""
    async with db.transaction() as s:
        await s.execute(
            update(Report)
            .where(Report.reference == reference)
            .values(last_inbound_at=datetime.now(UTC) - ago)
        )


def framed(reference: str) -> str:
    return f"A message from our team about your report {reference}:\n\n{WORDS}"


async def test_reply_reaches_a_telegram_reporter_and_status_shows_it(
    make_config: Callable[..., Config],
) -> None:
    config = make_config(
        f'[telegram]\ntoken = "{TOKEN}"\nwebhook_secret = "{SECRET}"\n'
        'api_base_url = "https://telegram.test/bot"\n'
        "[limits]\nmessages_per_second = 1000\n"  # the test types far faster than a person can
    )
    api = FakeBotAPI()
    db = Database(config.database_url)
    await upgrade(db)
    service = ReportService(config, db)
    channel = TelegramChannel(config, service, api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05)
    app = create_app(config, service, [channel.routes()])

    async def say(client: httpx.AsyncClient, text: str) -> None:
        response = await client.post(
            "/telegram/webhook",
            json=api.text(CHAT, text),
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status_code == 200
        async with asyncio.timeout(10):
            while True:
                await channel.idle()
                async with db.transaction() as s:
                    if not await service.store.pending_count(s, "telegram"):
                        return
                await asyncio.sleep(0.02)

    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://reportbot.test") as client:
                for line in CONTACT_IN_CHAT:
                    await say(client, line)
                found = REFERENCE.search("\n".join(api.bot_texts(CHAT)))
                assert found, api.bot_texts(CHAT)[-3:]
                ref = found.group(1)

                staff = Staff(
                    config,
                    db,
                    who="test",
                    senders=lambda _: TelegramSender(api.bot(), pacer=Pacer(per_chat=0, overall=0)),
                )
                result = await staff.reply(ref, WORDS)
                assert result.delivered
                assert api.screen(CHAT)[-1].text == framed(ref)
                assert api.screen(CHAT)[-1].from_bot

                await say(client, f"status {ref}")
                assert f"A message from our staff: {WORDS}" in "\n".join(api.bot_texts(CHAT)[-2:])
    finally:
        await db.dispose()


async def test_a_staff_reply_sent_while_the_server_is_down_is_deleted_by_quick_exit(
    make_config: Callable[..., Config],
) -> None:
    """The staff command sends the reply itself (no server running): its id is kept like the server's."""
    config = make_config(
        f'[telegram]\ntoken = "{TOKEN}"\nwebhook_secret = "{SECRET}"\n'
        'api_base_url = "https://telegram.test/bot"\n'
        "[limits]\nmessages_per_second = 1000\n"
    )
    api = FakeBotAPI()
    db = Database(config.database_url)
    await upgrade(db)
    service = ReportService(config, db)

    async def serving(lines: list[str]) -> None:
        channel = TelegramChannel(
            config, service, api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05
        )
        app = create_app(config, service, [channel.routes()])
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://reportbot.test") as client:
                for line in lines:
                    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                    response = await client.post(
                        "/telegram/webhook", json=api.text(CHAT, line), headers=headers
                    )
                    assert response.status_code == 200
                    async with asyncio.timeout(10):
                        while True:
                            await channel.idle()
                            async with db.transaction() as s:
                                if not await service.store.pending_count(s, "telegram"):
                                    break
                            await asyncio.sleep(0.02)

    try:
        await serving(list(CONTACT_IN_CHAT))
        found = REFERENCE.search("\n".join(api.bot_texts(CHAT)))
        assert found
        staff = Staff(
            config,
            db,
            who="test",
            senders=lambda _: TelegramSender(api.bot(), pacer=Pacer(per_chat=0, overall=0)),
        )
        assert (await staff.reply(found.group(1), WORDS)).delivered
        assert api.screen(CHAT)[-1].text == framed(found.group(1))

        await serving(["exit"])
        assert [m.text for m in api.screen(CHAT)] == ["Chat closed."]
    finally:
        await db.dispose()


async def test_reply_reaches_a_whatsapp_reporter_inside_24_hours_and_is_refused_after(
    make_config: Callable[..., Config],
) -> None:
    config = make_config(WHATSAPP_TOML)
    db = Database(config.database_url)
    await upgrade(db)
    service = ReportService(config, db)
    twilio = FakeTwilio()
    app = create_app(config, service, [whatsapp_routes(config, service, http_client=twilio)])
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://reportbot.test") as client:
                person = WhatsAppPerson(client, service)
                for line in CONTACT_IN_CHAT:
                    await person.send(line)
                found = REFERENCE.search(person.last)
                assert found, person.last
                ref = found.group(1)

                staff = Staff(
                    config, db, who="test", senders=lambda _: make_sender(config, database_lookup(db), twilio)
                )
                sent_before = len(twilio.requests)
                await last_heard(db, ref, timedelta(hours=23))
                result = await staff.reply(ref, WORDS)
                assert result.delivered
                assert twilio.requests[sent_before:] == [
                    {
                        "method": "POST",
                        "uri": twilio.requests[-1]["uri"],
                        "data": {"To": PERSON, "From": BOT_NUMBER, "Body": framed(ref)},
                        "auth": twilio.requests[-1]["auth"],
                    }
                ]

                async with db.transaction() as s:
                    queued = int(
                        (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar() or 0
                    )
                await last_heard(db, ref, timedelta(hours=30))
                with pytest.raises(StaffError, match="24 hours") as refused:
                    await staff.reply(ref, WORDS)
                assert "Nothing was sent." in str(refused.value)
                async with db.transaction() as s:
                    after = int(
                        (await s.execute(select(func.count()).select_from(OutboxMessage))).scalar() or 0
                    )
                assert after == queued

                assert f"A message from our staff: {WORDS}" in await person.send(f"status {ref}")
    finally:
        await db.dispose()
