"""Outbound delivery under faults: a message that can never be sent, a crash with a send in flight, a Bot
API outage and its recovery. The real outbox and Telegram sender, a real SQLite database, the fake Bot
API (tests/fakes/telegram_api.py) as the only stand-in.

Each test reads as what each person's phone shows after the fault.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, func, select, update
from telegram import Bot
from telegram.request import HTTPXRequest

from bot.channels.console.chat import ConsoleSender
from bot.channels.telegram.send import Pacer, TelegramSender
from bot.config import Config
from bot.delivery import MAX_ATTEMPTS, PROBE_CAP, Delivery, Outbox
from bot.render import to_dict
from bot.service import ReportService
from bot.staff import Staff
from flows.types import Outbound
from storage.db import Database
from storage.models import AuditEvent, ChatMessage, OutboxHead, OutboxMessage
from storage.schema import upgrade
from tests.conftest import every_backend, every_backend_postgresql_slow
from tests.fakes.telegram_api import TOKEN, FakeBotAPI

TELEGRAM_TOML = f'[telegram]\ntoken = "{TOKEN}"\napi_base_url = "https://telegram.test/bot"\n'


@dataclass
class Desk:
    """A deployment's database and service, and the fake Bot API its outbox talks to."""

    config: Config
    db: Database
    service: ReportService
    api: FakeBotAPI = field(default_factory=FakeBotAPI)

    async def queue(
        self, chat: int | str, texts: list[str], *, address: str | None = None, at: datetime | None = None
    ) -> list[int]:
        """Commit replies for a chat, as a step does."""
        async with self.db.transaction() as s:
            return await self.service.store.enqueue(
                s,
                channel="telegram",
                chat_key=self.service.chat_key("telegram", str(chat)),
                address=address or str(chat),
                messages=[to_dict(Outbound(text=t)) for t in texts],
                at=at,
            )

    def sender(
        self, handler: Callable[[httpx.Request], Awaitable[httpx.Response]] | None = None
    ) -> TelegramSender:
        request = HTTPXRequest(httpx_kwargs={"transport": httpx.MockTransport(handler or self.api.handle)})
        bot = Bot(TOKEN, base_url="https://telegram.test/bot", request=request, get_updates_request=request)
        return TelegramSender(bot, pacer=Pacer(per_chat=0, overall=0))

    async def rows(self) -> list[OutboxMessage]:
        async with self.db.transaction() as s:
            return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


@pytest_asyncio.fixture
async def desk(make_config: Callable[..., Config]) -> AsyncIterator[Desk]:
    config = make_config(TELEGRAM_TOML)
    db = Database(config.database_url)
    await upgrade(db)
    yield Desk(config, db, ReportService(config, db))
    await db.dispose()


def replies(n: int, chat: int) -> list[str]:
    return [f"Reply {i} to chat {chat}." for i in range(1, n + 1)]


@every_backend_postgresql_slow
async def test_messages_that_can_never_be_sent_fail_alone_and_every_other_chat_gets_its_replies(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reportbot")
    # The poison comes first in the queue, so the round meets it before anyone else's replies.
    await desk.queue("malformed", ["To a chat id that is not a number."], address="not-a-chat-id")
    desk.api.refuse(777001, 400, "Bad Request: chat not found")
    await desk.queue(777001, ["To a chat that does not exist."])
    desk.api.refuse(777002, 403, "Forbidden: bot was blocked by the user")
    await desk.queue(777002, ["To someone who blocked the bot."])
    async with desk.db.transaction() as s:  # a stored message this version cannot read back
        await desk.service.store.enqueue(
            s, channel="telegram", chat_key="k", address="777003", messages=[{"no": "text"}]
        )
    await desk.queue(1001, replies(14, 1001))
    await desk.queue(1002, replies(3, 1002))

    got = await Outbox(desk.db, desk.service.store).drain(desk.sender())

    assert desk.api.bot_texts(1001) == replies(14, 1001)  # all fourteen, in order, once
    assert desk.api.bot_texts(1002) == replies(3, 1002)
    assert (got.sent, got.failed) == (17, 4)
    # None is left claimed or waiting (delivered or failed messages that belong to no report or
    # conversation are deleted at once, see storage.steps.mark_sent).
    assert [r for r in await desk.rows() if r.sent_at is None and r.failed_at is None] == []
    assert got.reasons == {"bad_address": 1, "chat_not_found": 1, "forbidden": 1, "unexpected-KeyError": 1}
    async with desk.db.transaction() as s:
        audited = list((await s.execute(select(AuditEvent))).scalars())
    assert sorted((a.action, a.count, a.detail) for a in audited) == [
        ("delivery-failed", 1, f"channel=telegram; reason={reason}")
        for reason in ("bad_address", "chat_not_found", "forbidden", "unexpected-KeyError")
    ]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("reportbot"))
    assert "reason=chat_not_found" in logged
    for secret in ("not-a-chat-id", "777001", "777002", "777003", "To a chat", "blocked the bot"):
        assert secret not in logged

    # After a restart the same kinds of messages still hold up nobody.
    await desk.queue("malformed", ["Again."], address="not-a-chat-id")
    await desk.queue(777001, ["Again."])
    await desk.queue(1001, ["After the restart."])
    again = await Outbox(desk.db, desk.service.store).drain(desk.sender())
    assert (again.sent, again.failed) == (1, 2)
    assert desk.api.bot_texts(1001)[-1] == "After the restart."


