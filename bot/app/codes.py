"""Secret codes shown beside a new reference (for `status` from another chat), made ahead of need."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass

from storage.crypto import Cipher, new_code, normalise_code


@dataclass(frozen=True)
class Code:
    """A secret code to show beside a new reference, and its slow hash, made before it is needed."""

    shown: str
    hashed: str


class Codes:
    """Secret codes made ahead, off the writer thread: hashing one takes tens of milliseconds of scrypt,
    which would hold up every other chat's step if it ran inside the step. A step that may submit a
    report takes one; one that then does not submit gives it back (it was never shown). When none is
    ready the step makes one itself."""

    def __init__(self, cipher: Cipher, keep: int = 2) -> None:
        self.cipher = cipher
        self.keep = keep
        self._ready: deque[Code] = deque()
        self._lock = threading.Lock()
        self._filling = False

    def make(self) -> Code:
        shown = new_code()
        return Code(shown, self.cipher.code_hash(normalise_code(shown)))

    def take(self) -> Code:
        try:
            return self._ready.popleft()
        except IndexError:
            return self.make()

    async def take_soon(self) -> Code:
        """A code, made on a worker thread if none is ready (for the event loop, before a step)."""
        try:
            return self._ready.popleft()
        except IndexError:
            return await asyncio.to_thread(self.make)

    def give_back(self, code: Code) -> None:
        self._ready.appendleft(code)

    def top_up(self) -> None:
        """Make codes in a background thread until `keep` are ready (no-op when they are)."""
        with self._lock:
            if self._filling or len(self._ready) >= self.keep:
                return
            self._filling = True
        threading.Thread(target=self._fill, name="reportbot-codes", daemon=True).start()

    def _fill(self) -> None:
        try:
            while len(self._ready) < self.keep:
                self._ready.append(self.make())
        finally:
            with self._lock:
                self._filling = False
