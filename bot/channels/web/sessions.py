"""Web chat sessions: one opaque cookie in the browser, the page held in memory by the worker that served
it last, and rebuilt from the database by any other.

The cookie is `<random id>.<time>.<version>.<signature>`: the id is 32 random bytes, the time is when
the cookie was last renewed (every answer renews it), the version changes with every answer (a worker
holding an older page in memory knows it is stale), and the signature (HMAC-SHA256 under a key derived
from the pseudonym key, which every worker shares) proves that this service issued it. The id is the
chat id the service pseudonymises; the page the person sees (their messages and ours) is held here, in
memory, and never written to disk. A worker that meets a valid cookie whose page it does not hold (or
holds at another version) rebuilds it from the conversation's stored transcript (page.py). A session
ends on quick exit (on every worker: the exit is recorded in the database), after `idle` without an
answer, or when this process stops (its pages are then rebuilt).

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
    version: str = ""  # changes with every answer; the cookie carries it (see the module's notes)

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


def _version() -> str:
    return secrets.token_urlsafe(6)


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
        return Session(id=secrets.token_urlsafe(32), seen=self.clock(), version=_version())

    def answered(self, session: Session) -> None:
        """The page changed: a new version, so that a worker holding the old one rebuilds it."""
        session.version = _version()

    def _register(self, sid: str, now: float, version: str = "") -> Session:
        self._expire()
        session = Session(id=sid, seen=now, version=version)
        self._sessions.pop(sid, None)
        self._sessions[sid] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def cookie(self, session: Session) -> str:
        """The cookie value for this session, renewed now."""
        signed = f"{session.id}.{int(self.clock())}.{session.version}"
        return f"{signed}.{_sign(self._key, f'cookie:{signed}')}"

    def held(self, sid: str, version: str) -> Session | None:
        """The session this worker holds in memory at this version, renewed now, or None."""
        now = self.clock()
        session = self._sessions.get(sid)
        if session is None or session.version != version or now - session.seen > self.idle:
            return None
        session.seen = now
        self._sessions.move_to_end(sid)
        return session

    def adopt(self, sid: str, version: str, entries: list[Entry], locale: str) -> Session:
        """A session rebuilt from the database (another worker served its last answer), held from now."""
        session = self._register(sid, self.clock(), version)
        session.locale = locale
        for entry in entries:
            session.add(entry)
        return session

    def ended(self, sid: str) -> bool:
        """True when this worker ended the session (quick exit) within its idle time."""
        return sid in self._ended

    def signed(self, cookie: str | None) -> tuple[str, str] | None:
        """(session id, version) of a cookie this service signed and renewed within `idle`, else None."""
        if not cookie or cookie.count(".") not in (2, 3):
            return None
        if cookie.count(".") == 2:
            # A cookie signed before pages had versions (`<id>.<time>.<signature>`): its page is rebuilt
            # from the database, so a person mid-chat during an upgrade carries on.
            sid, stamp, mac = cookie.split(".")
            version, expected = "", _sign(self._key, f"cookie:{sid}.{stamp}")
        else:
            sid, stamp, version, mac = cookie.split(".")
            expected = _sign(self._key, f"cookie:{sid}.{stamp}.{version}")
        if not stamp.isdigit() or not hmac.compare_digest(mac, expected):
            return None
        if self.clock() - int(stamp) > self.idle:
            return None
        return sid, version

    def end(self, sid: str) -> None:
        """Forget a session now (quick exit); its cookie is never accepted again here (other workers
        learn it from the database: page.py)."""
        self._sessions.pop(sid, None)
        self._ended[sid] = self.clock()

    def forget(self, sid: str) -> None:
        """Drop the page held for a session (it is stale: the database holds nothing of it any more)."""
        self._sessions.pop(sid, None)

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
