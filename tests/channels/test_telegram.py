"""The Telegram channel end to end: real Update JSON posted to the real Starlette app, the real PTB Bot
talking to a fake Bot API (tests/fakes/telegram_api.py), a real SQLite database.

Each test reads as what the person does on their phone and what their phone then shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot.channels import sender_for
from bot.channels.telegram.answers import Answer, CallbackAnswers
from bot.channels.telegram.api import delete_webhook, set_webhook
from bot.channels.telegram.parse import callback_data
from bot.channels.telegram.send import Pacer, TelegramSender
from bot.channels.telegram.webhook import MAX_BACKGROUND, TelegramChannel
from bot.cli import main, serve
from bot.config import Config
from bot.server import build_app, create_app
from bot.service import ReportService
from storage import kept
from storage.db import Database
from storage.evidence import EvidenceStore
from storage.models import ChatMessage, Conversation, EvidenceFetch, InboundReceipt, OutboxMessage, Report
from tests.conftest import raw_database_bytes
from tests.fakes.telegram_api import TOKEN, FakeBotAPI, Shown

SECRET = "webhook-secret-0123456789abcdef"
CHAT = 424242001
TELEGRAM_TOML = f"""
[telegram]
token = "{TOKEN}"
webhook_secret = "{SECRET}"
api_base_url = "https://telegram.test/bot"
public_url = "https://reports.example.org"

[limits]
messages_per_second = 1000  # these tests press buttons far faster than a person can
"""


@dataclass
class Phone:
    """One person's Telegram app, talking to the bot through the webhook."""

    api: FakeBotAPI
    client: httpx.AsyncClient
    channel: TelegramChannel
    db: Database
    chat: int = CHAT
    presses: int = 0
    # What the webhook's 200 responses carried: a method the Bot API runs (answerCallbackQuery).
    answered: list[dict[str, Any]] = field(default_factory=list)

    async def post(self, update: dict[str, Any], secret: str | None = SECRET, **kw: Any) -> httpx.Response:
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        return await self.client.post("/telegram/webhook", json=update, headers=headers, **kw)

    async def settle(self, within: float = 10.0) -> None:
        """Wait until the outbox has delivered everything (the background loop does the work)."""
        async with asyncio.timeout(within):
            while True:
                await self.channel.idle()
                async with self.db.transaction() as s:
                    left = await self.channel.outbox.store.pending_count(s, "telegram")
                if left == 0:
                    return
                await asyncio.sleep(0.02)

    async def send(self, update: dict[str, Any]) -> list[str]:
        """Post an update, wait for the replies, return the texts that newly appeared or changed."""
        before = {m.message_id: m.text for m in self.api.screen(self.chat)}
        response = await self.post(update)
        assert response.status_code == 200
        if response.content:
            assert response.headers["content-type"] == "application/json"
            self.answered.append(response.json())
        await self.settle()
        return [
            m.text for m in self.api.screen(self.chat) if m.from_bot and before.get(m.message_id) != m.text
        ]

    async def say(self, text: str) -> list[str]:
        return await self.send(self.api.text(self.chat, text))

    def keyboard(self) -> Shown:
        """The newest bot message that has buttons."""
        return next(m for m in reversed(self.api.screen(self.chat)) if m.buttons)

    async def press(self, label: str, message: Shown | None = None) -> list[str]:
        message = message or self.keyboard()
        data = next(d for text, d in message.buttons if text.removeprefix("\u2705 ") == label)
        self.presses += 1
        return await self.send(self.api.press(self.chat, message.message_id, data))

    def labels(self) -> list[str]:
        return [text for text, _ in self.keyboard().buttons]


async def count(db: Database, table: Any) -> int:
    async with db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar() or 0)


def said(texts: list[str], *fragments: str) -> bool:
    joined = "\n".join(texts)
    return all(f in joined for f in fragments)


async def until(check: Callable[[], bool]) -> None:
    while True:
        if check():
            return
        await asyncio.sleep(0.02)


@pytest.fixture
def tg_config(make_config: Any) -> Config:
    return make_config(TELEGRAM_TOML)


@pytest_asyncio.fixture
async def phone(tg_config: Config) -> AsyncIterator[Phone]:
    api = FakeBotAPI()
    db = Database(tg_config.database_url)
    await db.create_schema()
    service = ReportService(tg_config, db)
    channel = TelegramChannel(
        tg_config, service, api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05
    )
    app = create_app(tg_config, service, [channel.routes()])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reportbot.test") as client:
            yield Phone(api, client, channel, db)


