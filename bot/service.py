"""The one step: the only path by which an inbound message changes anything.

    authenticate (the adapter did) -> record the delivery id -> lock the conversation -> run the flow
    -> save draft, transcript, outbox and report -> commit -> deliver the outbox

Recording the delivery id and its effects happen in one transaction: a repeat delivery is a no-op, and
a crash at any point loses nothing that was acknowledged. Logs carry step names and references, never
what people typed, never a chat id.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot import limits
from bot.config import Config
from bot.logs import CHANNELS, known
from bot.render import as_text, describe_inbound, to_dict
from flows import catalog, words
from flows.engine import Flow
from flows.references import new_reference
from flows.report import REPORT_FLOW
from flows.types import Draft, FlowContext, Inbound, Media, Outbound, ReportFields, StatusInfo, StepResult
from storage import steps
from storage.crypto import Cipher, new_code, normalise_code
from storage.db import Database, WriteGate
from storage.steps import TranscriptLine as Line
from storage.store import Store

log = logging.getLogger("reportbot.service")

CAN_CLEAR_CHAT = {"telegram": True, "web": True}  # the web page is replaced on exit
UNLIMITED = {"console"}  # the operator's own terminal (and scripts piped into it): no rate limit


@dataclass(frozen=True)
class Envelope:
    """One authenticated inbound message from a channel adapter."""

    channel: str
    chat_id: str  # the platform address; used for the pseudonym and the (encrypted) reply address only
    inbound: Inbound
    delivery_id: str | None = None  # Telegram update_id, Twilio MessageSid; None where there is none
    received_at: datetime | None = None
    # The platform id of the person's message, kept encrypted so that quick exit can delete it.
    message_ref: str | None = None
    # A button press: the step whose keyboard it was on (a press from another step is stale) and the
    # bot message it was on (a multi-select toggle edits that message instead of sending a new one).
    button_step: str | None = None
    button_ref: str | None = None


@dataclass
class Outcome:
    """What the step did, for the adapter: replies to show and outbox rows to deliver."""

    duplicate: bool = False
    replies: list[Outbound] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    reference: str | None = None  # set when this step submitted a report
    step: str | None = None  # the step the conversation is now at (None when it ended)
    limited: bool = False  # an abuse limit answered instead of the flow


class _Dropped(Exception):
    """A message past what the volume limit keeps, after the person was told: roll back, store nothing."""


REPORT_WINDOW = timedelta(hours=1)
LOOKUP_WINDOW = timedelta(hours=1)
NEAR_SUBMIT_MAX = 50_000  # chats remembered at the review step before the set is emptied (memory bound)


@dataclass(frozen=True)
class Code:
    """A secret code to show beside a new reference, and its slow hash, made before it is needed."""

    shown: str
    hashed: str


class Codes:
    """Secret codes made ahead, off the step thread: hashing one takes tens of milliseconds of scrypt,
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


