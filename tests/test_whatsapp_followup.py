"""Staff follow-ups to WhatsApp reporters: free-form inside 24 hours, the approved template or a clear
refusal after. The real twilio REST client builds each request; only its HTTP client is a fake."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.channels import ChannelUnavailable, followup_refusal, sender_for
from bot.config import Config
from bot.outbox import PROBE_CAP, DeliveryReport, Outbox
from bot.render import to_dict
from bot.service import ReportService
from bot.web import create_app
from bot.whatsapp import (
    REDELIVER_AFTER,
    HttpxTwilioClient,
    WhatsAppSender,
    database_lookup,
    make_sender,
    whatsapp_routes,
)
from flows.types import Outbound
from storage.db import Database
from storage.followup import last_inbound
from storage.models import OutboxMessage, Report
from tests.whatsapp_edge import (
    ACCOUNT,
    BOT_NUMBER,
    PERSON,
    PUBLIC,
    TEMPLATE,
    TOKEN,
    WHATSAPP_TOML,
    FakeTwilio,
    WhatsAppPerson,
)

REFERENCE = "HC-7K3Q-9XPD"
REPLY = "Hello, this is Sam from the council. We have read your report. Can we call you on Monday?"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


@dataclass
class Desk:
    """A deployment's database, one contactable WhatsApp report, and the fake Twilio REST edge."""

    config: Config
    db: Database
    service: ReportService
    twilio: FakeTwilio
    report_id: int

    @property
    def sender(self) -> WhatsAppSender:
        return make_sender(self.config, database_lookup(self.db), self.twilio)

    async def last_message(self, ago: timedelta) -> datetime:
        at = datetime.now(UTC) - ago
        async with self.db.transaction() as s:
            report = await s.get(Report, self.report_id)
            assert report is not None
            report.last_inbound_at = at
        return at

    async def reply(self, text: str = REPLY) -> DeliveryReport:
        """What `reportbot reply` does once the refusal check passed: queue, then deliver."""
        async with self.db.transaction() as s:
            await self.service.store.enqueue(
                s,
                channel="whatsapp",
                chat_key=self.service.chat_key("whatsapp", PERSON),
                address=PERSON,
                messages=[to_dict(Outbound(text=text, step="staff_reply"))],
                report_id=self.report_id,
            )
        return await Outbox(self.db, self.service.store).drain(self.sender)

    async def outbox_row(self) -> OutboxMessage:
        async with self.db.transaction() as s:
            return (await s.execute(select(OutboxMessage))).scalar_one()


async def open_desk(config: Config) -> Desk:
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    async with db.transaction() as s:
        report = await service.store.create_report(
            s,
            reference=REFERENCE,
            channel="whatsapp",
            clear={"role": "victim", "anonymous": False},
            sealed={"contact": {"in_chat": True}},
            chat_key=service.chat_key("whatsapp", PERSON),
            reply_address=PERSON,
            conversation_id=None,
            at=datetime.now(UTC),
        )
    assert report.id is not None
    return Desk(config, db, service, FakeTwilio(), report.id)


@pytest_asyncio.fixture
async def desk(make_config: Callable[..., Config]) -> AsyncIterator[Desk]:
    d = await open_desk(make_config(WHATSAPP_TOML))
    yield d
    await d.db.dispose()


@pytest_asyncio.fixture
async def desk_with_template(make_config: Callable[..., Config]) -> AsyncIterator[Desk]:
    d = await open_desk(make_config(WHATSAPP_TOML + f'followup_content_sid = "{TEMPLATE}"\n'))
    yield d
    await d.db.dispose()


async def test_inside_24_hours_the_reply_goes_as_free_text(desk: Desk) -> None:
    last = await desk.last_message(timedelta(hours=23, minutes=50))
    assert followup_refusal(desk.config, "whatsapp", last, datetime.now(UTC)) is None
    got = await desk.reply()
    assert got.sent == 1
    [request] = desk.twilio.requests
    assert request["method"] == "POST" and request["uri"] == MESSAGES_URL
    assert request["auth"] == (ACCOUNT, TOKEN)
    assert request["data"] == {"To": PERSON, "From": BOT_NUMBER, "Body": REPLY}
    row = await desk.outbox_row()
    assert row.sent_at is not None and row.failed_at is None
    assert desk.service.cipher.decrypt_json(row.platform_ids_enc) == ["SM" + "0" * 31 + "1"]


async def test_after_24_hours_the_approved_template_is_sent_instead(desk_with_template: Desk) -> None:
    desk = desk_with_template
    last = await desk.last_message(timedelta(hours=24, minutes=5))
    assert followup_refusal(desk.config, "whatsapp", last, datetime.now(UTC)) is None
    assert (await desk.reply()).sent == 1
    [request] = desk.twilio.requests
    data = request["data"]
    assert data["To"] == PERSON and data["ContentSid"] == TEMPLATE
    assert json.loads(data["ContentVariables"]) == {"1": REFERENCE}
    assert "Body" not in data  # free text would be refused by WhatsApp (error 63016)


async def test_after_24_hours_without_a_template_the_reply_is_refused_with_the_reason(desk: Desk) -> None:
    last = await desk.last_message(timedelta(days=3))
    refusal = followup_refusal(desk.config, "whatsapp", last, datetime.now(UTC))
    assert refusal is not None
    assert "within 24 hours" in refusal and "72 hours ago" in refusal
    assert "whatsapp.followup_content_sid" in refusal
    # and if it was queued anyway, the sender refuses it for good instead of sending free text
    got = await desk.reply()
    assert (got.sent, got.failed) == (0, 1)
    assert desk.twilio.requests == []
    row = await desk.outbox_row()
    assert row.failed_at is not None and row.last_error == "outside-24h-window"


