"""Outbound as WhatsApp text: options as numbered lines, cut to Twilio's limit, and TwiML for the
replies a webhook response carries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from twilio.twiml.messaging_response import MessagingResponse

from bot.render import as_text
from flows import catalog, languages
from flows.types import Outbound

MESSAGE_LIMIT = 1600  # Twilio's limit for one WhatsApp message body, in UTF-16 code units


def _units(text: str) -> int:
    """Length as Twilio counts it (UTF-16 code units: an emoji counts as two)."""
    return len(text.encode("utf-16-le")) // 2


def _wrap_line(line: str, limit: int) -> list[str]:
    """A single line longer than the limit, cut at spaces (or anywhere, if it has none)."""
    pieces: list[str] = []
    rest = line
    while _units(rest) > limit:
        cut = limit
        while _units(rest[:cut]) > limit:
            cut -= 1
        space = rest.rfind(" ", 0, cut + 1)
        if space > 0:
            pieces.append(rest[:space])
            rest = rest[space + 1 :]
        else:
            pieces.append(rest[:cut])
            rest = rest[cut:]
    pieces.append(rest)
    return pieces


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut text into messages of at most `limit` units, on line boundaries where possible."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.split("\n"):
        for piece in _wrap_line(line, limit):
            extra = _units(piece) + (1 if current else 0)
            if current and size + extra > limit:
                chunks.append("\n".join(current).strip("\n"))
                current, size = [], 0
                extra = _units(piece)
            current.append(piece)
            size += extra
    if current:
        chunks.append("\n".join(current).strip("\n"))
    return [c for c in chunks if c.strip()]


def render(message: Outbound, locale: str = "en") -> str:
    """One outbound message as WhatsApp text: numbered options, and how to clear the chat on exit."""
    text = as_text(message)
    if message.clear_chat:
        # The bot cannot delete messages on WhatsApp; the person can, on their phone.
        how = languages.directed(Outbound(catalog.text(locale, "whatsapp.clear_chat")), locale).text
        text = f"{text}\n\n{how}"
    return text


def bodies(messages: Iterable[Outbound], limit: int = MESSAGE_LIMIT, locale: str = "en") -> list[str]:
    """The replies of one step as few WhatsApp messages as fit, in order (separate messages may
    arrive out of order on the phone; one message cannot), in the conversation's language."""
    return split_message("\n\n".join(render(m, locale) for m in messages), limit)


def twiml(texts: Sequence[str]) -> str:
    """A TwiML document that sends these texts as replies (none: an empty, valid response)."""
    response = MessagingResponse()
    for body in texts:
        response.message(body)
    return str(response.to_xml())
