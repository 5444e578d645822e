"""The Telegram webhook and `reportbot poll`: authenticate, parse, run the service's one step, answer.

    POST /telegram/webhook  --secret ok?-->  parse (text and press fast paths, else PTB)  -->  step  -->  200
                                                                                                  |
                              bot.delivery.Delivery (kicked after each commit)  <-----------------+
                              Outbox.drain(TelegramSender)  -->  Bot API (paced per chat and overall)

A button press is answered (answerCallbackQuery) in the webhook's 200 response itself, so it costs no
request and never competes with the replies; `reportbot poll` sends the answers from a bounded queue of
their own (bot/channels/telegram/answers.py). The few other calls made in the background (telling a
group the bot is private only) are bounded too: beyond `MAX_BACKGROUND` they are refused and counted.

Only private chats are served; a group or channel is told once and left, and nothing of it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import Bot, Update
from telegram.constants import ChatType
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError

from bot.channels.base import ChannelRoutes, read_body
from bot.channels.telegram.answers import Answer, CallbackAnswers, response_body
from bot.channels.telegram.api import ALLOWED_UPDATES, WEBHOOK_PATH, make_bot, start_bot
from bot.channels.telegram.parse import (
    CHANNEL,
    Press,
    button_press,
    message_envelope,
    plain_text_envelope,
    press_from_query,
    said_language,
)
from bot.channels.telegram.send import Pacer, TelegramSender, retry_seconds, telegram_pacer, words
from bot.config import Config
from bot.delivery import Delivery, Outbox
from bot.errors import BodyTooLarge, ConfigError
from bot.fetch import EvidenceFetcher
from bot.logs import CHAT_TYPES, known
from bot.service import Envelope, Outcome, ReportService
from flows import catalog, languages
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
MAX_BACKGROUND = 64  # background calls (group notices, leaving channels) in flight at once
_OK = Response(status_code=200)  # Starlette's Response is not changed by being sent: one serves all


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
        # One rate for the whole bot: each of `server.workers` processes sends its share of it.
        self.sender = TelegramSender(bot, pacer=pacer or telegram_pacer(config.server.workers))
        # The one delivery loop; it adds quick exit's deletions and their housekeeping (bot.delivery).
        # Evidence people send is downloaded there too, after each round (bot.fetch), never in the webhook.
        self.fetcher = EvidenceFetcher(config, self.outbox, self.sender)
        self.delivery = Delivery(self.outbox, self.sender, interval=interval, after_round=[self.fetcher.run])
        self._tasks: set[asyncio.Task[Any]] = set()
        self.answers = CallbackAnswers(bot)  # poll mode only: the webhook answers in its response
        self.refused_old = 0  # updates refused as older than the replay window, since start
        self.refused_background = 0  # background calls refused because MAX_BACKGROUND were running
        self._secret = config.telegram.webhook_secret.encode()

    async def start(self) -> None:
        await start_bot(self.bot)
        await self.delivery.start()
        # A step's replies are claimed in its own transaction and sent straight after its commit.
        self.service.handoffs[CHANNEL] = self.delivery

    async def stop(self) -> None:
        self.service.handoffs.pop(CHANNEL, None)
        await self.delivery.stop()
        await self.idle()
        await self.answers.stop()
        await self.bot.shutdown()

    async def idle(self) -> None:
        """Wait for the small calls started in the background (group notices, poll mode's answers)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self.answers.sent()

    def _later(self, call: Coroutine[Any, Any, Any], what: str) -> None:
        if len(self._tasks) >= MAX_BACKGROUND:
            call.close()
            self.refused_background += 1
            log.warning("%s refused: too many calls running refused=%d", what, self.refused_background)
            return

        async def run() -> None:
            try:
                await call
            except TelegramError as exc:
                log.info("%s failed error=%s", what, type(exc).__name__)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def handle_update(self, update: Update) -> Answer | None:
        """One update: the service's one step for a private chat; a short refusal for anything else.
        A button press returns the answer its query needs (the caller sends it)."""
        if update.callback_query is not None:
            return await self._on_press(press_from_query(update.update_id, update.callback_query))
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
        if not self._too_old(message.edit_date or message.date):
            await self._step(env)
        return None

    async def _step(self, env: Envelope) -> Outcome:
        outcome = await self.service.handle(env)
        self._deliver(outcome)
        return outcome

    def _deliver(self, outcome: Outcome) -> None:
        """Replies the step handed over are on their way already; others wait in the outbox: kick it."""
        if not outcome.claimed:
            self.delivery.kick()

    async def _on_press(self, press: Press) -> Answer:
        """Run the step a press asks for; the answer that stops its spinner. A repeat is answered too
        (on the webhook, free: the first answer may be what Telegram never received)."""
        if press.env is None:
            return Answer(press.query_id)
        if self._too_old(press.sent):
            # A press on a keyboard older than the replay window (or on a message Telegram no longer
            # shows, dated 0): not run. A person who really pressed it is asked to type instead.
            return Answer(press.query_id, words("old_button", await self.service.language_of(press.env)))
        await self._step(press.env)
        return Answer(press.query_id)

    def _too_old(self, sent: datetime | float | None) -> bool:
        """An update dated before the replay window (or not dated): refused, and counted in the log."""
        if isinstance(sent, datetime):
            stamp = sent.timestamp()
        elif isinstance(sent, int | float):
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
        # No conversation is kept for a group: the app language of whoever wrote or added the bot.
        user = update.effective_user
        said = said_language(user.language_code if user is not None else None)
        locale = languages.pick(said, self.config.languages.locales()) or catalog.DEFAULT_LOCALE

        async def tell_and_leave() -> None:
            await self.bot.send_message(chat_id, words("private_only", locale))
            await self.bot.leave_chat(chat_id)

        self._later(tell_and_leave(), "group refusal")

    # -- webhook ----------------------------------------------------------------------------------

    async def webhook(self, request: Request) -> Response:
        """POST /telegram/webhook: authenticate, parse, run the one step, answer."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not self._secret or not hmac.compare_digest(given, self._secret):
            log.warning("telegram webhook refused: bad or missing secret")
            return Response(status_code=403)
        try:
            body = await read_body(request, self.config.server.max_body_bytes)
        except BodyTooLarge:
            log.warning("telegram webhook refused: body too large")
            return Response(status_code=413)
        try:
            data, read = self._parse(body)
        except Exception as exc:  # a retry would bring the same bytes: acknowledge and drop
            log.warning("malformed telegram update error=%s", type(exc).__name__)
            return _OK
        try:
            answer = await self._dispatch(data, read)
        except PASSING as exc:  # Telegram will post it again; the receipt was rolled back with the rest
            log.warning("telegram update deferred error=%s", type(exc).__name__)
            return Response(status_code=503)
        except Exception as exc:
            # Not a passing problem: a retry would fail the same way and hold up the chat's later updates.
            log.error("telegram update not handled error=%s", type(exc).__name__)
            return _OK
        if answer is None:
            return _OK
        # The Bot API runs one method given as the webhook's response: the press costs no request.
        return Response(response_body(answer), media_type="application/json")

    def _parse(self, body: bytes) -> tuple[dict[str, Any], Envelope | Press | Update]:
        """The update's JSON, and its plain-text envelope, its press, or else PTB's Update of it."""
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        read: Envelope | Press | Update | None = plain_text_envelope(data) or button_press(data)
        return data, read if read is not None else Update.de_json(data, self.bot)

    async def _dispatch(self, data: dict[str, Any], read: Envelope | Press | Update) -> Answer | None:
        if isinstance(read, Envelope):
            if not self._too_old(data["message"]["date"]):
                await self._step(read)
            return None
        if isinstance(read, Press):
            return await self._on_press(read)
        return await self.handle_update(read)

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
                    answer = await self.handle_update(update)
                    if answer is not None:
                        self.answers.put(answer)
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