async def test_a_whole_report_by_button_presses_and_typed_text(phone: Phone, tg_config: Config) -> None:
    assert said(await phone.say("/start"), "private", "999")
    assert phone.labels() == ["Continue"]
    assert said(await phone.press("Continue"), "Is it happening now?")
    assert said(await phone.press("No"), "Which of these fits you best?")
    assert said(await phone.press("It happened to me"), "In your own words")
    assert said(await phone.say("A man shouted at me at the bus stop."), "Is there more")
    assert said(await phone.press("Done"), "Which of these happened? Pick all that fit")
    question = phone.keyboard()
    await phone.press("Verbal abuse or threats")
    ticked = phone.keyboard()
    assert ticked.message_id == question.message_id  # the toggle edits the question, no new message
    assert "\u2705 Verbal abuse or threats" in [text for text, _ in ticked.buttons]
    await phone.press("Online abuse")
    assert said(await phone.press("Done"), "Why do you think it happened?")
    await phone.press("Race or nationality")
    assert said(await phone.press("Done"), "When did it happen?")
    assert said(await phone.press("Yesterday"), "What time of day")
    assert said(await phone.press("Evening"), "Where did it happen?")
    where = phone.api.screen(CHAT)[-1]
    assert where.reply_keyboard[0] == [{"text": "Share my location", "request_location": True}]
    assert said(await phone.send(phone.api.location(CHAT, 54.5742, -1.2348)), "Has this happened before?")
    assert said(await phone.press("It keeps happening"), "the person or people who did it")
    assert said(await phone.say("Tall man, grey hoodie"), "Do you know who they are?")
    for label in ["No", "Yes", "No", "No", "Yes"]:
        r = await phone.press(label)
    assert said(r, "photos, screenshots or videos")
    assert said(await phone.send(phone.api.photo(CHAT, "AgACAgQAAxkBAAIBphoto-file-id")), "Send more")
    assert said(await phone.press("Done"), "support service")
    assert said(await phone.press("No"), "How would you like us to contact you")
    assert said(await phone.press("Here in this chat"), "Who can we send your report to?")
    await phone.press("Police")
    review = await phone.press("Done")
    assert said(review, "Here is your report", "A man shouted at me")
    done = await phone.press("Send report")
    assert said(done, "We have your report", "Your reference is HC-")
    reference = done[0].split("Your reference is ")[1].split(".")[0]

    # Every button press was answered in the webhook's own 200 response, so no phone is left showing a
    # spinner, and not one answerCallbackQuery request competed with the replies.
    assert phone.presses >= 20
    assert [a["method"] for a in phone.answered] == ["answerCallbackQuery"] * phone.presses
    assert len({a["callback_query_id"] for a in phone.answered}) == phone.presses
    assert phone.api.called("answerCallbackQuery", ok_only=False) == []
    async with phone.db.transaction() as s:
        report = (await s.execute(select(Report))).scalar_one()
        sealed = phone.channel.service.store.sealed(report)
    assert report.reference == reference
    assert report.incident_types == ["verbal", "online"]
    # The report keeps the evidence store's own reference, never Telegram's file id (the download is
    # see the evidence tests below; this file id is unknown to the fake, so nothing is stored).
    [photo] = sealed["evidence"]
    assert photo["ref"].startswith("evidence:") and photo["content_type"] == "image/jpeg"
    assert sealed["location"]["latitude"] == pytest.approx(54.5742)
    # Nothing in the file, its WAL or journal shows the chat id, the file id or what was typed.
    raw = raw_database_bytes(tg_config)
    for secret in (str(CHAT).encode(), b"AgACAgQAAxkBAAIBphoto-file-id", b"bus stop", b"grey hoodie"):
        assert secret not in raw


async def test_a_wrong_or_missing_secret_gets_403_and_stores_nothing(phone: Phone) -> None:
    update = phone.api.text(CHAT, "hello")
    assert (await phone.post(update, secret=None)).status_code == 403
    assert (await phone.post(update, secret="not-the-secret-0123456789")).status_code == 403
    assert (await phone.post(update, secret=SECRET + "x")).status_code == 403
    await phone.settle()
    for table in (InboundReceipt, Conversation, OutboxMessage, ChatMessage):
        assert await count(phone.db, table) == 0
    assert phone.api.called("sendMessage") == []