class ReportService:
    """Joins flows and storage. One instance per process; safe to call concurrently."""

    def __init__(self, config: Config, db: Database, flow: Flow = REPORT_FLOW) -> None:
        self.config = config
        self.db = db
        self.flow = flow
        self.cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
        self.store = Store(self.cipher)
        self.settings = config.flow_settings()
        self.zone = ZoneInfo(config.service.timezone)
        # SQLite takes one writer at a time (BEGIN IMMEDIATE). Steps and outbox writes run together on
        # the database's one step thread, group-committed (Database.run_step), under the gate's shared
        # side; the writers that still use the async engine in this process (quick exit, staff in the
        # console) take it alone, instead of meeting the step thread in SQLite's busy-wait sleeps.
        self.sqlite_writer = WriteGate() if db.is_sqlite else None
        lim = config.limits
        self.turns = limits.ChatTurns()
        self.pace = limits.ChatPace(lim.messages_per_second)
        self.volume = limits.ChatVolume(lim.window_messages, lim.window_kept, lim.window_minutes)
        self.codes = Codes(self.cipher, keep=4)
        # Chats whose conversation is at a step that can submit (as far as this process saw): their next
        # step gets a secret code made before it starts, off the step thread. Bounded like the buckets.
        self._near_submit: set[str] = set()
        # Steps from which the flow can submit a report (they lead to its last step): only a step at one
        # of them takes a secret code.
        self.submitting = frozenset(
            str(edge["source"]) for edge in flow.transitions if edge["dest"] == flow.final
        )

    def chat_key(self, channel: str, chat_id: str) -> str:
        """The pseudonym under which a chat is stored."""
        return self.cipher.pseudonym(channel, chat_id)

    def context(self, channel: str, now: datetime, reference: str, passphrase: str = "") -> FlowContext:
        """What the flow needs to know about this moment and this deployment."""
        return FlowContext(
            now=now,
            today=now.astimezone(self.zone).date(),
            reference=reference,
            passphrase=passphrase,
            channel=channel,
            can_clear_chat=CAN_CLEAR_CHAT.get(channel, False),
            settings=self.settings,
        )

    async def handle(self, env: Envelope) -> Outcome:
        """Run one step for one inbound message, durably. Returns what to show the person.

        One chat's messages run one at a time, in the order they arrived here; a chat sending faster
        than `limits.messages_per_second` waits its turn. Nothing is refused for speed.
        """
        env = storable(env)
        chat_key = self.chat_key(env.channel, env.chat_id)
        async with self.turns.turn(chat_key):
            if env.channel not in UNLIMITED:
                wait = self.pace.delay(chat_key)
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                if self.sqlite_writer is None:
                    return await self._handle(env, chat_key)
                async with self.sqlite_writer.shared():
                    return await self._handle(env, chat_key)
            except _Dropped:
                return Outcome(limited=True)
            finally:
                self.codes.top_up()

    def sender_key(self, channel: str, chat_id: str) -> str:
        """The pseudonym under which reports are counted: not the chat key, so nothing joins on it."""
        return self.cipher.pseudonym(f"report-count:{channel}", chat_id)

    async def _handle(self, env: Envelope, chat_key: str) -> Outcome:
        code = await self.codes.take_soon() if chat_key in self._near_submit else None
        outcome = await self.db.run_step(partial(self._step, env, chat_key, code))
        if outcome.step in self.submitting:
            if len(self._near_submit) >= NEAR_SUBMIT_MAX:
                self._near_submit.clear()
            self._near_submit.add(chat_key)
        else:
            self._near_submit.discard(chat_key)
        return outcome

    def _step(self, env: Envelope, chat_key: str, code: Code | None, conn: Connection) -> Outcome:
        """The step's work inside one transaction on a sync connection (see storage.steps)."""
        now = env.received_at or datetime.now(UTC)
        stamp = now.astimezone(UTC)
        cipher = self.cipher
        if env.delivery_id is not None and not steps.record_receipt(
            conn, cipher, env.channel, env.delivery_id
        ):
            log.info("repeat delivery ignored channel=%s", _named(env))
            return Outcome(duplicate=True)
        if env.channel not in UNLIMITED:
            volume = self.volume.take(chat_key)
            if volume is not limits.Volume.ANSWER and not _always_answered(env.inbound):
                return self._over_volume(conn, env, chat_key, volume, stamp)
        conv = steps.lock_conversation(conn, env.channel, chat_key)
        saved = self._read_draft(conv.draft_enc)
        draft = Draft.from_json(saved) if saved is not None else None
        if env.message_ref is not None:
            steps.remember_message(conn, cipher, env.channel, chat_key, env.message_ref, at=stamp)
        if _stale_press(env, draft):
            # An old keyboard: give the flow a key no question has, so it re-asks the current one.
            env = replace(env, inbound=replace(env.inbound, option=f"{env.button_step}:{env.inbound.option}"))
        try:
            result, fresh_reference, code = self._run_flow(conn, draft, env, now, code)
        except Exception as exc:
            # A bug must not block this chat for ever (webhooks retry a failing update): keep the
            # draft as it was, record the message, and say sorry. Only the error class is logged.
            log.error("flow failed step=%s error=%s", draft.step if draft else None, type(exc).__name__)
            result, fresh_reference = self._apology(draft), ""
        limited = False
        if draft is not None and result.submit is None and not result.erase:
            full = self._too_big(draft, result.draft)
            if full is not None:
                # Keep the draft as it was: the message is in the transcript (below), not in the answer.
                kept = draft.copy()
                kept.last_active = result.draft.last_active
                result = StepResult(draft=kept, replies=[Outbound(full, step="limits")])
                limited = True
                log.info("draft size limit reached channel=%s step=%s", _named(env), draft.step)
        if result.submit is not None and not self._may_submit(conn, env, stamp):
            # Over the hourly cap: keep the draft as it was, say so calmly, submit nothing.
            assert saved is not None
            calm = Outbound(limits.words("too_many_reports"), step="limits")
            result = StepResult(draft=Draft.from_json(saved), replies=[calm])
            limited = True
            log.info("report cap reached channel=%s", _named(env))
        if result.submit is None and code is not None:
            self.codes.give_back(code)  # never shown: another report can have it
            code = None
        if result.status_query is not None:
            info, wait = self._status(conn, env, chat_key, result.status_query, result.status_code, stamp)
            result.replies.extend(
                self.flow.status_reply(result.draft, info, self.context(env.channel, now, ""), wait=wait)
            )
        conversation_id: int | None = conv.id
        # No report is touched here: a contactable report stamped with each later message would
        # carry the times of an anonymous report's conversation (see storage.followup.last_inbound).
        in_line = Line("in", "person", describe_inbound(env.inbound), stamp)
        unlinked = result.submit is not None and not _in_chat(result.submit)
        reference = None
        report_id = None
        if result.submit is not None:
            reference = fresh_reference
            report_id = steps.create_report(
                conn,
                cipher,
                reference=reference,
                channel=env.channel,
                clear=_clear_fields(result.submit),
                sealed=_sealed_fields(result.submit),
                chat_key=chat_key if _in_chat(result.submit) else None,
                reply_address=env.chat_id if _in_chat(result.submit) else None,
                conversation_id=conv.id,
                at=stamp,
                code_hash=code.hashed if code is not None else None,
            )
            steps.delete_conversation(conn, cipher, conv.id)
            conversation_id = None
            if unlinked:
                # An anonymous report keeps no link to the chat: what the chat was sent goes too, and
                # this step's replies (no conversation, no report) are deleted once delivered.
                steps.forget_chat(conn, env.channel, chat_key)
            log.info("report submitted reference=%s channel=%s", reference, _named(env))
        elif result.erase:
            steps.delete_conversation(conn, cipher, conv.id)
            conversation_id = None
            log.info("draft erased channel=%s", _named(env))
        else:
            steps.save_draft(conn, cipher, conv.id, result.draft.to_json(), at=stamp)
        # Both sides in one append (one round trip): after the lines the report took over, or on the
        # conversation. An erased conversation keeps no transcript, so nothing is written for it.
        lines = [in_line, *(Line("out", "bot", as_text(m), stamp) for m in result.replies)]
        if report_id is not None:
            steps.append_transcript(conn, cipher, lines, report_id=report_id)
        elif conversation_id is not None:
            steps.append_transcript(conn, cipher, lines, conversation_id=conversation_id)
        ids = steps.enqueue(
            conn,
            cipher,
            channel=env.channel,
            chat_key=chat_key,
            address=env.chat_id,
            messages=[_outbox_form(m, env) for m in result.replies],
            conversation_id=conversation_id,
            report_id=report_id if _in_chat(result.submit) else None,
            at=stamp,
        )
        ended = result.submit is not None or result.erase
        if log.isEnabledFor(logging.DEBUG):  # one line a message is for debugging, not for every day
            log.debug(
                "step channel=%s now=%s replies=%d",
                _named(env),
                None if ended else result.draft.step,
                len(ids),
            )
        return Outcome(
            replies=result.replies,
            outbox_ids=ids,
            reference=reference,
            step=None if ended else result.draft.step,
            limited=limited,
        )

    def _over_volume(
        self, conn: Connection, env: Envelope, chat_key: str, volume: limits.Volume, stamp: datetime
    ) -> Outcome:
        """A message past the chat's volume limit: kept in the transcript but not run through the flow,
        the person told once; past what is kept, told once more, then acknowledged and not stored."""
        if volume is limits.Volume.DROP:
            raise _Dropped  # rolls back the receipt too: a retry of it is treated the same way
        if volume is limits.Volume.FULL:
            log.info("chat past what the volume limit keeps channel=%s", _named(env))
            minutes = self.volume.minutes_left(chat_key)
            calm = Outbound(limits.words("nothing_more_kept", minutes=minutes), step="limits")
            ids = steps.enqueue(
                conn,
                self.cipher,
                channel=env.channel,
                chat_key=chat_key,
                address=env.chat_id,
                messages=[to_dict(calm)],
                at=stamp,
            )
            return Outcome(replies=[calm], outbox_ids=ids, limited=True)
        conv = steps.lock_conversation(conn, env.channel, chat_key)
        if env.message_ref is not None:
            steps.remember_message(conn, self.cipher, env.channel, chat_key, env.message_ref, at=stamp)
        replies: list[Outbound] = []
        if volume is limits.Volume.TELL:
            log.info("chat over its volume limit channel=%s", _named(env))
            minutes = self.volume.minutes_left(chat_key)
            replies.append(Outbound(limits.words("too_many_messages", minutes=minutes), step="limits"))
        lines = [
            Line("in", "person", describe_kept(env.inbound), stamp),
            *(Line("out", "bot", as_text(m), stamp) for m in replies),
        ]
        steps.append_transcript(conn, self.cipher, lines, conversation_id=conv.id)
        ids = steps.enqueue(
            conn,
            self.cipher,
            channel=env.channel,
            chat_key=chat_key,
            address=env.chat_id,
            messages=[to_dict(m) for m in replies],
            conversation_id=conv.id,
            at=stamp,
        )
        return Outcome(replies=replies, outbox_ids=ids, limited=True)

    def _read_draft(self, token: str | None) -> dict[str, Any] | None:
        """The decrypted draft, or None for a conversation that has not started."""
        if token is None:
            return None
        value = self.cipher.decrypt_json(token)
        return value if isinstance(value, dict) else None

    def _too_big(self, before: Draft, after: Draft) -> str | None:
        """What to tell the person when this step grew the draft past a size limit, else None.

        Only what grew counts (a draft already over a limit lowered later is not locked), and only the
        answers are measured: history and work in progress are bounded by the flow itself.
        """
        limits = self.config.limits
        locale = before.locale
        for name, value in after.answers.items():
            old = before.answers.get(name)
            if value is old or value == old:
                continue
            kind = self.flow.steps[name].kind if name in self.flow.steps else None
            if isinstance(value, list) and kind == "story":
                grew = len(value) > len(old or ())
                chars = sum(len(part) for part in value if isinstance(part, str))
                if grew and (len(value) > limits.story_messages or chars > limits.story_characters):
                    return catalog.text(locale, "service.story_full")
            elif isinstance(value, list) and kind == "media":
                if len(value) > max(limits.evidence_items, len(old or ())):
                    return catalog.text(locale, "service.evidence_full")
            elif isinstance(value, str) and len(value) > limits.story_characters:
                return catalog.text(locale, "service.answer_too_long")
        return None

    def _may_submit(self, conn: Connection, env: Envelope, stamp: datetime) -> bool:
        """Count a new report against the sender's hourly cap; False when the cap is reached."""
        cap = self.config.limits.reports_per_hour
        if cap <= 0:
            return True
        key = self.sender_key(env.channel, env.chat_id)
        return steps.count_submission(conn, key, at=stamp, limit=cap, window=REPORT_WINDOW)

    def _apology(self, draft: Draft | None) -> StepResult:
        kept = draft if draft is not None else Draft()
        step = kept.step
        return StepResult(
            draft=kept, replies=[Outbound(text=catalog.text(kept.locale, "service.sorry"), step=step)]
        )

    def _run_flow(
        self, conn: Connection, draft: Draft | None, env: Envelope, now: datetime, code: Code | None
    ) -> tuple[StepResult, str, Code | None]:
        """Run the pure flow; a fresh reference is offered each time and checked only if used. A step
        that may submit is offered a secret code too (see Codes); the one it used comes back with it."""
        if code is None and draft is not None and draft.step in self.submitting:
            code = self.codes.take()  # made here only when this process did not see it coming
        for _ in range(10):
            reference = new_reference()
            shown = code.shown if code is not None else ""
            result = self.flow.step(draft, env.inbound, self.context(env.channel, now, reference, shown))
            if result.submit is not None and code is None:
                code = self.codes.take()  # submitted from an unexpected step: again, with a code
                continue
            if result.submit is None or not steps.reference_exists(conn, reference):
                return result, reference, code
        raise RuntimeError("could not find an unused reference after 10 tries")

    def _status(
        self,
        conn: Connection,
        env: Envelope,
        chat_key: str,
        reference: str,
        code: str | None,
        stamp: datetime,
    ) -> tuple[StatusInfo | None, bool]:
        """Look a reference up for `status`: (what to show, whether to say "wait" instead).

        Staff messages are shown only in the report's own chat, or with the report's secret code. A
        reference that finds nothing, or a wrong code, is a failure, counted for this chat and for all
        chats; at the limit, look-ups wait (a lockout, audited). The report's own chat is never locked out.
        """
        report = steps.report_status(conn, reference)
        own = (
            report is not None
            and report.chat_key is not None
            and report.channel == env.channel
            and report.chat_key == chat_key
        )
        scope = self.cipher.pseudonym(f"status-lookup:{env.channel}", env.chat_id)
        if not own and steps.locked_out(conn, (scope, steps.GLOBAL_SCOPE), now=stamp):
            log.info("status look-up refused: locked out channel=%s", _named(env))
            return None, True
        shown = own
        if report is not None and not own and code is not None:
            shown = self.cipher.code_matches(report.code_hash, normalise_code(code))
        if report is None or (code is not None and not shown):
            self._lookup_failed(conn, env, scope, stamp)
        if report is None:
            return None, False
        replies = steps.staff_replies(conn, self.cipher, report.id) if shown else []
        submitted = report.submitted_at.astimezone(self.zone).date()
        info = StatusInfo(
            reference=report.reference,
            status=report.status,
            submitted_on=submitted,
            replies=tuple(replies),
            withheld=not shown,
        )
        return info, False

    def _lookup_failed(self, conn: Connection, env: Envelope, scope: str, stamp: datetime) -> None:
        limits_ = self.config.limits
        lockout = timedelta(minutes=limits_.status_lockout_minutes)
        for name, key, limit in (
            ("chat", scope, limits_.status_failures_per_chat),
            ("all", steps.GLOBAL_SCOPE, limits_.status_failures_total),
        ):
            if steps.count_lookup_failure(
                conn, key, now=stamp, limit=limit, window=LOOKUP_WINDOW, lockout=lockout
            ):
                log.warning("status look-ups locked out scope=%s channel=%s", name, _named(env))
                steps.audit(
                    conn,
                    action="status-lockout",
                    detail=f"scope={name} channel={_named(env)} minutes={limits_.status_lockout_minutes}",
                    count=limit,
                    at=stamp,
                )


