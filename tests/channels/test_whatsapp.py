"""WhatsApp through Twilio, end to end: signed form posts to the real app, TwiML back, real SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot.channels.whatsapp.parse import inbound_from_form
from bot.channels.whatsapp.render import bodies, split_message
from bot.channels.whatsapp.webhook import PATH, whatsapp_routes
from bot.config import Config
from bot.server import build_app, create_app
from bot.service import Envelope, ReportService
from flows.types import Inbound, Option, Outbound
from storage.db import Database
from storage.evidence import EvidenceStore
from storage.models import Conversation, EvidenceFetch, InboundReceipt, OutboxMessage, Report, TranscriptEntry
from tests.channels.whatsapp_edge import (
    PERSON,
    PROFILE_NAME,
    PUBLIC,
    WHATSAPP_TOML,
    FakeTwilio,
    FakeTwilioMedia,
    WhatsAppPerson,
    form,
    messages,
    number,
    sign,
)
from tests.conftest import raw_database_bytes


@pytest.fixture
def wa_config(make_config: Callable[..., Config]) -> Config:
    return make_config(WHATSAPP_TOML)


class App:
    """The real app for one test, with its service and the fake Twilio REST edge."""

    def __init__(self, config: Config, base_url: str = PUBLIC, **routes: Any) -> None:
        self.config = config
        self.db = Database(config.database_url)
        self.service = ReportService(config, self.db)
        self.twilio = FakeTwilio()
        self.media = FakeTwilioMedia()
        self.routes = whatsapp_routes(
            config,
            self.service,
            http_client=self.twilio,
            media_transport=httpx.MockTransport(self.media.handle),
            redeliver_every=0.05,
            **routes,
        )
        self.app = create_app(config, self.service, [self.routes])
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=base_url)
        self.person = WhatsAppPerson(self.client, self.service)

    async def count(self, table: Any, *where: Any) -> int:
        async with self.db.transaction() as s:
            return int((await s.execute(select(func.count()).select_from(table).where(*where))).scalar() or 0)

    async def stored(self) -> dict[str, int]:
        return {
            t.__tablename__: await self.count(t)
            for t in (Conversation, InboundReceipt, OutboxMessage, Report, TranscriptEntry)
        }


@pytest_asyncio.fixture
async def wa(wa_config: Config) -> AsyncIterator[App]:
    app = App(wa_config)
    await app.db.create_schema()
    yield app
    await app.client.aclose()
    await app.db.dispose()


NOTHING = {"conversation": 0, "inbound_receipt": 0, "outbox": 0, "report": 0, "transcript_entry": 0}


# -- a whole report ----------------------------------------------------------------------------------


async def test_a_whole_report_by_numbers_and_typed_text_with_location_and_photo(wa: App) -> None:
    p = wa.person
    said = await p.send("Hi")
    assert "This is Report Hate" in said and "1. Continue" in said
    assert "Is it happening now?" in await p.choose("Continue")
    assert "Which of these fits you best?" in await p.choose("No")
    assert "In your own words" in await p.choose("It happened to me")
    assert "Is there more" in await p.send("A man shouted at me at the bus stop on Mill Road.")
    said = await p.choose("Done")
    assert "Which of these happened?" in said
    said = await p.send(f"{number(said, 'Verbal abuse or threats')} {number(said, 'Ongoing harassment')}")
    assert "Why do you think it happened?" in said  # typed numbers answer a pick-all question at once
    said = await p.send(number(said, "Religion or belief"))  # one number ticks it; the question stays
    assert "Why do you think it happened?" in said and "\u2713" in said
    assert "When did it happen?" in await p.choose("Done")
    assert "What time of day" in await p.choose("Yesterday")
    assert "Where did it happen?" in await p.choose("Evening")
    said = await p.share(52.2003, 0.1385, label="Mill Road bus stop", address="Mill Road, Cambridge")
    assert "Has this happened before?" in said
    assert "person or people who did it" in await p.choose("It keeps happening")
    assert "Do you know who they are?" in await p.send("Tall, red jacket, about 40.")
    assert "Would you know them" in await p.choose("No")
    assert "Was anyone hurt?" in await p.choose("Yes")
    said = await p.choose("No")
    assert "Was anything damaged?" in said
    assert "Did anyone else see it" in await p.choose("No")
    assert "photos, screenshots or videos" in await p.choose("Not sure")
    photo = "https://api.twilio.com/2010-04-01/Accounts/AC5e/Messages/MM01/Media/ME01"
    assert "Send more, or choose Done" in await p.photo(photo, caption="the bus stop")
    assert "support service" in await p.choose("Done")
    assert "How would you like us to contact you about this?" in await p.choose("No")
    said = await p.choose("Here in this chat")
    assert "we will reply here in this chat" in said
    while "Here is your report" not in said:  # optional contact questions, then consent
        if "Who can we send your report to?" in said and "\u2713" not in said:
            said = await p.send(number(said, "Police"))
        elif "Who can we send your report to?" in said:
            said = await p.choose("Done")
        else:
            said = await p.send("skip")
    assert "Where: Mill Road bus stop" in said and "Photos and files: 1 sent" in said
    said = await p.choose("Send report")
    assert "Your reference is HC-" in said

    assert await wa.count(Conversation) == 0  # the draft became the report
    assert await wa.count(OutboxMessage, OutboxMessage.sent_at.is_(None)) == 0  # all went in responses
    async with wa.db.transaction() as s:
        report = (await s.execute(select(Report))).scalar_one()
        sealed = wa.service.store.sealed(report)
        transcript = await wa.service.store.transcript(s, report_id=report.id)
    assert report.channel == "whatsapp"
    assert report.incident_types == ["verbal", "harassment"] and report.motivations == ["religion"]
    assert report.share_with == ["police"] and not report.anonymous
    assert sealed["location"] == {
        "text": "Mill Road bus stop, Mill Road, Cambridge",
        "latitude": 52.2003,
        "longitude": 0.1385,
    }
    # The evidence store's own reference, never the Twilio URL (its Message SID links to the sender).
    [kept] = sealed["evidence"]
    assert kept["ref"].startswith("evidence:") and kept["content_type"] == "image/jpeg"
    assert sealed["description"] == "A man shouted at me at the bus stop on Mill Road."
    assert wa.service.cipher.decrypt(report.reply_address_enc) == PERSON
    assert report.chat_key == wa.service.chat_key("whatsapp", PERSON)
    assert any("[image/jpeg] the bus stop" in line.text for line in transcript)

    raw = raw_database_bytes(wa.config)
    for secret in (PERSON, "447700900123", PROFILE_NAME, "Mill Road", "red jacket", "MM01/Media"):
        assert secret.encode() not in raw


# -- authentication ----------------------------------------------------------------------------------


async def test_bad_missing_or_foreign_signatures_get_403_and_store_nothing(wa: App) -> None:
    fields = form("Hi", "SM1")
    tries = {
        "wrong token": sign(fields, token="f" * 32),
        "another URL": sign(fields, url="https://evil.example.org" + PATH),
        "internal URL": sign(fields, url="http://internal:8000" + PATH),
        "other fields": sign(form("Hello", "SM1")),
        "garbage": "not-a-signature",
    }
    for name, signature in tries.items():
        response = await wa.person.post(fields, signature=signature)
        assert response.status_code == 403, name
        assert "Message" not in response.text
    missing = await wa.client.post(
        PATH,
        content="Body=Hi&From=whatsapp%3A%2B447700900123&MessageSid=SM1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert missing.status_code == 403
    assert await wa.stored() == NOTHING
    assert wa.twilio.requests == []


async def test_a_field_changed_after_signing_is_refused(wa: App) -> None:
    fields = form("Hi", "SM1")
    signature = sign(fields)
    tampered = dict(fields, From="whatsapp:+447700900999")
    assert (await wa.person.post(tampered, signature=signature)).status_code == 403
    assert await wa.stored() == NOTHING


async def test_behind_a_proxy_a_request_signed_for_the_public_url_passes(wa_config: Config) -> None:
    app = App(wa_config, base_url="http://internal:8000")
    await app.db.create_schema()
    try:
        said = await app.person.send("Hi")
        assert "This is Report Hate" in said
        assert await app.count(Conversation) == 1
        # and one signed for the address it arrived at (the wrong one to trust) is refused
        fields = form("Hi", "SM9")
        refused = await app.person.post(fields, signature=sign(fields, url="http://internal:8000" + PATH))
        assert refused.status_code == 403
    finally:
        await app.client.aclose()
        await app.db.dispose()


async def test_a_body_over_the_limit_is_refused_unread(wa: App) -> None:
    big = form("x" * 1_200_000, "SM1")
    response = await wa.person.post(big)
    assert response.status_code == 413
    assert await wa.stored() == NOTHING


async def test_a_message_for_another_account_is_refused(wa: App) -> None:
    fields = form("Hi", "SM1", AccountSid="AC" + "00" * 16)
    assert (await wa.person.post(fields)).status_code == 403
    assert await wa.stored() == NOTHING


# -- repeats -----------------------------------------------------------------------------------------


async def test_the_same_message_sid_twice_changes_state_once(wa: App) -> None:
    p = wa.person
    await p.send("Hi")
    fields = form(number(p.last, "Continue"), "SM-repeat")
    first = await p.post(fields)
    assert "Is it happening now?" in "\n".join(messages(first))
    before = await wa.stored()
    again = await p.post(fields)
    assert again.status_code == 200
    assert messages(again) == []  # Twilio must not show the same replies twice
    assert await wa.stored() == before
    async with wa.db.transaction() as s:
        conv = (await s.execute(select(Conversation))).scalar_one()
    assert conv.step == "safety"


# -- what the person sees ----------------------------------------------------------------------------


async def test_a_photo_or_voice_note_before_the_evidence_step_is_kept_for_it(wa: App) -> None:
    p = wa.person
    await p.send("Hi")
    said = await p.photo("https://api.twilio.com/2010-04-01/Accounts/AC5e/Messages/MM9/Media/ME9")
    assert "I have kept this with your report" in said
    assert "1. Continue" in said  # the same question again
    said = await p.send(
        "",
        NumMedia="1",
        MediaUrl0="https://api.twilio.com/2010-04-01/Accounts/AC5e/Messages/MM10/Media/ME10",
        MediaContentType0="audio/ogg",
        MessageType="audio",
    )
    assert "I have kept this with your report" in said and "can't" not in said
    async with wa.db.transaction() as s:
        draft = wa.service.cipher.decrypt_json((await s.execute(select(Conversation))).scalar_one().draft_enc)
    kept = draft["answers"]["evidence"]
    assert [k["content_type"] for k in kept] == ["image/jpeg", "audio/ogg"]
    assert all(k["ref"].startswith("evidence:") for k in kept)  # the store's reference, not Twilio's URL
    raw = raw_database_bytes(wa.config)
    assert b"MM9/Media" not in raw and b"MM10/Media" not in raw
    assert await wa.count(EvidenceFetch) == 2  # left to the delivery loop


async def test_exit_deletes_the_draft_and_says_how_to_clear_the_chat(wa: App) -> None:
    p = wa.person
    await p.send("Hi")
    await p.choose("Continue")
    said = await p.send("exit")
    assert "Your answers are deleted" in said and "messages stay on your phone" in said
    assert "tap Clear chat" in said
    assert await wa.count(Conversation) == 0
    assert await wa.count(TranscriptEntry) == 0


async def test_exit_with_nothing_in_progress_does_not_claim_answers_were_deleted(wa: App) -> None:
    said = await wa.person.send("exit")  # e.g. after the report was sent: no answers left to delete
    assert "Your answers are deleted" not in said
    assert "no report in progress" in said and "messages stay on your phone" in said
    assert "tap Clear chat" in said


async def test_a_message_not_from_whatsapp_is_ignored(wa: App) -> None:
    response = await wa.person.post(form("Hi", "SM1", sender="+447700900123"))
    assert response.status_code == 200 and messages(response) == []
    assert await wa.stored() == NOTHING


async def test_the_route_is_mounted_only_when_whatsapp_is_configured(
    wa_config: Config, config: Config
) -> None:
    for cfg, expected in ((wa_config, 403), (config, 404)):
        app = build_app(cfg)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
            assert (await client.post(PATH, content=b"Body=Hi")).status_code == expected
        await app.state.service.db.dispose()


# -- translation units -------------------------------------------------------------------------------


def test_twilio_fields_become_one_inbound() -> None:
    got = inbound_from_form(
        form(
            "",
            "SM1",
            Latitude="51.5",
            Longitude="-0.12",
            Label="Bus stop",
            NumMedia="2",
            MediaUrl0="https://api.twilio.com/m/0",
            MediaContentType0="image/jpeg",
            MediaUrl1="https://api.twilio.com/m/1",
            MediaContentType1="video/mp4",
        )
    )
    assert got.location is not None and (got.location.latitude, got.location.longitude) == (51.5, -0.12)
    assert got.location.text == "Bus stop"
    assert [m.ref for m in got.media] == ["https://api.twilio.com/m/0", "https://api.twilio.com/m/1"]
    assert inbound_from_form(form("", "SM1", ButtonPayload="yes", ButtonText="Yes")) == Inbound(
        text="Yes", option="yes"
    )
    assert inbound_from_form(form("hi", "SM1", Latitude="nan", Longitude="1")).location is None
    assert inbound_from_form(form("hi", "SM1", NumMedia="many")).media == ()


WORDS = " ".join(["word"] * 20)


def test_long_replies_split_on_line_boundaries_within_1600() -> None:
    options = tuple(Option(key=f"k{i}", label=f"Option number {i} {WORDS}") for i in range(40))
    text = bodies([Outbound(text="Pick one.", options=options)])
    assert len(text) > 1
    assert all(len(part) <= 1600 for part in text)
    lines = [line for part in text for line in part.split("\n")]
    assert f"1. Option number 0 {WORDS}" in lines
    assert lines[-1].startswith("40. Option number 39")
    assert "\n".join(text).count("Option number") == 40  # nothing lost, no line cut in two
    # one line with no room to breathe is cut at spaces; emoji count double, as Twilio counts them
    parts = split_message("\U0001f600" * 900)
    assert [len(p.encode("utf-16-le")) // 2 for p in parts] == [1600, 200]


def test_several_replies_of_one_step_share_a_message_in_order() -> None:
    got = bodies([Outbound(text="Thank you."), Outbound(text="Next?", options=(Option("a", "A"),))])
    assert got == ["Thank you.\n\nNext?\n\n1. A"]


# -- replies the response could not carry ------------------------------------------------------------


async def test_replies_committed_but_never_answered_go_out_by_rest_after_a_restart(wa: App) -> None:
    # The webhook committed a step and the process died before answering (or marking the replies sent).
    earlier = datetime.now(UTC) - timedelta(minutes=3)
    env = Envelope("whatsapp", PERSON, Inbound(text="Hi"), delivery_id="SM-crash", received_at=earlier)
    await wa.service.handle(env)
    assert await wa.count(OutboxMessage, OutboxMessage.sent_at.is_(None)) == 1
    async with wa.app.router.lifespan_context(wa.app):  # the restart
        for _ in range(100):
            if wa.twilio.requests:
                break
            await asyncio.sleep(0.02)
        # Twilio's retry of the same message is acknowledged and shows nothing twice
        repeat = await wa.person.post(form("Hi", "SM-crash"))
        assert messages(repeat) == []
    assert len(wa.twilio.requests) == 1
    sent = wa.twilio.sent[0]
    assert sent["To"] == PERSON and sent["From"] == "whatsapp:+447700900000"
    assert "This is Report Hate" in sent["Body"] and "1. Continue" in sent["Body"]
    assert await wa.count(OutboxMessage, OutboxMessage.sent_at.is_(None)) == 0


async def test_fresh_replies_are_left_to_the_webhook_response(wa: App) -> None:
    await wa.service.handle(Envelope("whatsapp", PERSON, Inbound(text="Hi"), delivery_id="SM-new"))
    async with wa.app.router.lifespan_context(wa.app):
        await asyncio.sleep(0.2)
    assert wa.twilio.requests == []


async def test_a_step_slower_than_twilio_waits_is_answered_empty_and_its_replies_follow_by_rest(
    wa_config: Config,
) -> None:
    app = App(wa_config, step_budget=0.2, redeliver_after=timedelta(0))
    await app.db.create_schema()
    lock = app.service.sqlite_writer
    assert lock is not None
    try:
        async with app.app.router.lifespan_context(app.app):
            async with lock:  # another writer holds the database for longer than the budget
                response = await app.person.post(form("Hi", "SM-slow"))
                assert response.status_code == 200 and messages(response) == []
            for _ in range(100):
                if app.twilio.requests:
                    break
                await asyncio.sleep(0.02)
        assert [r["To"] for r in app.twilio.sent] == [PERSON]
        assert "This is Report Hate" in app.twilio.sent[0]["Body"]
        assert await app.count(Conversation) == 1  # the step itself was not lost
    finally:
        await app.client.aclose()
        await app.db.dispose()


async def test_a_step_that_fails_gets_an_apology_and_stores_nothing(wa: App) -> None:
    await wa.db.dispose()
    async with wa.db.engine.begin() as conn:  # a broken database: the tables are gone
        await conn.exec_driver_sql("DROP TABLE transcript_entry")
    response = await wa.person.post(form("Hi", "SM1"))
    assert response.status_code == 200
    assert "Please send your last message again" in "\n".join(messages(response))
    assert await wa.count(InboundReceipt) == 0  # so the person's next try is not taken for a repeat


# -- evidence ------------------------------------------------------------------------------------------

CANARY_PHOTO = b"\xff\xd8\xff\xe0 CANARY-WA-PHOTO-8RT2 " + bytes(range(256)) * 4


async def _fetches_left(app: App) -> int:
    return await app.count(EvidenceFetch)


async def test_an_anonymous_report_keeps_the_photo_encrypted_and_no_twilio_url(wa: App) -> None:
    p = wa.person
    url = wa.media.add("MM0ddba11", CANARY_PHOTO)
    async with wa.app.router.lifespan_context(wa.app):  # the delivery loop runs
        await p.send("Hi")
        await p.choose("Continue")
        await p.choose("No")
        await p.choose("I saw it happen")
        await p.send("Two men pulled a woman's headscarf on the bus.")
        said = await p.choose("Done")
        await p.send(number(said, "Verbal abuse or threats"))
        said = await p.choose("Done")
        await p.send(number(said, "Religion or belief"))
        await p.choose("Done")
        await p.choose("Yesterday")
        said = await p.choose("Evening")
        while "photos, screenshots or videos" not in said:
            said = await p.send("skip")
        assert "Send more, or choose Done" in await p.photo(url)
        for _ in range(200):
            if not await _fetches_left(wa):
                break
            await asyncio.sleep(0.02)
        assert await _fetches_left(wa) == 0
        said = await p.choose("Done")
        said = await p.choose("No")  # support
        said = await p.choose("Don't contact me")
        while "Here is your report" not in said:
            if "Who can we send your report to?" in said and "\u2713" not in said:
                said = await p.send(number(said, "Police"))
            elif "Who can we send your report to?" in said:
                said = await p.choose("Done")
            else:
                said = await p.send("skip")
        assert "Your reference is HC-" in await p.choose("Send report")
    # The download: credentials to Twilio's API only, then the file store (the fake checks it got none);
    # once stored here, Twilio's copy is deleted.
    assert [u for u, _ in wa.media.requests] == [
        url,
        url.replace("https://api.twilio.com/", FakeTwilioMedia.STORE),
        url + ".json",
    ]
    assert wa.media.deleted == [url] and url not in wa.media.files
    async with wa.db.transaction() as s:
        report = (await s.execute(select(Report))).scalar_one()
        sealed = wa.service.store.sealed(report)
    assert report.anonymous
    [kept] = sealed["evidence"]
    assert (
        kept["ref"].startswith("evidence:")
        and "twilio" not in repr(sealed)
        and "MM0ddba11" not in repr(sealed)
    )
    store = EvidenceStore(wa.config.data_path, wa.config.security.encryption_keys)
    assert store.read(kept["ref"]) == CANARY_PHOTO
    raw = raw_database_bytes(wa.config)
    assert b"MM0ddba11" not in raw and b"CANARY-WA-PHOTO" not in raw
    for path in wa.config.data_path.rglob("*"):
        if path.is_file():
            assert b"CANARY-WA-PHOTO" not in path.read_bytes() and b"MM0ddba11" not in path.read_bytes()


async def test_media_credentials_go_to_twilio_only(wa: App) -> None:
    from bot.channels.whatsapp.send import make_sender
    from bot.errors import GiveUp

    sender = make_sender(wa.config, None, wa.twilio, httpx.MockTransport(wa.media.handle))
    try:
        with pytest.raises(GiveUp):
            await sender.fetch("https://evil.example/Media/ME1", 1000)
        assert wa.media.requests == []
        url = wa.media.add("MM1", b"x" * 2000)
        with pytest.raises(GiveUp, match="too-big"):
            await sender.fetch(url, 1024)
    finally:
        await sender.aclose()
