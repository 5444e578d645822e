"""The outgoing side under load and across workers (issue 17): a reply leaves as soon as its step commits,
with no second commit before it; a crash after that commit loses nothing; all workers together keep the
bot's overall rate and each chat's pace; people in a conversation are answered before staff follow-ups;
stopping hands back what was not sent. The real app, outbox, delivery loop and Telegram sender on a
real SQLite file; the fake Bot API (tests/fakes/telegram_api.py) is the only stand-in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.channels.telegram.send import OVERALL_RATE, PER_CHAT_INTERVAL, Pacer, TelegramSender
from bot.channels.telegram.webhook import TelegramChannel
from bot.config import Config
from bot.delivery import Outbox
from bot.render import to_dict
from bot.server import create_app
from bot.service import ReportService
from flows.types import Outbound
from storage.db import Database
from storage.models import OutboxMessage
from storage.outbox import FOLLOW_UP
from tests.channels.telegram_app import SECRET, TELEGRAM_TOML
from tests.conftest import every_backend
from tests.fakes.telegram_api import TOKEN, FakeBotAPI


@dataclass
class Worker:
    """One `reportbot serve` worker: its own service and Telegram channel, on the shared database."""

    service: ReportService
    channel: TelegramChannel
    client: httpx.AsyncClient

    async def post(self, update: dict[str, Any]) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        return await self.client.post("/telegram/webhook", json=update, headers=headers)


@dataclass
class Deployment:
    config: Config
    db: Database
    api: FakeBotAPI = field(default_factory=FakeBotAPI)
    sends: list[tuple[float, int]] = field(default_factory=list)  # (loop time, chat) of accepted sends
    writes: int = 0  # transactions the database ran (steps, claims, results)
    what: list[str] = field(default_factory=list)
    hold: Callable[[httpx.Request], Awaitable[None]] | None = None  # the network, slow or gone

    async def bot_api(self, request: httpx.Request) -> httpx.Response:
        if self.hold is not None:
            await self.hold(request)
        response = await self.api.handle(request)
        if request.url.path.endswith("/sendMessage") and response.status_code == 200:
            chat = int(self.api.calls[-1].params["chat_id"])
            self.sends.append((asyncio.get_running_loop().time(), chat))
        return response

    def bot(self) -> Any:
        from telegram import Bot
        from telegram.request import HTTPXRequest

        request = HTTPXRequest(httpx_kwargs={"transport": httpx.MockTransport(self.bot_api)})
        return Bot(TOKEN, base_url="https://telegram.test/bot", request=request, get_updates_request=request)

    def worker(self, *, pacer: Pacer | None = None, interval: float = 3600) -> TelegramChannel:
        service = ReportService(self.config, self.db)
        return TelegramChannel(self.config, service, self.bot(), pacer=pacer, interval=interval)

    async def queue(self, chat: int, texts: list[str], *, priority: int = 0) -> None:
        """Commit replies for a chat in its conversation, as a step (or, with FOLLOW_UP, `reportbot
        reply`) does."""
        service = ReportService(self.config, self.db)
        key = service.chat_key("telegram", str(chat))
        conversation = await self.db.run_write(
            lambda c: service.storage.open_conversation(c, "telegram", key).id
        )
        async with self.db.transaction() as s:
            await service.store.enqueue(
                s,
                channel="telegram",
                chat_key=key,
                address=str(chat),
                messages=[to_dict(Outbound(text=t)) for t in texts],
                conversation_id=conversation,
                priority=priority,
            )

    async def rows(self) -> list[OutboxMessage]:
        async with self.db.transaction() as s:
            return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


@pytest_asyncio.fixture
async def deployment(make_config: Callable[..., Config]) -> AsyncIterator[Deployment]:
    config = make_config(TELEGRAM_TOML + "\n[server]\nworkers = 2\n")
    db = Database(config.database_url)
    await db.create_schema()
    found = Deployment(config, db)
    run_write = db.run_write

    async def counted(work: Any, **kw: Any) -> Any:
        found.writes += 1
        found.what.append(getattr(getattr(work, "func", work), "__name__", repr(work)))
        return await run_write(work, **kw)

    db.run_write = counted  # type: ignore[method-assign]
    db.run_step = counted  # type: ignore[method-assign]
    yield found
    await db.dispose()


async def serving(deployment: Deployment, channel: TelegramChannel) -> AsyncIterator[Worker]:
    app = create_app(deployment.config, channel.service, [channel.routes()])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://reportbot.test") as client:
            yield Worker(channel.service, channel, client)


async def until(done: Callable[[], bool], within: float = 10.0) -> None:
    for _ in range(int(within / 0.01)):
        if done():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError


async def test_a_reply_goes_out_straight_after_its_step_commits_with_no_other_write_before_it(
    deployment: Deployment,
) -> None:
    chat = 8101
    seen_at_send: list[int] = []

    async def note(request: httpx.Request) -> None:
        if request.url.path.endswith("/sendMessage"):
            seen_at_send.append(deployment.writes)

    deployment.hold = note
    # The delivery loop's own rounds are an hour apart: only the hand-over can send this reply.
    channel = deployment.worker(pacer=Pacer(per_chat=0, overall=0))
    async for worker in serving(deployment, channel):
        await until(lambda: "_claim" in deployment.what)  # the loop's first round at start is over
        await asyncio.sleep(0.05)
        deployment.writes = 0
        response = await worker.post(deployment.api.text(chat, "hello"))
        assert response.status_code == 200
        await until(lambda: bool(deployment.api.bot_texts(chat)))
        assert seen_at_send == [1], (
            deployment.what
        )  # the step's own transaction, and nothing else, before the send
        await until(lambda: deployment.writes >= 2)  # then the result, committed afterwards
        await channel.outbox.flush()
        [row] = await deployment.rows()
        assert row.sent_at is not None and row.attempts == 1
    assert len(deployment.api.bot_texts(chat)) == 1


async def test_a_crash_between_the_commit_and_the_send_loses_no_reply(deployment: Deployment) -> None:
    chat = 8201
    gone, over = asyncio.Event(), asyncio.Event()

    async def dies(request: httpx.Request) -> None:
        if request.url.path.endswith("/sendMessage") and not gone.is_set():
            gone.set()
            await over.wait()  # the process is killed before Telegram hears of the reply
            raise httpx.ConnectError("the process is gone")

    deployment.hold = dies
    lease = timedelta(seconds=0.5)
    channel = deployment.worker(pacer=Pacer(per_chat=0, overall=0))
    channel.outbox.lease = lease
    async for worker in serving(deployment, channel):
        assert (await worker.post(deployment.api.text(chat, "hello"))).status_code == 200
        await asyncio.wait_for(gone.wait(), 10)
        # Killed: no result was written and nothing was handed back. After a restart, another worker's
        # loop sees nothing due until the lease runs out, then sends it.
        restarted = Outbox(deployment.db, worker.service.store)
        sender = TelegramSender(deployment.bot(), pacer=Pacer(per_chat=0, overall=0))
        assert (await restarted.drain(sender)).sent == 0
        await asyncio.sleep(lease.total_seconds() + 0.1)
        assert (await restarted.drain(sender)).sent == 1
        assert len(deployment.api.bot_texts(chat)) == 1
        over.set()


@pytest.mark.slow  # two workers against one database, paced in real time for about 3 s
@every_backend
async def test_two_workers_together_keep_the_bots_rate_and_each_chats_pace(deployment: Deployment) -> None:
    chats = list(range(8301, 8331))
    for chat in chats:
        await deployment.queue(chat, [f"First to {chat}.", f"Second to {chat}."])
    # Each worker built as `reportbot serve --workers 2` builds it (its share of the rate).
    workers = [deployment.worker(interval=0.2), deployment.worker(interval=0.2)]
    for w in workers:
        await w.start()
    try:
        await until(lambda: len(deployment.sends) == 2 * len(chats), within=30)
    finally:
        for w in workers:
            await w.stop()
    times = sorted(t for t, _ in deployment.sends)
    # No second holds more than the bot's rate, whichever worker sent what.
    assert max(sum(1 for t in times if start <= t < start + 1.0) for start in times) <= OVERALL_RATE
    for chat in chats:
        at = [t for t, c in deployment.sends if c == chat]
        assert len(at) == 2 and at[1] - at[0] >= PER_CHAT_INTERVAL - 0.1  # whichever worker sent each
        assert deployment.api.bot_texts(chat) == [f"First to {chat}.", f"Second to {chat}."]


@every_backend
async def test_a_staff_follow_up_queued_first_leaves_after_replies_to_people_in_a_conversation(
    deployment: Deployment,
) -> None:
    await deployment.queue(8401, ["Staff: we read your report, can we call you?"], priority=FOLLOW_UP)
    for chat in (8402, 8403, 8404):
        await deployment.queue(chat, [f"Next question for {chat}."])
    outbox = Outbox(deployment.db, ReportService(deployment.config, deployment.db).store)
    sender = TelegramSender(deployment.bot(), pacer=Pacer(per_chat=0, overall=0))
    await outbox.drain(sender)
    assert [chat for _, chat in deployment.sends] == [8402, 8403, 8404, 8401]


async def test_stopping_hands_back_what_was_not_sent_and_the_next_start_sends_it_at_once(
    deployment: Deployment,
) -> None:
    chats = list(range(8501, 8511))

    async def slow(request: httpx.Request) -> None:
        if request.url.path.endswith("/sendMessage"):
            await asyncio.sleep(0.2)  # a slow network: the replies pile up in the hand-over

    deployment.hold = slow
    channel = deployment.worker(pacer=Pacer(per_chat=0, overall=0))
    async for worker in serving(deployment, channel):
        posted = await asyncio.gather(*(worker.post(deployment.api.text(c, "hello")) for c in chats))
        assert all(r.status_code == 200 for r in posted)
        assert channel.delivery.in_memory > 0
        loop = asyncio.get_running_loop()
        began = loop.time()
        await channel.stop()
        assert loop.time() - began < 2.0  # the one in flight finishes; the rest is handed back
    left = [r for r in await deployment.rows() if r.sent_at is None]
    assert left and all(r.attempts == 0 for r in left)
    deployment.hold = None
    restarted = Outbox(deployment.db, ReportService(deployment.config, deployment.db).store)
    await restarted.drain(TelegramSender(deployment.bot(), pacer=Pacer(per_chat=0, overall=0)))
    for chat in chats:  # each person's reply, once, without waiting for a lease
        assert len(deployment.api.bot_texts(chat)) == 1


async def test_the_hand_over_is_bounded_and_closed_while_the_outbox_has_a_backlog(
    deployment: Deployment,
) -> None:
    channel = deployment.worker(pacer=Pacer(per_chat=0, overall=0))
    delivery = channel.delivery
    delivery.window = 3
    assert not delivery.reserve()  # not started: replies wait in the outbox
    await channel.start()
    try:
        assert [delivery.reserve() for _ in range(4)] == [True, True, True, False]
        for _ in range(3):
            delivery.hand(())
        delivery._backlogged = True  # what a round that found a full batch due leaves
        assert not delivery.reserve()
    finally:
        await channel.stop()


@pytest.mark.parametrize("workers", [1, 3])
def test_each_worker_sends_its_share_of_the_bots_rate(
    make_config: Callable[..., Config], workers: int
) -> None:
    config = make_config(TELEGRAM_TOML + f"\n[server]\nworkers = {workers}\n")
    db = Database(config.database_url)
    channel = TelegramChannel(config, ReportService(config, db), FakeBotAPI().bot())
    assert channel.sender.pacer.per_second == int(OVERALL_RATE / workers)
    assert channel.sender.per_chat == PER_CHAT_INTERVAL
    assert datetime.now(UTC)  # (built only; nothing to dispose beyond the engine)