# Lone UTF-16 surrogates (JSON's "\ud800", which json.loads keeps) cannot be encoded, so cannot be
# encrypted or stored: left in, they would fail the step and lose the message.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _fix(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def storable(env: Envelope) -> Envelope:
    """The envelope with every lone surrogate in what came from outside replaced by U+FFFD."""
    inb = env.inbound
    loc = inb.location
    outside = [env.chat_id, env.delivery_id, env.message_ref, env.button_step, env.button_ref]
    outside += [inb.text, inb.option, inb.unsupported, loc.text if loc is not None else None]
    outside += [part for m in inb.media for part in (m.ref, m.content_type)]
    if not any(value and _SURROGATE.search(value) for value in outside):
        return env
    media = tuple(Media(_fix(m.ref), m.content_type and _fix(m.content_type)) for m in inb.media)
    if loc is not None and loc.text:
        loc = replace(loc, text=_fix(loc.text))
    inbound = replace(
        inb,
        text=_fix(inb.text),
        option=inb.option and _fix(inb.option),
        unsupported=inb.unsupported and _fix(inb.unsupported),
        location=loc,
        media=media,
    )
    return replace(
        env,
        chat_id=_fix(env.chat_id),
        inbound=inbound,
        delivery_id=env.delivery_id and _fix(env.delivery_id),
        message_ref=env.message_ref and _fix(env.message_ref),
        button_step=env.button_step and _fix(env.button_step),
        button_ref=env.button_ref and _fix(env.button_ref),
    )