@every_backend
async def test_a_message_whose_attempts_are_used_up_fails_when_next_claimed_and_the_chat_goes_on(
    desk: Desk,
) -> None:
    # Its earlier tries ended without a result (the process died each time, or the sender raised):
    # every claim counted, and the limit holds on that path too.
    [stuck, _] = await desk.queue(2001, ["Stuck.", "The next one."])
    async with desk.db.transaction() as s:
        await s.execute(update(OutboxMessage).where(OutboxMessage.id == stuck).values(attempts=MAX_ATTEMPTS))
    got = await Outbox(desk.db, desk.service.store).drain(desk.sender())
    assert desk.api.bot_texts(2001) == ["The next one."]
    assert (got.sent, got.failed) == (1, 1)
    assert got.reasons == {"attempts_exhausted": 1}


def shown_twice(texts: list[str]) -> int:
    """Messages a phone shows twice in a row."""
    return sum(1 for a, b in pairwise(texts) if a == b)


@every_backend_postgresql_slow
async def test_a_crash_with_a_send_in_flight_repeats_at_most_that_one_message(desk: Desk) -> None:
    chats = [3001, 3002, 3003, 3004, 3005]
    for chat in chats:
        await desk.queue(chat, replies(3, chat))
    accepted = 0
    dying = asyncio.Event()

    async def dies_on_the_fourth(request: httpx.Request) -> httpx.Response:
        """Telegram accepts the fourth message, and the process dies before it hears so."""
        nonlocal accepted
        response = await desk.api.handle(request)
        if request.url.path.endswith("/sendMessage"):
            accepted += 1
            if accepted == 4:
                dying.set()
                await asyncio.Event().wait()  # never returns: the process is gone
        return response

    lease = timedelta(seconds=0.3)
    first = asyncio.create_task(
        Outbox(desk.db, desk.service.store, lease=lease).drain(desk.sender(dies_on_the_fourth))
    )
    try:
        await asyncio.wait_for(dying.wait(), 10)
        await asyncio.sleep(lease.total_seconds() + 0.1)  # the restart comes after the lease ran out
        await Outbox(desk.db, desk.service.store, lease=lease).drain(desk.sender())
        for chat in chats:
            texts = desk.api.bot_texts(chat)
            assert [t for i, t in enumerate(texts) if i == 0 or texts[i - 1] != t] == replies(3, chat)
        assert sum(shown_twice(desk.api.bot_texts(chat)) for chat in chats) <= 1
    finally:
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)


class FakeClock:
    def __init__(self) -> None:
        self.start = self.now_ = datetime.now(UTC)

    def now(self) -> datetime:
        return self.now_

    def seconds(self) -> float:
        return (self.now_ - self.start).total_seconds()


async def run_delivery(outbox: Outbox, sender: TelegramSender, clock: FakeClock, until: float) -> None:
    """What bot.delivery.Delivery does, on the fake clock: a round, then sleep until the interval or the
    next probe, whichever comes first."""
    while clock.seconds() < until:
        await outbox.drain(sender)
        paused = outbox.resume_in("telegram")
        clock.now_ += timedelta(seconds=min(2.0, paused) if paused > 0 else 2.0)


