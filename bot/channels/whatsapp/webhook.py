"""The WhatsApp webhook through Twilio: authenticate, parse, one service step, answer with TwiML.

In: Twilio posts each message to `POST /whatsapp/webhook` as form fields, signed (`X-Twilio-Signature`)
with the account's auth token over the public URL Twilio called and the fields as posted. Out: the
replies of that step, as TwiML in the webhook response (options as numbered lines). Staff follow-ups,
and any reply a webhook response could not carry, go out through the Twilio REST client
(`send.WhatsAppSender`), driven by the one delivery loop (bot.delivery.Delivery).

Never: log or store `From`, `ProfileName`, `WaId` or anything the person typed in clear (the service
pseudonymises the address and encrypts the rest); act on a request whose signature fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.http import AsyncHttpClient
from twilio.request_validator import RequestValidator

from bot.channels.base import ChannelRoutes, form_from_body, read_body
from bot.channels.whatsapp.parse import inbound_from_form
from bot.channels.whatsapp.render import bodies, twiml
from bot.channels.whatsapp.send import CHANNEL, WhatsAppSender, can_send, database_lookup, make_sender
from bot.config import Config
from bot.delivery import Delivery, Outbox, mark_answered
from bot.errors import BodyTooLarge
from bot.fetch import EvidenceFetcher
from bot.service import Envelope, Outcome, ReportService
from flows import catalog

log = logging.getLogger("reportbot.whatsapp")

PATH = "/whatsapp/webhook"
SIGNATURE_HEADER = "X-Twilio-Signature"
ADDRESS_PREFIX = "whatsapp:"  # `From` is whatsapp:+44... or a business-scoped id such as whatsapp:US.xxxx


# Twilio gives up on a webhook after 15 s. A step that is not done by then still finishes in the
# background; its replies stay in the outbox and go out through the REST client (see WhatsAppWebhook).
STEP_BUDGET = 10.0
# An outbox row is left to the REST redelivery only when it is this old: by then the webhook that
# made it has either answered with it (and marked it sent) or has given up on it.
REDELIVER_AFTER = timedelta(seconds=60)
REDELIVER_EVERY = 15.0
TWIML_TYPE = "application/xml"


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
        form = await form_from_body(request, body, max_files=0, max_fields=200)
        refused = self._refusal(request, form)
        if refused is not None:
            return refused
        address = str(form.get("From") or "")
        if not address.startswith(ADDRESS_PREFIX):
            log.info("webhook ignored: not a WhatsApp sender")
            return _twiml_response(())
        return await self._answer(Envelope(CHANNEL, address, inbound_from_form(form), delivery_id=_sid(form)))

    def _refusal(self, request: Request, form: Any) -> Response | None:
        """The answer to a request that is not a genuine Twilio message for this account, else None."""
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
        if not _sid(form):
            # Every message Twilio posts has a MessageSid, the only thing that stops a repeat being run
            # twice. A signed form without one is a replay or a misconfigured webhook: 400 (Twilio does
            # not retry a 4xx, and shows it in its debugger), nothing stored.
            self.refused_no_sid += 1
            log.warning("webhook refused: no MessageSid channel=%s refused=%d", CHANNEL, self.refused_no_sid)
            return Response(status_code=400)
        return None

    async def _answer(self, env: Envelope) -> Response:
        """Run the step (within the budget) and answer with its replies as TwiML."""
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
        await mark_answered(self.service, outcome.outbox_ids)
        return _twiml_response(bodies(outcome.replies, locale=outcome.locale or "en"))

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("background step ended with error=%s", type(task.exception()).__name__)

    async def drain_running(self) -> None:
        """Let steps still running in the background finish (at shutdown)."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


def _sid(form: Any) -> str:
    return str(form.get("MessageSid") or form.get("SmsMessageSid") or "")


def _twiml_response(texts: Sequence[str]) -> Response:
    return Response(twiml(texts), media_type=TWIML_TYPE)


def whatsapp_routes(
    config: Config,
    service: ReportService,
    *,
    http_client: AsyncHttpClient | None = None,
    media_transport: httpx.AsyncBaseTransport | None = None,
    redeliver_every: float = REDELIVER_EVERY,
    redeliver_after: timedelta = REDELIVER_AFTER,
    step_budget: float = STEP_BUDGET,
) -> ChannelRoutes:
    """The webhook route, and the redelivery task that runs while the app is up."""
    webhook = WhatsAppWebhook(config, service, step_budget=step_budget)
    running: list[tuple[Delivery, WhatsAppSender]] = []

    async def start() -> None:
        if not can_send(config):
            log.warning("whatsapp.account_sid or whatsapp.from is not set: no follow-ups or redelivery")
            return
        sender = make_sender(config, database_lookup(service.db), http_client, media_transport)
        # The one delivery loop, leaving alone what a webhook response may still be carrying; it also
        # downloads the media people sent into the evidence store (bot.fetch), never the webhook.
        fetcher = EvidenceFetcher(config, webhook.outbox, sender)
        delivery = Delivery(
            webhook.outbox,
            sender,
            interval=redeliver_every,
            older_than=redeliver_after,
            after_round=[fetcher.run],
        )
        running.append((delivery, sender))
        await delivery.start()

    async def stop() -> None:
        await webhook.drain_running()
        while running:
            delivery, sender = running.pop()
            await delivery.stop()
            await sender.aclose()

    return ChannelRoutes(
        routes=[Route(PATH, webhook.handle, methods=["POST"])], startup=[start], shutdown=[stop]
    )
