"""Adversarial privacy checks: what someone holding the database, the logs or an export could learn.

Each test plants something a reporter typed (or an identifier of their chat) and then looks where a
careless operator or an attacker would look: every row, the raw SQLite bytes, captured logs, exports.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config import Config
from bot.service import ReportService
from storage.db import Database
from storage.models import ChatMessage, Conversation, OutboxMessage, Report, TranscriptEntry
from tests.conftest import every_backend
from tests.reporting import ANONYMOUS, IN_CHAT, START, converse, script
from tests.test_maintenance import all_rows, deliver_all


def _utc(value: datetime | None) -> datetime | None:
    from storage.export import aware

    return None if value is None else aware(value)


@every_backend
async def test_an_anonymous_report_shares_no_timestamp_with_the_chat_s_contactable_report(
    db: Database, config: Config
) -> None:
    """A person who once asked to be contacted later reports anonymously from the same chat: nothing
    kept about the chat (its contactable report, its messages) may carry a time of the anonymous one."""
    service = ReportService(config, db)
    first = await converse(service, script(config, IN_CHAT))
    await deliver_all(service)
    later = START + timedelta(days=1)
    second = await converse(service, script(config, ANONYMOUS), start=later)
    await deliver_all(service)
    contactable_ref, anonymous_ref = first[-1].reference, second[-1].reference
    assert contactable_ref and anonymous_ref

    reports = {r.reference: r for r in await all_rows(db, Report)}
    anonymous = reports[anonymous_ref]
    assert anonymous.chat_key is None and anonymous.reply_address_enc is None
    anonymous_times = {_utc(anonymous.submitted_at)} | {
        _utc(t.at) for t in await all_rows(db, TranscriptEntry) if t.report_id == anonymous.id
    }
    span = (min(anonymous_times), max(anonymous_times))  # type: ignore[type-var]

    chat_key = service.chat_key("console", "884422117733")
    linked: list[tuple[str, datetime | None]] = []
    contactable = reports[contactable_ref]
    linked += [
        ("report.submitted_at", contactable.submitted_at),
        ("report.last_inbound_at", contactable.last_inbound_at),
        ("report.status_changed_at", contactable.status_changed_at),
    ]
    for row in await all_rows(db, OutboxMessage):
        if row.chat_key == chat_key:
            linked += [("outbox.created_at", row.created_at), ("outbox.sent_at", row.sent_at)]
    for row in await all_rows(db, ChatMessage):
        if row.chat_key == chat_key:
            linked.append(("chat_message.at", row.at))
    for row in await all_rows(db, Conversation):
        if row.chat_key == chat_key:
            linked += [
                ("conversation.created_at", row.created_at),
                ("conversation.updated_at", row.updated_at),
            ]
    inside = [
        (name, at)
        for name, at in linked
        if at is not None and span[0] <= _utc(at) <= span[1]  # type: ignore[operator]
    ]
    assert inside == [], f"times tied to the chat fall within the anonymous report's conversation: {inside}"
