"""The Telegram webhook and `reportbot poll`: authenticate, parse, run the service's one step, answer.

    POST /telegram/webhook  --secret ok?-->  parse (plain text fast path, else PTB)  -->  step  -->  200
                                                                                         |
                              bot.delivery.Delivery (kicked after each commit)  <--------+
                              Outbox.drain(TelegramSender)  -->  Bot API (paced per chat and overall)

Only private chats are served; a group or channel is told once and left, and nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, CallbackQuery, Update
from telegram.constants import ChatType
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError

from bot.channels.base import ChannelRoutes, read_body
from bot.channels.telegram.api import ALLOWED_UPDATES, WEBHOOK_PATH, make_bot, start_bot
from bot.channels.telegram.parse import (
    CHANNEL,
    message_envelope,
    parse_callback_data,
    plain_text_envelope,
    said_language,
)
from bot.channels.telegram.send import Pacer, TelegramSender, retry_seconds, words
from bot.config import Config
from bot.delivery import Delivery, Outbox
from bot.errors import BodyTooLarge, ConfigError
from bot.fetch import EvidenceFetcher
from bot.logs import CHAT_TYPES, known
from bot.service import Envelope, Outcome, ReportService
from flows.types import Inbound
from storage.maintenance import RECEIPT_KEEP

log = logging.getLogger("reportbot.telegram")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name, not a secret)
# Problems a retry may fix (the database is busy or away): the update is not acknowledged.
PASSING: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, TimeoutError)
# Replays: an update's id is remembered for RECEIPT_KEEP (48 h), so a repeat within that is ignored. An
# update dated earlier than this is refused, so a replay cannot outlive its receipt. Telegram keeps an
# undelivered update for 24 hours, so no real update is this old; the hour covers the purge's timing
# and clock differences.
MAX_UPDATE_AGE = RECEIPT_KEEP - timedelta(hours=1)


# -- the channel ----------------------------------------------------------------------------------


class TelegramChannel:
    """Everything the Telegram channel runs in one process: update handling, sender, delivery."""

    def __init__(
        self,
        config: Config,
        service: ReportService,
        bot: Bot,
        *,
        pacer: Pacer | None = None,
        interval: float = 2.0,
    ) -> None:
        self.config = config
        self.service = service
        self.bot = bot
        self.outbox = Outbox(service.db, service.store, lock=service.sqlite_writer)
        self.sender = TelegramSender(bot, pacer=pacer)
        # The one delivery loop; it adds quick exit's deletions and their housekeeping (bot.delivery).
        # Evidence people send is downloaded there too, after each round (bot.fetch), never in the webhook.
        self.fetcher = EvidenceFetcher(config, self.outbox, self.sender)
        self.delivery = Delivery(self.outbox, self.sender, interval=interval, after_round=[self.fetcher.run])
        self._tasks: set[asyncio.Task[Any]] = set()
        self.refused_old = 0  # updates refused as older than the replay window, since start

    async def start(self) -> None:
        await start_bot(self.bot)
        await self.delivery.start()

    async def stop(self) -> None:
        await self.delivery.stop()
        await self.idle()
        await self.bot.shutdown()

    async def idle(self) -> None:
        """Wait for the small calls started in the background (callback answers, group notices)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _later(self, call: Awaitable[Any], what: str) -> None:
        async def run() -> None:
            try:
                await call
            except TelegramError as exc:
                log.info("%s failed error=%s", what, type(exc).__name__)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle_update(self, update: Update) -> Outcome | None:
        """One update: the service's one step for a private chat; a short refusal for anything else."""
        if update.callback_query is not None:
            return await self._on_callback(update.update_id, update.callback_query)
        chat = update.effective_chat
        if chat is None:
            return None
        if chat.type != ChatType.PRIVATE:
            self._refuse_group(update, chat.id, chat.type)
            return None
        env = message_envelope(update)
        if env is None:
            return None
        message = update.message or update.edited_message
        assert message is not None  # message_envelope made an envelope of it
        if self._too_old(message.edit_date or message.date):
            return None
        return await self._step(env)

    async def _step(self, env: Envelope) -> Outcome:
        outcome = await self.service.handle(env)
        self.delivery.kick()
        return outcome

    async def _on_callback(self, update_id: int, query: CallbackQuery) -> Outcome | None:
        message = query.message
        if message is None or message.chat.type != ChatType.PRIVATE or not query.data:
            self._later(query.answer(), "callback answer")
            return None
        if self._too_old(message.date):
            # A press on a keyboard older than the replay window (or on a message Telegram no longer
            # shows, dated 0): not run. A person who really pressed it is asked to type instead.
            self._later(query.answer(words("old_button")), "callback answer")
            return None
        step, key = parse_callback_data(query.data)
        env = Envelope(
            CHANNEL,
            str(message.chat.id),
            Inbound(option=key),
            delivery_id=str(update_id),
            button_step=step,
            button_ref=str(message.message_id),
            languages=said_language(query.from_user.language_code),
        )
        outcome = await self.service.handle(env)
        if not outcome.duplicate:  # a repeat was answered the first time
            self._later(query.answer(), "callback answer")
        self.delivery.kick()
        return outcome

    def _too_old(self, sent: datetime | int | None) -> bool:
        """An update dated before the replay window (or not dated): refused, and counted in the log."""
        if isinstance(sent, datetime):
            stamp = sent.timestamp()
        elif isinstance(sent, int):
            stamp = float(sent)
        else:
            stamp = 0.0
        if stamp > 0 and time.time() - stamp <= MAX_UPDATE_AGE.total_seconds():
            return False
        self.refused_old += 1
        log.warning(
            "telegram update refused: older than %d hours channel=%s refused=%d",
            MAX_UPDATE_AGE.total_seconds() // 3600,
            CHANNEL,
            self.refused_old,
        )
        return True

    def _refuse_group(self, update: Update, chat_id: int, chat_type: str) -> None:
        """Say once that the bot only works in private chats, then leave. Nothing of the group is kept."""
        if chat_type == ChatType.CHANNEL:
            self._later(self.bot.leave_chat(chat_id), "leave channel")
            return
        member = update.my_chat_member
        if member is not None and member.new_chat_member.status in ("left", "kicked"):
            return  # we were removed: nothing to say
        log.info("group message refused type=%s", known(chat_type, CHAT_TYPES))

        async def tell_and_leave() -> None:
            await self.bot.send_message(chat_id, words("private_only"))
            await self.bot.leave_chat(chat_id)

        self._later(tell_and_leave(), "group refusal")

    # -- webhook ----------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        """POST /telegram/webhook: authenticate, parse, run the one step, answer."""
        expected = self.config.telegram.webhook_secret.encode()
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not expected or not hmac.compare_digest(given, expected):
            log.warning("telegram webhook refused: bad or missing secret")
            return Response(status_code=403)
        try:
            body = await read_body(request, self.config.server.max_body_bytes)
        except BodyTooLarge:
            log.warning("telegram webhook refused: body too large")
            return Response(status_code=413)
        try:
            data, plain, update = self._parse(body)
        except Exception as exc:  # a retry would bring the same bytes: acknowledge and drop
            log.warning("malformed telegram update error=%s", type(exc).__name__)
            return Response(status_code=200)
        try:
            await self._dispatch(data, plain, update)
        except PASSING as exc:  # Telegram will post it again; the receipt was rolled back with the rest
            log.warning("telegram update deferred error=%s", type(exc).__name__)
            return Response(status_code=503)
        except Exception as exc:
            # Not a passing problem: a retry would fail the same way and hold up the chat's later updates.
            log.error("telegram update not handled error=%s", type(exc).__name__)
        return Response(status_code=200)

    def _parse(self, body: bytes) -> tuple[dict[str, Any], Envelope | None, Update | None]:
        """The update's JSON, and either its plain-text envelope or PTB's Update of it."""
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        plain = plain_text_envelope(data)
        update = Update.de_json(data, self.bot) if plain is None else None
        return data, plain, update

    async def _dispatch(self, data: dict[str, Any], plain: Envelope | None, update: Update | None) -> None:
        if plain is not None:
            if not self._too_old(data["message"]["date"]):
                await self._step(plain)
        elif update is not None:
            await self.handle_update(update)

    def routes(self) -> ChannelRoutes:
        return ChannelRoutes(
            routes=[Route(WEBHOOK_PATH, self.webhook, methods=["POST"])],
            startup=[self.start],
            shutdown=[self.stop],
        )

    # -- polling ----------------------------------------------------------------------------------

    async def poll(self, stop: asyncio.Event, *, long_poll: int = 30) -> int:
        """`reportbot poll`: the same handling through getUpdates. An update is acknowledged (the next
        offset) only after its step committed, so a crash loses nothing. Returns an exit code."""
        offset: int | None = None
        failures = 0
        while not stop.is_set():
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=long_poll,
                    allowed_updates=list(ALLOWED_UPDATES),
                    read_timeout=long_poll + 10,
                )
            except Conflict:
                log.error("getUpdates refused: a webhook is set (run `reportbot telegram delete-webhook`)")
                return 1
            except InvalidToken:
                log.error("getUpdates refused: telegram.token was rejected")
                return 1
            except TelegramError as exc:
                failures += 1
                wait = retry_seconds(exc) if isinstance(exc, RetryAfter) else min(60.0, 2.0**failures)
                log.warning("getUpdates failed error=%s retry_in=%.0fs", type(exc).__name__, wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
                continue
            failures = 0
            for update in updates:
                try:
                    await self.handle_update(update)
                except PASSING as exc:  # not acknowledged: getUpdates brings it again
                    log.warning("telegram update deferred error=%s", type(exc).__name__)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 2.0)
                    break
                except Exception as exc:
                    log.error("telegram update not handled error=%s", type(exc).__name__)
                offset = update.update_id + 1
        return 0


def telegram_routes(config: Config, service: ReportService, bot: Bot | None = None) -> ChannelRoutes:
    """The webhook route, with outbox delivery started and stopped with the app."""
    if not config.telegram.webhook_secret:
        raise ConfigError(
            "telegram.webhook_secret", "is required to serve the Telegram webhook (or use `reportbot poll`)"
        )
    channel = TelegramChannel(config, service, bot or make_bot(config))
    return channel.routes()


async def run_polling(
    config: Config, service: ReportService, bot: Bot | None = None, stop: asyncio.Event | None = None
) -> int:
    """`reportbot poll` until stopped (Ctrl-C or SIGTERM)."""
    channel = TelegramChannel(config, service, bot or make_bot(config))
    stop = stop or asyncio.Event()
    await channel.start()
    try:
        return await channel.poll(stop)
    finally:
        await channel.stop()
