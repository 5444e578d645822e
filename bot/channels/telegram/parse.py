"""Inbound: a Bot API update to the neutral envelope of the service's one step.

File ids are references, never downloads. A plain text message in a private chat, nearly every update,
is read straight from its JSON (`plain_text_envelope`); anything else goes through PTB's `Update`.
"""

from __future__ import annotations

from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType

from bot.channels.telegram import CHANNEL as TELEGRAM
from bot.service import Envelope
from flows.types import Inbound, Location, Media

CHANNEL = TELEGRAM.name
MAX_CALLBACK_DATA = 64  # bytes

# What the person sent that the bot cannot read: the Message attribute and the name the flow gets.
UNSUPPORTED = (
    ("sticker", "sticker"),
    ("animation", "animation"),
    ("contact", "contact"),
    ("poll", "poll"),
    ("dice", "dice"),
    ("game", "game"),
    ("story", "story"),
)


def inbound_from_message(message: Message, *, edited: bool = False) -> Inbound:
    """What the person sent, in the flow's terms. File ids are references here; the step swaps them for
    evidence store references and the delivery loop downloads them (bot.fetch)."""
    text = _text(message)
    location = _location(message)
    media = _media(message)
    unsupported = _unsupported(message, media, bool(text) or location is not None)
    return Inbound(text=text, location=location, media=media, unsupported=unsupported, edited=edited)


def _text(message: Message) -> str:
    if message.text and message.text.startswith("/start "):
        return "/start"  # a deep-link payload carries nothing the flow needs
    return message.text or message.caption or ""


def _location(message: Message) -> Location | None:
    if message.location is None:
        return None
    label = None
    if message.venue is not None:
        label = ", ".join(p for p in (message.venue.title, message.venue.address) if p)
    return Location(message.location.latitude, message.location.longitude, label)


# Files a message can carry: (attribute, the type when Telegram gives none). Voice notes and sound are
# evidence and part of the story too: staff listen to them.
_FILES = (
    ("document", "document"),
    ("video", "video/mp4"),
    ("voice", "audio/ogg"),
    ("audio", "audio/mpeg"),
    ("video_note", "video/mp4"),
)


def _media(message: Message) -> tuple[Media, ...]:
    media: list[Media] = []
    if message.photo:
        media.append(Media(message.photo[-1].file_id, "photo"))  # the largest size
    for attr, default in _FILES:
        item = getattr(message, attr, None)
        if item is not None:
            # A video note has no mime type of its own.
            media.append(Media(item.file_id, getattr(item, "mime_type", None) or default))
    return tuple(media)


def _unsupported(message: Message, media: tuple[Media, ...], readable: bool) -> str | None:
    """The name of what the bot cannot read in the message ("other" when nothing in it is readable)."""
    if media:
        return None
    found = next((name for attr, name in UNSUPPORTED if getattr(message, attr, None)), None)
    return "other" if found is None and not readable else found


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
        languages=said_language(message.from_user.language_code if message.from_user else None),
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
    the same envelope PTB's path makes (tests/channels/test_telegram_parsing.py checks that on generated
    updates).
    """
    message = _plain_message(data)
    if message is None:
        return None
    text = message["text"]
    if text.startswith("/start "):
        text = "/start"  # as inbound_from_message
    return Envelope(
        CHANNEL,
        str(message["chat"]["id"]),
        Inbound(text=text),
        delivery_id=str(data["update_id"]),
        message_ref=str(message["message_id"]),
        languages=said_language(message["from"].get("language_code")),
    )


def said_language(code: object) -> tuple[str, ...]:
    """The person's Telegram language (`language_code`, an IETF tag such as "pl" or "en-GB"), if given."""
    return (code,) if isinstance(code, str) and code else ()


def _plain_message(data: dict[str, Any]) -> dict[str, Any] | None:
    """The update's message when the update has exactly the plain shape, else None."""
    if data.keys() - _PLAIN_UPDATE or not _whole(data.get("update_id")):
        return None
    message = data.get("message")
    if type(message) is not dict or message.keys() != _PLAIN_MESSAGE or not _plain_fields(message):
        return None
    return message if _plain_chat(message["chat"]) and _plain_person(message["from"]) else None


def _plain_fields(message: dict[str, Any]) -> bool:
    date, text = message["date"], message["text"]
    whole = _whole(message["message_id"]) and _whole(date) and 0 <= date < _LAST_DATE
    return whole and type(text) is str and bool(text)


def _plain_chat(chat: Any) -> bool:
    return (
        type(chat) is dict and chat.get("type") == ChatType.PRIVATE and _whole(chat.get("id")) and _flat(chat)
    )


def _plain_person(person: Any) -> bool:
    return (
        type(person) is dict
        and _whole(person.get("id"))
        and type(person.get("is_bot")) is bool
        and type(person.get("first_name")) is str
        and _flat(person)
    )


def _flat(part: dict[str, Any]) -> bool:
    """No nested objects (a photo, a business chat): those are PTB's to read."""
    return not any(type(v) is dict or type(v) is list for v in part.values())


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
