"""Adversarial privacy checks: what someone holding the database, the logs or an export could learn.

Each test plants something a reporter typed (or an identifier of their chat) and then looks where a
careless operator or an attacker would look: every row, the raw SQLite bytes, captured logs, exports.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.channels.telegram.send import Pacer
from bot.channels.telegram.webhook import TelegramChannel
from bot.cli import _logging
from bot.config import Config
from bot.logs import RedactingFilter
from bot.server import create_app
from bot.service import ReportService
from storage.db import Database
from storage.models import ChatMessage, Conversation, OutboxMessage, Report, TranscriptEntry
from tests.channels.test_telegram import TELEGRAM_TOML
from tests.conftest import every_backend, every_backend_postgresql_slow, raw_database_bytes, stored_text
from tests.fakes.telegram_api import FakeBotAPI
from tests.reporting import (
    ANONYMOUS,
    BY_PHONE,
    CANARY_NAME,
    CANARY_PHONE,
    CANARY_STORY,
    IN_CHAT,
    START,
    converse,
    script,
)
from tests.staff.test_maintenance import all_rows, deliver_all


def _utc(value: datetime | None) -> datetime | None:
    from storage.export import aware

    return None if value is None else aware(value)


@every_backend_postgresql_slow
async def test_an_anonymous_report_shares_no_timestamp_with_the_chat_s_contactable_report(
    db: Database, config: Config
) -> None:
    """A person who once asked to be contacted later reports anonymously from the same chat: nothing
    kept about the chat (its contactable report, its messages) may carry a time of the anonymous one."""
    service = ReportService(config, db)
    first = await converse(service, script(config, IN_CHAT))
    await deliver_all(service)
    later = START + timedelta(days=1)
    second = await converse(service, script(config, ANONYMOUS), start=later)
    await deliver_all(service)
    contactable_ref, anonymous_ref = first[-1].reference, second[-1].reference
    assert contactable_ref and anonymous_ref

    reports = {r.reference: r for r in await all_rows(db, Report)}
    anonymous = reports[anonymous_ref]
    assert anonymous.chat_key is None and anonymous.reply_address_enc is None
    anonymous_times = {_utc(anonymous.submitted_at)} | {
        _utc(t.at) for t in await all_rows(db, TranscriptEntry) if t.report_id == anonymous.id
    }
    span = (min(anonymous_times), max(anonymous_times))  # type: ignore[type-var]

    chat_key = service.chat_key("console", "884422117733")
    linked: list[tuple[str, datetime | None]] = []
    contactable = reports[contactable_ref]
    linked += [
        ("report.submitted_at", contactable.submitted_at),
        ("report.last_inbound_at", contactable.last_inbound_at),
        ("report.status_changed_at", contactable.status_changed_at),
    ]
    for row in await all_rows(db, OutboxMessage):
        if row.chat_key == chat_key:
            linked += [("outbox.created_at", row.created_at), ("outbox.sent_at", row.sent_at)]
    for row in await all_rows(db, ChatMessage):
        if row.chat_key == chat_key:
            linked.append(("chat_message.at", row.at))
    for row in await all_rows(db, Conversation):
        if row.chat_key == chat_key:
            linked += [
                ("conversation.created_at", row.created_at),
                ("conversation.updated_at", row.updated_at),
            ]
    inside = [
        (name, at)
        for name, at in linked
        if at is not None and span[0] <= _utc(at) <= span[1]  # type: ignore[operator]
    ]
    assert inside == [], f"times tied to the chat fall within the anonymous report's conversation: {inside}"


# -- canaries through each channel, looked for everywhere ---------------------------------------------


SECRET = "webhook-secret-0123456789abcdef"
TG_CHAT = 5550193377
PLACE = "Canary Place, 12 Wickerbasket Lane"
WHO = "Canary offender in a mustard anorak"


@contextlib.contextmanager
def verbose_logs() -> Iterator[io.StringIO]:
    """Logging as `reportbot -v` sets it up (DEBUG, the redacting filter), written to a string."""
    out = io.StringIO()
    root = logging.getLogger()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    saved = (root.level, {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict})
    root.addHandler(handler)
    try:
        _logging(True)
        yield out
    finally:
        root.removeHandler(handler)
        for each in root.handlers:
            for f in [f for f in each.filters if isinstance(f, RedactingFilter)]:
                each.removeFilter(f)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


def assert_nowhere(canaries: list[str], *places: tuple[str, str | bytes]) -> None:
    for canary in canaries:
        for name, content in places:
            found = canary.encode() in content if isinstance(content, bytes) else canary in content
            assert not found, f"{canary!r} found in {name}"


def answers_with_canaries() -> dict[str, list[str]]:
    return {**BY_PHONE, "where": [PLACE], "offender": [WHO]}


@pytest.mark.slow  # a whole report through the real app and its logs, on both databases
@every_backend
async def test_telegram_canaries_reach_neither_the_database_nor_verbose_logs(
    make_config: Callable[..., Config],
) -> None:
    config = make_config(TELEGRAM_TOML)
    api = FakeBotAPI()
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    channel = TelegramChannel(config, service, api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05)
    app = create_app(config, service, [channel.routes()])
    profile = {"first_name": "Canaryfirst", "last_name": "Canarylast", "username": "canary_handle"}

    def update(u: dict[str, Any]) -> dict[str, Any]:
        msg = u.get("message") or {}
        msg.get("from", {}).update(profile)
        msg.get("chat", {}).update(profile)
        return u

    with verbose_logs() as logs:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://reportbot.test") as client:

                async def post(u: dict[str, Any], secret: str = SECRET) -> int:
                    headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
                    return (
                        await client.post("/telegram/webhook", json=update(u), headers=headers)
                    ).status_code

                group = api.group_text(-100987654321, "Canary group words")
                group["message"]["chat"]["title"] = "Canary group title"
                assert await post(group) == 200
                assert await post(api.text(TG_CHAT, "forged Canary words"), secret="wrong" * 4) == 403
                for line in script(config, answers_with_canaries()):
                    assert await post(api.text(TG_CHAT, line)) == 200
                async with asyncio.timeout(10):
                    while True:
                        await channel.idle()
                        async with db.transaction() as s:
                            if await channel.outbox.store.pending_count(s, "telegram") == 0:
                                break
    bot_said = "\n".join(api.bot_texts(TG_CHAT))
    assert CANARY_STORY in bot_said and "HC-" in bot_said  # the person saw their report go in
    canaries = [
        CANARY_STORY,
        CANARY_NAME,
        CANARY_PHONE,
        PLACE,
        WHO,
        str(TG_CHAT),
        "987654321",
        "Canaryfirst",
        "Canarylast",
        "canary_handle",
        "Canary group",
        "forged Canary",
    ]
    places: list[tuple[str, str | bytes]] = [
        ("every column", await stored_text(db)),
        ("logs", logs.getvalue()),
    ]
    if db.is_sqlite:
        places.append(("the SQLite file and WAL", raw_database_bytes(config)))
    await db.dispose()
    assert "reportbot.service" in logs.getvalue()  # the logs did say things
    assert_nowhere(canaries, *places)


@pytest.mark.slow  # a whole report through the real app and its logs, on both databases
@every_backend
async def test_whatsapp_canaries_reach_neither_the_database_nor_verbose_logs(
    make_config: Callable[..., Config],
) -> None:
    from tests.channels.test_whatsapp import App
    from tests.channels.whatsapp_edge import WHATSAPP_TOML, WhatsAppPerson, form, sign

    config = make_config(WHATSAPP_TOML)
    app = App(config)
    await app.db.create_schema()
    phone = "whatsapp:+447700900461"
    account, sid = "AC" + "1f" * 16, "MM" + "2e" * 16
    media = f"https://api.twilio.com/2010-04-01/Accounts/{account}/Messages/{sid}/Media/ME{'3d' * 16}"
    person = WhatsAppPerson(app.client, app.service, sender=phone)
    profile = {"ProfileName": "Canaryprofile Person", "WaId": "447700900461"}
    with verbose_logs() as logs:
        async with app.app.router.lifespan_context(app.app):
            forged = form("forged Canary words", "SM" + "9" * 32, sender=phone, **profile)
            assert (await person.post(forged, signature=sign(forged, token="f" * 32))).status_code == 403
            for line in script(config, {**answers_with_canaries(), "evidence": ["done"]}):
                if line == "done" and "photos, screenshots or videos" in person.last:
                    await person.send(
                        "Canary caption",
                        NumMedia="1",
                        MediaUrl0=media,
                        MediaContentType0="image/jpeg",
                        **profile,
                    )
                await person.send(line, **profile)
    assert "Your reference is HC-" in person.last
    async with app.db.transaction() as s:
        [report] = (await s.execute(select(Report))).scalars()
    # The report keeps the evidence store's reference; the Twilio URL waits, encrypted, for the download.
    [kept] = app.service.store.sealed(report)["evidence"]
    assert kept["ref"].startswith("evidence:") and kept["content_type"] == "image/jpeg"
    canaries = [
        CANARY_STORY,
        CANARY_NAME,
        CANARY_PHONE,
        PLACE,
        WHO,
        "447700900461",
        "Canaryprofile",
        "forged Canary",
        "Canary caption",
        sid,
        account,
    ]
    places: list[tuple[str, str | bytes]] = [
        ("every column", await stored_text(app.db)),
        ("logs", logs.getvalue()),
    ]
    if app.db.is_sqlite:
        places.append(("the SQLite file and WAL", raw_database_bytes(config)))
    await app.client.aclose()
    await app.db.dispose()
    assert "reportbot.service" in logs.getvalue()
    assert_nowhere(canaries, *places)


# -- every encrypted column is known to key rotation ---------------------------------------------------


def test_every_text_or_enc_column_is_listed_for_key_rotation() -> None:
    """A column holding ciphertext that ENCRYPTED_COLUMNS misses would keep the old key for ever."""
    from sqlalchemy import Text

    from storage.models import ALL_TABLES, ENCRYPTED_COLUMNS

    listed = {(t.__tablename__, c) for t, cols in ENCRYPTED_COLUMNS.items() for c in cols}
    for table, cols in ENCRYPTED_COLUMNS.items():
        for name in cols:
            assert name in table.__table__.c, f"{table.__tablename__}.{name} is not a column"  # type: ignore[attr-defined]
    for table in ALL_TABLES:
        for column in table.__table__.c:  # type: ignore[attr-defined]
            if column.name.endswith("_enc") or isinstance(column.type, Text):
                assert (table.__tablename__, column.name) in listed, f"{table.__tablename__}.{column.name}"


@every_backend_postgresql_slow
async def test_every_stored_ciphertext_is_in_a_column_key_rotation_knows(
    db: Database, config: Config
) -> None:
    """Reports both ways, a draft, a staff reply and a review note; then every value in every table of
    the real schema (migrations included) that is a Fernet token must sit in a listed column."""
    from sqlalchemy import inspect, text

    from bot.channels.console.chat import ConsoleSender
    from bot.staff import Staff
    from storage.models import ENCRYPTED_COLUMNS

    service = ReportService(config, db)
    first = await converse(service, script(config, IN_CHAT))
    await converse(service, script(config, ANONYMOUS), chat_id="5550001", start=START + timedelta(hours=1))
    await converse(service, script(config, ANONYMOUS, until="where"), chat_id="5550002")
    await deliver_all(service)
    staff = Staff(config, db, who="tester", senders=lambda _: ConsoleSender(io.StringIO(), terminal=False))
    assert first[-1].reference
    await staff.review(first[-1].reference, "in-progress", "Canary note: called back")
    await staff.reply(first[-1].reference, "Canary reply from staff")

    listed = {(t.__tablename__, c) for t, cols in ENCRYPTED_COLUMNS.items() for c in cols}
    found: set[tuple[str, str]] = set()
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        for name in tables:
            result = await conn.execute(text(f"SELECT * FROM {name}"))
            columns = list(result.keys())
            for row in result.all():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str) and value.startswith("gAAAAA"):
                        found.add((name, column))
    assert {("report", "staff_note_enc"), ("transcript_entry", "text_enc")} <= found  # the test saw them
    assert found <= listed, f"ciphertext in columns key rotation does not know: {found - listed}"


# -- keys ---------------------------------------------------------------------------------------------


async def test_serve_refuses_to_start_with_keys_that_do_not_open_the_stored_data(
    db: Database, config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator who replaced the key instead of adding a new one first: every message would fail."""
    from dataclasses import replace

    from cryptography.fernet import Fernet

    from bot.cli import serve
    from bot.config import SecurityConfig

    await converse(ReportService(config, db), ["hi"])
    await db.dispose()
    wrong = replace(
        config,
        security=SecurityConfig((Fernet.generate_key().decode(),), config.security.pseudonym_key),
    )
    assert await asyncio.to_thread(serve, wrong) == 2
    err = capsys.readouterr().err
    assert "security.encryption_keys" in err and wrong.security.encryption_keys[0] not in err
    rotated = replace(
        wrong,
        security=SecurityConfig(
            (wrong.security.encryption_keys[0], config.security.encryption_keys[0]),
            config.security.pseudonym_key,
        ),
    )
    from bot.cli import check_schema

    assert await check_schema(rotated) is None  # the old key kept behind the new one: fine
