"""A web reporter who asked to be contacted "here": staff reply with `reportbot reply`, and the reporter
reads it when they come back to the chat with their reference and secret code (a web page cannot be
written to later, and a new visit is a new session)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy import select

from bot.staff import Selection, Staff, counts_table
from storage.models import OutboxMessage, Report
from storage.schema import upgrade
from tests.channels.web.server import web_config
from tests.channels.web.test_security import Chat
from tests.staff.conversation import CONTACT_IN_CHAT

WORDS = "Hello, this is Sam from the council. We have read your report."


@pytest_asyncio.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    c = Chat(web_config(tmp_path))
    await upgrade(c.service.db)
    async with c.app.router.lifespan_context(c.app):
        yield c
        await c.client.aclose()


async def test_a_staff_reply_reaches_a_web_reporter_who_comes_back_with_the_reference(chat: Chat) -> None:
    await chat.open()
    shown = ""
    for line in CONTACT_IN_CHAT:
        shown = (await chat.say(line))["added"]
    found = re.search(r"Your reference is (HC-[A-Z0-9]{4}-[A-Z0-9]{4})", shown)
    code = re.search(r"Your secret code is ([a-z0-9-]+)\.", shown)
    assert found and code, shown[-300:]
    ref = found.group(1)
    async with chat.service.db.transaction() as s:
        report = (await s.execute(select(Report))).scalar_one()
    assert report.channel == "web" and report.reply_address_enc is not None

    result = await Staff(chat.config, chat.service.db, who="test").reply(ref, WORDS)
    assert result.delivered  # kept for the reporter: nothing is left waiting in the outbox
    async with chat.service.db.transaction() as s:
        unsent = (await s.execute(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))).all()
    assert unsent == []

    staff = Staff(chat.config, chat.service.db, who="test")
    table = dict(counts_table(await staff.stats(Selection())))
    assert table["By channel"] == [("Web chat", 1)]  # a channel like the others in stats

    chat.client.cookies.clear()  # another day, a new session
    await chat.open()
    status = (await chat.say(f"status {ref}"))["added"]
    assert WORDS not in status  # another chat: the reference alone shows no messages
    status = (await chat.say(f"status {ref} {code.group(1)}"))["added"]
    assert f"A message from our staff: {WORDS}" in status
