"""The one step: the only path by which an inbound message changes anything.

    authenticate (the adapter did) -> record the delivery id -> open (lock) the conversation
    -> run the flow -> ONE storage write (draft, transcript, outbox, report) -> commit -> deliver the outbox

A channel whose delivery takes replies straight after the commit (Telegram: bot.delivery.Delivery, in
`handoffs`) gets them claimed in the step's own transaction, when nothing of the chat waits before
them, and handed over once it commits: no second commit before the send. A crash after the commit
loses nothing: the claim's lease runs out and any worker sends them (at least once, as before).

Recording the delivery id and its effects happen in one transaction: a repeat delivery is a no-op, and
a crash at any point loses nothing that was acknowledged. The step reaches storage only through
storage.interface.StepStore, which decides what is stored encrypted. Logs carry question names and
references, never what people typed, never a chat id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot import limits
from bot.app.envelope import Envelope, Outcome, describe_kept, named, storable
from bot.app.evidence import dropped_files, evidence_refs, kept_fetches
from bot.app.sizes import too_big
from bot.app.status import LookUp, StatusLookup, earlier_report
from bot.channels import can_clear_chat, rate_limited
from bot.config import Config
from bot.render import as_text, describe_inbound, to_dict
from flows import catalog, languages, references, words
from flows.engine import Flow
from flows.references import new_reference
from flows.report import REPORT_FLOW
from flows.types import Draft, FlowContext, Inbound, Outbound, ReportFields, StepResult
from storage.crypto import Cipher, new_code, normalise_code
from storage.db import Database, WriteGate
from storage.evidence import EvidenceStore
from storage.interface import Chat, NewReport, ReplyClaim, StaffAnswer, StepStore, StepWrite
from storage.interface import TranscriptLine as Line
from storage.outbox import Pending
from storage.store import Store
from storage.writes import SqlStepStore

log = logging.getLogger("reportbot.service")


class Handoff(Protocol):
    """A channel's delivery that takes a step's replies after its commit (bot.delivery.Delivery)."""

    per_chat: float  # seconds between two messages to one chat (the platform's per-chat pace)

    @property
    def lease(self) -> timedelta:
        """How long a claim holds before any worker may take the message."""
        ...

    def reserve(self) -> bool: ...

    def hand(self, pending: Sequence[Pending]) -> None: ...


class _Dropped(Exception):
    """A message past what the volume limit keeps, after the person was told: roll back, store nothing.
    Never leaves this module (the step answers it with a limited Outcome)."""


REPORT_WINDOW = timedelta(hours=1)


class ReportService:
    """Joins flows and storage. One instance per process; safe to call concurrently."""

    def __init__(self, config: Config, db: Database, flow: Flow = REPORT_FLOW) -> None:
        self.config = config
        self.db = db
        self.flow = flow
        self.cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
        self.store = Store(self.cipher)  # outside the step: staff, quick exit (and tests seeding rows)
        # Files a draft let go (stop, delete, exit) are deleted after the step's commit.
        self.evidence = EvidenceStore(config.data_path, config.security.encryption_keys)
        self.storage: StepStore = SqlStepStore(self.cipher)  # the step's one way into storage
        self.settings = config.flow_settings()
        self.zone = ZoneInfo(config.service.timezone)
        self.status = StatusLookup(self.storage, self.cipher, config.limits, self.zone)
        self.kinds = {name: question.kind for name, question in flow.steps.items()}
        self.handoffs: dict[str, Handoff] = {}  # channel -> the delivery that sends straight after a commit
        # SQLite takes one writer at a time (BEGIN IMMEDIATE). Steps and outbox writes run together on
        # the database's one writer thread, group-committed (Database.run_write), under the gate's shared
        # side; the writers that still use the async engine in this process (quick exit, staff in the
        # console) take it alone, instead of meeting the writer thread in SQLite's busy-wait sleeps.
        self.sqlite_writer = WriteGate() if db.is_sqlite else None
        lim = config.limits
        self.turns = limits.ChatTurns()
        self.pace = limits.ChatPace(lim.messages_per_second)
        self.volume = limits.ChatVolume(lim.window_messages, lim.window_kept, lim.window_minutes)
        # Questions from which the flow can submit a report (they lead to its last question): only a step
        # at one of them takes a secret code.
        self.submitting = frozenset(
            str(edge["source"]) for edge in flow.transitions if edge["dest"] == flow.final
        )

    def chat_key(self, channel: str, chat_id: str) -> str:
        """The pseudonym under which a chat is stored."""
        return self.cipher.pseudonym(channel, chat_id)

    def context(
        self, channel: str, now: datetime, reference: str, passphrase: str = "", said: tuple[str, ...] = ()
    ) -> FlowContext:
        """What the flow needs to know about this moment and this deployment (`said`: the languages the
        platform says the person uses)."""
        return FlowContext(
            now=now,
            today=now.astimezone(self.zone).date(),
            reference=reference,
            passphrase=passphrase,
            channel=channel,
            can_clear_chat=can_clear_chat(channel),
            settings=self.settings,
            language=languages.pick(said, self.settings.languages),
        )

    async def handle(self, env: Envelope) -> Outcome:
        """Run one step for one inbound message, durably. Returns what to show the person.

        One chat's messages run one at a time, in the order they arrived here; a chat sending faster
        than `limits.messages_per_second` waits its turn. Nothing is refused for speed.
        """
        env = storable(env)
        chat_key = self.chat_key(env.channel, env.chat_id)
        async with self.turns.turn(chat_key):
            if rate_limited(env.channel):
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

    async def language_of(self, env: Envelope) -> str:
        """The language to answer this chat in without running a step (a Telegram note): its
        conversation's, else the one the platform says the person uses (if enabled), else English."""
        chat_key = self.chat_key(env.channel, env.chat_id)
        stored = await self.db.run_write(
            partial(self.storage.chat_locale, channel=env.channel, chat_key=chat_key)
        )
        if stored in self.settings.languages:
            return stored
        return languages.pick(env.languages, self.settings.languages) or catalog.DEFAULT_LOCALE

    def sender_key(self, channel: str, chat_id: str) -> str:
        """The pseudonym under which reports are counted: not the chat key, so nothing joins on it."""
        return self.cipher.pseudonym(f"report-count:{channel}", chat_id)

    async def _handle(self, env: Envelope, chat_key: str) -> Outcome:
        outcome = await self._run_step(env, chat_key)
        if outcome.dropped:  # after the commit: a step rolled back still names its files
            gone = await asyncio.to_thread(self.evidence.forget, outcome.dropped)
            log.info("evidence of an ended draft deleted files=%d", gone)
        return outcome

    async def _run_step(self, env: Envelope, chat_key: str) -> Outcome:
        """The step in a group commit; its replies handed to the channel's delivery after the commit
        when it takes them (see the module's notes)."""
        handoff = self.handoffs.get(env.channel)
        if handoff is None or not handoff.reserve():
            return await self.db.run_write(partial(self._step, env, chat_key, None))
        try:
            outcome = await self.db.run_write(partial(self._step, env, chat_key, _claim(handoff)))
        except BaseException:
            handoff.hand(())  # nothing was claimed: the transaction rolled back
            raise
        handoff.hand(outcome.claimed)
        return outcome

    def _step(self, env: Envelope, chat_key: str, claim: ReplyClaim | None, conn: Connection) -> Outcome:
        """The step's work inside one transaction on a sync connection (given to Database.run_write):
        check the receipt and the volume, open the conversation, run the flow, then ONE write."""
        now = env.received_at or datetime.now(UTC)
        stamp = now.astimezone(UTC)
        early = self._admit(conn, env, chat_key, stamp)
        if early is not None:
            return early
        conv = self.storage.open_conversation(conn, env.channel, chat_key)
        if conv.draft is None:
            answered = self._answer_to_staff(conn, env, chat_key, stamp)
            if answered is not None:
                return answered
        env = _unstale(env, conv.draft)
        env, fetches = evidence_refs(env)
        result, reference, code, limited = self._decide(conn, env, conv.draft, now)
        self._look_ups(conn, env, chat_key, result, now)
        result.replies = [languages.directed(m, result.draft.locale) for m in result.replies]
        write = self._write(env, chat_key, conv.id, result, reference, code, stamp)
        dropped = dropped_files(conv.draft, result)
        write = replace(write, fetches=kept_fetches(fetches, result), dropped=dropped)
        ids = self.storage.record_step(conn, write)
        _log_step(env, result, reference, len(ids))
        ended = write.ended
        return Outcome(
            replies=result.replies,
            outbox_ids=ids,
            reference=reference if result.submit is not None else None,
            step=None if ended else result.draft.step,
            limited=limited,
            claimed=self._claimed(conn, write, ids, claim),
            dropped=dropped,
            locale=result.draft.locale,
        )

    def _claimed(
        self, conn: Connection, write: StepWrite, ids: list[int], claim: ReplyClaim | None
    ) -> list[Pending]:
        """The step's replies, claimed in its transaction for the delivery that sends them after the
        commit; none when they must wait their turn in the outbox (or a download waits with them)."""
        chat = write.chat
        if claim is None or not ids or write.fetches:
            return []
        if not self.storage.claim_fresh(conn, ids, chat, claim):
            return []
        conversation_id = None if write.ended else write.conversation_id
        return [
            Pending(
                msg_id, chat.channel, chat.chat_key, chat.address, dict(message), 1, conversation_id, None
            )
            for msg_id, message in zip(ids, write.messages, strict=True)
        ]

    def _look_ups(
        self, conn: Connection, env: Envelope, chat_key: str, result: StepResult, now: datetime
    ) -> None:
        """What the flow asked the service to look up: `status REF [CODE]`, `add REF [CODE]`."""
        stamp = now.astimezone(UTC)
        if result.status_query is not None:
            info, wait = self.status.look_up(
                conn, LookUp(env, chat_key, result.status_query, result.status_code, stamp)
            )
            context = self.context(env.channel, now, "")
            result.replies.extend(self.flow.status_reply(result.draft, info, context, wait=wait))
        if result.link_query is not None:
            found, wait = self.status.may_add(
                conn, LookUp(env, chat_key, result.link_query, result.link_code, stamp)
            )
            earlier = earlier_report(found, self.storage.report_answers(conn, found)) if found else None
            context = self.context(env.channel, now, "")
            result.draft, replies = self.flow.link_reply(
                result.draft, found, context, wait=wait, earlier=earlier, asked=result.link_query
            )
            result.replies.extend(replies)

    def _answer_to_staff(
        self, conn: Connection, env: Envelope, chat_key: str, stamp: datetime
    ) -> Outcome | None:
        """After a staff reply, what the reporter writes (within `service.reply_window_hours`, with no
        report in progress) joins THAT report's transcript, with a short thank-you: "thank you" after a
        staff reply is not the start of a new report. Commands (start, status, help, exit...) are not."""
        hours = self.config.service.reply_window_hours
        if hours <= 0 or not _talks_back(env.inbound):
            return None
        chat = Chat(channel=env.channel, chat_key=chat_key, address=env.chat_id)
        found = self.storage.staff_thread(conn, chat, since=stamp - timedelta(hours=hours))
        if found is None:
            return None
        report_id, reference, locale = found
        thanks = Outbound(catalog.text(locale, "service.reply_received", reference=reference), step="staff")
        thanks = languages.directed(thanks, locale)
        lines = [
            Line("in", "person", describe_kept(env.inbound), stamp),
            Line("out", "bot", thanks.text, stamp),
        ]
        answer = StaffAnswer(report_id, chat, at=stamp, lines=lines, messages=[to_dict(thanks)])
        ids = self.storage.answer_staff(conn, answer)
        log.info("answer to staff kept reference=%s channel=%s", reference, named(env))
        return Outcome(replies=[thanks], outbox_ids=ids, locale=locale)

    def _admit(self, conn: Connection, env: Envelope, chat_key: str, stamp: datetime) -> Outcome | None:
        """What to answer before the flow, if anything: a repeat delivery, or a chat past its volume."""
        if env.delivery_id is not None and not self.storage.record_receipt(
            conn, env.channel, env.delivery_id
        ):
            log.info("repeat delivery ignored channel=%s", named(env))
            return Outcome(duplicate=True)
        if not rate_limited(env.channel):
            return None
        volume = self.volume.take(chat_key)
        if volume is limits.Volume.ANSWER or _always_answered(env.inbound):
            return None
        return self._over_volume(conn, env, chat_key, volume, stamp)

    def _decide(
        self, conn: Connection, env: Envelope, saved: dict[str, Any] | None, now: datetime
    ) -> tuple[StepResult, str, str | None, bool]:
        """Run the flow on the saved draft, then the limits on what it decided: (result, the reference
        it may use, the secret code it took, whether a limit answered instead)."""
        draft = Draft.from_json(saved) if saved is not None else None
        code = None
        try:
            result, reference, code = self._run_flow(conn, draft, env, now)
        except Exception as exc:
            # A bug must not block this chat for ever (webhooks retry a failing update): keep the
            # draft as it was, record the message, and say sorry. Only the error class is logged.
            log.error("flow failed step=%s error=%s", draft.step if draft else None, type(exc).__name__)
            return self._apology(draft), "", code, False
        if result.submit is not None:
            return self._capped(conn, env, saved, result, reference, code, now)
        full = (
            None
            if draft is None or result.erase
            else too_big(self.config.limits, self.kinds, draft, result.draft)
        )
        if full is None:
            return result, reference, code, False
        # Keep the draft as it was: the message is in the transcript, not in the answer.
        assert draft is not None
        kept = draft.copy()
        kept.last_active = result.draft.last_active
        log.info("draft size limit reached channel=%s step=%s", named(env), draft.step)
        return StepResult(draft=kept, replies=[Outbound(full, step="limits")]), reference, code, True

    def _capped(
        self,
        conn: Connection,
        env: Envelope,
        saved: dict[str, Any] | None,
        result: StepResult,
        reference: str,
        code: str | None,
        now: datetime,
    ) -> tuple[StepResult, str, str | None, bool]:
        """A submission, counted against the sender's hourly cap; over it, the draft as it was and a calm
        word instead (nothing submitted)."""
        if self._may_submit(conn, env, now.astimezone(UTC)):
            return result, reference, code, False
        assert saved is not None
        kept = Draft.from_json(saved)
        calm = Outbound(limits.words("too_many_reports", kept.locale), step="limits")
        log.info("report cap reached channel=%s", named(env))
        return StepResult(draft=kept, replies=[calm]), reference, code, True

    def _write(
        self,
        env: Envelope,
        chat_key: str,
        conversation_id: int,
        result: StepResult,
        reference: str,
        code: str | None,
        stamp: datetime,
    ) -> StepWrite:
        """What the step writes. No report is touched for a message in a conversation: a contactable
        report stamped with each later message would carry the times of an anonymous report's
        conversation (see storage.followup.last_inbound)."""
        report = None
        if result.submit is not None:
            report = NewReport(
                reference=reference,
                answers=asdict(result.submit),
                in_chat=_in_chat(result.submit),
                code_hash=self.cipher.code_hash(normalise_code(code)) if code is not None else None,
            )
        ended = result.submit is not None or result.erase
        lines = [
            Line("in", "person", describe_inbound(env.inbound), stamp),
            *(Line("out", "bot", as_text(m), stamp) for m in result.replies),
        ]
        return StepWrite(
            chat=Chat(env.channel, chat_key, env.chat_id),
            conversation_id=conversation_id,
            at=stamp,
            message_ref=env.message_ref,
            draft=None if ended else result.draft.to_json(),
            ended=ended,
            report=report,
            lines=lines,
            messages=[_outbox_form(m, env, result.draft.locale) for m in result.replies],
        )

    def _over_volume(
        self, conn: Connection, env: Envelope, chat_key: str, volume: limits.Volume, stamp: datetime
    ) -> Outcome:
        """A message past the chat's volume limit: kept in the transcript but not run through the flow,
        the person told once; past what is kept, told once more, then acknowledged and not stored."""
        if volume is limits.Volume.DROP:
            raise _Dropped  # rolls back the receipt too: a retry of it is treated the same way
        chat = Chat(env.channel, chat_key, env.chat_id)
        minutes = self.volume.minutes_left(chat_key)
        if volume is limits.Volume.FULL:
            log.info("chat past what the volume limit keeps channel=%s", named(env))
            locale = self.storage.chat_locale(conn, env.channel, chat_key) or catalog.DEFAULT_LOCALE
            calm = Outbound(limits.words("nothing_more_kept", locale, minutes=minutes), step="limits")
            calm = languages.directed(calm, locale)
            # The messages dropped after this one keep no id: quick exit must not call the chat cleared.
            write = StepWrite(
                chat=chat,
                conversation_id=None,
                at=stamp,
                message_ref=env.message_ref,
                messages=[to_dict(calm)],
                ids_dropped=True,
            )
            return Outcome(replies=[calm], outbox_ids=self.storage.record_step(conn, write), limited=True)
        conv = self.storage.open_conversation(conn, env.channel, chat_key)
        replies: list[Outbound] = []
        if volume is limits.Volume.TELL:
            log.info("chat over its volume limit channel=%s", named(env))
            locale = str((conv.draft or {}).get("locale") or catalog.DEFAULT_LOCALE)
            calm = Outbound(limits.words("too_many_messages", locale, minutes=minutes), step="limits")
            replies.append(languages.directed(calm, locale))
        write = StepWrite(
            chat=chat,
            conversation_id=conv.id,
            at=stamp,
            message_ref=env.message_ref,
            lines=[
                Line("in", "person", describe_kept(env.inbound), stamp),
                *(Line("out", "bot", as_text(m), stamp) for m in replies),
            ],
            messages=[to_dict(m) for m in replies],
        )
        return Outcome(replies=replies, outbox_ids=self.storage.record_step(conn, write), limited=True)

    def _may_submit(self, conn: Connection, env: Envelope, stamp: datetime) -> bool:
        """Count a new report against the sender's hourly cap; False when the cap is reached."""
        cap = self.config.limits.reports_per_hour
        if cap <= 0:
            return True
        key = self.sender_key(env.channel, env.chat_id)
        return self.storage.count_submission(conn, key, at=stamp, limit=cap, window=REPORT_WINDOW)

    def _apology(self, draft: Draft | None) -> StepResult:
        kept = draft if draft is not None else Draft()
        step = kept.step
        return StepResult(
            draft=kept, replies=[Outbound(text=catalog.text(kept.locale, "service.sorry"), step=step)]
        )

    def _run_flow(
        self, conn: Connection, draft: Draft | None, env: Envelope, now: datetime
    ) -> tuple[StepResult, str, str | None]:
        """Run the pure flow; a fresh reference is offered each time and checked only if used. A step
        that may submit is offered a fresh secret code too (hashed only if a report is sent); the flow
        shows it beside the reference. Returns the result, the reference and the code it may have used."""
        code = new_code() if draft is not None and draft.step in self.submitting else None
        for _ in range(10):
            reference = new_reference()
            context = self.context(env.channel, now, reference, code or "", env.languages)
            result = self.flow.step(draft, env.inbound, context)
            if result.submit is not None and code is None:
                code = new_code()  # submitted from an unexpected step: again, with a code
                continue
            if result.submit is None or not self.storage.reference_exists(conn, reference):
                return result, reference, code
        raise RuntimeError("could not find an unused reference after 10 tries")