async def test_the_same_update_posted_three_times_changes_state_once_and_replies_once(phone: Phone) -> None:
    await phone.say("hi")
    update = phone.api.press(CHAT, phone.keyboard().message_id, callback_data("welcome", "continue"))
    query = update["callback_query"]["id"]
    for _ in range(3):  # each copy's 200 answers the query: Telegram may not have received the first
        response = await phone.post(update)
        assert response.status_code == 200
        assert response.json() == {"method": "answerCallbackQuery", "callback_query_id": query}
    await phone.settle()
    asked = [p["text"] for p in phone.api.called("sendMessage") if "happening now" in p["text"]]
    assert len(asked) == 1
    assert phone.api.called("answerCallbackQuery", ok_only=False) == []
    assert await count(phone.db, InboundReceipt) == 2
    async with phone.db.transaction() as s:
        assert (await s.execute(select(Conversation.step))).scalar_one() == "safety"


async def test_a_press_is_answered_in_the_webhook_response_and_its_edit_still_arrives(phone: Phone) -> None:
    await phone.say("hi")
    await phone.press("Continue")
    await phone.press("No")
    await phone.press("It happened to me")
    await phone.say("A man shouted at me.")
    await phone.press("Done")
    question = phone.keyboard()
    press = phone.api.press(CHAT, question.message_id, dict(question.buttons)["Verbal abuse or threats"])
    response = await phone.post(press)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "method": "answerCallbackQuery",
        "callback_query_id": press["callback_query"]["id"],
    }
    await phone.settle()
    ticked = phone.keyboard()
    assert ticked.message_id == question.message_id  # the question itself now shows the tick
    assert "\u2705 Verbal abuse or threats" in [text for text, _ in ticked.buttons]
    assert [c["message_id"] for c in phone.api.called("editMessageText")] == [question.message_id]
    assert phone.api.called("answerCallbackQuery", ok_only=False) == []


@contextlib.asynccontextmanager
async def polling(config: Config, api: FakeBotAPI) -> AsyncIterator[None]:
    """`reportbot` polling the fake Bot API (no webhook) until the block ends; it must stop cleanly."""
    db = Database(config.database_url)
    await db.create_schema()
    channel = TelegramChannel(
        config, ReportService(config, db), api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05
    )
    stop = asyncio.Event()
    await channel.start()
    task = asyncio.create_task(channel.poll(stop, long_poll=0))
    try:
        yield
    finally:
        stop.set()
        assert await task == 0
        await channel.stop()
        await db.dispose()


async def test_polling_answers_presses_from_its_own_bounded_queue(tg_config: Config) -> None:
    api = FakeBotAPI()
    api.updates.append(api.text(CHAT, "hello"))
    async with polling(tg_config, api), asyncio.timeout(10):
        await until(lambda: any(m.buttons for m in api.screen(CHAT)))
        welcome = next(m for m in api.screen(CHAT) if m.buttons)
        press = api.press(CHAT, welcome.message_id, dict(welcome.buttons)["Continue"])
        api.updates.append(press)
        await until(lambda: bool(api.called("answerCallbackQuery")))
        await until(lambda: said(api.bot_texts(CHAT), "Is it happening now?"))
    assert api.called("answerCallbackQuery") == [{"callback_query_id": press["callback_query"]["id"]}]


async def test_poll_mode_answers_wait_in_a_bounded_queue_that_drops_the_oldest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="reportbot")
    api = FakeBotAPI()
    answers = CallbackAnswers(api.bot(), limit=2)
    for query in ("q1", "q2", "q3", "q4", "q5"):  # faster than they can be sent
        answers.put(Answer(query))
    assert len(answers) == 2 and answers.dropped == 3
    await answers.sent()
    await answers.stop()
    assert [c["callback_query_id"] for c in api.called("answerCallbackQuery")] == ["q4", "q5"]
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped[-1] == "callback answer dropped: queue full limit=2 dropped=3"


