"""The real app (`reportbot serve`'s `build_app`) under uvicorn on 127.0.0.1, on a free port, in a thread;
and a person at a browser page (Playwright's sync API over Debian's Chromium)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from bot.cli import check_schema
from bot.config import Config, load_config
from bot.server import build_app
from tests.conftest import write_config

NEUTRAL = "https://neutral.test/weather"  # quick exit's destination; answered by the browser's router
BEFORE = "https://partner.test/report"  # the page a person came from
WEB_TOML = f"""
[web]
exit_url = "{NEUTRAL}"
embed_origins = ["https://partner.test"]

[limits]
messages_per_second = 50
"""


def web_config(folder: Path, extra: str = "") -> Config:
    return load_config(write_config(folder, WEB_TOML + extra), env={})


class Server:
    """`build_app(config)` served by uvicorn until stopped."""

    def __init__(self, config: Config) -> None:
        self.config = config
        problem = asyncio.run(check_schema(config))  # as `reportbot serve` does: SQLite brought to head
        assert problem is None, problem
        self.app = build_app(config)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="on", loop="asyncio")
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()

    @property
    def webchat(self) -> Any:
        return webchat_of(self.app)


def webchat_of(app: Any) -> Any:
    """The WebChat behind an app's routes (its session store), for asserting what the server holds."""
    for route in app.routes:
        owner = getattr(getattr(route, "endpoint", None), "__self__", None)
        if owner is not None and type(owner).__name__ == "WebChat":
            return owner
    raise LookupError("no web chat mounted")


@contextmanager
def serving(config: Config) -> Iterator[Server]:
    server = Server(config).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def chromium() -> Iterator[Any]:
    """One headless Chromium (Debian's), driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield browser
        finally:
            browser.close()


def fake_sites(context: Any) -> None:
    """The neutral site and the partner's page, answered inside the browser (no network)."""
    context.route(
        "https://neutral.test/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<title>Weather</title>Sunny"),
    )
    context.route(
        "https://partner.test/**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<title>Partner</title>Report"
        ),
    )


class Person:
    """A person at the chat page: presses buttons, types, sends a photo; reads what the page shows."""

    def __init__(self, page: Any, base: str, *, javascript: bool = True) -> None:
        self.page = page
        self.base = base
        self.javascript = javascript

    def open(self, path: str = "/chat") -> None:
        self.page.goto(self.base + path)

    def _nonce(self) -> str:
        return str(self.page.locator("#controls input[name=n]").first.get_attribute("value"))

    def _act(self, action: Any) -> str:
        """Do something that posts, wait for the page to show the answer, return the newest messages."""
        before = self.page.locator("#log li").count()
        nonce = self._nonce()
        if self.javascript:
            action()
            self.page.wait_for_function(
                "n => { const i = document.querySelector('#controls input[name=n]'); return i && i.value !== n; }",
                arg=nonce,
            )
        else:
            with self.page.expect_navigation():
                action()
        after = self.page.locator("#log li")
        return "\n".join(after.nth(i).inner_text() for i in range(min(before, after.count()), after.count()))

    def start(self) -> str:
        return self.choose("Start")

    def choose(self, label: str) -> str:
        button = self.page.locator("#controls button[name=option]", has_text=label).first
        return self._act(button.click)

    def tick(self, label: str) -> None:
        self.choose(label)

    def say(self, text: str) -> str:
        def send() -> None:
            self.page.fill("#text", text)
            self.page.click("#controls button.send")

        return self._act(send)

    def photo(self, name: str, data: bytes, mime: str) -> str:
        def send() -> None:
            self.page.set_input_files("#photo", files=[{"name": name, "mimeType": mime, "buffer": data}])
            self.page.click("#controls button.send")

        return self._act(send)

    def pressed(self) -> list[str]:
        """Labels of the ticked options of the question on screen."""
        ticked = self.page.locator('#controls button[aria-pressed="true"]')
        return [ticked.nth(i).inner_text().strip("\u2713 \n") for i in range(ticked.count())]

    def labels(self) -> list[str]:
        buttons = self.page.locator("#controls button[name=option]")
        return [buttons.nth(i).inner_text().strip("\u2713 \n") for i in range(buttons.count())]

    def text(self) -> str:
        return str(self.page.locator("#log").inner_text())
