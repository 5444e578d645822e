"""The console channel: a conversation on stdin/stdout (`reportbot chat`), the fastest loop and the
honest demo. `chat.py` runs it through the same service, storage and outbox as every other channel."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from bot.channels.base import Channel, Sender

if TYPE_CHECKING:
    from bot.config import Config


class Console(Channel):
    name = "console"
    rate_limited = False  # the operator's own terminal (and scripts piped into it)

    def enabled(self, config: Config) -> bool:
        return True  # always there: it needs no keys

    def sender(self, config: Config) -> Sender:
        from bot.channels.console.chat import ConsoleSender

        return ConsoleSender(sys.stdout, terminal=False)


CHANNEL = Console()