async def test_background_calls_are_bounded_and_the_refused_are_counted(
    phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reportbot")
    release = asyncio.Event()
    ran: list[int] = []

    async def call(i: int) -> None:
        await release.wait()
        ran.append(i)

    for i in range(MAX_BACKGROUND + 3):
        phone.channel._later(call(i), "group refusal")
    assert phone.channel.refused_background == 3
    release.set()
    await phone.channel.idle()
    assert sorted(ran) == list(range(MAX_BACKGROUND))
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused[-1] == "group refusal refused: too many calls running refused=3"


async def test_telegram_failing_loses_no_reply_the_outbox_delivers_it_later(phone: Phone) -> None:
    phone.api.fail("sendMessage", 500)
    phone.api.fail("sendMessage", retry_after=1)
    response = await phone.post(phone.api.text(CHAT, "hello"))
    assert response.status_code == 200  # the person's message is safe; Telegram need not post it again
    await phone.settle(within=15)
    attempts = [c for c in phone.api.calls if c.method == "sendMessage"]
    assert [c.ok for c in attempts] == [False, False, True]
    assert attempts[2].at - attempts[1].at >= 0.9  # retry_after honoured
    assert said(phone.api.bot_texts(CHAT), "999")
    assert len(phone.api.bot_texts(CHAT)) == 1  # delivered once


async def test_exit_deletes_the_messages_of_this_conversation(phone: Phone) -> None:
    await phone.say("hi")
    await phone.press("Continue")
    await phone.press("No")
    await phone.say("help")
    shown_before = [m.message_id for m in phone.api.screen(CHAT)]
    assert len([m for m in phone.api.screen(CHAT) if not m.from_bot]) == 2  # "hi" and "help"
    assert len(shown_before) >= 7
    # One kept id per message on the screen, both ways (button presses are not messages).
    assert await count(phone.db, ChatMessage) == len(shown_before)
    after = await phone.say("exit")
    assert after == ["Chat closed."]
    screen = phone.api.screen(CHAT)
    assert [m.text for m in screen] == ["Chat closed."]
    deleted = [i for call in phone.api.called("deleteMessages") for i in call["message_ids"]]
    assert set(shown_before) <= set(deleted)
    assert await count(phone.db, ChatMessage) == 1  # only "Chat closed.", for a later exit
    assert await count(phone.db, Conversation) == 0


async def test_a_press_on_a_stale_keyboard_is_answered_and_asks_the_current_question(phone: Phone) -> None:
    await phone.say("hi")
    welcome = phone.keyboard()
    await phone.press("Continue")
    await phone.press("No")  # now at "who are you telling us about?"
    reply = await phone.press("Continue", message=welcome)
    assert said(reply, "Which of these fits you best?")
    assert [a["method"] for a in phone.answered] == ["answerCallbackQuery"] * 3
    async with phone.db.transaction() as s:
        assert (await s.execute(select(Conversation.step))).scalar_one() == "role"
    # An old "Skip" must not skip the current question either.
    safety = next(m for m in phone.api.screen(CHAT) if "happening now" in m.text)
    assert said(await phone.press("Skip", message=safety), "Which of these fits you best?")
    async with phone.db.transaction() as s:
        assert (await s.execute(select(Conversation.step))).scalar_one() == "role"


async def test_stickers_get_a_polite_answer(phone: Phone) -> None:
    await phone.say("hi")
    reply = await phone.send(phone.api.sticker(CHAT))
    assert said(reply, "I can only read text here")


async def test_groups_are_told_once_and_left_and_nothing_is_stored(phone: Phone) -> None:
    group = -100777
    assert (await phone.post(phone.api.group_text(group, "/start"))).status_code == 200
    await phone.settle()
    sent = phone.api.called("sendMessage")
    assert len(sent) == 1 and sent[0]["chat_id"] == group and "private chats" in sent[0]["text"]
    assert phone.api.called("leaveChat") == [{"chat_id": group}]
    for table in (InboundReceipt, Conversation, OutboxMessage, ChatMessage):
        assert await count(phone.db, table) == 0


async def test_malformed_and_oversized_updates_are_refused_without_retries(phone: Phone) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    bad = await phone.client.post("/telegram/webhook", content=b"{not json", headers=headers)
    assert bad.status_code == 200  # a retry would bring the same bytes
    big = await phone.client.post("/telegram/webhook", content=b"x" * 1_100_000, headers=headers)
    assert big.status_code == 413
    assert await count(phone.db, InboundReceipt) == 0
    health = await phone.client.get("/healthz")
    assert health.json() == {"status": "ok"}


async def test_polling_handles_updates_and_acknowledges_them_after_the_step(tg_config: Config) -> None:
    api = FakeBotAPI()
    api.updates.append(api.text(CHAT, "hello"))
    async with polling(tg_config, api), asyncio.timeout(10):
        while True:
            if api.bot_texts(CHAT):
                break
            await asyncio.sleep(0.02)
    assert said(api.bot_texts(CHAT), "999")
    handled = api.calls[[c.method for c in api.calls].index("getUpdates")].params
    assert handled.get("allowed_updates")
    assert any(o is not None and o > 500_000 for o in api.offsets)  # acknowledged after handling


async def test_set_webhook_registers_public_url_and_secret(tg_config: Config) -> None:
    api = FakeBotAPI()
    url = await set_webhook(tg_config, bot=api.bot())
    assert url == "https://reports.example.org/telegram/webhook"
    assert api.webhook is not None
    assert api.webhook["url"] == url and api.webhook["secret_token"] == SECRET
    await delete_webhook(tg_config, bot=api.bot())
    assert api.webhook is None


async def test_the_pacer_keeps_a_chat_to_one_message_per_interval() -> None:
    pacer = Pacer(per_chat=0.2, overall=1000)
    loop = asyncio.get_running_loop()
    times = []
    for _ in range(3):
        await pacer.wait("chat-a")
        times.append(loop.time())
    await pacer.wait("chat-b")  # another chat is not held up by chat-a
    assert loop.time() - times[-1] < 0.1
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(times))


