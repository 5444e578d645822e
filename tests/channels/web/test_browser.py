"""The web chat in a real browser: Debian's Chromium through Playwright, against `build_app` under uvicorn.

One server and one browser for the module; each test has its own browser context (its own cookies).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.config import Config
from storage.db import Database
from storage.models import Conversation, Report
from storage.store import Store
from tests.channels.web.server import (
    BEFORE,
    NEUTRAL,
    Person,
    Server,
    chromium,
    fake_sites,
    serving,
    web_config,
)
from tests.conftest import require_chromium

pytestmark = pytest.mark.slow  # a real Chromium: `make test` runs these, `make test-fast` does not

AXE = Path(__file__).resolve().parents[2] / "assets" / "axe.min.js"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # the type is read from the first bytes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_chromium()
    config = web_config(tmp_path_factory.mktemp("webchat"))
    with serving(config) as running:
        yield running


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    with chromium() as running:
        yield running


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    fake_sites(ctx)
    yield ctx
    ctx.close()


@pytest.fixture
def person(context: Any, server: Server) -> Person:
    p = Person(context.new_page(), server.url)
    p.open()
    return p


def stored(config: Config, query: Any) -> list[Any]:
    async def read() -> list[Any]:
        db = Database(config.database_url)
        try:
            async with db.transaction() as s:
                return list((await s.execute(query)).scalars().all())
        finally:
            await db.dispose()

    # Playwright's sync API keeps an event loop in this thread: read from another one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, read()).result()


def through_to_evidence(p: Person, *, story: str = "A man shouted at me at the bus stop.") -> None:
    """From the start to the evidence question, with buttons, ticks and typed answers."""
    assert "Is it happening now?" in p.choose("Continue")
    assert "Which of these fits you best?" in p.choose("No")
    assert "In your own words" in p.choose("It happened to me")
    assert "Is there more" in p.say(story)
    assert "Which of these happened?" in p.choose("Done")
    p.tick("Verbal abuse or threats")
    p.tick("Ongoing harassment")
    assert p.pressed() == ["Verbal abuse or threats", "Ongoing harassment"]  # ticks shown, in place
    assert "Why do you think it happened?" in p.choose("Done")
    p.tick("Religion or belief")
    assert "When did it happen?" in p.choose("Done")
    assert "What time of day" in p.choose("Yesterday")
    assert "Where did it happen?" in p.choose("Evening")
    assert "Has this happened before?" in p.say("Mill Road bus stop")
    assert "person or people who did it" in p.choose("It keeps happening")
    assert "Do you know who they are?" in p.say("Tall, red jacket.")
    assert "Would you know them" in p.choose("No")
    assert "Was anyone hurt?" in p.choose("Yes")
    assert "Was anything damaged?" in p.choose("No")
    assert "Did anyone else see it" in p.choose("No")
    assert "photos, screenshots or videos" in p.choose("Not sure")


def to_review(p: Person, said: str) -> str:
    while "Here is your report" not in said:  # optional contact questions, then consent
        if "Who can we send your report to?" in said:
            p.tick("Police")
            said = p.choose("Done")
        else:
            said = p.choose("Skip")
    return said


def test_a_whole_report_with_buttons_ticks_typing_a_photo_a_change_and_status(
    person: Person, server: Server
) -> None:
    p = person
    assert "Press Start" in p.page.inner_text("main")
    said = p.start()
    assert "This is Report Hate" in said and "Continue" in p.labels()
    assert p.page.evaluate("document.activeElement.id").startswith("m")  # focus moved to the question
    through_to_evidence(p)
    assert p.page.locator("#photo").count() == 1  # the upload is offered at the evidence step only
    assert "Send more, or choose Done" in p.photo("bus-stop.png", PNG, "image/png")
    assert "Photo sent." in p.text()
    assert "support service" in p.choose("Done")
    assert "contact you about this?" in p.choose("No")
    said = to_review(p, p.choose("Here in this chat"))
    assert "Where: Mill Road bus stop" in said and "Photos and files: 1 sent" in said
    assert "Who can we send your report to?" in p.say("back")  # back from the review: the last question
    assert p.pressed() == ["Police"]  # with the answer given before
    assert "Here is your report" in p.choose("Done")
    assert "Which answer do you want to change?" in p.choose("Change an answer")
    assert "Where did it happen?" in p.choose("Where")
    said = p.say("Station Road")
    assert "Where: Station Road" in said  # straight back to the review
    said = p.choose("Send report")
    reference = re.search(r"HC-[A-Z0-9]{4}-[A-Z0-9]{4}", said)
    assert reference is not None and "Your reference is" in said
    status = p.say(f"status {reference.group(0)}")
    assert f"Report {reference.group(0)} is with us, not read yet" in status

    [report] = stored(server.config, select(Report).where(Report.reference == reference.group(0)))
    store = Store(server.webchat.service.cipher)
    sealed = store.sealed(report)
    assert report.channel == "web" and report.incident_types == ["verbal", "harassment"]
    assert report.motivations == ["religion"] and report.share_with == ["police"]
    assert sealed["location"]["text"] == "Station Road"
    [evidence] = sealed["evidence"]
    assert evidence["content_type"] == "image/png" and evidence["ref"].startswith("web-upload:")
    assert server.webchat.uploads.read(evidence["ref"]) == PNG  # kept, encrypted
    upload_file = server.webchat.uploads.folder / (evidence["ref"].split(":")[1] + ".bin")
    assert PNG[:64] not in upload_file.read_bytes()
    assert server.webchat.service.cipher.decrypt(report.reply_address_enc)  # "contact me here": kept


def test_the_danger_net_answers_typed_danger_with_999(person: Person) -> None:
    p = person
    p.start()
    p.choose("Continue")
    p.choose("No")
    p.choose("It happened to me")
    said = p.say("He is outside my door now and he has a knife")
    assert "If you are in danger now, call 999 or 112" in said
    assert "18000" in p.page.inner_text(".emergency")  # the text-only routes, where 999 is


def test_quick_exit_replaces_the_page_and_ends_the_session(context: Any, server: Server) -> None:
    page = context.new_page()
    page.goto(BEFORE)
    p = Person(page, server.url)
    p.open()
    p.start()
    p.choose("Continue")
    sessions = len(server.webchat.sessions)
    [cookie] = [c for c in context.cookies() if c["name"] == "reportbot_chat"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    chat_key = server.webchat.service.chat_key("web", cookie["value"].split(".")[0])
    assert stored(server.config, select(Conversation).where(Conversation.chat_key == chat_key))
    page.keyboard.press("Escape")
    page.wait_for_url(NEUTRAL)
    assert page.title() == "Weather"
    page.go_back()
    page.wait_for_load_state()
    assert page.url == BEFORE  # Back goes to the page before the chat, not to the chat
    for _ in range(100):  # the exit post is on its way (keepalive); the session ends on arrival
        if len(server.webchat.sessions) < sessions:
            break
        page.wait_for_timeout(20)
    assert len(server.webchat.sessions) == sessions - 1
    assert stored(server.config, select(Conversation).where(Conversation.chat_key == chat_key)) == []
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    # Whatever the browser still holds, the server no longer knows it: the chat starts afresh.
    fresh = context.new_page()
    fresh.goto(server.url + "/chat")
    assert "Press Start" in fresh.inner_text("main") and "Is it happening now?" not in fresh.inner_text(
        "main"
    )


def test_with_javascript_off_the_same_report_goes_through_plain_posts(browser: Any, server: Server) -> None:
    ctx = browser.new_context(java_script_enabled=False)
    fake_sites(ctx)
    try:
        p = Person(ctx.new_page(), server.url, javascript=False)
        p.open()
        assert "This is Report Hate" in p.start()
        through_to_evidence(p, story="Someone spat at me on the bus.")
        assert "Send more, or choose Done" in p.photo("shot.png", PNG, "image/png")
        assert "support service" in p.choose("Done")
        assert "contact you about this?" in p.choose("No")
        said = to_review(p, p.choose("Don't contact me"))
        assert "Your words: Someone spat at me on the bus." in said
        said = p.choose("Send report")
        assert re.search(r"Your reference is HC-[A-Z0-9]{4}-[A-Z0-9]{4}", said)
        assert p.page.locator("#m1").count() == 1  # the whole conversation is on the page
        # The exit button is a form post answered with a redirect to the neutral site (which the
        # browser's router cannot answer after a redirect: the response is what matters here).
        with p.page.expect_response(lambda r: r.url.endswith("/chat/exit")) as exited:
            p.page.click("#exit", no_wait_after=True)
        assert exited.value.status == 303 and exited.value.headers["location"] == NEUTRAL
    finally:
        ctx.close()


def test_no_serious_or_critical_accessibility_violations(browser: Any, server: Server) -> None:
    found: dict[str, Any] = {}
    for width in (320, 1280):
        ctx = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
        try:
            p = Person(ctx.new_page(), server.url)
            p.open()
            steps = [("", ""), ("choose", "Start"), ("choose", "Continue"), ("choose", "No")]
            steps += [("choose", "It happened to me"), ("say", "He pushed me."), ("choose", "Done")]
            steps += [("choose", "Physical attack")]
            for action, words in steps:
                if action:
                    getattr(p, action)(words)
                p.page.add_script_tag(path=str(AXE))
                result = p.page.evaluate(
                    "async () => JSON.stringify(await axe.run(document, "
                    "{runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}))"
                )
                for v in json.loads(result)["violations"]:
                    if v["impact"] in ("serious", "critical"):
                        found[v["id"]] = [n["html"] for n in v["nodes"]][:3]
                # 320 px wide: nothing scrolls sideways
                assert p.page.evaluate("document.documentElement.scrollWidth") <= width
        finally:
            ctx.close()
    assert found == {}


def test_keyboard_alone_reaches_every_answer(person: Person) -> None:
    p = person
    page = p.page
    page.keyboard.press("Tab")  # the quick exit comes first
    assert page.evaluate("document.activeElement.id") == "exit"
    page.focus("#controls button[name=option]")
    nonce = page.get_attribute("#controls input[name=n]", "value")
    page.keyboard.press("Enter")
    page.wait_for_function("n => document.querySelector('#controls input[name=n]').value !== n", arg=nonce)
    assert "This is Report Hate" in p.text()
    assert page.evaluate("document.activeElement.closest('#log') !== null")  # on the new question


def test_share_my_location_answers_where_it_happened(browser: Any, server: Server) -> None:
    ctx = browser.new_context(
        geolocation={"latitude": 52.2003, "longitude": 0.1385}, permissions=["geolocation"]
    )
    try:
        p = Person(ctx.new_page(), server.url)
        p.open()
        for press in ("Start", "Continue", "No", "It happened to me"):
            p.choose(press)
        p.say("Someone pushed me.")
        for press in ("Done", "Physical attack", "Done", "Race or nationality", "Done", "Today"):
            p.choose(press)
        assert "Where did it happen?" in p.choose("Morning")
        said = p._act(lambda: p.page.click("[data-locate]"))
        assert "I shared where I am." in said and "Has this happened before?" in said
        # Straight to the review, to see the place as the flow kept it.
        said = p.say("skip")
        for _ in range(20):  # the rest skipped (or the first option, where there is no Skip)
            if "Here is your report" in said:
                break
            said = p.choose("Skip") if "Skip" in p.labels() else p.choose(p.labels()[0])
        assert "Where: Shared location" in said
    finally:
        ctx.close()
