"""The web chat's defences, in process (httpx through ASGITransport to `build_app`): CSRF, sessions,
headers, cookie flags, body cap, uploads, and nothing typed kept in clear anywhere."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot.config import Config, load_config
from bot.server import build_app
from storage.models import ALL_TABLES
from storage.schema import upgrade
from tests.channels.web.server import NEUTRAL, WEB_TOML, web_config, webchat_of
from tests.conftest import raw_database_bytes, write_config

FETCH = {"X-Reportbot-Fetch": "1"}


class Chat:
    """The real app and a browser-like client (it keeps cookies, as a browser does)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.app = build_app(config)
        self.service = self.app.state.service
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://rb.test"
        )
        self.csrf = ""

    async def open(self, path: str = "/chat") -> httpx.Response:
        page = await self.client.get(path)
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert found is not None
        self.csrf = found.group(1)
        return page

    async def post(self, fields: dict[str, str], **kw: Any) -> httpx.Response:
        return await self.client.post("/chat/send", data=fields, headers=FETCH, **kw)

    async def say(self, text: str) -> dict[str, Any]:
        answer = await self.post({"csrf": self.csrf, "text": text})
        assert answer.status_code == 200
        return dict(answer.json())

    async def rows(self) -> int:
        total = 0
        async with self.service.db.transaction() as s:
            for table in ALL_TABLES:
                total += int((await s.execute(select(func.count()).select_from(table))).scalar() or 0)
        return total


@pytest_asyncio.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    c = Chat(web_config(tmp_path))
    await upgrade(c.service.db)
    async with c.app.router.lifespan_context(c.app):
        yield c
        await c.client.aclose()


async def test_a_post_with_a_missing_or_wrong_csrf_token_is_refused_and_stores_nothing(chat: Chat) -> None:
    await chat.open()
    for fields in ({"text": "hello"}, {"text": "hello", "csrf": "0" * 32}, {"option": "start", "csrf": ""}):
        refused = await chat.post(fields)
        assert refused.status_code == 403
    refused = await chat.client.post("/chat/send", data={"text": "hello"})  # the plain form post too
    assert refused.status_code == 403 and "This chat has ended" in refused.text
    assert await chat.rows() == 0
    assert "This is Report Hate" in (await chat.post({"csrf": chat.csrf, "option": "start"})).json()["added"]
    assert await chat.rows() > 0  # the same post with its token is acted on