async def test_a_new_message_from_the_person_reopens_the_window(desk: Desk) -> None:
    await desk.last_message(timedelta(days=2))
    app = create_app(desk.config, desk.service, [whatsapp_routes(desk.config, desk.service)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        await WhatsAppPerson(client, desk.service).send("status HC-7K3Q-9XPD")
    async with desk.db.transaction() as s:
        report = await s.get(Report, desk.report_id)
        assert report is not None
        last = await last_inbound(s, report)
    assert followup_refusal(desk.config, "whatsapp", last, datetime.now(UTC)) is None
    assert (await desk.reply()).sent == 1
    assert desk.twilio.sent[0]["Body"] == REPLY


async def test_a_long_reply_goes_in_parts_of_at_most_1600_characters(desk: Desk) -> None:
    await desk.last_message(timedelta(minutes=5))
    paragraphs = [f"Paragraph {i}. " + "We are looking into what happened. " * 10 for i in range(8)]
    await desk.reply("\n".join(paragraphs))
    bodies = [r["Body"] for r in desk.twilio.sent]
    assert len(bodies) == 2 and all(len(b) <= 1600 for b in bodies)
    assert "\n".join(bodies) == "\n".join(p for p in paragraphs)


@pytest.mark.parametrize(
    ("status", "code", "sent", "retried", "failed"),
    [(429, 20429, 0, 1, 0), (503, 20500, 0, 1, 0), (400, 21211, 0, 0, 1)],
)
async def test_twilio_errors_are_retried_or_given_up(
    desk: Desk, status: int, code: int, sent: int, retried: int, failed: int
) -> None:
    await desk.last_message(timedelta(minutes=5))
    desk.twilio.fail_with = (status, code)
    got = await desk.reply()
    assert (got.sent, got.retried, got.failed) == (sent, retried, failed)
    row = await desk.outbox_row()
    assert row.sent_at is None
    assert row.last_error == f"twilio-{status}-{code}"  # a code, never Twilio's text (it can name the number)


def test_sender_for_gives_the_twilio_sender_only_when_it_can_send(
    make_config: Callable[..., Config], config: Config
) -> None:
    assert sender_for(make_config(WHATSAPP_TOML), "whatsapp").channel == "whatsapp"
    with pytest.raises(ChannelUnavailable):
        sender_for(config, "whatsapp")
    no_sender = WHATSAPP_TOML.replace(f'from = "{BOT_NUMBER}"', 'from = ""')
    with pytest.raises(ChannelUnavailable):
        sender_for(make_config(no_sender), "whatsapp")
    refusal = followup_refusal(make_config(no_sender), "whatsapp", datetime.now(UTC), datetime.now(UTC))
    assert refusal is not None and "whatsapp.from" in refusal


async def test_the_rest_client_speaks_http_to_twilio_over_httpx(desk: Desk) -> None:
    """The production HTTP client, against a fake Twilio API at the httpx transport."""
    seen: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) > 1:
            raise httpx.ConnectError("no route to host", request=request)
        return httpx.Response(201, json={"sid": "SM" + "ab" * 16, "status": "queued"})

    await desk.last_message(timedelta(minutes=5))
    http = HttpxTwilioClient(transport=httpx.MockTransport(api))
    sender = make_sender(desk.config, database_lookup(desk.db), http)
    outbox = Outbox(desk.db, desk.service.store)
    async with desk.db.transaction() as s:
        for text in ("First reply", "Second reply"):
            await desk.service.store.enqueue(
                s,
                channel="whatsapp",
                chat_key=desk.service.chat_key("whatsapp", PERSON),
                address=PERSON,
                messages=[to_dict(Outbound(text=text))],
                report_id=desk.report_id,
            )
    first = await outbox.deliver_once(sender)
    second = await outbox.deliver_once(sender)
    await sender.aclose()
    assert (first.sent, second.retried) == (1, 1)  # a network failure is retried later, not lost
    request = seen[0]
    assert request.method == "POST" and str(request.url) == MESSAGES_URL
    assert request.headers["authorization"].startswith("Basic ")
    assert parse_qs(request.content.decode()) == {
        "To": [PERSON],
        "From": [BOT_NUMBER],
        "Body": ["First reply"],
    }


async def test_after_a_twilio_outage_redelivery_sends_within_seconds_not_after_the_fresh_window(
    desk: Desk,
) -> None:
    """The staff command's try meets a Twilio outage; the server's REST redelivery (which leaves fresh
    messages to the webhook for REDELIVER_AFTER) takes the retry at its capped back-off instead."""
    await desk.last_message(timedelta(minutes=5))
    now = datetime.now(UTC)
    clock = [now]
    outbox = Outbox(desk.db, desk.service.store, clock=lambda: clock[0])
    async with desk.db.transaction() as s:
        await desk.service.store.enqueue(
            s,
            channel="whatsapp",
            chat_key=desk.service.chat_key("whatsapp", PERSON),
            address=PERSON,
            messages=[to_dict(Outbound(text=REPLY))],
            report_id=desk.report_id,
            at=now,
        )
    desk.twilio.fail_with = (503, 20500)
    assert (await outbox.drain(desk.sender)).retried == 1
    desk.twilio.fail_with = None  # Twilio is back
    clock[0] = now + timedelta(seconds=PROBE_CAP)
    got = await outbox.drain(desk.sender, older_than=REDELIVER_AFTER)
    assert got.sent == 1
    assert [r["data"].get("Body") for r in desk.twilio.requests] == [REPLY, REPLY]
