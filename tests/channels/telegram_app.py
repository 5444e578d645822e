"""The real app for in-process webhook tests: Starlette + the Telegram channel + SQLite, with the fake
Bot API as the only fake; run on an event loop the caller owns (Hypothesis tests are synchronous)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bot.channels.telegram.send import Pacer
from bot.channels.telegram.webhook import TelegramChannel
from bot.config import Config, load_config
from bot.server import create_app
from bot.service import ReportService
from storage.db import Database
from storage.models import ALL_TABLES
from tests.conftest import write_config
from tests.fakes.telegram_api import TOKEN, FakeBotAPI

SECRET = "webhook-secret-0123456789abcdef"
TELEGRAM_TOML = f"""
[telegram]
token = "{TOKEN}"
webhook_secret = "{SECRET}"
api_base_url = "https://telegram.test/bot"

[limits]
messages_per_second = 1000
"""


class WebApp:
    """The app, started, with an httpx client through ASGITransport."""

    def __init__(self, folder: Path) -> None:
        self.config: Config = load_config(write_config(folder, TELEGRAM_TOML), env={})
        self.api = FakeBotAPI()
        self.db = Database(self.config.database_url)
        self.service = ReportService(self.config, self.db)
        self.channel = TelegramChannel(
            self.config, self.service, self.api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05
        )
        self.app = create_app(self.config, self.service, [self.channel.routes()], create_schema=True)
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://rb.test"
        )
        self._lifespan: Any = None

    async def __aenter__(self) -> WebApp:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self._lifespan.__aexit__(None, None, None)

    async def post(self, body: bytes | str, *, secret: str | None = SECRET, **headers: str) -> httpx.Response:
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        content = body.encode() if isinstance(body, str) else body
        return await self.client.post(
            "/telegram/webhook", content=content, headers={"Content-Type": "application/json", **headers}
        )

    async def rows(self) -> dict[str, int]:
        """How many rows each table holds."""
        out = {}
        async with self.db.transaction() as s:
            for table in ALL_TABLES:
                out[str(table.__tablename__)] = int(
                    (await s.execute(select(func.count()).select_from(table))).scalar() or 0
                )
        return out

    async def settle(self, within: float = 20.0) -> None:
        """Until the outbox has delivered everything."""
        async with asyncio.timeout(within):
            while True:
                await self.channel.idle()
                async with self.db.transaction() as s:
                    if await self.service.store.pending_count(s, "telegram") == 0:
                        return
                await asyncio.sleep(0.02)
