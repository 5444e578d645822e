"""The REST side: staff follow-ups and redelivery through the Twilio REST client, under WhatsApp's
24-hour rule (an approved template after it). Never str() of a Twilio error: it can repeat the number."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from bot.channels.whatsapp import CHANNEL as WHATSAPP
from bot.channels.whatsapp.render import render, split_message
from bot.config import Config
from bot.errors import GiveUp, RetryLater
from bot.pace import Pacer
from flows.types import Outbound
from storage import followup
from storage.db import Database
from storage.models import Report
from storage.store import Pending

CHANNEL = WHATSAPP.name
FOLLOWUP_WINDOW = timedelta(hours=24)  # free-form messages only this long after the person's last one
SEND_TIMEOUT = 15.0  # seconds for one REST call to Twilio
# Twilio's default text throughput for a WhatsApp sender (10 messages a second; more on request, up to
# 50), shared by all workers; Twilio queues what comes faster instead of refusing it.
TWILIO_RATE = 10.0
MEDIA_TIMEOUT = 60.0  # seconds for one media download (a video on a slow link)
MEDIA_HOST = "https://api.twilio.com/"  # where Twilio media URLs start; credentials go nowhere else

# Twilio's HTTP logger writes request lines and headers at INFO; keep it quiet (never the To number).
_twilio_log = logging.getLogger("reportbot.whatsapp.twilio")
_twilio_log.setLevel(logging.WARNING)


def window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    """Whether WhatsApp still allows a free-form message (within 24 hours of the person's last one)."""
    if last_inbound_at is None:
        return False
    if last_inbound_at.tzinfo is None:
        last_inbound_at = last_inbound_at.replace(tzinfo=UTC)
    return now - last_inbound_at < FOLLOWUP_WINDOW


def followup_refusal(config: Config, last_inbound_at: datetime | None, now: datetime) -> str | None:
    """Why a staff follow-up cannot go to a WhatsApp reporter now, or None when it can."""
    if not (config.whatsapp.account_sid and config.whatsapp.auth_token and config.whatsapp.from_):
        return (
            "WhatsApp follow-ups need whatsapp.account_sid, whatsapp.auth_token and whatsapp.from "
            "in the configuration."
        )
    if window_open(last_inbound_at, now) or config.whatsapp.followup_content_sid:
        return None
    if last_inbound_at is None:
        since = "the time of their last message is not known"
    else:
        hours = int((now - last_inbound_at).total_seconds() // 3600)
        since = f"their last message was {hours} hours ago"
    return (
        "WhatsApp only allows a free-form message within 24 hours of the person's last message, and "
        f"{since}. Set whatsapp.followup_content_sid to an approved template to reach them after that, "
        "or wait for them to write again."
    )


@dataclass(frozen=True)
class FollowupWindow:
    """What the sender needs to know about a report to choose free-form or template."""

    reference: str
    last_inbound_at: datetime | None
    language: str = "en"  # the catalog locale the person reported in (which template to send)


WindowLookup = Callable[[int], Awaitable[FollowupWindow | None]]


def database_lookup(db: Database) -> WindowLookup:
    """Read a report's reference and the time of the person's last message."""

    async def lookup(report_id: int) -> FollowupWindow | None:
        async with db.transaction() as s:
            report = await s.get(Report, report_id)
            if report is None:
                return None
            last = await followup.last_inbound(s, report)
            return FollowupWindow(report.reference, last, report.language)

    return lookup


def config_lookup(config: Config) -> WindowLookup:
    """The same, for a sender used outside the server (staff commands): one short-lived engine a call."""

    async def lookup(report_id: int) -> FollowupWindow | None:
        db = Database(config.database_url)
        try:
            return await database_lookup(db)(report_id)
        finally:
            await db.dispose()

    return lookup


class WhatsAppSender:
    """Sends outbox messages through the Twilio REST client (async, no thread).

    A message tied to a report whose 24-hour window has closed goes out as the approved template
    `whatsapp.followup_content_sid` (or `[whatsapp.<language>]`'s, in the language the person reported
    in) with the report's reference as variable 1 (the person can then
    send `status <reference>` to read the reply); without a template it is refused for good.
    Everything else is free-form text, split to fit WhatsApp's limit.
    """

    channel = CHANNEL

    def __init__(
        self,
        client: Client,
        from_: str,
        *,
        content_sid: str = "",
        content_sids: Mapping[str, str] | None = None,
        lookup: WindowLookup | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        media: httpx.AsyncClient | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.client = client
        self.pacer = pacer or Pacer(per_chat=0, overall=TWILIO_RATE)
        self.from_ = from_
        # Media downloads (bot.fetch.FetchesMedia): Twilio's media URLs need the account's credentials.
        self.media = media or httpx.AsyncClient(timeout=MEDIA_TIMEOUT)
        self.content_sid = content_sid
        self.content_sids = dict(content_sids or {})  # the template approved in a language, by locale
        self.lookup = lookup
        self.clock = clock

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        window = None
        if pending.report_id is not None and self.lookup is not None:
            window = await self.lookup(pending.report_id)
        if window is not None and not window_open(window.last_inbound_at, self.clock()):
            template = self.content_sids.get(window.language) or self.content_sid
            if not template:
                raise GiveUp("outside-24h-window")
            variables = json.dumps({"1": window.reference})
            sid = await self._create(to=address, content_sid=template, content_variables=variables)
            return [sid]
        text = render(message, str(pending.message.get("locale") or "en"))  # how to clear the chat, in theirs
        return [await self._create(to=address, body=part) for part in split_message(text)]

    async def _create(self, **fields: str) -> str:
        await self.pacer.wait("")  # Twilio's rate is the sender number's, over every chat
        try:
            created = await self.client.messages.create_async(from_=self.from_, **fields)
        except TwilioRestException as exc:
            code = f"twilio-{exc.status}-{exc.code}"  # never str(exc): it can repeat the number
            if exc.status == 429 or exc.status >= 500:
                raise RetryLater(code) from None
            raise GiveUp(code) from None
        except (httpx.TransportError, OSError, TimeoutError) as exc:
            raise RetryLater(type(exc).__name__) from None
        return str(created.sid)

    async def fetch(self, source: str, max_bytes: int) -> bytes:
        """A file the person sent (bot.fetch.FetchesMedia): its Twilio media URL, fetched with the
        account's credentials (sent only to Twilio's API host; Twilio redirects to its file store, and
        httpx drops the credentials on a redirect to another host), read up to `max_bytes`."""
        if not source.startswith(MEDIA_HOST):
            raise GiveUp("not-twilio")
        auth = (self.client.username, self.client.password)
        try:
            async with self.media.stream("GET", source, auth=auth, follow_redirects=True) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise RetryLater(f"media-{response.status_code}")
                if response.status_code != 200:
                    raise GiveUp(f"media-{response.status_code}")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise GiveUp("too-big")
                return bytes(data)
        except httpx.TransportError as exc:
            raise RetryLater(type(exc).__name__) from None

    async def discard(self, source: str) -> None:
        """Delete Twilio's copy of a file the person sent, once it is stored here (bot.fetch.DiscardsMedia):
        `DELETE` on the media resource, with the account's credentials, to Twilio's API host only. Gone
        already (404) counts as deleted."""
        if not source.startswith(MEDIA_HOST):
            raise GiveUp("not-twilio")
        auth = (self.client.username, self.client.password)
        try:
            response = await self.media.delete(source.removesuffix(".json") + ".json", auth=auth)
        except httpx.TransportError as exc:
            raise RetryLater(type(exc).__name__) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"media-{response.status_code}")
        if response.status_code not in (200, 204, 404):
            raise GiveUp(f"media-{response.status_code}")

    async def aclose(self) -> None:
        """Close the HTTP connections (when the sender is done for good)."""
        close = getattr(self.client.http_client, "aclose", None)
        if close is not None:
            await close()
        await self.media.aclose()


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]
    """twilio's async HTTP client interface on httpx: one pooled client, a real timeout on every call.

    (twilio's own aiohttp client ignores its `timeout` argument and leaks its session when a request
    fails, which matters for a loop that runs for months.)
    """

    def __init__(
        self, timeout: float = SEND_TIMEOUT, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(_twilio_log, is_async=True, timeout=timeout)
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (twilio's interface)
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        response = await self._client.request(
            method.upper(),
            uri,
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout or SEND_TIMEOUT,
            follow_redirects=allow_redirects,
        )
        return TwilioResponse(response.status_code, response.text, response.headers)

    async def aclose(self) -> None:
        await self._client.aclose()


def rest_client(config: Config, http_client: AsyncHttpClient | None = None) -> Client:
    """A Twilio REST client for this account; `http_client` replaces the network (tests)."""
    http = http_client or HttpxTwilioClient()
    return Client(config.whatsapp.account_sid, config.whatsapp.auth_token, http_client=http)


def can_send(config: Config) -> bool:
    """Whether the REST side is configured (follow-ups and redelivery need it)."""
    wa = config.whatsapp
    return bool(wa.account_sid and wa.auth_token and wa.from_)


def make_sender(
    config: Config,
    lookup: WindowLookup | None,
    http_client: AsyncHttpClient | None = None,
    media_transport: httpx.AsyncBaseTransport | None = None,
) -> WhatsAppSender:
    """The REST sender for this deployment; `media_transport` replaces the network for downloads (tests)."""
    return WhatsAppSender(
        rest_client(config, http_client),
        config.whatsapp.from_,
        content_sid=config.whatsapp.followup_content_sid,
        content_sids={
            code: words.followup_content_sid
            for code, words in config.whatsapp.translated.items()
            if words.followup_content_sid
        },
        lookup=lookup,
        media=httpx.AsyncClient(timeout=MEDIA_TIMEOUT, transport=media_transport),
        pacer=Pacer(per_chat=0, overall=TWILIO_RATE / config.server.workers),
    )
