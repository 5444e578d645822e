"""Receipts of an anonymous conversation cannot be joined to its report (issue 13, item 6).

Someone with a database copy, the pseudonym key and the sender's Message SIDs (Twilio's API lists them
for a phone number) finds the sender's receipts. Those receipts kept the moment of each message, which
matched the anonymous report's `submitted_at` to 25 microseconds. Now they keep the hour only, and still
stop repeats.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from bot.config import Config
from bot.service import Envelope, ReportService
from flows.types import Inbound
from storage import steps
from storage.db import Database
from storage.models import InboundReceipt, Report, TranscriptEntry
from tests.conftest import every_backend
from tests.reporting import ANONYMOUS, script

SENDER = {"whatsapp": "whatsapp:+447700900461", "telegram": "884422117733"}


def delivery_id(channel: str, i: int) -> str:
    return f"SM{i:032x}" if channel == "whatsapp" else str(700_000 + i)


@every_backend
@pytest.mark.parametrize("channel", ["whatsapp", "telegram"])
async def test_receipts_of_an_anonymous_report_keep_no_time_that_joins_it(
    db: Database, make_config: Callable[..., Config], channel: str
) -> None:
    # The same database; a rate a script cannot reach (it sends faster than a person can type).
    config = make_config("[limits]\nmessages_per_second = 1000")
    service = ReportService(config, db)
    lines = script(config, ANONYMOUS)
    reference = None
    for i, text in enumerate(lines):  # the real clock, as in production (no received_at given)
        outcome = await service.handle(
            Envelope(channel, SENDER[channel], Inbound(text=text), delivery_id=delivery_id(channel, i))
        )
        reference = outcome.reference or reference
    assert reference is not None

    # The attacker's side: the sender's delivery ids, turned into receipt keys with the pseudonym key.
    keys = {steps.delivery_key(service.cipher, channel, delivery_id(channel, i)) for i in range(len(lines))}
    async with db.transaction() as s:
        receipts = list(
            (await s.execute(select(InboundReceipt).where(InboundReceipt.delivery_id.in_(keys)))).scalars()
        )
        report = (await s.execute(select(Report))).scalar_one()
        times = {e.at for e in (await s.execute(select(TranscriptEntry))).scalars()}
    assert len(receipts) == len(lines)
    assert report.anonymous and report.reference == reference
    for receipt in receipts:
        at = receipt.received_at
        assert (at.minute, at.second, at.microsecond) == (0, 0, 0), "a receipt keeps the hour only"
        assert at not in times and at != report.submitted_at

    # Repeats are still stopped: the last message again changes nothing.
    again = await service.handle(
        Envelope(channel, SENDER[channel], Inbound(text=lines[-1]), delivery_id=delivery_id(channel, 0))
    )
    assert again.duplicate
