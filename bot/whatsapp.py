"""The WhatsApp channel through Twilio: translate only.

In: Twilio posts each message to `POST /whatsapp/webhook` as form fields, signed (`X-Twilio-Signature`)
with the account's auth token over the public URL Twilio called and the fields as posted. Out: the
replies of that step, as TwiML in the webhook response (options as numbered lines). Staff follow-ups,
and any reply a webhook response could not carry, go out through the Twilio REST client
(`WhatsAppSender`), under WhatsApp's 24-hour rule.

Never: log or store `From`, `ProfileName`, `WaId` or anything the person typed in clear (the service
pseudonymises the address and encrypts the rest); act on a request whose signature fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from bot.config import Config
from bot.outbox import GiveUp, Outbox, RetryLater
from bot.render import as_text
from bot.service import Envelope, Outcome, ReportService
from bot.web import BodyTooLarge, ChannelRoutes, read_body
from flows import catalog
from flows.types import Inbound, Location, Media, Outbound
from storage import followup, steps
from storage.db import Database
from storage.models import Report
from storage.store import Pending

log = logging.getLogger("reportbot.whatsapp")

CHANNEL = "whatsapp"
PATH = "/whatsapp/webhook"
SIGNATURE_HEADER = "X-Twilio-Signature"
ADDRESS_PREFIX = "whatsapp:"  # `From` is whatsapp:+44... or a business-scoped id such as whatsapp:US.xxxx

MESSAGE_LIMIT = 1600  # Twilio's limit for one WhatsApp message body, in UTF-16 code units
MAX_MEDIA = 10  # Twilio sends at most 10 media items with one message
FOLLOWUP_WINDOW = timedelta(hours=24)  # free-form messages only this long after the person's last one

# Twilio gives up on a webhook after 15 s. A step that is not done by then still finishes in the
# background; its replies stay in the outbox and go out through the REST client (see WhatsAppWebhook).
STEP_BUDGET = 10.0
# An outbox row is left to the REST redelivery only when it is this old: by then the webhook that
# made it has either answered with it (and marked it sent) or has given up on it.
REDELIVER_AFTER = timedelta(seconds=60)
REDELIVER_EVERY = 15.0
SEND_TIMEOUT = 15.0  # seconds for one REST call to Twilio

TWIML_TYPE = "application/xml"
_OPTION_KEY = re.compile(r"^[a-z0-9_]{1,64}$")

# Twilio's HTTP logger writes request lines and headers at INFO; keep it quiet (never the To number).
_twilio_log = logging.getLogger("reportbot.whatsapp.twilio")
_twilio_log.setLevel(logging.WARNING)


# -- inbound -----------------------------------------------------------------------------------------


def inbound_from_form(form: Mapping[str, str]) -> Inbound:
    """Twilio's form fields to one neutral `Inbound` (ProfileName and WaId are never read)."""
    text = str(form.get("Body") or "").strip()
    payload = str(form.get("ButtonPayload") or "").strip()
    if not text:
        text = str(form.get("ButtonText") or "").strip()
    option = payload if _OPTION_KEY.match(payload) else None
    return Inbound(text=text, option=option, location=_location(form), media=_media(form))


def _location(form: Mapping[str, str]) -> Location | None:
    raw_lat, raw_lon = form.get("Latitude"), form.get("Longitude")
    if not raw_lat or not raw_lon:
        return None
    try:
        lat, lon = float(raw_lat), float(raw_lon)
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    parts = [str(form.get(k) or "").strip() for k in ("Label", "Address")]
    text = ", ".join(p for p in parts if p) or None
    return Location(latitude=lat, longitude=lon, text=text)


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError:
        return ()
    found = []
    for i in range(max(0, min(count, MAX_MEDIA))):
        url = str(form.get(f"MediaUrl{i}") or "")
        if url.startswith("https://"):
            found.append(Media(ref=url, content_type=form.get(f"MediaContentType{i}") or None))
    return tuple(found)


# -- outbound ----------------------------------------------------------------------------------------


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
        text = f"{text}\n\n{catalog.text(locale, 'whatsapp.clear_chat')}"
    return text


def bodies(messages: Iterable[Outbound], limit: int = MESSAGE_LIMIT) -> list[str]:
    """The replies of one step as few WhatsApp messages as fit, in order (separate messages may
    arrive out of order on the phone; one message cannot)."""
    return split_message("\n\n".join(render(m) for m in messages), limit)


