"""The Telegram channel: Bot API updates in, Bot API calls out, through python-telegram-bot 22.

This module only translates. An `Update` (from the webhook or from `getUpdates`) becomes an `Envelope`
for the service's one step; an `Outbound` from the outbox becomes `sendMessage`, `editMessageText` or
`deleteMessages` calls. It never keeps conversation state (no ConversationHandler, no PTB persistence):
the database is the only truth. It never logs what people typed, a chat id or the bot token.

    POST /telegram/webhook  --secret ok?-->  Update.de_json  -->  ReportService.handle  -->  200
                       (plain text: plain_text_envelope)                  |
                              background Delivery loop  <-- kick ---------+
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
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatType
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.config import Config, ConfigError
from bot.logs import CHAT_TYPES, known
from bot.outbox import GiveUp, Outbox, RetryLater
from bot.service import Envelope, Outcome, ReportService
from bot.web import BodyTooLarge, ChannelRoutes, read_body
from flows import catalog
from flows.types import Inbound, Location, Media, Outbound
from storage.db import Database, WriteGate
from storage.maintenance import RECEIPT_KEEP
from storage.store import Pending, Store

log = logging.getLogger("reportbot.telegram")

CHANNEL = "telegram"
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name, not a secret)
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member", "channel_post")

MAX_TEXT = 4096  # Bot API limit for one message
MAX_CALLBACK_DATA = 64  # bytes
DELETE_BATCH = 100  # deleteMessages takes 1-100 ids
DELETABLE_FOR = timedelta(hours=48) - timedelta(minutes=10)  # a margin under Telegram's 48 hours
PER_CHAT_INTERVAL = 1.0  # seconds between messages to one chat
OVERALL_RATE = 25.0  # messages a second for the whole bot (Telegram allows about 30)
# Problems a retry may fix (the database is busy or away): the update is not acknowledged.
PASSING: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, TimeoutError)
HOUSEKEEPING_EVERY = 600.0  # seconds between purges of message ids too old to delete
# Replays: an update's id is remembered for RECEIPT_KEEP (48 h), so a repeat within that is ignored. An
# update dated earlier than this is refused, so a replay cannot outlive its receipt. Telegram keeps an
# undelivered update for 24 hours, so no real update is this old; the hour covers the purge's timing
# and clock differences.
MAX_UPDATE_AGE = RECEIPT_KEEP - timedelta(hours=1)

# What the person sent that the bot cannot read: the Message attribute and the name the flow gets.
UNSUPPORTED = (
    ("sticker", "sticker"),
    ("voice", "voice"),
    ("video_note", "video_note"),
    ("audio", "audio"),
    ("animation", "animation"),
    ("contact", "contact"),
    ("poll", "poll"),
    ("dice", "dice"),
    ("game", "game"),
    ("story", "story"),
)


# The catalog keys this channel reads itself (a [telegram] table); the flow's own words come in Outbound.
CATALOG_KEYS = frozenset({"telegram.private_only", "telegram.share_location", "telegram.old_button"})


def _words(key: str) -> str:
    name = f"telegram.{key}"
    assert name in CATALOG_KEYS, name
    return str(catalog.text(catalog.DEFAULT_LOCALE, name))


# -- the bot ------------------------------------------------------------------------------------


def make_bot(
    config: Config,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
) -> Bot:
    """A Bot pointed at `telegram.api_base_url` (Telegram's, a local Bot API server, or a test double)."""
    return Bot(
        config.telegram.token,
        base_url=config.telegram.api_base_url,
        request=request or HTTPXRequest(connection_pool_size=32),
        get_updates_request=get_updates_request or HTTPXRequest(read_timeout=60.0),
    )


async def start_bot(bot: Bot) -> None:
    """Open the bot's connections; a Telegram that cannot be reached now is not a reason not to start."""
    try:
        await bot.initialize()
    except TelegramError as exc:
        # Never log the exception text: PTB puts the token into InvalidToken's message.
        log.warning("telegram not reachable at start error=%s", type(exc).__name__)


# -- inbound: Update -> Envelope ------------------------------------------------------------------


def inbound_from_message(message: Message, *, edited: bool = False) -> Inbound:
    """What the person sent, in the flow's terms. File ids are references, never downloads."""
    text = message.text or message.caption or ""
    if message.text and message.text.startswith("/start "):
        text = "/start"  # a deep-link payload carries nothing the flow needs
    location = None
    if message.location is not None:
        label = None
        if message.venue is not None:
            label = ", ".join(p for p in (message.venue.title, message.venue.address) if p)
        location = Location(message.location.latitude, message.location.longitude, label)
    media: list[Media] = []
    if message.photo:
        media.append(Media(message.photo[-1].file_id, "photo"))  # the largest size
    if message.document is not None:
        media.append(Media(message.document.file_id, message.document.mime_type or "document"))
    if message.video is not None:
        media.append(Media(message.video.file_id, message.video.mime_type or "video"))
    unsupported = None
    if not media:
        unsupported = next((name for attr, name in UNSUPPORTED if getattr(message, attr, None)), None)
    if not text and location is None and not media and unsupported is None:
        unsupported = "other"
    return Inbound(text=text, location=location, media=tuple(media), unsupported=unsupported, edited=edited)


def message_envelope(update: Update) -> Envelope | None:
    """The step's envelope for a message in a private chat; None for an update with nothing to answer
    (a private chat's member update, a live location moving)."""
    message = update.message or update.edited_message
    chat = update.effective_chat
    if message is None or chat is None or chat.type != ChatType.PRIVATE:
        return None
    edited = update.edited_message is not None
    if edited and message.location is not None and not message.text:
        return None  # live location moving: the first position was the answer
    return Envelope(
        CHANNEL,
        str(chat.id),
        inbound_from_message(message, edited=edited),
        delivery_id=str(update.update_id),
        message_ref=None if edited else str(message.message_id),
    )


# The shape of almost every update: a plain text message in a private chat, nothing else in it.
_PLAIN_UPDATE = frozenset({"update_id", "message"})
_PLAIN_MESSAGE = frozenset({"message_id", "date", "chat", "from", "text"})
_LAST_DATE = 4_102_444_800  # 2100-01-01: a date PTB can read without overflow


def _whole(value: Any) -> bool:
    return type(value) is int


def plain_text_envelope(data: dict[str, Any]) -> Envelope | None:
    """The envelope of a plain text message in a private chat, read straight from the update's JSON,
    or None for anything else (which goes through PTB's `Update.de_json`).

    PTB builds about a hundred attributes for every message, a sixth of a webhook's CPU. This reads only
    an update of exactly the plain shape, with every field PTB needs of the type it needs; the result is
    the same envelope PTB's path makes (tests/test_telegram_parsing.py checks that on generated updates).
    """
    if data.keys() - _PLAIN_UPDATE or not _whole(data.get("update_id")):
        return None
    message = data.get("message")
    if type(message) is not dict or message.keys() != _PLAIN_MESSAGE:
        return None
    chat, person, text = message["chat"], message["from"], message["text"]
    if not (_whole(message["message_id"]) and _whole(message["date"]) and 0 <= message["date"] < _LAST_DATE):
        return None
    if type(chat) is not dict or chat.get("type") != ChatType.PRIVATE or not _whole(chat.get("id")):
        return None
    if type(person) is not dict or not _whole(person.get("id")) or type(person.get("is_bot")) is not bool:
        return None
    if type(person.get("first_name")) is not str or type(text) is not str or not text:
        return None
    if any(type(v) is dict or type(v) is list for part in (chat, person) for v in part.values()):
        return None  # nested objects (a photo, a business chat) are PTB's to read
    if text.startswith("/start "):
        text = "/start"  # as inbound_from_message
    return Envelope(
        CHANNEL,
        str(chat["id"]),
        Inbound(text=text),
        delivery_id=str(data["update_id"]),
        message_ref=str(message["message_id"]),
    )


def callback_data(step: str, key: str) -> str:
    """`<step>:<option key>`, so that a press on an old keyboard can be told from a current one."""
    data = f"{step}:{key}" if step else key
    if len(data.encode()) > MAX_CALLBACK_DATA:
        data = key
    return data


def parse_callback_data(data: str) -> tuple[str | None, str]:
    """(step or None, option key) from callback data."""
    step, sep, key = data.partition(":")
    if not sep:
        return None, data
    return step, key


# -- outbound: Outbound -> Bot API calls ----------------------------------------------------------


class Pacer:
    """Spaces sends: at most one a `per_chat` seconds to a chat, and `overall` a second in all.

    Delivery sends one message per chat per round, in sequence, so a wait here delays a round by at
    most about `per_chat` seconds, not by the sum over chats. Limits are per process.
    """

    def __init__(self, per_chat: float = PER_CHAT_INTERVAL, overall: float = OVERALL_RATE) -> None:
        self.per_chat = per_chat
        self.gap = 1.0 / overall if overall > 0 else 0.0
        self._next_any = 0.0
        self._next_chat: dict[str, float] = {}

    async def wait(self, chat: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next_any, self._next_chat.get(chat, 0.0))
        if start > now:
            await asyncio.sleep(start - now)
        self._next_any = start + self.gap
        self._next_chat[chat] = start + self.per_chat
        if len(self._next_chat) > 10_000:
            self._next_chat = {k: t for k, t in self._next_chat.items() if t > start}


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def classify(exc: TelegramError) -> RetryLater | GiveUp:
    """Map a Bot API error to the outbox's retry-or-give-up (codes only, never the message text)."""
    if isinstance(exc, RetryAfter):
        return RetryLater("retry_after", after=_retry_seconds(exc))
    if isinstance(exc, Forbidden):
        return GiveUp("forbidden")  # the person blocked the bot or deleted their account
    if isinstance(exc, ChatMigrated):
        return GiveUp("chat_migrated")
    if isinstance(exc, BadRequest):  # before NetworkError: BadRequest is one
        if "chat not found" in exc.message.lower():
            return GiveUp("chat_not_found")
        return GiveUp("bad_request")
    if isinstance(exc, InvalidToken):
        return RetryLater("invalid_token", after=300.0)  # a deployment problem: keep the message
    if isinstance(exc, Conflict):
        return RetryLater("conflict")
    return RetryLater(type(exc).__name__.lower())  # NetworkError, TimedOut, 5xx


def _chunks(text: str, size: int = MAX_TEXT) -> list[str]:
    if len(text) <= size:
        return [text]
    parts: list[str] = []
    while text:
        cut = text.rfind("\n", 0, size) if len(text) > size else len(text)
        if cut <= 0:
            cut = min(size, len(text))
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return parts


def inline_keyboard(message: Outbound) -> InlineKeyboardMarkup:
    """One button a row (labels can be long on a phone); picked options of a multi-select get a tick."""
    rows = []
    for option in message.options:
        label = option.label
        if message.multi and option.key in message.selected:
            label = f"\u2705 {label}"
        rows.append([InlineKeyboardButton(label, callback_data=callback_data(message.step, option.key))])
    return InlineKeyboardMarkup(rows)


class TelegramSender:
    """Sends outbox messages with the Bot API (bot.outbox.Sender). Raises RetryLater or GiveUp."""

    channel = CHANNEL

    def __init__(
        self,
        bot: Bot,
        *,
        db: Database | None = None,
        store: Store | None = None,
        lock: WriteGate | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.bot = bot
        self.db = db
        self.store = store
        self.lock = lock
        self.pacer = pacer or Pacer()
        self._reply_keyboard: set[str] = set()  # chats showing a "share location" keyboard (cosmetic)

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        try:
            chat_id = int(address)
        except ValueError:
            raise GiveUp("bad_address") from None  # never the address itself
        try:
            if message.clear_chat:
                await self._clear(chat_id, pending.chat_key)
            edit_ref = pending.message.get("edit_ref")
            if (
                message.update
                and message.options
                and edit_ref
                and await self._edit(chat_id, int(edit_ref), message, pending.chat_key)
            ):
                return ()
            return await self._send_new(chat_id, message, pending.chat_key)
        except TelegramError as exc:
            raise classify(exc) from exc

    async def _send_new(self, chat_id: int, message: Outbound, chat_key: str) -> list[str]:
        markup: Any = None
        if message.request_location:
            rows = [[KeyboardButton(_words("share_location"), request_location=True)]]
            rows += [[KeyboardButton(o.label)] for o in message.options]
            markup = ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)
            self._reply_keyboard.add(chat_key)
        elif message.options:
            markup = inline_keyboard(message)
        elif chat_key in self._reply_keyboard or message.clear_chat:
            markup = ReplyKeyboardRemove()
            self._reply_keyboard.discard(chat_key)
        if not message.text:
            return []
        ids: list[str] = []
        parts = _chunks(message.text)
        for i, part in enumerate(parts):
            await self.pacer.wait(chat_key)
            sent = await self.bot.send_message(
                chat_id, part, reply_markup=markup if i == len(parts) - 1 else None
            )
            ids.append(str(sent.message_id))
        return ids

    async def _edit(self, chat_id: int, message_id: int, message: Outbound, chat_key: str) -> bool:
        """Show a toggle on the pressed message itself; False when that message can no longer be edited."""
        await self.pacer.wait(chat_key)
        try:
            await self.bot.edit_message_text(
                message.text[:MAX_TEXT],
                chat_id=chat_id,
                message_id=message_id,
                reply_markup=inline_keyboard(message),
            )
        except BadRequest as exc:
            # "not modified": a double press, the message already shows this; anything else: send anew.
            return "not modified" in str(exc).lower()
        return True

    async def _clear(self, chat_id: int, chat_key: str) -> None:
        """Quick exit: delete this chat's messages that Telegram still lets a bot delete (under 48 h)."""
        if self.db is None or self.store is None:
            return
        since = datetime.now(UTC) - DELETABLE_FOR
        store = self.store
        refs = await self._read(lambda s: store.message_refs(s, CHANNEL, chat_key, since=since))
        ids = sorted({int(r) for r in refs if str(r).isdigit()})
        for start in range(0, len(ids), DELETE_BATCH):
            await self.pacer.wait(chat_key)
            try:
                await self.bot.delete_messages(chat_id, ids[start : start + DELETE_BATCH])
            except BadRequest as exc:
                log.info("some messages could not be deleted error=%s", type(exc).__name__)
        await self._read(lambda s: store.forget_messages(s, CHANNEL, chat_key))
        log.info("chat cleared channel=%s messages=%d", CHANNEL, len(ids))

    async def forget_old(self) -> None:
        """Drop kept message ids too old for Telegram to delete (quick exit could not use them)."""
        if self.db is None or self.store is None:
            return
        store = self.store
        before = datetime.now(UTC) - DELETABLE_FOR
        await self._read(lambda s: store.forget_messages(s, CHANNEL, None, before=before))

    async def _read(self, fn: Callable[[Any], Awaitable[Any]]) -> Any:
        assert self.db is not None
        if self.lock is None:
            async with self.db.transaction() as s:
                return await fn(s)
        async with self.lock, self.db.transaction() as s:
            return await fn(s)


# -- background delivery --------------------------------------------------------------------------


class Delivery:
    """Runs the outbox in the background: at once when kicked after a commit, every `interval` seconds
    for retries, and when a paused channel may be probed again. Stopping lets the message in flight
    finish and its result be committed (one cut off between Telegram accepting it and being marked
    sent would be sent again), then stops before the next."""

    def __init__(self, outbox: Outbox, sender: TelegramSender, *, interval: float = 2.0) -> None:
        self.outbox = outbox
        self.sender = sender
        self.interval = interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last_housekeeping = 0.0

    def kick(self) -> None:
        """Deliver now (called after a webhook's commit)."""
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="telegram-delivery")

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            # Telegram down: wake for the next probe rather than the next interval (see bot.outbox).
            paused = self.outbox.resume_in(CHANNEL)
            wait = min(self.interval, paused) if paused > 0 else self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            try:
                await self.outbox.drain(self.sender, keep_going=lambda: not self._stopping)
                await self._housekeeping()
            except Exception as exc:  # a database hiccup must not end delivery for good
                log.warning("delivery round failed error=%s", type(exc).__name__)

    async def _housekeeping(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last_housekeeping < HOUSEKEEPING_EVERY:
            return
        self._last_housekeeping = now
        await self.sender.forget_old()


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
        self.sender = TelegramSender(
            bot, db=service.db, store=service.store, lock=service.sqlite_writer, pacer=pacer
        )
        self.delivery = Delivery(self.outbox, self.sender, interval=interval)
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
            self._later(query.answer(_words("old_button")), "callback answer")
            return None
        step, key = parse_callback_data(query.data)
        env = Envelope(
            CHANNEL,
            str(message.chat.id),
            Inbound(option=key),
            delivery_id=str(update_id),
            button_step=step,
            button_ref=str(message.message_id),
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
            await self.bot.send_message(chat_id, _words("private_only"))
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
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            plain = plain_text_envelope(data)
            update = Update.de_json(data, self.bot) if plain is None else None
        except Exception as exc:  # a retry would bring the same bytes: acknowledge and drop
            log.warning("malformed telegram update error=%s", type(exc).__name__)
            return Response(status_code=200)
        try:
            if plain is not None:
                if not self._too_old(data["message"]["date"]):
                    await self._step(plain)
            elif update is not None:
                await self.handle_update(update)
        except PASSING as exc:  # Telegram will post it again; the receipt was rolled back with the rest
            log.warning("telegram update deferred error=%s", type(exc).__name__)
            return Response(status_code=503)
        except Exception as exc:
            # Not a passing problem: a retry would fail the same way and hold up the chat's later updates.
            log.error("telegram update not handled error=%s", type(exc).__name__)
        return Response(status_code=200)

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
                wait = _retry_seconds(exc) if isinstance(exc, RetryAfter) else min(60.0, 2.0**failures)
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


def sender_for(config: Config) -> TelegramSender:
    """A sender for staff commands (reply); it does not clear chats."""
    return TelegramSender(make_bot(config))


def webhook_url(config: Config) -> str:
    """Where Telegram should post updates: `telegram.public_url` + the webhook path."""
    if not config.telegram.public_url:
        raise ConfigError(
            "telegram.public_url", "is required to set the webhook (the https address of this server)"
        )
    if not config.telegram.webhook_secret:
        raise ConfigError("telegram.webhook_secret", "is required to set the webhook")
    return config.telegram.public_url.rstrip("/") + WEBHOOK_PATH


async def set_webhook(config: Config, bot: Bot | None = None) -> str:
    """Register the webhook with its secret token; once per deployment, never from each worker."""
    url = webhook_url(config)
    bot = bot or make_bot(config)
    await start_bot(bot)
    try:
        await bot.set_webhook(
            url, secret_token=config.telegram.webhook_secret, allowed_updates=list(ALLOWED_UPDATES)
        )
    finally:
        await bot.shutdown()
    return url


async def delete_webhook(config: Config, bot: Bot | None = None) -> None:
    """Remove the webhook (before `reportbot poll`, or when retiring a deployment)."""
    bot = bot or make_bot(config)
    await start_bot(bot)
    try:
        await bot.delete_webhook()
    finally:
        await bot.shutdown()


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
