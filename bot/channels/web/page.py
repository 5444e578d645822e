"""The web chat: `GET /chat` (and `/chat/embed` for an iframe), `POST /chat/send`, `POST /chat/exit`.

Translate only, like every channel: a form post becomes one `Inbound` for the service's one step
(`Envelope(channel="web", chat_id=<session id>)`), and the step's replies become HTML. The page works
with plain form posts (post, then 303 back to the page); `static/chat.js` enhances it (fetch, append
the replies, move focus, no reload). Every post needs the session cookie and its CSRF token, or it is
refused with 403 and nothing is stored.

Never: log or store a session id, a cookie or anything typed in clear; put anything in the browser but
the one HttpOnly cookie; load anything from another site.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import secrets
from collections.abc import AsyncGenerator, Callable, Sequence
from functools import partial
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.channels.base import ChannelRoutes, form_from_body, read_body
from bot.channels.web.sessions import MAX_ENTRIES, Entry, Session, SessionStore
from bot.channels.web.uploads import UploadStore, sniff
from bot.config import Config
from bot.delivery import mark_answered
from bot.errors import BodyTooLarge
from bot.limits import words as limit_words
from bot.render import as_text, from_dict
from bot.service import Envelope, Outcome, ReportService
from flows import catalog, languages
from flows.types import Inbound, Location, Media, Outbound
from flows.words import COMMAND_OPTIONS
from storage.interface import ChatPage
from storage.store import Pending

log = logging.getLogger("reportbot.webchat")

CHANNEL = "web"
COOKIE = "reportbot_chat"
FETCH_HEADER = "X-Reportbot-Fetch"  # set by chat.js: answer with JSON instead of a redirect
MAX_TEXT = 4000  # characters of one typed message
_OPTION_KEY = re.compile(r"[a-z0-9_]{1,64}")
# What the transcript keeps of a button, a location or a photo (bot.render.describe_inbound).
_CHOSE = re.compile(r"\[chose: ([^\]]*)\]")
_LOCATION = re.compile(r"\[location: [^\]]*\]")
_PHOTO = re.compile(r"\[image/[a-z0-9.+-]+\] ?")

# Every word the page itself shows (a [web] table in the catalog); the conversation's own words come
# from the flow, as on every channel.
CATALOG_KEYS = frozenset(
    {
        "web.title",
        "web.intro",
        "web.start",
        "web.exit",
        "web.exit_hint",
        "web.emergency",
        "web.emergency_label",
        "web.log_label",
        "web.you",
        "web.us",
        "web.answer_label",
        "web.send",
        "web.options_label",
        "web.photo_label",
        "web.photo_hint",
        "web.photo_sent",
        "web.photo_bad",
        "web.location",
        "web.location_sent",
        "web.location_failed",
        "web.ended",
        "web.start_again",
    }
)

# Options of a multi-select question that act rather than tick (Done, Skip, ...): shown apart, as buttons.
ACTIONS = frozenset({"done"}) | COMMAND_OPTIONS

STATIC = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}


def words(key: str, locale: str = catalog.DEFAULT_LOCALE, **fields: object) -> str:
    """A word of the page, from the [web] table, in the person's language."""
    name = f"web.{key}"
    assert name in CATALOG_KEYS, name
    return catalog.text(locale, name, **fields)