def twiml(texts: Sequence[str]) -> str:
    """A TwiML document that sends these texts as replies (none: an empty, valid response)."""
    response = MessagingResponse()
    for body in texts:
        response.message(body)
    return str(response.to_xml())


# -- the webhook -------------------------------------------------------------------------------------


def public_webhook_url(public_url: str, request: Request) -> str:
    """The URL Twilio called, as Twilio signed it: the configured public base, this path, the query."""
    url = public_url.rstrip("/") + PATH
    query = request.url.query
    return f"{url}?{query}" if query else url


class WhatsAppWebhook:
    """`POST /whatsapp/webhook`: authenticate, parse, one service step, answer with TwiML.

    The replies of a step are committed to the outbox together with the step, then delivered by
    the webhook response itself. Right after the commit, and before answering, their outbox rows are
    marked sent, so that nothing else sends them again. What can go wrong in between:

    * the process dies after the commit but before marking: the rows stay unsent; the redelivery
      task (started with the app, and at every later start) sends them through the REST client once
      they are `REDELIVER_AFTER` old. The person sees the replies late rather than never, and the
      step is not run again (the MessageSid is recorded, so a retry from Twilio is acknowledged
      with an empty response).
    * the process dies after marking but before the response is written: the person does not see
      those replies. This window is a few milliseconds, and sending them again would risk showing
      them twice, which is worse for someone in distress than a re-asked question on their next
      message.
    * the step takes longer than `STEP_BUDGET`: it finishes in the background, unmarked; the
      response is empty and the replies go out by redelivery.
    """

    def __init__(
        self,
        config: Config,
        service: ReportService,
        *,
        outbox: Outbox | None = None,
        step_budget: float = STEP_BUDGET,
    ) -> None:
        self.config = config
        self.step_budget = step_budget
        self.service = service
        self.validator = RequestValidator(config.whatsapp.auth_token)
        self.outbox = outbox or Outbox(service.db, service.store, lock=service.sqlite_writer)
        self._running: set[asyncio.Task[Outcome]] = set()
        self.refused_no_sid = 0  # signed forms refused for having no MessageSid, since start

    async def handle(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.config.server.max_body_bytes)
        except BodyTooLarge:
            log.warning("webhook refused: body too large")
            return Response(status_code=413)
        form = await _parse_form(request, body)
        signature = request.headers.get(SIGNATURE_HEADER, "")
        url = public_webhook_url(self.config.whatsapp.public_url, request)
        if (
            not signature
            or not self.config.whatsapp.public_url
            or not self.validator.validate(url, form, signature)
        ):
            log.warning("webhook refused: bad or missing signature")
            return Response(status_code=403)
        account = self.config.whatsapp.account_sid
        if account and form.get("AccountSid") != account:
            log.warning("webhook refused: another account")
            return Response(status_code=403)
        sid = str(form.get("MessageSid") or form.get("SmsMessageSid") or "")
        if not sid:
            # Every message Twilio posts has a MessageSid, the only thing that stops a repeat being run
            # twice. A signed form without one is a replay or a misconfigured webhook: 400 (Twilio does
            # not retry a 4xx, and shows it in its debugger), nothing stored.
            self.refused_no_sid += 1
            log.warning("webhook refused: no MessageSid channel=%s refused=%d", CHANNEL, self.refused_no_sid)
            return Response(status_code=400)
        address = str(form.get("From") or "")
        if not address.startswith(ADDRESS_PREFIX):
            log.info("webhook ignored: not a WhatsApp sender")
            return _twiml_response(())
        env = Envelope(CHANNEL, address, inbound_from_form(form), delivery_id=sid)

        task = asyncio.ensure_future(self.service.handle(env))
        self._running.add(task)
        task.add_done_callback(self._finished)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), self.step_budget)
        except TimeoutError:
            log.warning("step slower than %.1fs; replies left to redelivery", self.step_budget)
            return _twiml_response(())
        except Exception as exc:
            log.error("step failed error=%s", type(exc).__name__)
            return _twiml_response([catalog.text("en", "whatsapp.error")])
        if outcome.duplicate:
            return _twiml_response(())
        if outcome.outbox_ids:
            try:
                await self._mark_sent(outcome.outbox_ids)
            except Exception as exc:
                # Answer anyway: a reply shown twice later is better than one never shown.
                log.error("could not mark replies sent error=%s", type(exc).__name__)
        return _twiml_response(bodies(outcome.replies))

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("background step ended with error=%s", type(task.exception()).__name__)

    async def _mark_sent(self, ids: Sequence[int]) -> None:
        write = partial(steps.mark_sent, cipher=self.service.cipher, ids=list(ids), at=datetime.now(UTC))
        gate = self.service.sqlite_writer
        async with gate.shared() if gate is not None else contextlib.nullcontext():
            await self.service.db.run_step(write)

    async def drain_running(self) -> None:
        """Let steps still running in the background finish (at shutdown)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


async def _parse_form(request: Request, body: bytes) -> Any:
    """The posted form, parsed by Starlette from the body already read (and capped)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    again = Request(request.scope, replay)
    return await again.form(max_files=0, max_fields=200)