# Words that always reach the flow, even past the volume limit: leaving fast and getting help now.
_ALWAYS = frozenset({"exit", "stop", "delete", "999"})


def _always_answered(inbound: Inbound) -> bool:
    return bool(inbound.text) and words.command(inbound.text) in _ALWAYS


def describe_kept(inbound: Inbound) -> str:
    """The transcript line of a message kept but not run through the flow: as `describe_inbound`, with
    the references of any photos or files (the flow did not take them into the draft)."""
    line = describe_inbound(inbound)
    refs = " ".join(f"[file: {m.ref}]" for m in inbound.media)
    return f"{line} {refs}" if refs else line


def _named(env: Envelope) -> str:
    """The channel as it may be logged (one of the known channels, else "other")."""
    return known(env.channel, CHANNELS)


def _stale_press(env: Envelope, draft: Draft | None) -> bool:
    """A button from a keyboard of another step than the one the conversation is at."""
    if env.button_step is None or env.inbound.option is None:
        return False
    return draft is None or draft.step != env.button_step


def _outbox_form(message: Outbound, env: Envelope) -> dict[str, Any]:
    """The stored message; a toggle carries the id of the message to edit (channels that can, do)."""
    data = to_dict(message)
    if message.update and env.button_ref is not None:
        data["edit_ref"] = env.button_ref
    return data


