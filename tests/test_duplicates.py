"""Repeats and ordering: every update is posted one to three times, the copies at the same moment,
many people at once, and now and then an old update comes back late. Each update has exactly one
effect: the same transcript, the same report and the same replies as a person whose updates came once."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from bench.harness import text_update
from bench.people import script
from storage.models import Report, TranscriptEntry
from tests.channels.telegram_app import WebApp


@pytest_asyncio.fixture
async def web(tmp_path: Path) -> AsyncIterator[WebApp]:
    async with WebApp(tmp_path) as app:
        yield app


@pytest.mark.slow
async def test_each_update_delivered_one_to_three_times_concurrently_has_one_effect(web: WebApp) -> None:
    rng = random.Random(3)
    ids = iter(range(1, 100_000))
    people = [700_000 + k for k in range(12)]
    single = 799_999  # the reference person: every update exactly once

    async def person(chat: int, repeats: bool) -> None:
        posted: list[bytes] = []
        for n, line in enumerate(script(f"Story of chat {chat}.")):
            body = json.dumps(text_update(next(ids), chat, 10 + n, line)).encode()
            copies = rng.randint(1, 3) if repeats else 1
            answers = await asyncio.gather(*(web.post(body) for _ in range(copies)))
            assert [a.status_code for a in answers] == [200] * copies
            posted.append(body)
            if repeats and rng.random() < 0.3:  # a late retry of an older update, after newer ones
                assert (await web.post(rng.choice(posted))).status_code == 200

    await asyncio.gather(person(single, False), *(person(chat, True) for chat in people))
    await web.settle()

    def replies(chat: int) -> list[str]:
        texts = [p["text"] for p in web.api.called("sendMessage") if int(p["chat_id"]) == chat]
        # References, secret codes and the story differ by person; everything else must not.
        blank = [re.sub(r"\b[a-z0-9]{4}-[a-z0-9]{4}\b", "xxxx-xxxx", t) for t in texts]
        return [t.split("HC-")[0].replace(str(chat), "N") for t in blank]

    expected = replies(single)
    assert len(expected) >= len(script("x"))
    store = web.service.store
    async with web.db.transaction() as s:
        reports = list((await s.execute(select(Report))).scalars())
        assert len(reports) == len(people) + 1
        for report in reports:
            lines = await store.transcript(s, report_id=report.id or 0)
            said = [line.text for line in lines if line.direction == "in"]
            chat = int(store.sealed(report)["description"].split()[3].rstrip("."))
            assert said == script(f"Story of chat {chat}.")
        in_lines = (await s.execute(select(TranscriptEntry).where(TranscriptEntry.direction == "in"))).all()
        assert len(in_lines) == (len(people) + 1) * len(script("x"))
    for chat in people:
        assert replies(chat) == expected
