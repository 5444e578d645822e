"""`status <reference>`: what the step may tell about a report, with the secret code and the lockout."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from bot.app.envelope import Envelope, named
from bot.config import LimitsConfig
from flows.types import ContactDetails, EarlierReport, Offender, StatusInfo
from storage.crypto import Cipher, normalise_code
from storage.interface import GLOBAL_SCOPE, Lockout, ReportStatus, StepStore

log = logging.getLogger("reportbot.service")

LOOKUP_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class LookUp:
    """One `status` or `add` look-up: who asks (the chat, pseudonymous), for which reference, with which
    secret code (None: none given), at what time (UTC)."""

    env: Envelope
    chat_key: str
    reference: str
    code: str | None
    stamp: datetime


class StatusLookup:
    """Looks references up inside the step's transaction.

    Staff messages are shown only in the report's own chat, or with the report's secret code. A
    reference that finds nothing, or a wrong code, is a failure, counted for this chat and for all
    chats; at the limit, look-ups wait (a lockout, audited). The report's own chat is never locked out.
    """

    def __init__(self, storage: StepStore, cipher: Cipher, limits: LimitsConfig, zone: ZoneInfo) -> None:
        self.storage = storage
        self.cipher = cipher
        self.limits = limits
        self.zone = zone

    def look_up(self, conn: Connection, ask: LookUp) -> tuple[StatusInfo | None, bool]:
        """`status <reference> [code]`: (what to show, whether to say "wait" instead)."""
        gate = self._gate(conn, ask, "status look-up")
        if gate is None:
            return None, True
        report, own, scope = gate
        shown = own or self._code_opens(report, ask.code)
        if report is None or (ask.code is not None and not shown):
            self._failed(conn, ask.env, scope, ask.stamp)
        if report is None:
            return None, False
        replies = self.storage.staff_replies(conn, report.id) if shown else []
        info = StatusInfo(
            reference=report.reference,
            status=report.status,
            submitted_on=report.submitted_at.astimezone(self.zone).date(),
            replies=tuple(replies),
            withheld=not shown,
        )
        return info, False

    def may_add(self, conn: Connection, ask: LookUp) -> tuple[str | None, bool]:
        """`add <reference> [code]`: (the reference a new report may join, whether to say "wait").

        Only from the report's own chat, or with its secret code. Anything else (no such report, no code,
        a wrong code) is one failed look-up under the same lockout, and tells nothing about the report.
        An empty reference is "my last report" ("it's the same man again"): this chat's newest report that
        asked for contact in the chat (an anonymous report keeps no chat, so it is never found this way)."""
        if not ask.reference:
            return self.storage.last_report_in_chat(conn, ask.env.channel, ask.chat_key), False
        gate = self._gate(conn, ask, "add")
        if gate is None:
            return None, True
        report, own, scope = gate
        if report is None or not (own or self._code_opens(report, ask.code)):
            self._failed(conn, ask.env, scope, ask.stamp)
            return None, False
        return report.reference, False

    def _gate(self, conn: Connection, ask: LookUp, what: str) -> tuple[ReportStatus | None, bool, str] | None:
        """The report asked for, whether the asking chat is its own, and this chat's lockout scope; None
        when look-ups from here are locked out (never for the report's own chat)."""
        report = self.storage.report_status(conn, ask.reference)
        own = _own(report, ask.env, ask.chat_key)
        scope = self.cipher.pseudonym(f"status-lookup:{ask.env.channel}", ask.env.chat_id)
        if not own and self.storage.locked_out(conn, (scope, GLOBAL_SCOPE), now=ask.stamp):
            log.info("%s refused: locked out channel=%s", what, named(ask.env))
            return None
        return report, own, scope

    def _code_opens(self, report: ReportStatus | None, code: str | None) -> bool:
        if report is None or code is None:
            return False
        return self.cipher.code_matches(report.code_hash, normalise_code(code))

    def _failed(self, conn: Connection, env: Envelope, scope: str, stamp: datetime) -> None:
        limits = self.limits
        lasts = timedelta(minutes=limits.status_lockout_minutes)
        for name, key, failures in (
            ("chat", scope, limits.status_failures_per_chat),
            ("all", GLOBAL_SCOPE, limits.status_failures_total),
        ):
            if self.storage.count_lookup_failure(
                conn, key, Lockout(failures, LOOKUP_WINDOW, lasts), now=stamp
            ):
                log.warning("status look-ups locked out scope=%s channel=%s", name, named(env))
                self.storage.audit(
                    conn,
                    action="status-lockout",
                    detail=f"scope={name} channel={named(env)} minutes={limits.status_lockout_minutes}",
                    count=failures,
                    at=stamp,
                )


def earlier_report(reference: str, answers: Mapping[str, Any] | None) -> EarlierReport | None:
    """The stored answers of a report (storage's `report_answers`) in the shape the flow reuses."""
    if answers is None:
        return None
    offender = answers.get("offender")
    contact = answers.get("contact") if not answers.get("anonymous", True) else None
    return EarlierReport(
        reference=reference,
        role=_str(answers.get("role")),
        organisation=_str(answers.get("organisation")),
        someone_else_knows=_str(answers.get("someone_else_knows")),
        offender=Offender(
            description=_str(offender.get("description")),
            known=_str(offender.get("known")),
            recognise=_str(offender.get("recognise")),
        )
        if isinstance(offender, dict)
        else Offender(description=offender)
        if isinstance(offender, str)
        else None,
        contact=ContactDetails(**{k: v for k, v in contact.items() if k in _CONTACT_FIELDS})
        if isinstance(contact, dict)
        else None,
        share_with=tuple(str(p) for p in answers.get("share_with") or ()),
        helper_agreed=_str(_dict(answers.get("helper")).get("agreed")),
        helper_contact=_str(_dict(answers.get("helper")).get("contact")),
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_CONTACT_FIELDS = frozenset(ContactDetails.__slots__)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _own(report: ReportStatus | None, env: Envelope, chat_key: str) -> bool:
    """The look-up comes from the report's own chat (a report that asked for contact there)."""
    if report is None or report.chat_key is None:
        return False
    return report.channel == env.channel and report.chat_key == chat_key
