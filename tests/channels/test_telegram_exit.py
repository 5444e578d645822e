"""Quick exit on Telegram says exactly what happened.

The real app and PTB talk to the fake Bot API (tests/fakes/telegram_api.py), which keeps what the
person's phone shows and records every deleteMessage(s) call. Each test reads as what the person does,
then what their phone shows and what the database still holds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.delivery import KeptMessages
from storage import kept
from storage.models import ChatMessage, Report
from tests.channels.test_telegram import CHAT, Phone, count, phone, said, tg_config  # noqa: F401

CLOSED = "Chat closed."
DO_IT_YOURSELF = "Please delete this chat yourself to hide them."


async def anonymous_report(phone: Phone) -> str:  # noqa: F811
    """A whole report, by buttons and typed text, in which the person asks not to be contacted."""
    await phone.say("/start")
    await phone.press("Continue")
    await phone.press("No")
    await phone.press("It happened to me")
    await phone.say("A man pulled my hijab on the number 12 bus.")
    await phone.press("Done")
    await phone.press("Verbal abuse or threats")
    await phone.press("Done")
    await phone.press("Religion or belief")
    await phone.press("Done")
    await phone.press("Yesterday")
    await phone.press("Evening")
    await phone.say("On the bus near the market")
    await phone.press("It keeps happening")
    await phone.say("A tall man, red scarf")
    for label in ["No", "Yes", "No", "No", "Yes"]:
        await phone.press(label)
    await phone.press("Done")  # no photos
    await phone.press("No")  # no support service
    assert said(await phone.press("Don't contact me"), "we will not contact you")
    if said(phone.api.bot_texts(CHAT)[-1:], "Who can we send your report to?"):
        await phone.press("Police")
        await phone.press("Done")
    done = await phone.press("Send report")
    assert said(done, "Your reference is HC-")
    return done[0].split("Your reference is ")[1].split(".")[0]


async def test_quick_exit_after_an_anonymous_report_deletes_every_message_and_says_chat_closed(
    phone: Phone,  # noqa: F811
) -> None:
    reference = await anonymous_report(phone)
    async with phone.db.transaction() as s:
        report = (await s.execute(select(Report))).scalar_one()
    assert report.reference == reference and report.chat_key is None  # anonymous: not tied to the chat
    handed_out = {m.message_id for m in phone.api.screen(CHAT)}  # every message, the bot's and the person's
    assert len(handed_out) >= 25
    assert any(not m.from_bot for m in phone.api.screen(CHAT))

    assert await phone.say("exit") == [CLOSED]

    # Every message the fake gave an id in this chat was deleted, the "exit" too: the phone shows only
    # the closing line.
    assert handed_out <= phone.api.deleted()
    assert [m.text for m in phone.api.screen(CHAT)] == [CLOSED]
    # The ids used are gone; only "Chat closed." is kept, for a later exit, and nothing names the report.
    assert await count(phone.db, ChatMessage) == 1


async def test_messages_telegram_will_not_delete_are_named_and_never_called_closed(
    phone: Phone,  # noqa: F811
) -> None:
    await anonymous_report(phone)
    screen = phone.api.screen(CHAT)
    refused = {screen[0].message_id, screen[3].message_id}  # Telegram says "message can't be deleted"
    phone.api.undeletable |= refused
    everything = {m.message_id for m in screen}

    after = await phone.say("exit")

    deleted = len(everything - refused) + 1  # and the person's "exit"
    assert after == [f"I deleted {deleted} messages. I could not delete some others. {DO_IT_YOURSELF}"]
    assert CLOSED not in phone.api.bot_texts(CHAT)
    shown = {m.message_id for m in phone.api.screen(CHAT)}
    assert refused <= shown  # still on the phone, as the words say
    assert len(shown) == 3  # the two refused, and the words
    # The refused batch was checked one message at a time, so the count above is what Telegram did.
    assert {p["message_id"] for p in phone.api.called("deleteMessage", ok_only=False)} >= refused


async def test_messages_older_than_48_hours_are_named_and_never_called_closed(
    phone: Phone,  # noqa: F811
) -> None:
    await phone.say("hi")
    service = phone.channel.service
    chat_key = kept.exit_key(service.cipher, "telegram", str(CHAT))
    three_days = datetime.now(UTC) - timedelta(days=3)
    async with phone.db.transaction() as s:  # a conversation three days ago, its ids kept then
        for ref in ("17", "18", "19"):
            await service.store.remember_message(s, "telegram", chat_key, ref, at=three_days)
    await KeptMessages(phone.channel.sender, phone.channel.outbox).forget_old()  # housekeeping: too old
    async with phone.db.transaction() as s:
        rows = (await s.execute(select(ChatMessage))).scalars().all()
    assert sorted(r.channel for r in rows if r.chat_key == chat_key).count("telegram" + kept.OLDER) == 1

    after = await phone.say("exit")

    assert len(after) == 1 and CLOSED not in after[0] and DO_IT_YOURSELF in after[0]
    assert after[0].startswith("I deleted 3 messages.")  # "hi", the welcome, "exit"
    assert not {17, 18, 19} & phone.api.deleted()  # Telegram would refuse: not even tried
    assert await count(phone.db, ChatMessage) == 1  # the marker was used; the words' id is kept


async def test_a_second_exit_deletes_the_first_one_s_words(phone: Phone) -> None:  # noqa: F811
    await phone.say("hi")
    assert await phone.say("exit") == [CLOSED]
    first = phone.api.screen(CHAT)[0].message_id
    assert await phone.say("exit") == [CLOSED]
    assert first in phone.api.deleted()
    assert [m.text for m in phone.api.screen(CHAT)] == [CLOSED]