async def test_a_post_without_a_session_starts_none(chat: Chat) -> None:
    sessions = webchat_of(chat.app).sessions
    await chat.open()
    assert len(sessions) == 0  # opening the page keeps nothing on the server
    token = chat.csrf
    chat.client.cookies.clear()
    refused = await chat.post({"csrf": token, "option": "start"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    chat.client.cookies.set("reportbot_chat", "a.1.b", domain="rb.test", path="/chat")
    forged = await chat.post({"csrf": token, "text": "hi"})
    assert forged.status_code == 403
    assert await chat.rows() == 0 and len(sessions) == 0
    await chat.open()
    assert (await chat.post({"csrf": chat.csrf, "option": "start"})).status_code == 200
    assert len(sessions) == 1  # the first answer with the page's cookie and token starts it


async def test_security_headers_and_no_inline_script_or_style(chat: Chat) -> None:
    page = await chat.open()
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert f"form-action 'self' {NEUTRAL.rsplit('/', 1)[0]}" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # every script is a file of ours
    assert "<style" not in html and " style=" not in html
    assert re.findall(r'(?:src|href|action)="(?!/chat)', html) == []  # nothing from another site
    embed = await chat.client.get("/chat/embed")
    assert "frame-ancestors https://partner.test" in embed.headers["content-security-policy"]
    assert "x-frame-options" not in embed.headers
    script = await chat.client.get("/chat/static/chat.js")
    assert script.status_code == 200 and "location.replace" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await chat.client.get("/chat/static/..%2Fapp.py")).status_code == 404


async def test_the_session_cookie_is_httponly_strict_and_short_lived(chat: Chat, tmp_path: Path) -> None:
    page = await chat.open()
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("reportbot_chat=")
    flags = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in flags and "samesite=strict" in flags and "path=/chat" in flags
    assert "max-age=1800" in flags and "secure" not in flags  # plain http in this test
    assert len(page.headers.get_list("set-cookie")) == 1  # one cookie, nothing else
    folder = tmp_path / "https"
    folder.mkdir()
    behind_https = load_config(
        write_config(folder, WEB_TOML), env={"REPORTBOT_WEB__PUBLIC_URL": "https://report.example.org"}
    )
    https = Chat(behind_https)
    page = await https.client.get("/chat")
    assert "secure" in [part.strip().lower() for part in page.headers["set-cookie"].split(";")]
    await https.client.aclose()


async def test_a_canary_typed_in_the_chat_is_not_in_the_database_its_wal_or_the_logs(
    chat: Chat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = "CANARY-7f3a9 my neighbour Bob Smith"
    await chat.open()
    await chat.post({"csrf": chat.csrf, "option": "start"})
    await chat.say(canary)
    await chat.say(f"{canary} again, at 22 Acacia Avenue")
    raw = raw_database_bytes(chat.config)
    assert raw and b"CANARY-7f3a9" not in raw and b"Acacia" not in raw
    sid = chat.client.cookies["reportbot_chat"].split(".")[0]
    assert sid.encode() not in raw
    assert "CANARY" not in caplog.text and sid not in caplog.text


async def test_a_body_over_the_cap_is_refused_and_stores_nothing(chat: Chat) -> None:
    await chat.open()
    cap = chat.config.server.max_body_bytes  # the webhooks' cap, for typed answers
    big = await chat.post({"csrf": chat.csrf, "text": "x" * cap})
    assert big.status_code == 413
    photo = {
        "photo": (
            "big.png",
            b"\x89PNG\r\n\x1a\n" + b"\0" * (cap + chat.config.web.upload_max_bytes),
            "image/png",
        )
    }
    big = await chat.client.post("/chat/send", data={"csrf": chat.csrf}, files=photo, headers=FETCH)
    assert big.status_code == 413  # a photo may add upload_max_bytes, no more
    assert await chat.rows() == 0


async def test_an_upload_that_is_not_an_allowed_picture_is_declined_and_not_kept(chat: Chat) -> None:
    await chat.open()
    await chat.post({"csrf": chat.csrf, "option": "start"})
    files = {"photo": ("cat.png", b"#!/bin/sh\necho not a picture\n", "image/png")}
    answer = await chat.client.post("/chat/send", data={"csrf": chat.csrf}, files=files, headers=FETCH)
    assert "we can&#39;t use that file" in answer.json()["added"]  # (escaped HTML)
    assert not (chat.config.data_path / "web-uploads").exists()


async def test_typing_exit_is_a_quick_exit(chat: Chat) -> None:
    await chat.open()
    await chat.post({"csrf": chat.csrf, "option": "start"})
    answer = await chat.say("exit")
    assert answer == {"exit": NEUTRAL}
    assert (await chat.post({"csrf": chat.csrf, "text": "hello"})).status_code == 403  # the session is gone


async def test_answers_sent_at_once_are_queued_and_each_is_answered(chat: Chat) -> None:
    await chat.open()
    await chat.post({"csrf": chat.csrf, "option": "start"})
    answers = await asyncio.gather(*(chat.post({"csrf": chat.csrf, "text": "help"}) for _ in range(20)))
    assert all(a.status_code == 200 for a in answers)
    # Each one shows something: the answer, or (over the rate) a calm "please wait", never nothing.
    assert all(a.json()["added"] for a in answers)


async def test_photos_of_a_draft_that_is_stopped_are_deleted_and_uploads_have_a_size_limit(
    tmp_path: Path,
) -> None:
    from tests.staff.conversation import CONTACT_IN_CHAT

    config = load_config(write_config(tmp_path, WEB_TOML), env={"REPORTBOT_WEB__UPLOAD_MAX_BYTES": "2048"})
    chat = Chat(config)
    await upgrade(chat.service.db)
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 1000
    async with chat.app.router.lifespan_context(chat.app):
        await chat.open()
        for line in CONTACT_IN_CHAT:  # the script's answers, up to the evidence question
            said = await chat.say(line)
            if "photos, screenshots or videos" in said["added"]:
                break
        assert "photos, screenshots or videos" in said["added"]
        big = {"photo": ("big.png", png * 3, "image/png")}
        answer = await chat.client.post("/chat/send", data={"csrf": chat.csrf}, files=big, headers=FETCH)
        assert "we can&#39;t use that file" in answer.json()["added"]  # over upload_max_bytes
        files = {"photo": ("ok.png", png, "image/png")}
        answer = await chat.client.post("/chat/send", data={"csrf": chat.csrf}, files=files, headers=FETCH)
        assert "Send more, or choose Done" in answer.json()["added"]
        folder = config.data_path / "web-uploads"
        [kept] = list(folder.iterdir())
        assert png not in kept.read_bytes()  # encrypted on disk
        assert "answers are deleted" in (await chat.say("stop"))["added"]
        assert list(folder.iterdir()) == []  # the photo went with the draft
        await chat.client.aclose()


async def test_a_form_sent_twice_counts_once_and_a_button_from_an_older_page_answers_nothing(
    chat: Chat,
) -> None:
    await chat.open()
    await chat.post({"csrf": chat.csrf, "option": "start"})
    press = {"csrf": chat.csrf, "option": "continue", "step": "welcome", "n": "form-1"}
    first = (await chat.post(press)).json()
    assert "Is it happening now?" in first["added"]
    again = (await chat.post(press)).json()  # a double click: the same form, the same nonce
    assert again["added"] == "" and 'value="yes"' in again["controls"]
    old = (await chat.post({**press, "n": "form-2"})).json()  # Back to the old page, pressed again
    assert "Is it happening now?" in old["added"] and "Which of these fits you best?" not in old["added"]
    page = (await chat.client.get("/chat")).text
    assert page.count("Is it happening now?") == 2 and page.count("Continue</p>") == 1