def _twiml_response(texts: Sequence[str]) -> Response:
    return Response(twiml(texts), media_type=TWIML_TYPE)


# -- the REST side: follow-ups and redelivery --------------------------------------------------------


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


WindowLookup = Callable[[int], Awaitable[FollowupWindow | None]]


def database_lookup(db: Database) -> WindowLookup:
    """Read a report's reference and the time of the person's last message."""

    async def lookup(report_id: int) -> FollowupWindow | None:
        async with db.transaction() as s:
            report = await s.get(Report, report_id)
            if report is None:
                return None
            return FollowupWindow(report.reference, await followup.last_inbound(s, report))

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
    `whatsapp.followup_content_sid` with the report's reference as variable 1 (the person can then
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
        lookup: WindowLookup | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.from_ = from_
        self.content_sid = content_sid
        self.lookup = lookup
        self.clock = clock

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        window = None
        if pending.report_id is not None and self.lookup is not None:
            window = await self.lookup(pending.report_id)
        if window is not None and not window_open(window.last_inbound_at, self.clock()):
            if not self.content_sid:
                raise GiveUp("outside-24h-window")
            variables = json.dumps({"1": window.reference})
            sid = await self._create(to=address, content_sid=self.content_sid, content_variables=variables)
            return [sid]
        return [await self._create(to=address, body=part) for part in split_message(render(message))]

    async def _create(self, **fields: str) -> str:
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

    async def aclose(self) -> None:
        """Close the HTTP connections (when the sender is done for good)."""
        close = getattr(self.client.http_client, "aclose", None)
        if close is not None:
            await close()


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
    config: Config, lookup: WindowLookup | None, http_client: AsyncHttpClient | None = None
) -> WhatsAppSender:
    """The REST sender for this deployment."""
    return WhatsAppSender(
        rest_client(config, http_client),
        config.whatsapp.from_,
        content_sid=config.whatsapp.followup_content_sid,
        lookup=lookup,
    )


# -- the app -----------------------------------------------------------------------------------------


def whatsapp_routes(
    config: Config,
    service: ReportService,
    *,
    http_client: AsyncHttpClient | None = None,
    redeliver_every: float = REDELIVER_EVERY,
    redeliver_after: timedelta = REDELIVER_AFTER,
    step_budget: float = STEP_BUDGET,
) -> ChannelRoutes:
    """The webhook route, and the redelivery task that runs while the app is up."""
    webhook = WhatsAppWebhook(config, service, step_budget=step_budget)
    state: dict[str, asyncio.Task[None]] = {}
    senders: list[WhatsAppSender] = []

    async def redeliver_forever(sender: WhatsAppSender) -> None:
        while True:
            try:
                got = await webhook.outbox.drain(sender, older_than=redeliver_after)
                if got.sent or got.failed:
                    log.info("redelivered sent=%d failed=%d", got.sent, got.failed)
            except Exception as exc:
                log.error("redelivery failed error=%s", type(exc).__name__)
            # Twilio down: probe again when the outbox's capped back-off says so (see bot.outbox).
            paused = webhook.outbox.resume_in(CHANNEL)
            await asyncio.sleep(min(redeliver_every, paused) if paused > 0 else redeliver_every)

    async def start() -> None:
        if not can_send(config):
            log.warning("whatsapp.account_sid or whatsapp.from is not set: no follow-ups or redelivery")
            return
        sender = make_sender(config, database_lookup(service.db), http_client)
        senders.append(sender)
        state["task"] = asyncio.create_task(redeliver_forever(sender))

    async def stop() -> None:
        await webhook.drain_running()
        task = state.pop("task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while senders:
            await senders.pop().aclose()

    return ChannelRoutes(
        routes=[Route(PATH, webhook.handle, methods=["POST"])], startup=[start], shutdown=[stop]
    )
