"""Twilio's copy of a file a person sent is deleted once the bytes are stored here.

The real WhatsApp sender and the real evidence fetcher of the delivery loop, with Twilio's media URLs
answered by the fake media endpoint (tests/channels/whatsapp_edge.py): the download, then
`DELETE .../Media/ME....json`. A Twilio that refuses or is away is tried again a bounded number of times,
logged by reason only, and never holds up the report: the file stays stored here either way."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

import bot.fetch
from bot.channels.whatsapp.send import make_sender
from bot.config import Config
from bot.delivery import Outbox
from bot.fetch import DISCARD_ATTEMPTS, EvidenceFetcher
from bot.service import ReportService
from storage.db import Database
from storage.evidence import EvidenceStore
from storage.fetches import add_fetches
from storage.interface import Fetch
from storage.models import EvidenceFetch
from tests.channels.whatsapp_edge import WHATSAPP_TOML, FakeTwilio, FakeTwilioMedia

PHOTO = b"\xff\xd8\xff\xe0 a photo of the broken window " + bytes(range(256))
REF = "evidence:" + "ab" * 16


@pytest.fixture
def wa_config(make_config: object) -> Config:
    return make_config(WHATSAPP_TOML)  # type: ignore[operator,no-any-return]


async def fetch_rounds(config: Config, media: FakeTwilioMedia, url: str, rounds: int) -> EvidenceStore:
    """A file waiting to download (as a step leaves it), then `rounds` rounds of the loop's fetcher, each
    free to retry at once."""
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    outbox = Outbox(db, service.store, lock=service.sqlite_writer)
    sender = make_sender(config, None, FakeTwilio(), httpx.MockTransport(media.handle))
    fetcher = EvidenceFetcher(config, outbox, sender)
    await outbox.write(
        lambda c: add_fetches(
            c, service.cipher, "whatsapp", [Fetch(REF, url, "image/jpeg")], at=datetime.now(UTC)
        )
    )
    try:
        for _ in range(rounds):
            await fetcher.run()
    finally:
        await sender.aclose()
        await db.dispose()
    return fetcher.evidence


async def rows_left(config: Config) -> int:
    db = Database(config.database_url)
    try:
        async with db.transaction() as s:
            return int((await s.execute(select(func.count()).select_from(EvidenceFetch))).scalar() or 0)
    finally:
        await db.dispose()


async def test_twilio_s_copy_is_deleted_after_the_download(wa_config: Config) -> None:
    media = FakeTwilioMedia()
    url = media.add("MM5ca1ab1e", PHOTO)
    store = await fetch_rounds(wa_config, media, url, rounds=1)
    assert store.read(REF) == PHOTO
    assert media.deleted == [url]
    [(deleted, auth)] = [m for m in media.requests if m[0].endswith(".json")]
    assert deleted == url + ".json" and auth is not None  # to Twilio's API, with the account's credentials
    assert await rows_left(wa_config) == 0


async def test_a_delete_twilio_refuses_for_a_while_is_tried_again(
    wa_config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bot.fetch, "DISCARD_WAIT", 0.0)  # no waiting between rounds in a test
    media = FakeTwilioMedia()
    url = media.add("MM5ca1ab1e", PHOTO)
    media.fail_deletes = 2
    with caplog.at_level(logging.INFO, logger="reportbot.evidence"):
        store = await fetch_rounds(wa_config, media, url, rounds=3)
    assert store.read(REF) == PHOTO  # stored at once: the report never waited for Twilio
    assert media.deleted == [url]
    assert await rows_left(wa_config) == 0
    assert "media not deleted yet channel=whatsapp error=media-503" in caplog.text
    assert "MM5ca1ab1e" not in caplog.text and "twilio.com" not in caplog.text and REF not in caplog.text


async def test_a_delete_that_keeps_failing_is_given_up_after_a_bounded_number_of_tries(
    wa_config: Config, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bot.fetch, "DISCARD_WAIT", 0.0)
    media = FakeTwilioMedia()
    url = media.add("MM5ca1ab1e", PHOTO)
    media.fail_deletes = 1000
    with caplog.at_level(logging.INFO, logger="reportbot.evidence"):
        store = await fetch_rounds(wa_config, media, url, rounds=DISCARD_ATTEMPTS + 3)
    assert store.read(REF) == PHOTO
    tries = [u for u, _ in media.requests if u.endswith(".json")]
    assert tries == [url + ".json"] * DISCARD_ATTEMPTS
    assert media.deleted == []
    assert await rows_left(wa_config) == 0  # the Twilio URL is not kept here any longer
    assert "media not deleted on the platform channel=whatsapp reason=attempts" in caplog.text
    assert "MM5ca1ab1e" not in caplog.text and "twilio.com" not in caplog.text
