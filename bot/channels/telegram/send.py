"""Outbound: an outbox message to Bot API calls (sendMessage, editMessageText, deleteMessage(s)), paced
per chat and overall. Bot API errors become the outbox's retry-or-give-up, by code only."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram import CHANNEL as TELEGRAM
from bot.channels.telegram.parse import callback_data
from bot.errors import GiveUp, RetryLater
from bot.pace import Pacer as Pacer  # where tests and the webhook have always found it
from flows import catalog, languages
from flows.types import Outbound
from storage.store import Pending

log = logging.getLogger("reportbot.telegram")

CHANNEL = TELEGRAM.name
MAX_TEXT = 4096  # Bot API limit for one message
DELETE_BATCH = 100  # deleteMessages takes 1-100 ids
DELETABLE_FOR = timedelta(hours=48) - timedelta(minutes=10)  # a margin under Telegram's 48 hours
PER_CHAT_INTERVAL = 1.0  # seconds between messages to one chat
OVERALL_RATE = 25.0  # messages a second for the whole bot, all workers together (Telegram allows about 30)

# The catalog keys this channel reads itself (a [telegram] table); the flow's own words come in Outbound.
CATALOG_KEYS = frozenset({"telegram.private_only", "telegram.share_location", "telegram.old_button"})


def words(key: str, locale: str = catalog.DEFAULT_LOCALE) -> str:
    """A word of this channel's own, from the [telegram] table of the catalog, in the person's language."""
    name = f"telegram.{key}"
    assert name in CATALOG_KEYS, name
    return languages.directed(Outbound(catalog.text(locale, name)), locale).text


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def classify(exc: TelegramError) -> RetryLater | GiveUp:
    """Map a Bot API error to the outbox's retry-or-give-up (codes only, never the message text)."""
    if isinstance(exc, RetryAfter):
        return RetryLater("retry_after", after=retry_seconds(exc))
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


def telegram_pacer(workers: int = 1) -> Pacer:
    """This worker's pace: one message a second to a chat, and its share of the bot's overall rate."""
    return Pacer(per_chat=PER_CHAT_INTERVAL, overall=OVERALL_RATE / workers)


class TelegramSender:
    """Sends outbox messages with the Bot API (bot.channels.base.Sender). Raises RetryLater or GiveUp.

    It can delete a chat's messages too (bot.channels.base.DeletesMessages): the delivery loop calls
    `delete` for quick exit, with the ids it kept."""

    channel = CHANNEL
    deletable_for = DELETABLE_FOR

    def __init__(self, bot: Bot, *, pacer: Pacer | None = None) -> None:
        self.bot = bot
        self.pacer = pacer or telegram_pacer()
        self.per_chat = self.pacer.per_chat  # kept across workers by the outbox's claims (bot.delivery)
        self._reply_keyboard: set[str] = set()  # chats showing a "share location" keyboard (cosmetic)

    def ready_in(self, chat_key: str) -> float:
        """Seconds until this process may write to the chat again (bot.delivery.Delivery asks)."""
        return self.pacer.ready_in(chat_key)

    async def fetch(self, source: str, max_bytes: int) -> bytes:
        """A file the person sent (bot.fetch.FetchesMedia): getFile, then the download, both from the
        configured Bot API address. The Bot API serves files up to 20 MB."""
        try:
            file = await self.bot.get_file(source)
            if file.file_size is not None and file.file_size > max_bytes:
                raise GiveUp("too-big")
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            raise classify(exc) from exc

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        chat_id = _chat_id(address)
        try:
            edit_ref = pending.message.get("edit_ref")
            if (
                message.update
                and message.options
                and edit_ref
                and await self._edit(chat_id, int(edit_ref), message, pending.chat_key)
            ):
                return ()
            locale = str(pending.message.get("locale") or catalog.DEFAULT_LOCALE)
            return await self._send_new(chat_id, message, pending.chat_key, locale)
        except TelegramError as exc:
            raise classify(exc) from exc

    async def _send_new(self, chat_id: int, message: Outbound, chat_key: str, locale: str) -> list[str]:
        markup: Any = None
        if message.request_location:
            rows = [[KeyboardButton(words("share_location", locale), request_location=True)]]
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

    async def delete(
        self, address: str, refs: Sequence[str], chat_key: str, *, unsure: Sequence[str] = ()
    ) -> list[str]:
        """Quick exit: delete these messages of the chat; the refs that could not be deleted.

        `deleteMessages` (up to 100 at once) skips what it cannot find and does not say which it did
        not delete, so it gets only ids surely inside Telegram's 48 hours; a batch it refuses, and the
        `unsure` ids (maybe just past the window), go one by one through `deleteMessage`, whose answer
        says what happened. "Not found" means already gone (the person deleted it): that counts as
        deleted, since it is no longer on the phone."""
        chat_id = _chat_id(address)
        left = [r for r in [*refs, *unsure] if not str(r).isdigit()]
        sure = sorted({int(r) for r in refs if str(r).isdigit()})
        singly = sorted({int(r) for r in unsure if str(r).isdigit()} - set(sure))
        try:
            singly += await self._delete_batches(chat_id, sure, chat_key)
            left += [str(m) for m in singly if not await self._delete_one(chat_id, m)]
        except TelegramError as exc:
            raise classify(exc) from exc
        return left

    async def _delete_batches(self, chat_id: int, ids: Sequence[int], chat_key: str) -> list[int]:
        """deleteMessages, 100 at a time; the ids of batches Telegram refused (to try one by one)."""
        refused: list[int] = []
        for start in range(0, len(ids), DELETE_BATCH):
            batch = list(ids[start : start + DELETE_BATCH])
            await self.pacer.wait(chat_key)
            try:
                await self.bot.delete_messages(chat_id, batch)
            except BadRequest as exc:
                log.info("a batch could not be deleted error=%s", type(exc).__name__)
                refused += batch
        return refused

    async def _delete_one(self, chat_id: int, message_id: int) -> bool:
        """One message; False when Telegram refuses (too old, or not the bot's to delete)."""
        await self.pacer.wait_any()  # deletions are not messages to the chat: the overall pace only
        try:
            await self.bot.delete_message(chat_id, message_id)
        except BadRequest as exc:
            return "not found" in exc.message.lower()
        return True


def _chat_id(address: str) -> int:
    try:
        return int(address)
    except ValueError:
        raise GiveUp("bad_address") from None  # never the address itself
