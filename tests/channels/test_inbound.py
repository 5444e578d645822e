"""Hardening of what comes in (issue 13, items 7, 8 and the first half of 10), through the real app:

- text that cannot be encoded (lone UTF-16 surrogates) is replaced with U+FFFD and answered like any
  other message, on Telegram's fast path, its PTB path and WhatsApp;
- replays: a Telegram update dated before the replay window, and a signed Twilio form without a
  MessageSid, are refused with a log line of counts only, and nothing is stored;
- values from outside (a chat type) reach the log only as one of a known set.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot.channels.telegram.webhook import MAX_UPDATE_AGE
from bot.channels.whatsapp.webhook import PATH
from storage.models import ChatMessage, Conversation, InboundReceipt, OutboxMessage, TranscriptEntry
from tests.channels.test_bursts import (
    CHAT,
    TELEGRAM_TOML,
    TelegramPhone,
    conversation_lines,
    telegram_phone,
    whatsapp_app,
)
from tests.channels.whatsapp_edge import PERSON, WHATSAPP_TOML, form, messages, sign

HOURS = 3600


@pytest_asyncio.fixture
async def phone(make_config: Any) -> AsyncIterator[TelegramPhone]:
    async for p in telegram_phone(make_config(TELEGRAM_TOML)):
        yield p


async def stored(phone: TelegramPhone) -> dict[str, int]:
    out = {}
    async with phone.service.db.transaction() as s:
        for table in (InboundReceipt, Conversation, OutboxMessage, ChatMessage, TranscriptEntry):
            out[table.__tablename__] = int(
                (await s.execute(select(func.count()).select_from(table))).scalar() or 0
            )
    return out


NOTHING = {"inbound_receipt": 0, "conversation": 0, "outbox": 0, "chat_message": 0, "transcript_entry": 0}


# -- undecodable text --------------------------------------------------------------------------------


async def test_telegram_fast_path_text_with_a_lone_surrogate_is_answered_and_kept(
    phone: TelegramPhone,
) -> None:
    update = phone.api.text(CHAT, "hello \ud800 there")
    assert "\\ud800" in json.dumps(update)  # as JSON writes it, and as the phone posts it
    assert (await phone.post(update)).status_code == 200
    await phone.settle()
    assert any("999" in t for t in phone.api.bot_texts(CHAT))  # the welcome: it was answered
    lines, _ = await conversation_lines(phone.service, "telegram", str(CHAT))
    assert lines == ["hello \ufffd there"]


async def test_telegram_ptb_path_text_and_captions_with_lone_surrogates_are_answered_and_kept(
    phone: TelegramPhone,
) -> None:
    await phone.act(phone.api.text(CHAT, "hi"))
    # Entities make it more than a plain text message: PTB's Update.de_json reads it.
    update = phone.api.text(CHAT, "\udc00 bold \ud83d")
    update["message"]["entities"] = [{"type": "bold", "offset": 0, "length": 1}]
    photo = phone.api.photo(CHAT, "AgACAgQAAxkBAAIBphoto-x", caption="the bus \udfff stop")
    for each in (update, photo):
        assert (await phone.post(each)).status_code == 200
    await phone.settle()
    lines, _ = await conversation_lines(phone.service, "telegram", str(CHAT))
    assert lines == ["hi", "\ufffd bold \ufffd", "[image/jpeg] the bus \ufffd stop"]
    assert len(phone.api.bot_texts(CHAT)) >= 3  # each was answered


async def test_whatsapp_text_with_an_encoded_lone_surrogate_is_answered_and_kept(make_config: Any) -> None:
    # A surrogate encoded as UTF-8 would encode it (ED A0 80) is not UTF-8: the form parser reads each
    # byte as U+FFFD, the signature is over what was posted, and the message is answered and kept.
    # (This already held before; it guards the path the Telegram fix does not cover.)
    async for wa in whatsapp_app(make_config(WHATSAPP_TOML)):
        fields = form("hello \ufffd\ufffd\ufffd", "SM" + "ab" * 16)
        body = urlencode({k: v for k, v in fields.items() if k != "Body"}) + "&Body=hello+%ED%A0%80"
        response = await wa.person.client.post(
            PATH,
            content=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": sign(fields),
            },
        )
        assert response.status_code == 200
        assert any("999" in m for m in messages(response))
        lines, _ = await conversation_lines(wa.service, "whatsapp", PERSON)
        assert lines == ["hello \ufffd\ufffd\ufffd"]


# -- replays -----------------------------------------------------------------------------------------


def dated(update: dict[str, Any], seconds_ago: float) -> dict[str, Any]:
    update["message"]["date"] = int(time.time() - seconds_ago)
    return update


async def test_a_telegram_update_older_than_the_replay_window_is_refused_and_nothing_is_stored(
    phone: TelegramPhone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reportbot")
    age = MAX_UPDATE_AGE.total_seconds()
    assert age >= 46 * HOURS  # longer than Telegram keeps an update (24 h), shorter than receipts (48 h)
    plain = dated(phone.api.text(CHAT, "Quillfeather replayed"), 49 * HOURS)  # the fast path's shape
    rich = dated(phone.api.text(CHAT, "Quillfeather again"), age + 60)
    rich["message"]["entities"] = [{"type": "bold", "offset": 0, "length": 1}]  # PTB's path
    for update in (plain, rich):
        assert (await phone.post(update)).status_code == 200  # acknowledged: Telegram must not retry
    await phone.settle()
    assert await stored(phone) == NOTHING
    assert phone.api.called("sendMessage") == []
    refused = [r.getMessage() for r in caplog.records if "older than" in r.getMessage()]
    assert refused[-1] == "telegram update refused: older than 47 hours channel=telegram refused=2"
    assert "Quillfeather" not in caplog.text and str(CHAT) not in caplog.text
    # A day-old update (the oldest Telegram still delivers) is handled as usual.
    assert (await phone.post(dated(phone.api.text(CHAT, "hello"), 24 * HOURS))).status_code == 200
    await phone.settle()
    assert any("999" in t for t in phone.api.bot_texts(CHAT))


async def test_a_press_on_a_keyboard_older_than_the_replay_window_is_not_run(phone: TelegramPhone) -> None:
    await phone.act(phone.api.text(CHAT, "hi"))
    keyboard = [m for m in phone.api.screen(CHAT) if m.buttons][-1]
    before = await stored(phone)
    press = phone.api.press(CHAT, keyboard.message_id, dict(keyboard.buttons)["Continue"])
    dated_press = dict(press, callback_query=dict(press["callback_query"]))
    dated_press["callback_query"]["message"] = dict(press["callback_query"]["message"])
    dated_press["callback_query"]["message"]["date"] = int(time.time() - 48 * HOURS)
    response = await phone.post(dated_press)
    assert response.status_code == 200
    await phone.settle()
    assert await stored(phone) == before  # no receipt, no step, no reply
    answer = response.json()  # a person who really pressed it is told, in the webhook's response
    assert answer["method"] == "answerCallbackQuery" and "too old" in answer["text"]
    assert answer["callback_query_id"] == press["callback_query"]["id"]


async def test_a_signed_twilio_form_without_a_message_sid_is_refused_and_nothing_is_stored(
    make_config: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reportbot")
    async for wa in whatsapp_app(make_config(WHATSAPP_TOML)):
        fields = {
            k: v for k, v in form("Zebedee says hello").items() if k not in ("MessageSid", "SmsMessageSid")
        }
        for _ in range(2):  # the same signed form, twice: neither is run
            response = await wa.person.post(fields)
            assert response.status_code == 400
        async with wa.service.db.transaction() as s:
            for table in (InboundReceipt, Conversation, OutboxMessage, TranscriptEntry):
                assert (await s.execute(select(func.count()).select_from(table))).scalar() == 0
        refused = [r.getMessage() for r in caplog.records if "MessageSid" in r.getMessage()]
        assert refused == [
            "webhook refused: no MessageSid channel=whatsapp refused=1",
            "webhook refused: no MessageSid channel=whatsapp refused=2",
        ]
        assert "Zebedee" not in caplog.text and "7700900123" not in caplog.text


# -- logs --------------------------------------------------------------------------------------------


async def test_a_hostile_chat_type_reaches_the_log_only_as_other(
    phone: TelegramPhone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hostile = "group\nCRITICAL reportbot: CANARY-7Q4X forged line"
    update = phone.api.group_text(-100555, "/start")
    update["message"]["chat"]["type"] = hostile
    assert (await phone.post(update)).status_code == 200
    await phone.settle()
    assert "CANARY-7Q4X" not in caplog.text
    assert all("\n" not in r.getMessage() for r in caplog.records)
    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("group message refused")]
    assert refused == ["group message refused type=other"]
    # A real group's type is named as it is.
    caplog.clear()
    await phone.act(phone.api.group_text(-100556, "/start"))
    assert "group message refused type=group" in caplog.text
