"""What a channel hands the step (an `Envelope`) and what it gets back (an `Outcome`), and the cleaning
of what came from outside before anything of it is stored."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.logs import CHANNELS, known
from bot.render import describe_inbound
from flows.types import Inbound, Media, Outbound
from storage.outbox import Pending


@dataclass(frozen=True)
class Envelope:
    """One authenticated inbound message from a channel adapter."""

    channel: str
    chat_id: str  # the platform address; used for the pseudonym and the (encrypted) reply address only
    inbound: Inbound
    delivery_id: str | None = None  # Telegram update_id, Twilio MessageSid; None where there is none
    received_at: datetime | None = None
    # The platform id of the person's message, kept encrypted so that quick exit can delete it.
    message_ref: str | None = None
    # A button press: the question whose keyboard it was on (a press from another question is stale)
    # and the bot message it was on (a multi-select toggle edits that message instead of sending a new one).
    button_step: str | None = None
    button_ref: str | None = None
    # The languages the platform says the person uses, most wanted first (Telegram's language_code, the
    # browser's Accept-Language); empty where it cannot say (WhatsApp, the console).
    languages: tuple[str, ...] = ()


@dataclass
class Outcome:
    """What the step did, for the adapter: replies to show and outbox rows to deliver."""

    duplicate: bool = False
    replies: list[Outbound] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    reference: str | None = None  # set when this step submitted a report
    step: str | None = None  # the question the conversation is now at (None when it ended)
    limited: bool = False  # an abuse limit answered instead of the flow
    # The replies claimed in the step's own transaction, handed to the channel's delivery after the
    # commit (bot.delivery.Delivery.hand); empty when they wait in the outbox for their turn.
    claimed: list[Pending] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # evidence files the draft let go (deleted after)
    locale: str | None = None  # the conversation's language after the step (None: no step ran)


# Lone UTF-16 surrogates (JSON's "\ud800", which json.loads keeps) cannot be encoded, so cannot be
# encrypted or stored: left in, they would fail the step and lose the message.
_SURROGATE = re.compile("[\ud800-\udfff]")
_ENVELOPE_TEXTS = ("delivery_id", "message_ref", "button_step", "button_ref")
_INBOUND_TEXTS = ("option", "unsupported")


def _fix(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _fix_some(text: str | None) -> str | None:
    return text and _fix(text)


def _fixed(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    """The named optional texts of a dataclass, cleaned (for `dataclasses.replace`)."""
    return {name: _fix_some(getattr(obj, name)) for name in names}


def _outside(env: Envelope) -> list[str | None]:
    """Every text in the envelope that came from outside."""
    inb = env.inbound
    texts = [env.chat_id, inb.text, inb.location.text if inb.location is not None else None]
    texts += [getattr(env, name) for name in _ENVELOPE_TEXTS]
    texts += [getattr(inb, name) for name in _INBOUND_TEXTS]
    return texts + [part for m in inb.media for part in (m.ref, m.content_type)]


def storable(env: Envelope) -> Envelope:
    """The envelope with every lone surrogate in what came from outside replaced by U+FFFD."""
    if not any(value and _SURROGATE.search(value) for value in _outside(env)):
        return env
    inb = env.inbound
    loc = inb.location
    if loc is not None and loc.text:
        loc = replace(loc, text=_fix(loc.text))
    inbound = replace(
        inb,
        text=_fix(inb.text),
        location=loc,
        media=tuple(Media(_fix(m.ref), _fix_some(m.content_type)) for m in inb.media),
        **_fixed(inb, _INBOUND_TEXTS),
    )
    return replace(
        env,
        chat_id=_fix(env.chat_id),
        inbound=inbound,
        **_fixed(env, _ENVELOPE_TEXTS),
    )


def describe_kept(inbound: Inbound) -> str:
    """The transcript line of a message kept but not run through the flow: as `describe_inbound`, with
    the references of any photos or files (the flow did not take them into the draft)."""
    line = describe_inbound(inbound)
    refs = " ".join(f"[file: {m.ref}]" for m in inbound.media)
    return f"{line} {refs}" if refs else line


def named(env: Envelope) -> str:
    """The channel as it may be logged (one of the known channels, else "other")."""
    return known(env.channel, CHANNELS)
