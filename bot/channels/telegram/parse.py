"""Inbound: a Bot API update to the neutral envelope of the service's one step.

File ids are references, never downloads. A plain text message in a private chat and a button press in
one, nearly every update, are read straight from their JSON (`plain_text_envelope`, `button_press`);
anything else goes through PTB's `Update`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telegram import CallbackQuery, Message, Update
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


# -- button presses ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Press:
    """A button press: the callback query to answer, and the step to run (None when there is none: a
    press outside a private chat, or without data). `sent` is when the keyboard's message was sent
    (seconds since the epoch; 0 when Telegram no longer shows it)."""

    query_id: str
    env: Envelope | None
    sent: float = 0.0


def press_from_query(update_id: int, query: CallbackQuery) -> Press:
    """The press PTB read (the path for anything `button_press` leaves to PTB)."""
    message = query.message
    if message is None or message.chat.type != ChatType.PRIVATE or not query.data:
        return Press(query.id, None)
    sent = message.date.timestamp() if isinstance(message.date, datetime) else 0.0
    said = said_language(query.from_user.language_code if query.from_user else None)
    env = _press_envelope(update_id, message.chat.id, message.message_id, query.data, said)
    return Press(query.id, env, sent)


def _press_envelope(
    update_id: int, chat_id: int, message_id: int, data: Any, languages: tuple[str, ...]
) -> Envelope:
    step, key = parse_callback_data(data)
    return Envelope(
        CHANNEL,
        str(chat_id),
        Inbound(option=key),
        delivery_id=str(update_id),
        button_step=step,
        button_ref=str(message_id),
        languages=languages,
    )


# The shape of a press: the query and the bot's message the keyboard was on (its text and keyboard).
_PRESS_UPDATE = frozenset({"update_id", "callback_query"})
_PRESS_QUERY = frozenset({"id", "from", "message", "chat_instance", "data"})
_PRESS_MESSAGE = frozenset({"message_id", "date", "chat", "from", "text", "reply_markup", "edit_date"})
_PRESS_MESSAGE_NEEDS = frozenset({"message_id", "date", "chat"})
_BUTTON_FIELDS = frozenset({"text", "callback_data", "url"})
_STR = {str}


def button_press(data: dict[str, Any]) -> Press | None:
    """A button press in a private chat, read straight from the update's JSON, or None for anything
    else (which goes through PTB's `Update.de_json` and `press_from_query`).

    The same rule as the plain text path: only an update of exactly this shape, every field PTB needs of
    the type it needs (the message's text and keyboard too, which are not used here but which PTB would
    refuse if malformed), gives a press; tests/channels/test_telegram_parsing.py checks on generated
    updates that the press is the one PTB's path makes."""
    if data.keys() != _PRESS_UPDATE or not _whole(data["update_id"]):
        return None
    query = data["callback_query"]
    if type(query) is not dict or query.keys() != _PRESS_QUERY or not _plain_query(query):
        return None
    message = query["message"]
    if not _press_message(message):
        return None
    return Press(
        query["id"],
        _press_envelope(
            data["update_id"],
            message["chat"]["id"],
            message["message_id"],
            query["data"],
            said_language(query["from"].get("language_code")),
        ),
        float(message["date"]),
    )


def _plain_query(query: dict[str, Any]) -> bool:
    data = query["data"]
    return (
        type(query["id"]) is str
        and type(query["chat_instance"]) is str
        and type(data) is str
        and bool(data)
        and _plain_person(query["from"])
    )


def _press_message(message: Any) -> bool:
    if type(message) is not dict or message.keys() - _PRESS_MESSAGE or _PRESS_MESSAGE_NEEDS - message.keys():
        return False
    return (
        _press_dates(message)
        and _whole(message["message_id"])
        and _plain_chat(message["chat"])
        and _press_message_parts(message)
    )


def _press_message_parts(message: dict[str, Any]) -> bool:
    """What the message may carry besides its ids: who sent it, its text, its keyboard."""
    return (
        ("from" not in message or _plain_person(message["from"]))
        and type(message.get("text", "")) is str
        and ("reply_markup" not in message or _inline_keyboard(message["reply_markup"]))
    )


def _press_dates(message: dict[str, Any]) -> bool:
    date = message["date"]  # 0 is a message Telegram no longer shows: PTB's InaccessibleMessage
    return _whole(date) and 0 < date < _LAST_DATE and _optional_date(message.get("edit_date"))


def _optional_date(value: Any) -> bool:
    return value is None or (_whole(value) and 0 <= value < _LAST_DATE)


def _inline_keyboard(markup: Any) -> bool:
    """An inline keyboard of text buttons (callback data or a link), as our questions carry."""
    if type(markup) is not dict or markup.keys() != {"inline_keyboard"}:
        return False
    rows = markup["inline_keyboard"]
    return type(rows) is list and all(type(row) is list and all(map(_button, row)) for row in rows)


def _button(button: Any) -> bool:
    if type(button) is not dict or "text" not in button or not button.keys() <= _BUTTON_FIELDS:
        return False
    return set(map(type, button.values())) == _STR  # every value a str (type(), as PTB needs)


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