def _page_words(locale: str) -> Callable[..., str]:
    return lambda key, **fields: words(key, locale, **fields)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class WebChat:
    """The web chat's routes over one service."""

    def __init__(self, config: Config, service: ReportService) -> None:
        self.config = config
        self.web = config.web
        self.service = service
        self.sessions = SessionStore(
            config.security.pseudonym_key, idle_seconds=config.web.session_idle_minutes * 60
        )
        self.uploads = UploadStore(config.data_path, config.security.encryption_keys)
        # Several workers: another may have ended a session this one holds (quick exit), so the page
        # held here is shown only after the database says it did not end (one indexed read).
        self.shared = config.server.workers > 1
        self.secure = self.web.public_url.startswith("https://")
        self.templates = Environment(
            loader=PackageLoader("bot.channels.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals["t"] = words
        self.templates.globals["service_name"] = config.service.name
        self.templates.globals["exit_url"] = self.web.exit_url
        self.static = {
            name: (resources.files("bot.channels.web") / "static" / name).read_bytes() for name in STATIC
        }
        self._frame = {
            False: "'none'",
            True: " ".join(self.web.embed_origins) if self.web.embed_origins else "'none'",
        }

    # -- headers -------------------------------------------------------------------------------------

    def headers(self, embed: bool = False) -> dict[str, str]:
        """The security headers of every web chat response."""
        exit_origin = _origin(self.web.exit_url)
        policy = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; "
            f"form-action 'self' {exit_origin}; frame-ancestors {self._frame[embed]}"
        )
        out = {
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "Permissions-Policy": "geolocation=(self), camera=(), microphone=(), interest-cohort=()",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if not embed:
            out["X-Frame-Options"] = "DENY"
        return out

    def _set_cookie(self, response: Response, session: Session, embed: bool) -> None:
        response.set_cookie(
            COOKIE,
            self.sessions.cookie(session),
            max_age=int(self.sessions.idle),
            path="/chat",
            httponly=True,
            secure=self.secure,
            samesite="strict",
        )

    def _drop_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/chat", httponly=True, secure=self.secure, samesite="strict")

    # -- the page ------------------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        return await self._page(request, embed=False)

    async def embed_page(self, request: Request) -> Response:
        return await self._page(request, embed=True)

    async def _page(self, request: Request, *, embed: bool) -> Response:
        session = await self._session(request, start=False)
        if session is None:
            session = self.sessions.new()
        said = languages.accept_language(request.headers.get("accept-language", ""))
        locale = self._locale(session, said)
        html = self.templates.get_template("chat.html").render(
            **self._language(locale),
            embed=embed,
            csrf=self.sessions.csrf(session),
            entries=session.entries,
            controls=self._controls(session, embed),
            focus=self._focus(session),
        )
        response = HTMLResponse(html, headers=self.headers(embed))
        self._set_cookie(response, session, embed)
        return response

    # -- sessions on any worker -----------------------------------------------------------------------

    async def _session(self, request: Request, *, start: bool) -> Session | None:
        """The session behind the request's cookie: the one this worker holds at the cookie's version
        (the fast path), else rebuilt from the database. None when the cookie is not valid, the session
        ended (quick exit, on any worker), or nothing of it is stored and `start` is not asked."""
        signed = self.sessions.signed(request.cookies.get(COOKIE))
        if signed is None:
            return None
        sid, version = signed
        if self.sessions.ended(sid):
            return None
        session = self.sessions.held(sid, version)
        if session is not None:
            if self.shared and await self.service.db.run_read(
                partial(self.service.storage.chat_ended, channel=CHANNEL, marker=_marker(sid))
            ):
                self.sessions.end(sid)
                return None
            return session
        return await self._rebuilt(sid, version, start=start)

    async def _rebuilt(self, sid: str, version: str, *, start: bool) -> Session | None:
        """The session as the database keeps it: the conversation's language and its last messages
        (another worker answered last, or this one restarted). One read; nothing is written."""
        read = partial(
            self.service.storage.chat_page,
            channel=CHANNEL,
            chat_key=self.service.chat_key(CHANNEL, sid),
            marker=_marker(sid),
            limit=MAX_ENTRIES,
        )
        page = await self.service.db.run_read(read)
        if page.ended:
            self.sessions.end(sid)
            return None
        if not page.lines and not start:
            self.sessions.forget(sid)
            return None
        return self.sessions.adopt(sid, version, self._entries(page), page.locale or "")

    def _entries(self, page: ChatPage) -> list[Entry]:
        """The page's messages from the stored transcript: ours as they were sent (from the outbox,
        with their options, so the page offers the last question's buttons), the person's as the page
        showed them (a button's label, "photo sent", "location sent")."""
        sent = {as_text(m): m for m in map(from_dict, page.sent)}
        locale = page.locale or catalog.DEFAULT_LOCALE
        entries: list[Entry] = []
        waiting: Entry | None = None  # the person's message, shown unless the reply was a re-ticked question
        for line in page.lines:
            if line.direction == "in":
                waiting = _heard(entries, waiting, line.text, locale)
            else:
                _replied(entries, waiting, sent.get(line.text) or Outbound(line.text, step="web"))
                waiting = None
        _append(entries, waiting)
        return [e for e in entries if e.author == "bot" or e.text]

    async def _mark_ended(self, sid: str) -> None:
        """Record the quick exit where every worker reads it: a receipt under a pseudonym of the
        session's marker (kept longer than any cookie lives), so the session never comes back."""
        record = partial(self.service.storage.record_receipt, channel=CHANNEL, delivery_id=_marker(sid))
        gate = self.service.sqlite_writer
        async with gate.shared() if gate is not None else contextlib.nullcontext():
            await self.service.db.run_write(record)

    def _locale(self, session: Session, said: tuple[str, ...]) -> str:
        """The page's language: the conversation's once it has one, else the browser's (if offered)."""
        if session.locale:
            return session.locale
        enabled = self.service.settings.languages
        return languages.pick(said, enabled) or (enabled[0] if enabled else catalog.DEFAULT_LOCALE)

    def _language(self, locale: str) -> dict[str, Any]:
        """What every template needs to speak the person's language: its words, `lang` and `dir`."""
        return {"t": _page_words(locale), "lang": locale, "rtl": languages.is_rtl(locale)}

    def _focus(self, session: Session) -> str | None:
        for entry in reversed(session.entries):
            if entry.message is not None:
                return f"m{entry.number}"
        return None

    def _controls(self, session: Session, embed: bool) -> str:
        question = session.question
        step = self.service.flow.steps.get(question.step) if question is not None else None
        return self.templates.get_template("controls.html").render(
            **self._language(self._locale(session, ())),
            question=question,
            started=bool(session.entries),
            media=step is not None and step.kind == "media",
            csrf=self.sessions.csrf(session),
            nonce=secrets.token_urlsafe(12),
            view="embed" if embed else "chat",
            accept=",".join(self.web.upload_types),
            actions=ACTIONS,
        )

    # -- answers -------------------------------------------------------------------------------------

    async def send(self, request: Request) -> Response:
        """One answer: a button, typed text, a photo or a location."""
        fetch = request.headers.get(FETCH_HEADER) == "1"
        session = await self._session(request, start=True)
        if session is None:  # no session, or one that ended: start none
            return self._refused(fetch, "no session")
        form = await self._checked_form(request, session, fetch)
        if isinstance(form, Response):
            return form
        embed = _field(form, "view") == "embed"
        async with session.lock:  # one answer at a time per person: a second one waits its turn
            said = languages.accept_language(request.headers.get("accept-language", ""))
            added, replaced, outcome = await self._answer(form, session, said)
            ended = any(m.clear_chat for m in outcome.replies)
        if ended:  # `exit` typed in the chat: a quick exit
            self.sessions.end(session.id)
            await self._mark_ended(session.id)
            return self._left(fetch)
        self.sessions.answered(session)
        if fetch:
            return self._json(session, added, replaced, embed)
        return self._back_to_page(session, embed)

    async def _checked_form(self, request: Request, session: Session, fetch: bool) -> Any:
        """The posted form, or the refusal to answer with (too large, or no valid CSRF token)."""
        # The webhooks' cap; a photo may add its own limit on top (multipart posts only).
        limit = self.config.server.max_body_bytes
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            limit += self.web.upload_max_bytes
        try:
            body = await read_body(request, limit)
        except BodyTooLarge:
            log.warning("web chat post refused: body too large")
            return self._refused(fetch, "too large", status=413, session=session)
        form = await _parse_form(request, body)
        if not self.sessions.csrf_ok(session, _field(form, "csrf")):
            log.warning("web chat post refused: bad or missing CSRF token")
            return self._refused(fetch, "csrf", session=session)
        return form

    async def _answer(
        self, form: Any, session: Session, said: tuple[str, ...]
    ) -> tuple[list[Entry], Entry | None, Outcome]:
        """Run the form through the service's step; what was added to the page, or replaced on it."""
        inbound, shown, problem = await self._inbound(form, session)
        if problem is not None:
            return [session.add(Entry("bot", message=Outbound(problem, step="web")))], None, Outcome()
        if inbound is None:
            return [], None, Outcome()
        nonce = _field(form, "n")
        env = Envelope(
            CHANNEL,
            session.id,
            inbound,
            delivery_id=f"{session.id}:{nonce}" if nonce else None,
            button_step=_field(form, "step") if inbound.option is not None else None,
            languages=said,
        )
        outcome = await self.service.handle(env)
        if outcome.locale:
            session.locale = outcome.locale
        kept = [m.ref for m in inbound.media]
        if outcome.duplicate or outcome.limited:
            self.uploads.forget(kept)  # the step did not take it
        else:
            session.uploads.extend(kept)
        self._settle_uploads(session, outcome)
        added, replaced = self._show(session, shown, outcome)
        await mark_answered(self.service, outcome.outbox_ids)
        return added, replaced, outcome

    def _back_to_page(self, session: Session, embed: bool) -> Response:
        """A plain form post: 303 back to the page, at the newest message."""
        focus = self._focus(session) or "now"
        response = RedirectResponse(f"/chat{'/embed' if embed else ''}#{focus}", status_code=303)
        response.headers.update(self.headers(embed))
        self._set_cookie(response, session, embed)
        return response

    async def _inbound(self, form: Any, session: Session) -> tuple[Inbound | None, str | None, str | None]:
        """The form as one Inbound, what to show as the person's own message, or a problem to say."""
        upload = form.get("photo")
        if isinstance(upload, UploadFile) and upload.filename:
            return await self._photo(upload, _text(_field(form, "text")), session)
        location = _location(_field(form, "lat"), _field(form, "lon"))
        if location is not None:
            return Inbound(location=location), words("location_sent", self._locale(session, ())), None
        option = _field(form, "option")
        if option:
            inbound, shown = _option(option, session)
            return inbound, shown, None
        text = _text(_field(form, "text"))
        if not text:
            return None, None, None
        return Inbound(text=text), text, None

    async def _photo(
        self, upload: UploadFile, caption: str, session: Session
    ) -> tuple[Inbound | None, str | None, str | None]:
        """A photo (with its caption), kept at any question: the flow keeps it for the evidence question
        and says so."""
        data = await upload.read()
        kind = sniff(data)
        if kind is None or kind not in self.web.upload_types or len(data) > self.web.upload_max_bytes:
            return None, None, words("photo_bad", self._locale(session, ()))
        ref = await self.uploads.save(data)
        shown = words("photo_sent", self._locale(session, ())) + (f" {caption}" if caption else "")
        return Inbound(text=caption, media=(Media(ref=ref, content_type=kind),)), shown, None

    def _settle_uploads(self, session: Session, outcome: Outcome) -> None:
        """Photos belong to the report once it is sent; a draft that was erased takes them with it."""
        if outcome.duplicate or outcome.limited or outcome.step is not None:
            return
        if outcome.reference is None:  # stop, delete or exit: the draft is gone, and so are its photos
            self.uploads.forget(session.uploads)
        session.uploads.clear()

    def _show(
        self, session: Session, shown: str | None, outcome: Outcome
    ) -> tuple[list[Entry], Entry | None]:
        """Put the person's message and our replies on the session's page."""
        added: list[Entry] = []
        if outcome.duplicate:  # the same form sent twice (a double click, Back then send): done once
            return added, None
        replies = outcome.replies
        if outcome.limited and not replies:  # over the rate: say so, nothing was stored
            replies = [Outbound(limit_words("slow_down", self._locale(session, ())), step="limits")]
        replaced = _replace_toggled(session, replies)
        if replaced is not None:
            return added, replaced
        if shown:
            added.append(session.add(Entry("person", text=shown)))
        for message in replies:
            added.append(session.add(Entry("bot", message=message)))
        return added, replaced

    def _json(self, session: Session, added: list[Entry], replaced: Entry | None, embed: bool) -> Response:
        template = self.templates.get_template("entry.html")
        language = self._language(self._locale(session, ()))

        def render(entry: Entry) -> str:
            return template.render(entry=entry, **language)

        body = {
            "added": "".join(render(e) for e in added),
            "replaced": {"id": f"m{replaced.number}", "html": render(replaced)} if replaced else None,
            "controls": self._controls(session, embed),
            "focus": self._focus(session) if added else None,
        }
        response = JSONResponse(body, headers=self.headers(embed))
        self._set_cookie(response, session, embed)
        return response

    def _refused(
        self, fetch: bool, why: str, *, status: int = 403, session: Session | None = None
    ) -> Response:
        """A post the server will not act on; nothing was stored."""
        log.info("web chat post refused reason=%s", why)
        if fetch:
            return JSONResponse({"error": why}, status_code=status, headers=self.headers())
        locale = session.locale if session is not None and session.locale else catalog.DEFAULT_LOCALE
        html = self.templates.get_template("ended.html").render(**self._language(locale))
        return HTMLResponse(html, status_code=status, headers=self.headers())

    # -- quick exit ----------------------------------------------------------------------------------

    async def exit(self, request: Request) -> Response:
        """End the session (the `exit` word through the service erases the draft), then leave."""
        fetch = request.headers.get(FETCH_HEADER) == "1"
        signed = self.sessions.signed(request.cookies.get(COOKIE))
        if signed is not None:
            sid = signed[0]
            try:
                body = await read_body(request, self.config.server.max_body_bytes)
                form = await _parse_form(request, body)
            except BodyTooLarge:
                form = {}
            if self.sessions.csrf_ok(Session(id=sid, seen=0), _field(form, "csrf")):
                session = await self._session(request, start=False)
                if session is not None:
                    async with session.lock:
                        if session.entries:  # a conversation exists only after the first answer
                            outcome = await self.service.handle(Envelope(CHANNEL, sid, Inbound(text="exit")))
                            await mark_answered(self.service, outcome.outbox_ids)
                # Ended on every worker, even one that holds a page of it this worker could not see.
                self.sessions.end(sid)
                await self._mark_ended(sid)
        return self._left(fetch)

    def _left(self, fetch: bool) -> Response:
        response: Response
        if fetch:
            response = JSONResponse({"exit": self.web.exit_url}, headers=self.headers())
        else:
            response = RedirectResponse(self.web.exit_url, status_code=303, headers=self.headers())
        response.headers["Clear-Site-Data"] = '"cache", "storage"'
        self._drop_cookie(response)
        return response

    # -- static files --------------------------------------------------------------------------------

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response(status_code=404)
        headers = self.headers()
        headers["Cache-Control"] = "public, max-age=3600"
        return Response(self.static[name], media_type=STATIC[name], headers=headers)

    def routes(self) -> ChannelRoutes:
        return ChannelRoutes(
            routes=[
                Route("/chat", self.page, methods=["GET"]),
                Route("/chat/embed", self.embed_page, methods=["GET"]),
                Route("/chat/send", self.send, methods=["POST"]),
                Route("/chat/exit", self.exit, methods=["POST"]),
                Route("/chat/static/{name}", self.asset, methods=["GET"]),
            ]
        )


def _option(option: str, session: Session) -> tuple[Inbound | None, str | None]:
    """A button pressed, and its label to show as the person's message."""
    question = session.question
    labels = {o.key: o.label for o in question.options} if question is not None else {}
    if option == "start" and not session.entries:
        return Inbound(text="start"), None
    if option in labels:
        return Inbound(option=option), labels[option]
    if _OPTION_KEY.fullmatch(option):  # a button from an older page: the service re-asks
        return Inbound(option=option), None
    return None, None


def _heard(entries: list[Entry], waiting: Entry | None, text: str, locale: str) -> Entry | None:
    """The person's stored line: the one before it goes on the page; this one waits for its reply.
    The Start button that opened the conversation is not shown as the person's words."""
    opened = not entries and waiting is None and text == "start"
    _append(entries, waiting)
    return None if opened else _person(text, entries, locale)


def _replied(entries: list[Entry], waiting: Entry | None, message: Outbound) -> None:
    """Our stored reply on the page, after the person's message; a multi-select toggle re-ticks the
    question in place instead (and the person's tap is not shown), as the page did."""
    if message.update and _retick(entries, message):
        return
    _append(entries, waiting)
    entries.append(Entry("bot", message=message))


def _append(entries: list[Entry], entry: Entry | None) -> None:
    if entry is not None:
        entries.append(entry)


def _retick(entries: Sequence[Entry], message: Outbound) -> bool:
    """Put a re-ticked question in place of the question it updates, as the page did (`_show`)."""
    last = next((e for e in reversed(entries) if e.message is not None), None)
    if last is None or last.message is None or last.message.step != message.step:
        return False
    last.message = message
    return True


def _marker(sid: str) -> str:
    """The delivery id under which a session's quick exit is recorded (a send's are `<id>:<nonce>`)."""
    return f"ended:{sid}"


def _person(line: str, entries: Sequence[Entry], locale: str) -> Entry:
    """The person's stored message as the page showed it: a button's label (none for a button of an
    older page, or Start), "location sent", "photo sent" and its caption, or the words typed."""
    chose = _CHOSE.fullmatch(line)
    if chose is not None:
        question = next((e.message for e in reversed(entries) if e.message is not None), None)
        labels = {o.key: o.label for o in question.options} if question is not None else {}
        return Entry("person", text=labels.get(chose.group(1), ""))
    if _LOCATION.match(line):
        return Entry("person", text=words("location_sent", locale))
    photo = _PHOTO.match(line)
    if photo is not None:
        caption = line[photo.end() :]
        return Entry("person", text=words("photo_sent", locale) + (f" {caption}" if caption else ""))
    return Entry("person", text=line)


def _replace_toggled(session: Session, replies: Sequence[Outbound]) -> Entry | None:
    """Replies that only re-tick a multi-select question replace it in place: the entry replaced."""
    replaced: Entry | None = None
    if replies and all(m.update for m in replies):
        for m in replies:
            replaced = session.replace_question(m) or replaced
    return replaced


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _text(value: str | None) -> str:
    return (value or "").strip()[:MAX_TEXT]


def _location(lat: str | None, lon: str | None) -> Location | None:
    if not lat or not lon:
        return None
    try:
        la, lo = float(lat), float(lon)
    except ValueError:
        return None
    if not (math.isfinite(la) and math.isfinite(lo) and -90 <= la <= 90 and -180 <= lo <= 180):
        return None
    return Location(latitude=round(la, 6), longitude=round(lo, 6))


class _InMemoryParts(MultiPartParser):
    """Starlette's multipart parser, keeping uploads in memory: a photo is never written to disk in
    clear (the body is capped before parsing, so memory is bounded too)."""

    spool_max_size = 1 << 30


async def _parse_form(request: Request, body: bytes) -> Any:
    """The posted form (urlencoded or multipart), parsed from the body already read and capped."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):

        async def chunks() -> AsyncGenerator[bytes, None]:
            yield body

        try:
            return await _InMemoryParts(request.headers, chunks(), max_files=1, max_fields=50).parse()
        except MultiPartException:
            return {}
    return await form_from_body(request, body, max_files=1, max_fields=50)


def webchat_routes(config: Config, service: ReportService) -> ChannelRoutes:
    """The web chat's routes, for `bot.server.create_app`."""
    return WebChat(config, service).routes()


class WebSender:
    """Staff follow-ups to a web reporter. A web page cannot be written to once it has been answered:
    the reply stays in the report's transcript, and the reporter reads it when they come back and
    look up their reference (`status`). Nothing is pushed, so there is nothing to retry."""

    channel = CHANNEL

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        return []