async def test_exit_deletes_in_batches_of_100_and_leaves_what_telegram_no_longer_allows(phone: Phone) -> None:
    await phone.say("hi")
    service = phone.channel.service
    chat_key = kept.exit_key(service.cipher, "telegram", str(CHAT))  # where quick exit keeps ids
    now = datetime.now(UTC)
    async with phone.db.transaction() as s:
        for ref in range(1, 151):  # earlier messages of this chat, still deletable
            await service.store.remember_message(
                s, "telegram", chat_key, str(ref), at=now - timedelta(hours=1)
            )
        await service.store.remember_message(s, "telegram", chat_key, "7", at=now - timedelta(hours=49))
        await service.store.remember_message(s, "telegram", chat_key, "999999", at=now - timedelta(hours=49))
    said_after = await phone.say("exit")
    batches = [call["message_ids"] for call in phone.api.called("deleteMessages")]
    assert len(batches) == 2 and all(1 <= len(b) <= 100 for b in batches)
    deleted = {i for b in batches for i in b}
    assert set(range(1, 151)) <= deleted
    assert 999999 not in deleted  # over 48 hours old: Telegram would refuse, so it is not tried
    # 150, and "hi", the welcome and "exit"; the two too old are still on the phone, and it says so.
    assert said_after == [
        "I deleted 153 messages. I could not delete some others. "
        "Please delete this chat yourself to hide them."
    ]
    assert await count(phone.db, ChatMessage) == 1  # only the id of those words


async def test_serve_mounts_the_telegram_webhook_when_a_token_is_set(make_config: Any) -> None:
    config = make_config(TELEGRAM_TOML)
    app = build_app(config)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
        refused = await client.post("/telegram/webhook", json={"update_id": 1})
    assert refused.status_code == 403
    assert isinstance(sender_for(config, "telegram"), TelegramSender)
    await app.state.service.db.dispose()


def test_the_commands_fail_clearly_without_the_telegram_keys_they_need(
    make_config: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_secret = make_config(TELEGRAM_TOML.replace(f'webhook_secret = "{SECRET}"', ""))
    assert serve(no_secret) == 2
    assert "telegram.webhook_secret" in capsys.readouterr().err

    path = tmp_path / "config.toml"
    path.write_text(path.read_text().replace('public_url = "https://reports.example.org"', ""))
    assert main(["--config", str(path), "telegram", "set-webhook"]) == 2
    assert "telegram.public_url" in capsys.readouterr().err


# -- evidence: a photo downloaded by the delivery loop, kept only encrypted, never Telegram's file id --

FILE_ID = "AgACAgQAAxkBAAIBcanary-photo-id"
CANARY = b"\xff\xd8\xff\xe0 CANARY-TG-PHOTO-3KX9 " + bytes(range(256)) * 4


async def waiting(phone: Phone) -> int:
    async with phone.db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(EvidenceFetch))).scalar() or 0)


async def downloaded(phone: Phone, within: float = 10.0) -> None:
    """Wait until the delivery loop has no file left to download."""
    async with asyncio.timeout(within):
        while await waiting(phone):
            phone.channel.delivery.kick()
            await asyncio.sleep(0.02)


