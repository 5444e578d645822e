"""Abuse limits that never lose what a person sent: one chat's messages are handled one at a time and
in the order they arrived, a chat sending fast is slowed down (never refused), and a chat sending a
great deal over some minutes is told once and kept, not run through the flow. Also the cap on reports
one sender may submit in an hour.

Everything per chat here lives in this process's memory, keyed by the chat's pseudonym (never the chat
id), and is bounded: idle entries are forgotten. With several workers each keeps its own; see
docs/limits.md for what that means.

The report cap lives in the database (the step counts through StepStore.count_submission, in
storage.writes) so that it holds across workers and restarts. It is keyed by a second pseudonym, not the
conversation's, and purged after an hour, so an anonymous report keeps no lasting link to the chat (see
docs/limits.md for the trade-off).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum

from flows import catalog

# The words this module says itself (a [limits] table in the catalog).
CATALOG_KEYS = frozenset({"limits.too_many_messages", "limits.nothing_more_kept", "limits.too_many_reports"})

MAX_TRACKED = 50_000  # chats remembered before idle ones are dropped (memory stays bounded under a flood)


def words(key: str, locale: str = catalog.DEFAULT_LOCALE, **fields: object) -> str:
    """A calm message from the [limits] table, in the conversation's language."""
    name = f"limits.{key}"
    assert name in CATALOG_KEYS, name
    return catalog.text(locale, name, **fields)


class _Turn:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class ChatTurns:
    """One chat's messages one at a time, first come first served (asyncio.Lock wakes its waiters in
    the order they started waiting). Other chats never wait for this one."""

    def __init__(self) -> None:
        self._turns: dict[str, _Turn] = {}

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        entry = self._turns.get(key)
        if entry is None:
            entry = self._turns[key] = _Turn()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._turns[key]

    def waiting(self, key: str) -> int:
        """Messages of this chat in its queue now, the one being handled included."""
        entry = self._turns.get(key)
        return 0 if entry is None else entry.users


class ChatPace:
    """Spaces one chat's messages to `rate` a second on average, letting bursts of up to twice that
    through at once (a person ticking several boxes quickly is not a flood). A message over the rate
    waits for its time; it is never refused. (A token bucket in its "virtual scheduling" form: per chat
    only the time the next message is due.)"""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.tolerance = (max(1.0, 2 * rate) - 1.0) * self.interval
        self.clock = clock
        self._due: dict[str, float] = {}

    def delay(self, key: str) -> float:
        """Seconds this chat's next message should wait, and count it as sent after that wait."""
        if self.interval <= 0:
            return 0.0
        now = self.clock()
        due = max(self._due.get(key, now), now)
        wait = due - self.tolerance - now
        wait = wait if wait > 1e-9 else 0.0  # sums of intervals are not exact
        if key not in self._due and len(self._due) >= MAX_TRACKED:
            self._due = {k: t for k, t in self._due.items() if t > now}  # caught-up chats: nothing to keep
        self._due[key] = due + self.interval
        return wait


class Volume(Enum):
    """What the volume limit says about one more message from a chat."""

    ANSWER = "answer"  # under the limit: the flow reads and answers it
    TELL = "tell"  # the first over: keep it, do not run it, say so once
    KEEP = "keep"  # over: keep it in the transcript, unanswered
    FULL = "full"  # the first past what is kept: say that nothing more is kept for now
    DROP = "drop"  # past that, until the window ends: acknowledged, not stored (they were told)


@dataclass
class _Window:
    start: float
    count: int = 0


class ChatVolume:
    """Messages a chat may send in a window of `minutes`: `answered` are run through the flow, `kept` more
    are kept unanswered; each step over is said once. The window starts with the chat's first message
    and ends `minutes` later (a fixed window: one start time and one count per chat)."""

    def __init__(
        self, answered: int, kept: int, minutes: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.answered = answered
        self.kept = kept
        self.seconds = minutes * 60.0
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()  # counted on the database's writer thread as well as the loop

    def take(self, key: str) -> Volume:
        """Count one message from this chat and say what to do with it."""
        with self._lock:
            now = self.clock()
            window = self._windows.get(key)
            if window is None or now - window.start >= self.seconds:
                if window is None and len(self._windows) >= MAX_TRACKED:
                    self._forget_ended(now)
                window = self._windows[key] = _Window(now)
            window.count += 1
            n = window.count
        if n <= self.answered:
            return Volume.ANSWER
        if n == self.answered + 1:
            return Volume.TELL
        if n <= self.answered + self.kept:
            return Volume.KEEP
        if n == self.answered + self.kept + 1:
            return Volume.FULL
        return Volume.DROP

    def minutes_left(self, key: str) -> int:
        """Whole minutes (at least 1) until this chat's window ends: what to tell the person to wait."""
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                return 1
            left = window.start + self.seconds - self.clock()
        return max(1, math.ceil(left / 60.0))

    def _forget_ended(self, now: float) -> None:
        self._windows = {k: w for k, w in self._windows.items() if now - w.start < self.seconds}
