"""Pacing outbound sends to what a platform allows: per chat, and overall for this worker.

`per_chat` seconds between two messages to one chat, and at most `overall` (rounded down) in any one
second. Delivery sends from one loop per channel, so a Pacer is used by one task at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Pacer:
    """Spaces sends: at most one a `per_chat` seconds to a chat, and at most `overall` (rounded down) in
    any one second in all. The overall limit is a sliding window, not an even spacing: below the rate a
    reply never waits for another chat's, and no second ever holds more than the rate.

    The limits are this process's: `reportbot serve --workers N` gives each worker 1/N of the
    platform's overall rate (bot.channels.telegram.send.telegram_pacer, the WhatsApp sender), and the
    outbox keeps the per-chat pace across workers (a chat's
    next message is claimed only `per_chat` seconds after its last was sent; storage.outbox). Delivery
    asks `ready_in` before it sends a reply handed over by a step, so one chat's pace does not hold up
    the others.
    """

    def __init__(self, per_chat: float, overall: float) -> None:
        self.per_chat = per_chat
        self.per_second = max(1, int(overall)) if overall > 0 else 0  # 0: no overall limit
        self._recent: deque[float] = deque(maxlen=max(1, self.per_second))  # the last sends' times
        self._next_chat: dict[str, float] = {}

    def ready_in(self, chat: str) -> float:
        """Seconds until this chat may be written to again (0 when it may now)."""
        wait = self._next_chat.get(chat, 0.0) - asyncio.get_running_loop().time()
        return max(0.0, wait)

    async def wait(self, chat: str) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self._next_chat.get(chat, 0.0))
        if self.per_second and len(self._recent) == self.per_second:
            start = max(start, self._recent[0] + 1.0)  # the window's oldest send must be a second old
        if start > now:
            await asyncio.sleep(start - now)
            start = max(start, loop.time())  # a busy loop wakes late: count from when it really goes
        if self.per_second:
            self._recent.append(start)
        self._next_chat[chat] = start + self.per_chat
        if len(self._next_chat) > 10_000:
            self._next_chat = {k: t for k, t in self._next_chat.items() if t > start}

    async def wait_any(self) -> None:
        """Only the overall pace: a call that is not a message to a chat (quick exit's deletions)."""
        if not self.per_second:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = now
        if len(self._recent) == self.per_second:
            start = max(start, self._recent[0] + 1.0)
        if start > now:
            await asyncio.sleep(start - now)
            start = max(start, loop.time())
        self._recent.append(start)
