"""The small interface every channel implements: how people reach the bot, and how it answers them.

A channel translates, and nothing else. Inbound, it authenticates a platform's request and parses it
into the neutral `bot.service.Envelope` (text, option, location, media) for the service's one step.
Outbound, it renders a neutral `flows.types.Outbound` in the platform's terms and sends it, through a
`Sender` the one delivery loop (`bot.delivery`) drives; or, where the platform waits for the answer
(WhatsApp's TwiML, a web page), it renders the step's replies into the HTTP response itself.

    class Channel:                     what the registry (bot/channels/__init__.py) lists
        name, can_clear_chat, rate_limited, deletable_for      read by the service and the loop
        enabled(config)                is it configured here?
        routes(config, service)        its webhook/page routes, and tasks to run with the app
        sender(config)                 how staff follow-ups reach a person outside a webhook
        followup_refusal(...)          why a follow-up cannot go now (WhatsApp's 24 hours)

    Sender.send(address, message, pending) -> platform ids      raises RetryLater or GiveUp
    DeletesMessages.delete(address, refs, chat_key, unsure=...) -> refs left    optional: quick exit

A channel's package `__init__` holds only its `Channel` subclass (no platform library is imported
until a method needs it), so that the service can read the attributes without loading Telegram or
Twilio, and so that a channel never imports the registry back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from bot.errors import BodyTooLarge, ChannelUnavailable

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import BaseRoute

    from bot.config import Config
    from bot.service import ReportService
    from flows.types import Outbound
    from storage.store import Pending


class Sender(Protocol):
    """A channel's way of sending one message. Raises RetryLater or GiveUp; returns platform ids."""

    channel: str

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]: ...


@runtime_checkable
class DeletesMessages(Sender, Protocol):
    """A sender that can delete a chat's messages for `deletable_for` after they were sent.

    The delivery loop uses it for quick exit (before a message that asks for `clear_chat`, the chat's
    kept message ids go to `delete`) and forgets the ids it can no longer use (see bot.delivery).
    `delete` returns the refs it could not delete; `unsure` refs may be just past `deletable_for` and
    must be checked one by one."""

    deletable_for: timedelta

    async def delete(
        self, address: str, refs: Sequence[str], chat_key: str, *, unsure: Sequence[str] = ()
    ) -> Sequence[str]: ...


@dataclass
class ChannelRoutes:
    """What a channel adds to the app: routes, and tasks to run while the app is up (outbox delivery)."""

    routes: Sequence[BaseRoute]
    startup: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)
    shutdown: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)


class Channel:
    """One channel, as the registry lists it. Subclasses set `name` and override what they offer."""

    name: ClassVar[str]
    # The bot can delete the chat's messages itself on quick exit (the flow says so, or tells the person
    # how to clear the chat on their phone).
    can_clear_chat: ClassVar[bool] = False
    # Per-chat pace and volume limits apply (not to the operator's own terminal).
    rate_limited: ClassVar[bool] = True

    def enabled(self, config: Config) -> bool:
        """Whether this deployment runs the channel (its keys are configured)."""
        return False

    def routes(self, config: Config, service: ReportService) -> ChannelRoutes | None:
        """What `reportbot serve` mounts for this channel (None: nothing to serve)."""
        return None

    def sender(self, config: Config) -> Sender:
        """A sender for staff follow-ups, outside the server. Raises ChannelUnavailable."""
        raise ChannelUnavailable(f"the {self.name} channel cannot send follow-ups")

    def followup_refusal(self, config: Config, last_inbound_at: datetime | None, now: datetime) -> str | None:
        """Why a staff follow-up cannot be sent on this channel now, or None when it can."""
        return None


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing more than `limit` bytes without reading it all into memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def form_from_body(request: Request, body: bytes, *, max_files: int, max_fields: int) -> Any:
    """The urlencoded form of a request whose body was already read (and capped), parsed by Starlette."""
    from starlette.requests import Request as StarletteRequest

    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    again = StarletteRequest(request.scope, replay)
    return await again.form(max_files=max_files, max_fields=max_fields)