def _in_chat(fields: ReportFields | None) -> bool:
    return bool(
        fields is not None and not fields.anonymous and fields.contact is not None and fields.contact.in_chat
    )


def _clear_fields(f: ReportFields) -> dict[str, Any]:
    """Codes kept in clear for counting: nothing here identifies anyone or repeats what they typed."""
    return {
        "role": f.role,
        "incident_types": list(f.incident_types),
        "motivations": list(f.motivations),
        "occurred_on": f.occurred_on,
        "repeat": f.repeat,
        "support_requested": f.support_requested,
        "anonymous": f.anonymous,
        "share_with": list(f.share_with),
    }


def _sealed_fields(f: ReportFields) -> dict[str, Any]:
    """Everything a person typed or that could identify them: stored encrypted."""
    contact = None
    if f.contact is not None and not f.anonymous:
        c = f.contact
        contact = {
            "name": c.name,
            "phone": c.phone,
            "email": c.email,
            "in_chat": c.in_chat,
            "safe_times": c.safe_times,
            "notes": c.notes,
        }
    return {
        "someone_else_knows": f.someone_else_knows,
        "description": f.description,
        "occurred_at_text": f.occurred_at_text,
        "location": {"text": f.location_text, "latitude": f.latitude, "longitude": f.longitude},
        "offender": f.offender,
        "injuries": f.injuries,
        "witnesses": f.witnesses,
        "evidence": [{"ref": m.ref, "content_type": m.content_type} for m in f.evidence],
        "contact": contact,
    }
