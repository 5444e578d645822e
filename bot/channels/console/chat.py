"""The console channel: a local conversation on stdin/stdout, the fastest loop and the honest demo.

It goes through exactly the same service, storage and outbox as Telegram and WhatsApp. Works in a
terminal and with stdin piped (then each line the person "typed" is echoed, so the output reads as a
transcript). Options print as `N. Label` lines.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from bot.channels.console import CHANNEL as CONSOLE
from bot.config import Config
from bot.delivery import Outbox
from bot.render import as_text
from bot.service import Envelope, ReportService
from flows.types import Inbound, Outbound
from storage.db import Database
from storage.schema import SchemaError, ensure_schema
from storage.store import Pending

CHANNEL = CONSOLE.name
CLEAR_SCREEN = "\033[2J\033[H"


class ConsoleSender:
    """Prints each delivered message; quick exit clears the screen when it is a terminal."""

    channel = CHANNEL

    def __init__(self, out: TextIO, *, terminal: bool) -> None:
        self.out = out
        self.terminal = terminal

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        if message.clear_chat and self.terminal:
            self.out.write(CLEAR_SCREEN)
        self.out.write(as_text(message) + "\n\n")
        self.out.flush()
        return ()


async def run_console(
    config: Config, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout, *, chat_id: str = "local"
) -> int:
    """Hold one conversation until end of input. Returns an exit code."""
    db = Database(config.database_url)
    try:
        try:
            await ensure_schema(db, auto_upgrade=db.is_sqlite)
        except SchemaError as exc:
            sys.stderr.write(f"reportbot: {exc}\n")
            return 2
        service = ReportService(config, db)
        outbox = Outbox(db, service.store, lock=service.sqlite_writer)
        terminal = stdin.isatty() and stdout.isatty()
        sender = ConsoleSender(stdout, terminal=terminal)

        async def say(text: str) -> None:
            await service.handle(Envelope(CHANNEL, chat_id, Inbound(text=text)))
            await outbox.drain(sender)

        await say("start")
        while True:
            if terminal:
                stdout.write("> ")
                stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            text = line.rstrip("\r\n")
            if not terminal:
                stdout.write(f"> {text}\n\n")
            await say(text)
        return 0
    finally:
        await db.dispose()