async def test_after_an_outage_the_first_reply_comes_within_5_seconds_and_the_api_was_not_hammered(
    desk: Desk,
) -> None:
    clock = FakeClock()
    chats = list(range(4001, 4021))
    for chat in chats:
        await desk.queue(chat, replies(2, chat), at=clock.now())
    outage = 150.0  # seconds of HTTP 500 from every call, then all is well
    calls: list[tuple[float, bool]] = []

    async def bot_api(request: httpx.Request) -> httpx.Response:
        desk.api.down = clock.seconds() < outage
        response = await desk.api.handle(request)
        if request.url.path.endswith("/sendMessage"):
            calls.append((clock.seconds(), response.status_code == 200))
        return response

    outbox = Outbox(desk.db, desk.service.store, clock=clock.now)
    await run_delivery(outbox, desk.sender(bot_api), clock, until=outage + 30)

    during = [at for at, ok in calls if not ok]
    first_ok = min(at for at, ok in calls if ok)
    assert outage <= first_ok <= outage + 5
    # One probe at a time while it was down, never more than PROBE_CAP apart, and no flood: twenty chats
    # waited, yet the API saw about one call every three or four seconds.
    assert all(b - a <= PROBE_CAP + 0.01 for a, b in pairwise([*during, first_ok]))
    assert len(during) <= outage / 3 + 5
    for chat in chats:  # nobody's reply was given up during the outage
        assert desk.api.bot_texts(chat) == replies(2, chat)


async def test_retry_after_is_honoured_for_the_whole_channel(desk: Desk) -> None:
    clock = FakeClock()
    for chat in (5001, 5002):
        await desk.queue(chat, replies(1, chat), at=clock.now())
    desk.api.fail("sendMessage", retry_after=30)
    calls: list[float] = []

    async def bot_api(request: httpx.Request) -> httpx.Response:
        calls.append(clock.seconds())
        return await desk.api.handle(request)

    await run_delivery(
        Outbox(desk.db, desk.service.store, clock=clock.now), desk.sender(bot_api), clock, until=40
    )
    assert calls[0] == 0 and calls[1] >= 30  # nothing at all in between, to no chat
    assert desk.api.bot_texts(5001) == replies(1, 5001) and desk.api.bot_texts(5002) == replies(1, 5002)


# -- reportbot reply says what happened -------------------------------------------------------------------

CHAT = 6001
WORDS = "Hello, this is Sam from the council. Can we call you on Monday?"


async def contactable_report(desk: Desk) -> str:
    async with desk.db.transaction() as s:
        await desk.service.store.create_report(
            s,
            reference="HC-7K3Q-9XPD",
            channel="telegram",
            clear={"role": "victim", "anonymous": False},
            sealed={"contact": {"in_chat": True}},
            chat_key=desk.service.chat_key("telegram", str(CHAT)),
            reply_address=str(CHAT),
            conversation_id=None,
            at=datetime.now(UTC),
        )
    return "HC-7K3Q-9XPD"


async def test_reply_says_sent_when_the_running_server_delivered_it(desk: Desk) -> None:
    ref = await contactable_report(desk)
    await desk.queue(CHAT, ["An earlier message of this chat."])
    sending, release = asyncio.Event(), asyncio.Event()

    async def slow_api(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/sendMessage") and not release.is_set():
            sending.set()
            await release.wait()
        return await desk.api.handle(request)

    async def server() -> None:  # the running `reportbot serve`, another process in real life
        outbox, sender = Outbox(desk.db, desk.service.store), desk.sender(slow_api)
        while True:
            await outbox.drain(sender)
            await asyncio.sleep(0.01)

    running = asyncio.create_task(server())
    try:
        await asyncio.wait_for(sending.wait(), 10)  # the server has this chat's earlier message in flight
        staff = Staff(desk.config, desk.db, who="test", senders=lambda _: desk.sender())
        reply = asyncio.create_task(staff.reply(ref, WORDS))
        await asyncio.sleep(0.3)
        release.set()
        result = await asyncio.wait_for(reply, 10)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert result.state == "sent"
    assert result.describe() == f"reportbot reply: sent to the reporter of {ref}"
    shown = desk.api.bot_texts(CHAT)
    assert shown[0] == "An earlier message of this chat." and len(shown) == 2 and WORDS in shown[1]


async def test_reply_says_failed_and_why_when_the_platform_refuses_it_for_good(desk: Desk) -> None:
    ref = await contactable_report(desk)
    desk.api.refuse(CHAT, 403, "Forbidden: bot was blocked by the user")
    staff = Staff(desk.config, desk.db, who="test", senders=lambda _: desk.sender())
    result = await staff.reply(ref, WORDS)
    assert (result.state, result.reason) == ("failed", "forbidden")
    assert "NOT delivered" in result.describe() and "forbidden" in result.describe()


async def test_reply_says_queued_and_why_when_the_platform_cannot_take_it_now(desk: Desk) -> None:
    ref = await contactable_report(desk)
    desk.api.fail("sendMessage", 500)
    staff = Staff(desk.config, desk.db, who="test", senders=lambda _: desk.sender())
    result = await staff.reply(ref, WORDS)
    assert result.state == "queued"
    assert "queued" in result.describe() and "it will be retried" in result.describe()


# -- the one delivery loop (bot.delivery.Delivery), as every channel runs it ---------------------------------


async def until(done: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.02)):
        if done():
            return
        await asyncio.sleep(0.02)


