"""Hostile and broken input on the WhatsApp webhook (Hypothesis, bounded for `make test`).

Random forms, random bytes, invalid UTF-8, huge bodies, missing fields, wrong types, unicode edge cases
and control characters. Never a 500. Without a valid signature: 403 and not one row stored. With one:
200 (or 413 over the size limit), and a person's text message, whatever it says, gets a TwiML answer.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.channels.whatsapp.webhook import PATH, whatsapp_routes
from bot.config import load_config
from bot.server import create_app
from bot.service import ReportService
from storage.db import Database
from storage.models import ALL_TABLES
from tests.channels.whatsapp_edge import ACCOUNT, PUBLIC, WHATSAPP_TOML, FakeTwilio, form, messages, sign
from tests.conftest import examples, write_config

EXAMPLES = int(os.environ.get("REPORTBOT_FUZZ_EXAMPLES", examples(60)))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
sids = itertools.count(1)
people = itertools.count(447700900200)


class Running:
    """The real app with the fake Twilio REST edge, on an event loop of its own for the whole module."""

    def __init__(self, folder: Path) -> None:
        self.runner = asyncio.Runner()
        config = load_config(write_config(folder, WHATSAPP_TOML), env={})
        self.db = Database(config.database_url)
        self.runner.run(self.db.create_schema())
        service = ReportService(config, self.db)
        routes = whatsapp_routes(config, service, http_client=FakeTwilio(), redeliver_every=3600)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(config, service, [routes])), base_url=PUBLIC
        )

    def post(self, content: bytes, signature: str | None) -> httpx.Response:
        headers: dict[str, str | bytes] = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature.encode("utf-8")  # raw bytes, as an attacker may send
        return self.runner.run(self.client.post(PATH, content=content, headers=headers))

    def rows(self) -> int:
        async def count() -> int:
            total = 0
            async with self.db.transaction() as s:
                for table in ALL_TABLES:
                    total += int((await s.execute(select(func.count()).select_from(table))).scalar() or 0)
            return total

        return int(self.runner.run(count()))

    def close(self) -> None:
        self.runner.run(self.client.aclose())
        self.runner.run(self.db.dispose())
        self.runner.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running(tmp_path_factory.mktemp("fuzz-whatsapp"))
    yield running
    running.close()


nasty_text = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(["\x00", "\u202e", "\ufeff", "\u200b", "\U0001f600", "\r", "\n", "&", "=", "%", "+"]),
    max_size=400,
)
TWILIO_FIELDS = (
    *("Body", "From", "NumMedia", "MediaUrl0", "MediaContentType0", "Latitude", "Longitude", "Address"),
    *(
        "Label",
        "ButtonPayload",
        "ButtonText",
        "MessageSid",
        "AccountSid",
        "ProfileName",
        "WaId",
        "MessageType",
    ),
)
field_names = st.sampled_from(TWILIO_FIELDS) | st.text(max_size=12)
odd_values = nasty_text | st.sampled_from(
    ["", "-1", "999999999", "1e309", "nan", "whatsapp:", "whatsapp:US.x"]
)


@FUZZ
@given(
    fields=st.dictionaries(field_names, odd_values, max_size=10), signature=st.none() | st.text(max_size=40)
)
def test_unsigned_or_badly_signed_forms_get_403_and_store_nothing(
    app: Running, fields: dict[str, str], signature: str | None
) -> None:
    before = app.rows()
    fields.setdefault("AccountSid", ACCOUNT)
    response = app.post(urlencode(fields).encode(), signature)
    assert response.status_code == 403
    assert app.rows() == before


@FUZZ
@given(body=st.binary(max_size=2000), signature=st.none() | st.text(max_size=40))
def test_random_bytes_never_get_a_500_and_store_nothing(
    app: Running, body: bytes, signature: str | None
) -> None:
    before = app.rows()
    response = app.post(body, signature)
    assert response.status_code in (400, 403, 413)
    assert app.rows() == before


@FUZZ
@given(body=nasty_text, extra=st.dictionaries(field_names, odd_values, max_size=6))
def test_signed_forms_with_odd_fields_never_get_a_500(app: Running, body: str, extra: dict[str, str]) -> None:
    fields = form(body, f"SM{next(sids):032x}", sender=f"whatsapp:+{next(people)}")
    for key, value in extra.items():
        if key not in ("From", "AccountSid", "MessageSid"):
            fields[key] = value
    response = app.post(urlencode(fields).encode(), sign(fields))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")


@FUZZ
@given(body=nasty_text)
def test_any_text_from_a_person_gets_an_answer(app: Running, body: str) -> None:
    fields = form(body, f"SM{next(sids):032x}", sender=f"whatsapp:+{next(people)}")
    response = app.post(urlencode(fields).encode(), sign(fields))
    assert response.status_code == 200
    replies = messages(response)
    assert replies and all(reply.strip() for reply in replies)


def test_a_huge_signed_body_is_refused_with_413(app: Running) -> None:
    fields = form("x" * 1_100_000, "SM" + "f" * 32)
    before = app.rows()
    response = app.post(urlencode(fields).encode(), sign(fields))
    assert response.status_code == 413
    assert app.rows() == before