async def to_evidence(phone: Phone) -> None:
    await phone.say("/start")
    await phone.press("Continue")
    await phone.press("No")
    await phone.press("I saw it happen")
    await phone.say("Two men pulled a woman's headscarf at the bus stop.")
    await phone.press("Done")
    await phone.press("Verbal abuse or threats")
    await phone.press("Done")
    await phone.press("Religion or belief")
    await phone.press("Done")
    await phone.press("Yesterday")
    await phone.press("Evening")
    await phone.say("Bus stop on High Street")
    await phone.press("First time")
    await phone.press("Skip")
    for _ in range(5):
        last = await phone.press(phone.labels()[-1] if "Skip" not in phone.labels() else "Skip")
    assert said(last, "photos, screenshots or videos"), last


@pytest_asyncio.fixture
async def sent(phone: Phone) -> AsyncIterator[Phone]:
    phone.api.files[FILE_ID] = CANARY
    await to_evidence(phone)
    assert said(await phone.send(phone.api.photo(CHAT, FILE_ID)), "Send more")
    await downloaded(phone)
    yield phone


async def test_a_photo_is_downloaded_by_the_delivery_loop_and_kept_only_encrypted(
    sent: Phone,
    tg_config: Config,
) -> None:
    phone = sent
    assert [c["file_id"] for c in phone.api.called("getFile")] == [FILE_ID]
    assert phone.api.downloads == [f"files/{FILE_ID}"]
    await phone.press("Done")
    await phone.press("No")  # support
    await phone.press("Don't contact me")
    await phone.press(phone.labels()[0])
    await phone.press("Done")
    done = await phone.press("Send report")
    assert said(done, "Your reference is HC-")
    async with phone.db.transaction() as s:
        report = (await s.execute(select(Report))).scalar_one()
        sealed = phone.channel.service.store.sealed(report)
    [item] = sealed["evidence"]
    assert item["ref"].startswith("evidence:") and item["content_type"] == "image/jpeg"
    store = EvidenceStore(tg_config.data_path, tg_config.security.encryption_keys)
    found = store.open(item["ref"])
    assert found.data == CANARY and found.sha256 == hashlib.sha256(CANARY).hexdigest()
    # An anonymous report: no Telegram file id anywhere, and the photo's bytes nowhere in clear.
    raw = raw_database_bytes(tg_config)
    assert FILE_ID.encode() not in raw and b"CANARY-TG-PHOTO" not in raw
    for path in tg_config.data_path.rglob("*"):
        if path.is_file():
            assert b"CANARY-TG-PHOTO" not in path.read_bytes() and FILE_ID.encode() not in path.read_bytes()
    assert str(CHAT) not in repr(sealed)


async def test_a_file_telegram_cannot_give_is_given_up_and_never_blocks_the_chat(
    phone: Phone,
    tg_config: Config,
) -> None:
    await to_evidence(phone)
    phone.api.fail("getFile", 500, times=1)  # Telegram away once: tried again on a later round
    phone.api.files[FILE_ID] = CANARY
    assert said(await phone.send(phone.api.photo(CHAT, FILE_ID)), "Send more")
    await downloaded(phone)
    assert len(phone.api.called("getFile", ok_only=False)) == 2
    assert said(await phone.send(phone.api.photo(CHAT, "unknown-file-id")), "Send more")
    await downloaded(phone)  # Telegram says the id is invalid: given up, the row goes
    stored = list((tg_config.data_path / "evidence").glob("*.bin"))
    assert len(stored) == 1


async def test_a_voice_note_at_the_first_question_is_kept_and_downloaded(
    phone: Phone, tg_config: Config
) -> None:
    voice = b"OggS CANARY-TG-VOICE " + bytes(range(256))
    phone.api.files["voice-note-1"] = voice
    await phone.say("/start")
    assert said(await phone.send(phone.api.voice(CHAT, "voice-note-1")), "I have kept this with your report")
    await downloaded(phone)
    async with phone.db.transaction() as s:
        draft = phone.channel.service.cipher.decrypt_json(
            (await s.execute(select(Conversation))).scalar_one().draft_enc
        )
    [kept] = draft["answers"]["evidence"]
    assert kept["content_type"] == "audio/ogg"
    assert EvidenceStore(tg_config.data_path, tg_config.security.encryption_keys).read(kept["ref"]) == voice
