"""Web chat sessions: one opaque cookie in the browser, everything else in this process's memory.

The cookie is `<random id>.<time>.<signature>`: the id is 32 random bytes, the time is when the cookie
was last renewed (every answer renews it), and the signature (HMAC-SHA256 under a key derived from the
pseudonym key) proves that this server issued it. The id is the chat id the service pseudonymises;
the page the person sees (their messages and ours) is held here, in memory, for as long as the session
lives, and never written to disk. A session ends on quick exit, after `idle` without an answer, or when
this process stops.

Never: log a session id or a cookie; keep anything in the browser but the cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from flows.types import Outbound

MAX_SESSIONS = 10_000  # the least recently used are forgotten first (memory stays bounded)
NOTICES = frozenset({"web", "limits"})  # steps of messages that are not the flow's questions
MAX_ENTRIES = 80  # messages kept for the page of one session (the oldest scroll away)


@dataclass
class Entry:
    """One message on the page: the person's (`text`) or ours (`message`)."""

    author: str  # "person" | "bot"
    text: str = ""
    message: Outbound | None = None
    number: int = 0  # position on the page, for the element id the script moves focus to


@dataclass
class Session:
    """One person's chat on this server."""

    id: str
    seen: float
    entries: list[Entry] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one answer at a time: later ones queue
    counter: int = 0
    uploads: list[str] = field(default_factory=list)  # photos of the draft in progress (references)
    locale: str = ""  # the conversation's language once it has one (the page is shown in it)

    def add(self, entry: Entry) -> Entry:
        self.counter += 1
        entry.number = self.counter
        self.entries.append(entry)
        del self.entries[:-MAX_ENTRIES]
        return entry

    @property
    def question(self) -> Outbound | None:
        """The last question the flow asked: its options are the ones the page offers now (a notice
        of the page's own, such as "we can't use that file", leaves the question as it was)."""
        for entry in reversed(self.entries):
            if entry.message is not None and entry.message.step not in NOTICES:
                return entry.message
        return None

    def replace_question(self, message: Outbound) -> Entry | None:
        """A multi-select toggle: the question is shown again with new ticks, in place."""
        for entry in reversed(self.entries):
            if entry.message is not None:
                if entry.message.step == message.step:
                    entry.message = message
                    return entry
                return None
        return None


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()[:32]


class SessionStore:
    """Sessions by id, signed cookies, and CSRF tokens. One per process."""

    def __init__(
        self,
        secret: str,
        *,
        idle_seconds: float,
        clock: Callable[[], float] = time.time,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._key = hmac.new(secret.encode(), b"reportbot web chat", hashlib.sha256).digest()
        self.idle = idle_seconds
        self.clock = clock
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        # Ended sessions whose cookies could still be within their idle time (never longer).
        self._ended: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def new(self) -> Session:
        """A fresh session for a page: only its signed cookie exists until its first answer arrives,
        so opening the page (or a crawler fetching it) keeps nothing on the server."""
        return Session(id=secrets.token_urlsafe(32), seen=self.clock())

    def _register(self, sid: str, now: float) -> Session:
        self._expire()
        session = Session(id=sid, seen=now)
        self._sessions[sid] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def cookie(self, session: Session) -> str:
        """The cookie value for this session, renewed now."""
        stamp = str(int(self.clock()))
        return f"{session.id}.{stamp}.{_sign(self._key, f'cookie:{session.id}.{stamp}')}"

    def find(self, cookie: str | None, *, start: bool = False) -> Session | None:
        """The live session behind a cookie, or None (unsigned, idle too long, ended, or unknown).

        `start`: a cookie this server signed for a page, whose session has not begun, begins it (the
        first answer); one that ended (quick exit) never begins again."""
        sid = self._signed_id(cookie)
        if sid is None:
            return None
        now = self.clock()
        session = self._sessions.get(sid)
        if session is None and start and sid not in self._ended:
            session = self._register(sid, now)
        if session is None or now - session.seen > self.idle:
            return None
        session.seen = now
        self._sessions.move_to_end(sid)
        return session

    def _signed_id(self, cookie: str | None) -> str | None:
        """The session id of a cookie this server signed and renewed within `idle`, else None."""
        if not cookie or cookie.count(".") != 2:
            return None
        sid, stamp, mac = cookie.split(".")
        if not stamp.isdigit() or not hmac.compare_digest(mac, _sign(self._key, f"cookie:{sid}.{stamp}")):
            return None
        if self.clock() - int(stamp) > self.idle:
            return None
        return sid

    def end(self, session: Session) -> None:
        """Forget a session now (quick exit); its cookie is never accepted again."""
        self._sessions.pop(session.id, None)
        self._ended[session.id] = self.clock()

    def csrf(self, session: Session) -> str:
        """The token every post must carry: only a page this server sent to this session has it."""
        return _sign(self._key, f"csrf:{session.id}")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    def _expire(self) -> None:
        """Drop sessions idle too long (the oldest are first in the order)."""
        now = self.clock()
        while self._ended and now - next(iter(self._ended.values())) > self.idle:
            self._ended.popitem(last=False)
        while len(self._ended) > self.max_sessions:
            self._ended.popitem(last=False)
        while self._sessions:
            sid, oldest = next(iter(self._sessions.items()))
            if now - oldest.seen <= self.idle:
                return
            del self._sessions[sid]