async def queue_console(desk: Desk, text: str, *, at: datetime | None = None, chat: str = "k") -> None:
    async with desk.db.transaction() as s:
        await desk.service.store.enqueue(
            s,
            channel="console",
            chat_key=chat,
            address="local",
            messages=[to_dict(Outbound(text=text))],
            at=at,
        )


async def test_what_an_earlier_run_left_goes_out_at_start_not_after_the_interval(desk: Desk) -> None:
    await queue_console(desk, "Left by the last run.")
    screen = io.StringIO()
    delivery = Delivery(
        Outbox(desk.db, desk.service.store), ConsoleSender(screen, terminal=False), interval=3600
    )
    await delivery.start()
    try:
        await until(lambda: "Left by the last run." in screen.getvalue())
    finally:
        await delivery.stop()
    assert screen.getvalue() == "Left by the last run.\n\n"


async def test_replies_a_webhook_response_may_still_carry_are_left_to_it(desk: Desk) -> None:
    now = datetime.now(UTC)
    await queue_console(desk, "Still in the webhook's hands.", at=now, chat="a")
    await queue_console(desk, "Its webhook gave up on it.", at=now - timedelta(minutes=5), chat="b")
    screen = io.StringIO()
    delivery = Delivery(
        Outbox(desk.db, desk.service.store),
        ConsoleSender(screen, terminal=False),
        interval=3600,
        older_than=timedelta(seconds=60),
    )
    await delivery.start()
    try:
        await until(lambda: "gave up" in screen.getvalue())
        await asyncio.sleep(0.2)
    finally:
        await delivery.stop()
    assert screen.getvalue() == "Its webhook gave up on it.\n\n"


async def test_message_ids_too_old_to_delete_are_forgotten_by_the_loop(desk: Desk) -> None:
    now = datetime.now(UTC)
    async with desk.db.transaction() as s:
        for ref, at in (("11", now - timedelta(days=3)), ("12", now - timedelta(hours=1))):
            await desk.service.store.remember_message(s, "telegram", "k", ref, at=at)
    delivery = Delivery(Outbox(desk.db, desk.service.store), desk.sender(), interval=3600)
    await delivery.start()

    async def kept() -> int:
        async with desk.db.transaction() as s:
            return int((await s.execute(select(func.count()).select_from(ChatMessage))).scalar() or 0)

    try:
        for _ in range(250):
            async with desk.db.transaction() as s:
                refs = await desk.service.store.message_refs(
                    s, "telegram", "k", since=now - timedelta(days=7)
                )
            if refs == ["12"]:
                break
            await asyncio.sleep(0.02)
    finally:
        await delivery.stop()
    assert refs == ["12"]
    # In place of the old id, one marker that the chat holds messages too old to delete (quick exit then
    # never says "Chat closed."), with no id in it.
    assert await kept() == 2
    async with desk.db.transaction() as s:
        marker = (await s.execute(select(ChatMessage).where(ChatMessage.channel != "telegram"))).scalar_one()
    assert marker.channel == "telegram+old" and marker.chat_key == "k"
    assert desk.service.cipher.decrypt(marker.ref_enc) == ""


@every_backend
async def test_a_chat_whose_queue_head_was_lost_still_gets_its_replies_in_order(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    # Delivery reads only the queue heads that the outbox's triggers keep (migration 0012). Were a head
    # ever lost, that chat would hear nothing: the loop's housekeeping finds and mends it.
    await desk.queue(777010, replies(2, 777010))
    async with desk.db.transaction() as s:
        await s.execute(delete(OutboxHead))
    caplog.set_level(logging.WARNING, logger="reportbot")
    delivery = Delivery(Outbox(desk.db, desk.service.store), desk.sender(), interval=3600)
    await delivery.start()
    try:
        await until(lambda: len(desk.api.bot_texts(777010)) == 2)
    finally:
        await delivery.stop()
    assert desk.api.bot_texts(777010) == replies(2, 777010)
    assert "outbox heads mended channel=telegram chats=1" in caplog.text
    assert "777010" not in caplog.text
    async with desk.db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(OutboxHead))).scalar() == 0
