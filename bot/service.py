"""The one step: the only path by which an inbound message changes anything.

    authenticate (the adapter did) -> record the delivery id -> lock the conversation -> run the flow
    -> save draft, transcript, outbox and report -> commit -> deliver the outbox

Recording the delivery id and its effects happen in one transaction: a repeat delivery is a no-op, and
a crash at any point loses nothing that was acknowledged. Logs carry step names and references, never
what people typed, never a chat id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot import limits
from bot.config import Config
from bot.render import as_text, describe_inbound, to_dict
from flows import catalog
from flows.engine import Flow
from flows.references import new_reference
from flows.report import REPORT_FLOW
from flows.types import Draft, FlowContext, Inbound, Outbound, ReportFields, StatusInfo, StepResult
from storage import steps
from storage.crypto import Cipher
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
    """A message over the chat's rate after it was told to slow down: roll back, store nothing."""


REPORT_WINDOW = timedelta(hours=1)


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
        self.rate = limits.ChatRateLimit(config.limits.messages_per_second)

    def chat_key(self, channel: str, chat_id: str) -> str:
        """The pseudonym under which a chat is stored."""
        return self.cipher.pseudonym(channel, chat_id)

    def context(self, channel: str, now: datetime, reference: str) -> FlowContext:
        """What the flow needs to know about this moment and this deployment."""
        return FlowContext(
            now=now,
            today=now.astimezone(self.zone).date(),
            reference=reference,
            channel=channel,
            can_clear_chat=CAN_CLEAR_CHAT.get(channel, False),
            settings=self.settings,
        )

    async def handle(self, env: Envelope) -> Outcome:
        """Run one step for one inbound message, durably. Returns what to show the person."""
        try:
            if self.sqlite_writer is None:
                return await self._handle(env)
            async with self.sqlite_writer.shared():
                return await self._handle(env)
        except _Dropped:
            return Outcome(limited=True)

    def sender_key(self, channel: str, chat_id: str) -> str:
        """The pseudonym under which reports are counted: not the chat key, so nothing joins on it."""
        return self.cipher.pseudonym(f"report-count:{channel}", chat_id)

    async def _handle(self, env: Envelope) -> Outcome:
        return await self.db.run_step(partial(self._step, env))

    def _step(self, env: Envelope, conn: Connection) -> Outcome:
        """The step's work inside one transaction on a sync connection (see storage.steps)."""
        now = env.received_at or datetime.now(UTC)
        stamp = now.astimezone(UTC)
        cipher = self.cipher
        chat_key = self.chat_key(env.channel, env.chat_id)
        if env.delivery_id is not None and not steps.record_receipt(
            conn, cipher, env.channel, env.delivery_id
        ):
            log.info("repeat delivery ignored channel=%s", env.channel)
            return Outcome(duplicate=True)
        verdict = self.rate.take(chat_key) if env.channel not in UNLIMITED else "ok"
        if verdict == "drop":
            raise _Dropped  # rolls back the receipt too: nothing of a flood is stored
        if verdict == "tell":
            log.info("chat over its message rate channel=%s", env.channel)
            calm = Outbound(limits.words("slow_down"), step="limits")
            ids = steps.enqueue(
                conn,
                cipher,
                channel=env.channel,
                chat_key=chat_key,
                address=env.chat_id,
                messages=[to_dict(calm)],
                at=stamp,
            )
            return Outcome(replies=[calm], outbox_ids=ids, limited=True)
        conv = steps.lock_conversation(conn, env.channel, chat_key)
        saved = self._read_draft(conv.draft_enc)
        draft = Draft.from_json(saved) if saved is not None else None
        if env.message_ref is not None:
            steps.remember_message(conn, cipher, env.channel, chat_key, env.message_ref, at=stamp)
        if _stale_press(env, draft):
            # An old keyboard: give the flow a key no question has, so it re-asks the current one.
            env = replace(env, inbound=replace(env.inbound, option=f"{env.button_step}:{env.inbound.option}"))
        try:
            result, fresh_reference = self._run_flow(conn, draft, env, now)
        except Exception as exc:
            # A bug must not block this chat for ever (webhooks retry a failing update): keep the
            # draft as it was, record the message, and say sorry. Only the error class is logged.
            log.error("flow failed step=%s error=%s", draft.step if draft else None, type(exc).__name__)
            result, fresh_reference = self._apology(draft), ""
        limited = False
        if result.submit is not None and not self._may_submit(conn, env, stamp):
            # Over the hourly cap: keep the draft as it was, say so calmly, submit nothing.
            assert saved is not None
            calm = Outbound(limits.words("too_many_reports"), step="limits")
            result = StepResult(draft=Draft.from_json(saved), replies=[calm])
            limited = True
            log.info("report cap reached channel=%s", env.channel)
        if result.status_query is not None:
            info = self._status(conn, result.status_query)
            result.replies.extend(
                self.flow.status_reply(result.draft, info, self.context(env.channel, now, ""))
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
            )
            steps.delete_conversation(conn, cipher, conv.id)
            conversation_id = None
            if unlinked:
                # An anonymous report keeps no link to the chat: what the chat was sent goes too, and
                # this step's replies (no conversation, no report) are deleted once delivered.
                steps.forget_chat(conn, env.channel, chat_key)
            log.info("report submitted reference=%s channel=%s", reference, env.channel)
        elif result.erase:
            steps.delete_conversation(conn, cipher, conv.id)
            conversation_id = None
            log.info("draft erased channel=%s", env.channel)
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
                env.channel,
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

    def _read_draft(self, token: str | None) -> dict[str, Any] | None:
        """The decrypted draft, or None for a conversation that has not started."""
        if token is None:
            return None
        value = self.cipher.decrypt_json(token)
        return value if isinstance(value, dict) else None

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
        self, conn: Connection, draft: Draft | None, env: Envelope, now: datetime
    ) -> tuple[StepResult, str]:
        """Run the pure flow; a fresh reference is offered each time and checked only if used."""
        for _ in range(10):
            reference = new_reference()
            result = self.flow.step(draft, env.inbound, self.context(env.channel, now, reference))
            if result.submit is None or not steps.reference_exists(conn, reference):
                return result, reference
        raise RuntimeError("could not find an unused reference after 10 tries")

    def _status(self, conn: Connection, reference: str) -> StatusInfo | None:
        report = steps.report_status(conn, reference)
        if report is None:
            return None
        replies = steps.staff_replies(conn, self.cipher, report.id)
        submitted = report.submitted_at.astimezone(self.zone).date()
        return StatusInfo(
            reference=report.reference, status=report.status, submitted_on=submitted, replies=tuple(replies)
        )


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
