"""The web chat with several workers: two apps built as `reportbot serve` builds each worker's (same
config, one database), one browser whose requests reach either. Any worker carries on any session: the
page it returns shows the conversation so far and the right question, the report is stored once and
whole, and a quick exit on one worker ends the session on the other too."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import func, select

from bot.config import load_config
from bot.server import build_app
from storage.models import Conversation, Report, TranscriptEntry
from storage.schema import upgrade
from tests.channels.web.server import NEUTRAL, WEB_TOML, webchat_of
from tests.conftest import every_backend_postgresql_slow, write_config
from tests.staff.conversation import CONTACT_IN_CHAT

# Production runs several workers on PostgreSQL; SQLite shares its file between the two apps the same way.
pytestmark = every_backend_postgresql_slow

FETCH = {"X-Reportbot-Fetch": "1"}
TWO_WORKERS = "\n[server]\nworkers = 2\n"


class Workers(httpx.AsyncBaseTransport):
    """One browser, two worker processes: each request goes to the worker `to` names."""

    def __init__(self, apps: list[Any]) -> None:
        self.transports = [httpx.ASGITransport(app=app) for app in apps]
        self.to = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.transports[self.to].handle_async_request(request)


class Browser:
    def __init__(self, apps: list[Any]) -> None:
        self.apps = apps
        self.workers = Workers(apps)
        self.client = httpx.AsyncClient(transport=self.workers, base_url="http://rb.test")
        self.csrf = ""

    async def page(self, worker: int) -> str:
        self.workers.to = worker
        page = await self.client.get("/chat")
        assert page.status_code == 200
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert found is not None
        self.csrf = found.group(1)
        return page.text

    async def say(self, worker: int, text: str) -> dict[str, Any]:
        self.workers.to = worker
        answer = await self.client.post("/chat/send", data={"csrf": self.csrf, "text": text}, headers=FETCH)
        assert answer.status_code == 200, answer.text[:300]
        return dict(answer.json())

    async def press(self, worker: int, option: str, step: str = "") -> httpx.Response:
        self.workers.to = worker
        fields = {"csrf": self.csrf, "option": option, "step": step}
        return await self.client.post("/chat/send", data=fields, headers=FETCH)


def messages(page: str) -> list[tuple[str, str]]:
    """The conversation a page shows: (who, words) for each message, in order."""
    found = re.findall(r'<li class="(me|bot)" id="m\d+"[^>]*>(.*?)</li>', page, re.S)
    body = [re.sub(r'<span class="who">.*?</span>', "", b, flags=re.S) for _, b in found]
    return [
        (who, html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", b))).strip())
        for (who, _), b in zip(found, body, strict=True)
    ]


def buttons(page: str) -> list[str]:
    """The answer buttons a page offers, with their ticks."""
    found = re.findall(r'name="option" value="([^"]+)"[^>]*?(?:aria-pressed="(\w+)")?', page)
    return [f"{key}:{pressed}" for key, pressed in found]


def question_step(page: str) -> str | None:
    found = re.search(r'name="step" value="([^"]*)"', page)
    return found.group(1) if found else None


@pytest_asyncio.fixture
async def browser(tmp_path: Path, database_url: str | None) -> AsyncIterator[Browser]:
    path = write_config(tmp_path, WEB_TOML + TWO_WORKERS, database_url=database_url)
    config = load_config(path, env={})
    apps = [build_app(config), build_app(config)]
    await upgrade(apps[0].state.service.db)
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        b = Browser(apps)
        yield b
        await b.client.aclose()


async def count(app: Any, model: Any) -> int:
    async with app.state.service.db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar() or 0)


async def test_a_report_answered_through_two_workers_in_turn_shows_the_whole_conversation_on_each(
    browser: Browser,
) -> None:
    await browser.page(0)
    start = await browser.press(1, "start")  # the first answer, on the worker that did not serve the page
    assert start.status_code == 200 and "This is Report Hate" in start.json()["added"]
    said = []
    for turn, line in enumerate(CONTACT_IN_CHAT[:-1]):
        worker = turn % 2
        reply = await browser.say(worker, line)
        said.append(line)
        here = await browser.page(worker)  # the worker that answered: the page it holds
        there = await browser.page(1 - worker)  # the other: rebuilt from the database
        assert messages(there) == messages(here), f"after {line!r}"
        assert buttons(there) == buttons(here) and question_step(there) == question_step(here)
        assert buttons(here) == buttons(reply["controls"])  # the question just asked, with its options
        shown = [words for who, words in messages(there) if who == "me"]
        typed = [s for s in said if not re.fullmatch(r"[\d ]+|done|start|continue|no", s)]
        assert all(any(t.replace("  ", " ") in w for w in shown) for t in typed), (typed, shown)
    assert question_step(there) == "review" or "send" in " ".join(buttons(there)), buttons(there)

    final = await browser.say(0, CONTACT_IN_CHAT[-1])
    assert "Your reference is HC-" in final["added"]
    assert await count(browser.apps[0], Report) == 1
    assert await count(browser.apps[0], Conversation) == 0  # the draft went with the report
    async with browser.apps[1].state.service.db.transaction() as s:
        report = (await s.execute(select(Report))).scalar_one()
        store = browser.apps[1].state.service.store
        answers = store.sealed(report)
        lines = await store.transcript(s, report_id=report.id)
    whole = str(answers)
    assert "He shouted at me outside the shop." in whole and "Then he kicked my bike over." in whole
    assert "Tall man in a red coat" in whole and "High Street, Townsville" in whole
    # Every answer once, in order: nothing lost or doubled by the change of worker.
    heard = [line.text for line in lines if line.direction == "in"]
    assert heard[-len(CONTACT_IN_CHAT) :] == CONTACT_IN_CHAT
    assert len(heard) == len(CONTACT_IN_CHAT) + 1  # and the Start button before them


async def test_a_button_pressed_on_the_other_worker_is_shown_with_its_label(browser: Browser) -> None:
    await browser.page(0)
    await browser.press(0, "start")
    await browser.say(0, "continue")
    page = await browser.page(1)
    step = question_step(page)
    assert step is not None
    key = buttons(page)[0].split(":")[0]
    label = re.search(rf'name="option" value="{key}"[^>]*>([^<]+)<', page)
    assert label is not None
    pressed = await browser.press(1, key, step)
    assert pressed.status_code == 200 and label.group(1).strip() in pressed.json()["added"]
    back = await browser.page(0)  # the worker that held the page before: it is stale, and rebuilt
    assert ("me", label.group(1).strip()) in messages(back)
    assert messages(back) == messages(await browser.page(1))


async def test_a_quick_exit_on_one_worker_ends_the_session_on_the_other(browser: Browser) -> None:
    secret = "My neighbour Alex Smith shouted at me."
    await browser.page(0)
    await browser.press(0, "start")
    for turn, line in enumerate(["continue", "no", "It happened to me", secret]):
        await browser.say(turn % 2, line)
    assert secret in await browser.page(1) and secret in await browser.page(0)  # both hold the page now
    old, old_csrf = browser.client.cookies.get("reportbot_chat"), browser.csrf
    assert old is not None

    browser.workers.to = 1
    left = await browser.client.post("/chat/exit", data={"csrf": browser.csrf}, headers=FETCH)
    assert left.json() == {"exit": NEUTRAL}
    assert await count(browser.apps[0], Conversation) == 0
    assert await count(browser.apps[0], TranscriptEntry) == 0  # the draft and its transcript are gone

    for worker in (0, 1):  # someone opens the chat again with the old cookie, on either worker
        browser.client.cookies.set("reportbot_chat", old, domain="rb.test", path="/chat")
        page = await browser.page(worker)
        assert secret not in page and messages(page) == []  # a fresh start, nothing of the old
        assert 'value="start"' in page
        assert browser.client.cookies.get("reportbot_chat") != old  # a new session, not the old one
        browser.client.cookies.set("reportbot_chat", old, domain="rb.test", path="/chat")
        browser.workers.to = worker
        answer = await browser.client.post("/chat/send", data={"csrf": old_csrf, "text": "hi"}, headers=FETCH)
        assert answer.status_code == 403  # the old session never begins again
    assert await count(browser.apps[0], Conversation) == 0
    assert secret not in str(webchat_of(browser.apps[0]).sessions._sessions)


async def test_typing_exit_on_one_worker_ends_the_session_on_the_other(browser: Browser) -> None:
    await browser.page(0)
    await browser.press(0, "start")
    await browser.say(1, "continue")
    await browser.page(0)  # worker 0 holds the page at the cookie's version
    old = browser.client.cookies.get("reportbot_chat")
    assert await browser.say(1, "exit") == {"exit": NEUTRAL}
    browser.client.cookies.set("reportbot_chat", old or "", domain="rb.test", path="/chat")
    page = await browser.page(0)
    assert messages(page) == [] and "This is Report Hate" not in page


async def test_a_cookie_from_before_page_versions_carries_on_the_conversation(browser: Browser) -> None:
    # A person mid-chat while the service is upgraded holds a cookie of the old form (<id>.<time>.<mac>):
    # their page is rebuilt from the database, not started again.
    await browser.page(0)
    await browser.press(0, "start")
    await browser.say(0, "continue")
    before = await browser.page(0)
    sessions = webchat_of(browser.apps[0]).sessions
    sid = str(browser.client.cookies.get("reportbot_chat")).split(".")[0]
    stamp = str(int(sessions.clock()))
    mac = hmac.new(sessions._key, f"cookie:{sid}.{stamp}".encode(), hashlib.sha256).hexdigest()[:32]
    browser.client.cookies.clear()
    browser.client.cookies.set("reportbot_chat", f"{sid}.{stamp}.{mac}", domain="rb.test", path="/chat")
    after = await browser.page(1)
    assert messages(after) == messages(before) and question_step(after) == question_step(before)
    # A cookie of the old form that this service did not sign is still refused: a fresh start.
    browser.client.cookies.clear()
    browser.client.cookies.set("reportbot_chat", f"{sid}.{stamp}.{'0' * 32}", domain="rb.test", path="/chat")
    assert messages(await browser.page(1)) != messages(before)