# Words that always reach the flow, even past the volume limit: leaving fast and getting help now.
_ALWAYS = frozenset({"exit", "stop", "delete", "999"})


def _claim(handoff: Handoff) -> ReplyClaim:
    now = datetime.now(UTC)
    quiet = now - timedelta(seconds=handoff.per_chat) if handoff.per_chat > 0 else None
    return ReplyClaim(until=now + handoff.lease, quiet_since=quiet)


def _talks_back(inbound: Inbound) -> bool:
    """Words or files that answer staff; not a button, a location, an edit or a word that works anywhere."""
    text = inbound.text or ""
    if inbound.option is not None or inbound.location is not None or inbound.edited:
        return False
    if not (text.strip() or inbound.media):
        return False
    return words.command_in_any_language(text) is None and not references.status_request(text)[0]


def _always_answered(inbound: Inbound) -> bool:
    return bool(inbound.text) and words.command_in_any_language(inbound.text) in _ALWAYS


def _unstale(env: Envelope, saved: dict[str, Any] | None) -> Envelope:
    """A button from a keyboard of another question than the one the conversation is at gets a key no
    question has, so that the flow re-asks the current one."""
    if env.button_step is None or env.inbound.option is None:
        return env
    if saved is not None and Draft.from_json(saved).step == env.button_step:
        return env
    return replace(env, inbound=replace(env.inbound, option=f"{env.button_step}:{env.inbound.option}"))


def _outbox_form(message: Outbound, env: Envelope, locale: str) -> dict[str, Any]:
    """The stored message; a toggle carries the id of the message to edit (channels that can, do). One
    a channel adds words to (a "share location" button, how to clear the chat) carries the language."""
    data = to_dict(message)
    if message.update and env.button_ref is not None:
        data["edit_ref"] = env.button_ref
    if message.request_location or message.clear_chat:
        data["locale"] = locale
    return data


def _in_chat(fields: ReportFields | None) -> bool:
    return bool(
        fields is not None and not fields.anonymous and fields.contact is not None and fields.contact.in_chat
    )


def _log_step(env: Envelope, result: StepResult, reference: str, replies: int) -> None:
    if result.submit is not None:
        log.info("report submitted reference=%s channel=%s", reference, named(env))
    elif result.erase:
        log.info("draft erased channel=%s", named(env))
    if log.isEnabledFor(logging.DEBUG):  # one line a message is for debugging, not for every day
        ended = result.submit is not None or result.erase
        log.debug(
            "step channel=%s now=%s replies=%d", named(env), None if ended else result.draft.step, replies
        )
